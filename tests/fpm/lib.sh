# Shared by the php-fpm tests: start a real php-fpm pool with mailguard loaded,
# send FastCGI requests with cgi-fcgi, stop it. Source this file.
# Needs: MAILGUARD_SO; php-fpm8.2 and cgi-fcgi (Debian: php8.2-fpm, libfcgi-bin).

FPM_BIN=${FPM_BIN:-$(command -v php-fpm8.2 || command -v php-fpm || echo /usr/sbin/php-fpm8.2)}

# fpm_start DIR WORKERS [extra php_admin_value lines...]
fpm_start() {
  dir=$1; workers=$2; shift 2
  chmod 755 "$dir"
  install -d -o www-data -g www-data -m 0700 "$dir/state"
  {
    echo "[global]"
    echo "error_log = $dir/fpm.log"
    echo "daemonize = no"
    echo "[mg]"
    echo "user = www-data"
    echo "group = www-data"
    echo "listen = $dir/fpm.sock"
    echo "listen.owner = root"
    echo "listen.mode = 0600"
    echo "pm = static"
    echo "pm.max_children = $workers"
    echo "catch_workers_output = yes"
    echo "php_admin_value[error_log] = $dir/php-error.log"
    for line in "$@"; do echo "$line"; done
  } > "$dir/fpm.conf"
  "$FPM_BIN" -n -d "extension=$MAILGUARD_SO" -y "$dir/fpm.conf" -F > "$dir/fpm.stdout" 2>&1 &
  echo $! > "$dir/fpm.pid"
  for _ in $(seq 1 100); do
    [ -S "$dir/fpm.sock" ] && return 0
    sleep 0.1
  done
  echo "php-fpm did not start:" >&2; cat "$dir/fpm.stdout" "$dir/fpm.log" >&2 2>/dev/null
  return 1
}

# fpm_get DIR SCRIPT [QUERY]: one request; prints the body (headers stripped).
fpm_get() {
  SCRIPT_FILENAME=$2 SCRIPT_NAME=/$(basename "$2") REQUEST_METHOD=GET QUERY_STRING=${3:-} \
    REMOTE_ADDR=127.0.0.1 SERVER_NAME=localhost REQUEST_URI=/$(basename "$2") \
    cgi-fcgi -bind -connect "$1/fpm.sock" | tr -d '\r' | sed '1,/^$/d'
}

fpm_stop() {
  pid=$(cat "$1/fpm.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
