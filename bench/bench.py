#!/usr/bin/env python3
"""mailguard benchmarks (SPEC §10): every case in one run on this machine, then RESULTS.md.

Started by bench/run.sh (which installs the packages and builds mailguard); it can also be
run directly as root when MAILGUARD_SO and MAILGUARD_BIN name the release builds.

Everything runs on loopback in a private work directory (default under /var/tmp, a real
disk: /tmp may be tmpfs, where fsync is free):

  sink      Postfix's smtp-sink on 127.0.0.1:<plain>, behind stunnel on 127.0.0.1:<tls>
            (implicit TLS, a certificate from a CA made for this run). Every client in every
            case delivers to the TLS port, so all of them pay the same TLS handshake to the
            same server, and smtp-sink's message counter tells what arrived.
  postfix   a private Postfix instance (its own config, queue and log directories; no
            listener; relayhost = [localhost]:<tls>, wrapper-mode TLS, certificate verified)
  msmtp     msmtp -t to 127.0.0.1:<tls>, tls_trust_file = the run's CA

Only the standard library. Environment: see bench/README.md.
"""

import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
PHPDIR = os.path.join(BENCH, "php")


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
REPS = env_int("BENCH_REPS", 1 if QUICK else 3)
N1 = env_int("BENCH_N", 200 if QUICK else 2000)          # case 1: messages per process
N2 = env_int("BENCH_N16", 320 if QUICK else 2000)        # case 2: messages in all
SENDERS = env_int("BENCH_SENDERS", 16)
PER_REQ = env_int("BENCH_PER_REQUEST", 10)               # case 2: mail() calls per request
N3 = env_int("BENCH_QUEUE", 500 if QUICK else 10000)     # case 3: queued messages
N4 = env_int("BENCH_RSS_QUEUE", 0)   # case 4: a separate queue for the runner's RSS (0: case 3's)
N4_MAX = env_int("BENCH_RSS_MAX", 300 if QUICK else 1000)  # case 4: runner --max (0: deliver all)
REPS3 = env_int("BENCH_REPS3", 1)                        # case 3: repetitions (each takes minutes)
FPM_MEM_WORKERS = 4
FPM_MEM_REQ = env_int("BENCH_FPM_MEM_REQUESTS", 100 if QUICK else 400)
CASES = os.environ.get("BENCH_CASES", "1 2 3 4 5").split()
SO = os.environ.get("MAILGUARD_SO", "")
MG = os.environ.get("MAILGUARD_BIN", "")
PHP = shutil.which("php8.2") or shutil.which("php") or "/usr/bin/php"
FPM = shutil.which("php-fpm8.2") or "/usr/sbin/php-fpm8.2"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/lib/postfix/sbin/smtp-sink"
SENDMAIL = "/usr/sbin/sendmail"
CARGO_TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target-bench"))
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(BENCH, "RESULTS.md"))
KEEP = os.environ.get("BENCH_KEEP", "") not in ("", "0")

PROCS = []      # (name, Popen) started by us, stopped at exit
CLEANUPS = []   # callables run at exit (Postfix stop)
W = None        # the work directory


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd!r} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def start(name, cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    PROCS.append((name, p))
    return p


def stop(p, sig=signal.SIGTERM, timeout=20):
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for i, (_, q) in enumerate(PROCS):
        if q is p:
            del PROCS[i]
            break


def cleanup():
    for fn in reversed(CLEANUPS):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - best effort at exit
            print(f"cleanup: {e}", file=sys.stderr)
    for _, p in reversed(list(PROCS)):
        try:
            stop(p, timeout=10)
        except Exception:  # noqa: BLE001
            pass
    if W and not KEEP:
        shutil.rmtree(W, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# ---------------------------------------------------------------- statistics

def pct(values, p):
    """Nearest rank on the sorted values (as crates/mailguard-store/benches/submit.rs)."""
    v = sorted(values)
    return v[int(round((len(v) - 1) * p))]


def summary(lat_ns, wall_ns, n):
    return {
        "n": n,
        "p50_ms": pct(lat_ns, 0.50) / 1e6,
        "p99_ms": pct(lat_ns, 0.99) / 1e6,
        "max_ms": max(lat_ns) / 1e6,
        "per_s": n / (wall_ns / 1e9) if wall_ns else 0.0,
    }


def med(values):
    return statistics.median(values) if values else float("nan")


def spread(values, fmt="{:.3f}"):
    """median (min–max over the repeated runs)"""
    if not values:
        return "–"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(med(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


# ---------------------------------------------------------------- the TLS sink

class Sink:
    """smtp-sink (counts messages) behind stunnel (implicit TLS)."""

    def __init__(self, w):
        self.dir = os.path.join(w, "sink")
        os.makedirs(self.dir)
        self.plain = free_port()
        self.tls = free_port()
        self.out = os.path.join(self.dir, "sink.out")
        with open(self.out, "wb") as out:
            # -c: a running counter on stdout ("... msg=N\r"); 1024: listen backlog
            self.sink = start("smtp-sink", [SMTP_SINK, "-c", "-u", "postfix",
                                            f"127.0.0.1:{self.plain}", "1024"],
                              stdout=out, stderr=subprocess.STDOUT)
        wait_port(self.plain)
        conf = os.path.join(self.dir, "stunnel.conf")
        with open(conf, "w") as f:
            f.write(f"""foreground = yes
pid =
output = {self.dir}/stunnel.log
debug = 3
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
[sink]
accept = 127.0.0.1:{self.tls}
connect = 127.0.0.1:{self.plain}
cert = {W}/tls/server.pem
key = {W}/tls/server.key
""")
        self.stunnel = start("stunnel", ["stunnel4" if shutil.which("stunnel4") else "stunnel", conf],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.tls)

    def count(self):
        with open(self.out, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 200))
            tail = f.read().decode("ascii", "replace")
        m = re.findall(r"mesg=(\d+)", tail)
        return int(m[-1]) if m else 0

    def wait_for(self, target, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.count() >= target:
                return True
            time.sleep(0.05)
        log(f"WARNING: {what}: the sink has {self.count()} messages, expected {target}")
        return False


def make_certs(w):
    d = os.path.join(w, "tls")
    os.makedirs(d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
         "-days", "2", "-subj", "/CN=mailguard bench CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", *ec, "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr",
         "-subj", "/CN=localhost"])
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                "keyUsage=critical,digitalSignature\n")
    run(["openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem",
         "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-days", "2",
         "-extfile", f"{d}/ext.cnf", "-out", f"{d}/server.pem"])
    for k in ("ca.key", "server.key"):
        os.chmod(f"{d}/{k}", 0o600)
    return f"{d}/ca.pem"


# ---------------------------------------------------------------- Postfix

MASTER_CF = """\
# A private instance: no listener, no chroot; sendmail -> postdrop -> pickup -> smtp.
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

    def __init__(self, w, sink, ca):
        self.dir = os.path.join(w, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        data = os.path.join(self.dir, "data")
        for d in (self.etc, self.spool, data):
            os.makedirs(d)
        shutil.chown(data, "postfix")
        with open(os.path.join(self.etc, "header_checks"), "w") as f:
            # Case 3 fills the queue with messages that carry this header: they wait in
            # the hold queue until postsuper -H releases them all at once.
            f.write("/^X-Bench-Hold:/ HOLD\n")
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(MASTER_CF)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
config_directory = {self.etc}
queue_directory = {self.spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-bench
maillog_file = {self.dir}/maillog
myhostname = bench.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
alias_maps =
alias_database =
local_transport = error:no local delivery in the bench
inet_interfaces = loopback-only
inet_protocols = ipv4
relayhost = [localhost]:{sink.tls}
smtp_host_lookup = native
smtp_dns_support_level = disabled
smtp_tls_wrappermode = yes
smtp_tls_security_level = secure
smtp_tls_secure_cert_match = nexthop
smtp_tls_CAfile = {ca}
smtp_tls_session_cache_database = btree:$data_directory/smtp_scache
header_checks = regexp:{self.etc}/header_checks
""")
        run(["postfix", "-c", self.etc, "check"])
        run(["postfix", "-c", self.etc, "start"])
        CLEANUPS.append(self.stop)
        self.sendmail_path = f"{SENDMAIL} -C {self.etc} -t -i"

    def stop(self):
        if os.path.exists(os.path.join(self.spool, "pid", "master.pid")):
            run(["postfix", "-c", self.etc, "stop"], check=False)

    def queued(self, queues=QUEUES):
        n = 0
        for q in queues:
            for _, _, files in os.walk(os.path.join(self.spool, q)):
                n += len(files)
        return n

    def wait_empty(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.queued() == 0:
                return True
            time.sleep(0.1)
        log(f"WARNING: the Postfix queue still holds {self.queued()} messages")
        return False

    def version(self):
        return run(["postconf", "-c", self.etc, "-h", "mail_version"]).stdout.strip()


# ---------------------------------------------------------------- the senders

class Setup:
    def __init__(self, w, sink, pfx, ca):
        self.w, self.sink, self.pfx, self.ca = w, sink, pfx, ca
        self.msmtprc = os.path.join(w, "msmtprc")
        with open(self.msmtprc, "w") as f:
            f.write(f"""defaults
tls on
tls_starttls off
tls_trust_file {ca}
logfile
account bench
host 127.0.0.1
port {sink.tls}
from shop@example.org
auth off
account default : bench
""")
        os.chmod(self.msmtprc, 0o600)
        self.runner_toml = os.path.join(w, "mailguard.toml")
        with open(self.runner_toml, "w") as f:
            f.write(f"""transport = "smtp"
[smtp]
host = "127.0.0.1"
port = {sink.tls}
security = "ssl"
ca_file = "{ca}"
helo_name = "bench.localdomain"
[runner]
interval = "200ms"
""")
        self.seq = 0

    def fresh(self, name):
        self.seq += 1
        d = os.path.join(self.w, "runs", f"{self.seq:03d}-{name}")
        os.makedirs(d)
        return d

    def ini(self, case, state_dir):
        """The PHP settings (and whether the extension is loaded) of a case."""
        mg = {
            "mailguard.state_dir": state_dir,
            "mailguard.rate_quota": "",
            "mailguard.rate_burst": "",
            "mailguard.spam_check": "1",
        }
        if case == "postfix":
            return False, {"sendmail_path": self.pfx.sendmail_path}
        if case == "msmtp":
            return False, {"sendmail_path": f"/usr/bin/msmtp -C {self.msmtprc} -t -i"}
        if case in ("mg-runner", "mg-runner-nospam"):
            mg["mailguard.transport"] = "runner"
            if case.endswith("nospam"):
                mg["mailguard.spam_check"] = "0"
            return True, mg
        if case == "mg-smtp":
            mg.update({"mailguard.transport": "smtp",
                       "mailguard.smtp_relay": f"127.0.0.1:{self.sink.tls}",
                       "mailguard.smtp_security": "ssl",
                       "mailguard.smtp_ca_file": self.ca})
            return True, mg
        if case == "floor":
            return False, {}
        raise ValueError(case)

    def php_cmd(self, case, state_dir, args):
        ext, ini = self.ini(case, state_dir)
        cmd = [PHP, "-n"]
        if ext:
            cmd += ["-d", f"extension={SO}"]
        for k, v in ini.items():
            cmd += ["-d", f"{k}={v}"]
        return cmd + [os.path.join(PHPDIR, "send.php")] + [str(a) for a in args]

    def start_runner(self, state_dir):
        return start("mailguard run", [MG, "run", "--state-dir", state_dir,
                                       "--config", self.runner_toml, "--interval", "200ms"],
                     stdout=open(os.path.join(os.path.dirname(state_dir), "runner.out"), "ab"),
                     stderr=subprocess.STDOUT)


def precreate(s, case, state):
    """One message from one process into a fresh state directory before concurrent
    senders start: the first mail() of several processes at once on a state directory that
    does not exist yet can fail with "database is locked" (reported; see README.md)."""
    if not case.startswith("mg"):
        return
    out = os.path.join(os.path.dirname(state), "precreate.json")
    r = run(s.php_cmd(case, state, [99_000_000, 1, out, "-"]), check=False)
    if r.returncode != 0 or json.load(open(out))["fails"]:
        raise RuntimeError(f"precreate {case}: {r.stdout} {r.stderr}")


CASE1 = ["postfix", "msmtp", "mg-runner", "mg-runner-nospam", "mg-smtp", "floor"]
LABEL = {
    "postfix": "stock mail() → Postfix `sendmail -t -i`",
    "msmtp": "stock mail() → `msmtp -t` (TLS to the sink)",
    "mg-runner": "mailguard, transport=runner (durable queue; spam check on)",
    "mg-runner-nospam": "mailguard, transport=runner, spam_check=0",
    "mg-smtp": "mailguard, transport=smtp (queue + immediate TLS attempt)",
    "floor": "floor: 5 KB write + fsync(file) + fsync(dir), new file",
}


def settle(s, expect, what):
    """Before the next case: whatever the last one handed on has reached the sink and
    Postfix's queue is empty, so no case pays for another's background delivery."""
    ok = s.sink.wait_for(expect, 600, what)
    s.pfx.wait_empty(120)
    return ok


def case1_one(s, case, rep, results):
    d = s.fresh(f"c1-{case}")
    state = os.path.join(d, "state")
    out = os.path.join(d, "out.json")
    floor = os.path.join(d, "floor")
    os.makedirs(floor)
    runner = s.start_runner(state) if case == "mg-runner" or case == "mg-runner-nospam" else None
    before = s.sink.count()
    args = [rep * 1_000_000, N1, out, floor if case == "floor" else "-"]
    r = run(s.php_cmd(case, state, args), check=False)
    if r.returncode != 0:
        raise RuntimeError(f"case 1 {case}: php exited {r.returncode}: {r.stderr}")
    data = json.load(open(out))
    if runner:
        # The runner delivered in the background during the loop (as Postfix's qmgr
        # does); what it has not sent yet is left in this case's own state directory.
        stop(runner)
        delivered_ok = True
    else:
        expect = before + (0 if case == "floor" else N1 - data["fails"])
        delivered_ok = settle(s, expect, f"case 1 {case}")
    res = summary(data["lat"], data["wall"], N1)
    res["fails"] = data["fails"]
    res["delivered"] = s.sink.count() - before
    results.setdefault(case, []).append(res)
    log(f"case 1 rep {rep + 1} {case:<17} p50 {res['p50_ms']:.3f} ms  p99 {res['p99_ms']:.3f} ms"
        f"  {res['per_s']:.0f}/s  fails {data['fails']}  at sink {res['delivered']}"
        + ("" if delivered_ok else " (incomplete)"))


# ---------------------------------------------------------------- php-fpm + FastCGI

def fcgi_record(typ, rid, content):
    pad = (-len(content)) % 8
    return struct.pack(">BBHHBB", 1, typ, rid, len(content), pad, 0) + content + b"\0" * pad


def fcgi_pair(k, v):
    k, v = k.encode(), v.encode()
    enc = b""
    for x in (k, v):
        enc += bytes([len(x)]) if len(x) < 128 else struct.pack(">I", len(x) | 0x80000000)
    return enc + k + v


async def fcgi_get(sock, script, query):
    reader, writer = await asyncio.open_unix_connection(sock)
    params = b"".join(fcgi_pair(k, v) for k, v in {
        "SCRIPT_FILENAME": script, "SCRIPT_NAME": "/" + os.path.basename(script),
        "REQUEST_METHOD": "GET", "QUERY_STRING": query, "REQUEST_URI": "/",
        "SERVER_NAME": "localhost", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "GATEWAY_INTERFACE": "CGI/1.1"}.items())
    writer.write(fcgi_record(1, 1, struct.pack(">HB5x", 1, 0)) + fcgi_record(4, 1, params)
                 + fcgi_record(4, 1, b"") + fcgi_record(5, 1, b""))
    await writer.drain()
    out, err = b"", b""
    while True:
        _, typ, _, clen, plen, _ = struct.unpack(">BBHHBB", await reader.readexactly(8))
        content = await reader.readexactly(clen + plen)
        if typ == 6:
            out += content[:clen]
        elif typ == 7:
            err += content[:clen]
        elif typ == 3:
            break
    writer.close()
    body = out.split(b"\r\n\r\n", 1)[-1]
    if err:
        log(f"php-fpm stderr: {err[:300]!r}")
    return body


async def fcgi_load(sock, script, total, per_req, senders, extra=""):
    """`senders` connections at once, each sending requests of `per_req` mail() calls
    until `total` messages are spoken for."""
    next_first = [0]
    lat, by_pid, by_conn, fails = [], {}, [0] * senders, [0]

    async def sender(k):
        while next_first[0] < total:
            first = next_first[0]
            n = min(per_req, total - first)
            next_first[0] += n
            body = await fcgi_get(sock, script, f"first={first}&n={n}{extra}")
            try:
                r = json.loads(body)
            except ValueError:
                raise RuntimeError(f"php-fpm answered: {body[:500]!r}")
            lat.extend(r["lat"])
            fails[0] += r["fails"]
            by_pid[r["pid"]] = by_pid.get(r["pid"], 0) + n
            by_conn[k] += n

    t0 = time.monotonic_ns()
    await asyncio.gather(*(sender(k) for k in range(senders)))
    return lat, time.monotonic_ns() - t0, by_pid, by_conn, fails[0]


class Fpm:
    def __init__(self, d, workers, ext, ini):
        self.dir = d
        self.sock = os.path.join(d, "fpm.sock")
        conf = os.path.join(d, "fpm.conf")
        with open(conf, "w") as f:
            f.write(f"""[global]
error_log = {d}/fpm.log
daemonize = no
pid = {d}/fpm.pid
[bench]
listen = {self.sock}
pm = static
pm.max_children = {workers}
pm.max_requests = 0
catch_workers_output = yes
php_admin_value[error_log] = {d}/php-error.log
""")
        # Workers run as root (-R): Postfix's sendmail accepts a private instance's
        # config directory (-C) from root only, and the bench changes nothing in /etc.
        cmd = [FPM, "-n", "-R", "-y", conf, "-F"]
        if ext:
            cmd += ["-d", f"extension={SO}"]
        for k, v in ini.items():
            cmd += ["-d", f"{k}={v}"]
        self.p = start("php-fpm", cmd, stdout=open(os.path.join(d, "fpm.stdout"), "wb"),
                       stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while not os.path.exists(self.sock):
            if time.monotonic() > end or self.p.poll() is not None:
                raise RuntimeError("php-fpm did not start: "
                                   + open(os.path.join(d, "fpm.stdout")).read())
            time.sleep(0.05)
        end = time.monotonic() + 10
        while len(self.workers()) < workers and time.monotonic() < end:
            time.sleep(0.05)

    def workers(self):
        try:
            with open(f"/proc/{self.p.pid}/task/{self.p.pid}/children") as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def stop(self):
        stop(self.p, signal.SIGQUIT)


def case2_one(s, case, rep, results):
    d = s.fresh(f"c2-{case}")
    state = os.path.join(d, "state")
    floor = os.path.join(d, "floor")
    os.makedirs(floor)
    ext, ini = s.ini(case, state)
    precreate(s, case, state)
    fpm = Fpm(d, SENDERS, ext, ini)
    runner = s.start_runner(state) if case == "mg-runner" else None
    before = s.sink.count()
    try:
        extra = f"&floor={floor}" if case == "floor" else ""
        lat, wall, by_pid, by_conn, fails = asyncio.run(
            fcgi_load(fpm.sock, os.path.join(PHPDIR, "fpm.php"), N2, PER_REQ, SENDERS, extra))
    finally:
        fpm.stop()
    if runner:
        stop(runner)
    else:
        settle(s, before + (0 if case == "floor" else N2 - fails), f"case 2 {case}")
    res = summary(lat, wall, N2)
    res.update(fails=fails, workers=len(by_pid), pid_min=min(by_pid.values()),
               pid_max=max(by_pid.values()), conn_min=min(by_conn), conn_max=max(by_conn),
               delivered=s.sink.count() - before)
    results.setdefault(case, []).append(res)
    log(f"case 2 rep {rep + 1} {case:<10} p50 {res['p50_ms']:.3f} ms  p99 {res['p99_ms']:.3f} ms"
        f"  {res['per_s']:.0f}/s  workers {res['workers']} msgs/worker {res['pid_min']}–{res['pid_max']}"
        f"  fails {fails}")


# ---------------------------------------------------------------- case 3: delivery

def fill(s, case, state, n, procs, size=5120, extra=""):
    """n messages into the queue (mailguard's store or Postfix's hold queue) from
    `procs` PHP processes at once; returns the seconds it took."""
    d = os.path.dirname(state)
    precreate(s, case, state)
    t0 = time.monotonic()
    ps = []
    share = (n + procs - 1) // procs
    for k in range(procs):
        cnt = min(share, n - k * share)
        if cnt <= 0:
            break
        out = os.path.join(d, f"fill{k}.json")
        ps.append(subprocess.Popen(s.php_cmd(case, state, [10_000_000 + k * share, cnt, out, "-", size, extra]),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    fails, warning, lats = 0, "", []
    for k, p in enumerate(ps):
        outtext, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"fill {case}: php exited {p.returncode}: {err}")
        r = json.load(open(os.path.join(d, f"fill{k}.json")))
        fails += r["fails"]
        lats.append(r["lat"])
        if r["fails"] and not warning:
            warning = next((l.strip() for l in outtext.splitlines() if "Warning" in l), "")
    secs = time.monotonic() - t0
    # Accept latency at the start and at the end of the fill (first and last tenth of
    # every process's calls): does accepting get slower as the queue grows?
    head = [x for l in lats for x in l[:max(1, len(l) // 10)]]
    tail = [x for l in lats for x in l[-max(1, len(l) // 10):]]
    info = {"secs": secs, "fails": fails, "warning": warning,
            "p50_first_ms": pct(head, 0.5) / 1e6, "p50_last_ms": pct(tail, 0.5) / 1e6}
    if fails:
        log(f"WARNING: fill {case}: {fails} mail() calls returned false: {warning}")
    return info


def watch_rss(p, samples):
    """VmHWM/VmRSS of a running process, sampled until it exits; returns ru_maxrss (KiB)."""
    hwm = 0
    while True:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                st = f.read()
            m = re.search(r"VmHWM:\s+(\d+)", st)
            if m:
                hwm = max(hwm, int(m.group(1)))
                samples.append(hwm)
        except OSError:
            pass
        try:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        except ChildProcessError:
            return hwm, hwm, 0
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return hwm, ru.ru_maxrss, p.returncode
        time.sleep(0.1)


def runner_once(s, state, extra_args=()):
    out_path = os.path.join(os.path.dirname(state), "runner-once.out")
    before = s.sink.count()
    t0 = time.monotonic()
    with open(out_path, "wb") as out:
        p = subprocess.Popen([MG, "run", "--once", "--state-dir", state, "--config", s.runner_toml,
                              *extra_args], stdout=out, stderr=subprocess.STDOUT)
        hwm, maxrss, rc = watch_rss(p, [])
    secs = time.monotonic() - t0
    text = open(out_path).read()
    if rc != 0:
        raise RuntimeError(f"mailguard run --once exited {rc}: {text[-2000:]}")
    m = re.search(r"sent (\d+)", text)
    return {"secs": secs, "sent": int(m.group(1)) if m else -1, "hwm_kib": hwm,
            "maxrss_kib": maxrss, "at_sink": s.sink.count() - before, "summary": text.strip().splitlines()[-1:]}


def case3_one(s, rep, results):
    # mailguard: fill with transport=runner (no runner running), then time the runner.
    d = s.fresh("c3-mailguard")
    state = os.path.join(d, "state")
    # precreate() in fill() queues one message first: the fill sends N3 - 1 more.
    f = fill(s, "mg-runner", state, N3 - 1, 2)
    fill_s = f["secs"]
    r = runner_once(s, state)
    r["fill_s"] = fill_s
    r["fill"] = f
    r["per_s"] = r["at_sink"] / r["secs"]
    results.setdefault("mailguard", []).append(r)
    log(f"case 3 rep {rep + 1} mailguard run --once: {r['at_sink']} in {r['secs']:.2f} s = "
        f"{r['per_s']:.0f}/s (filled in {fill_s:.1f} s; VmHWM {r['hwm_kib']} KiB)")
    settle(s, s.sink.count(), "case 3 mailguard")

    # Postfix: the same messages, held by header_checks, released at once.
    d = s.fresh("c3-postfix")
    state = os.path.join(d, "state")
    f = fill(s, "postfix", state, N3, 4, extra="X-Bench-Hold: yes")
    fill_s = f["secs"]
    end = time.monotonic() + 600
    while s.pfx.queued(("hold",)) < N3 and time.monotonic() < end:
        time.sleep(0.1)
    held = s.pfx.queued(("hold",))
    if held < N3:
        log(f"WARNING: only {held} of {N3} messages reached Postfix's hold queue")
    before = s.sink.count()
    t0 = time.monotonic()
    run(["postsuper", "-c", s.pfx.etc, "-H", "ALL"])
    t_rel = time.monotonic() - t0
    run(["postqueue", "-c", s.pfx.etc, "-f"])
    s.sink.wait_for(before + held, 1200, "case 3 postfix")
    secs = time.monotonic() - t0
    s.pfx.wait_empty(120)
    got = s.sink.count() - before
    r = {"secs": secs, "at_sink": got, "per_s": got / secs, "fill_s": fill_s, "release_s": t_rel, "fill": f}
    results.setdefault("postfix", []).append(r)
    log(f"case 3 rep {rep + 1} Postfix release: {got} in {secs:.2f} s = {r['per_s']:.0f}/s "
        f"(postsuper -H took {t_rel:.2f} s; filled in {fill_s:.1f} s)")


# ---------------------------------------------------------------- case 4: memory

def proc_mem(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Pss", "Private_Clean", "Private_Dirty"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    out["Private"] = out.get("Private_Clean", 0) + out.get("Private_Dirty", 0)
    return out


def case4_fpm(s, rep, results):
    for case in ("without", "with"):
        d = s.fresh(f"c4-fpm-{case}")
        state = os.path.join(d, "state")
        if case == "with":
            ext, ini = s.ini("mg-runner", state)
            precreate(s, "mg-runner", state)
        else:
            ext, ini = False, {"sendmail_path": "/bin/cat > /dev/null"}
        fpm = Fpm(d, FPM_MEM_WORKERS, ext, ini)
        try:
            asyncio.run(fcgi_load(fpm.sock, os.path.join(PHPDIR, "fpm.php"),
                                  FPM_MEM_REQ, 1, FPM_MEM_WORKERS))
            mems = [proc_mem(pid) for pid in fpm.workers()]
        finally:
            fpm.stop()
        agg = {k: med([m.get(k, 0) for m in mems])
               for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Pss", "Private")}
        results.setdefault(case, []).append(agg)
        log(f"case 4 rep {rep + 1} php-fpm worker {case} mailguard: VmRSS {agg['VmRSS']:.0f} KiB, "
            f"Pss {agg['Pss']:.0f} KiB, private {agg['Private']:.0f} KiB")


def case4_runner(s, results):
    d = s.fresh("c4-runner")
    state = os.path.join(d, "state")
    f = fill(s, "mg-runner", state, N4 - 1, 2, size=600)
    fill_s = f["secs"]
    log(f"case 4: {N4} small messages offered in {fill_s:.1f} s, {f['fails']} refused")
    args = ("--max", str(N4_MAX)) if N4_MAX else ()
    r = runner_once(s, state, args)
    r["fill_s"] = fill_s
    r["fill"] = f
    r["queued"] = N4 - f["fails"]
    r["max"] = N4_MAX
    results["runner"] = r
    log(f"case 4: runner with {N4} queued: VmHWM {r['hwm_kib']} KiB, "
        f"delivered {r['at_sink']} in {r['secs']:.1f} s")
    settle(s, s.sink.count(), "case 4")


# ---------------------------------------------------------------- case 5: cargo benches

def case5(results):
    env = dict(os.environ, CARGO_TARGET_DIR=CARGO_TARGET, BENCH_DIR=W)
    spam_args = ["cargo", "bench", "-p", "mailguard-core", "--bench", "spam"]
    if QUICK:
        spam_args += ["--", "--warm-up-time", "0.5", "--measurement-time", "1"]
    log("case 5: " + " ".join(spam_args))
    r = run(spam_args, cwd=ROOT, env=env, check=False)
    results["spam_cmd"] = " ".join(spam_args)
    results["spam_rc"] = r.returncode
    results["spam"] = re.findall(r"^(\S.*?)\s*\n?\s+time:\s+\[([^\]]+)\]", r.stdout, re.M)
    results["spam_thrpt"] = re.findall(r"^\s+thrpt:\s+\[([^\]]+)\]", r.stdout, re.M)
    results["spam_raw"] = r.stdout[-6000:] if r.returncode else ""
    n = 200 if QUICK else 1000
    store_args = ["cargo", "bench", "-p", "mailguard-store", "--bench", "submit", "--", str(n)]
    log("case 5: " + " ".join(store_args))
    r = run(store_args, cwd=ROOT, env=env, check=False)
    results["store_cmd"] = " ".join(store_args)
    results["store_rc"] = r.returncode
    results["store"] = [l for l in r.stdout.splitlines()
                        if re.match(r"^(5 KB|submit|floor|ratio)", l)]
    results["store_raw"] = r.stdout[-3000:] + r.stderr[-3000:] if r.returncode else ""
    for k, v in results.items():
        if k.endswith("_rc") and v != 0:
            log(f"WARNING: {k[:-3]} bench exited {v}")


# ---------------------------------------------------------------- the report

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True).stdout.strip()
    except OSError:
        return ""


def machine(w):
    cpu = sh("lscpu | sed -n 's/^Model name: *//p' | head -1")
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} logical CPUs (`nproc`: {sh('nproc')})"),
        ("memory", sh("free -m | awk '/^Mem:/{print $2\" MiB\"}'")),
        ("kernel", platform.release()),
        ("OS", sh(". /etc/os-release; echo $PRETTY_NAME") + f" (Debian {sh('cat /etc/debian_version')})"),
        ("work dir filesystem", sh(f"findmnt -n -o SOURCE,FSTYPE,OPTIONS -T {w}")
         + f" (`{w}`)"),
        ("virtualisation", sh("systemd-detect-virt 2>/dev/null") or "unknown"),
        ("load average at start", LOAD0),
        ("load average at end", " ".join(open("/proc/loadavg").read().split()[:3])),
        ("PHP", sh(f"{PHP} -n -v | head -1")),
        ("Postfix", sh("postconf -d -h mail_version")),
        ("msmtp", sh("msmtp --version | head -1")),
        ("stunnel", sh("stunnel -version 2>&1 | grep -m1 '^stunnel'")),
        ("OpenSSL", sh("openssl version")),
        ("rustc", sh("rustc --version")),
        ("mailguard", sh(f"git -C {ROOT} describe --always --dirty --abbrev=12")
         + f" (release build: `{SO}`, `{MG}`)"),
    ]


def per_worker(runs):
    return ", ".join("{}–{}".format(r["pid_min"], r["pid_max"]) for r in runs)


def fmt_ms(values):
    return spread(values, "{:.3f}")


def ratio(a, b):
    return a / b if b else float("nan")


def ratio_spread(num_runs, den_runs, key_n, key_d):
    """Ratio of the medians, and its min–max over the runs paired by repetition."""
    per = [ratio(a[key_n], b[key_d]) for a, b in zip(num_runs, den_runs)]
    main = ratio(med([a[key_n] for a in num_runs]), med([b[key_d] for b in den_runs]))
    if len(per) > 1:
        return f"{main:.2f}x (per run {min(per):.2f}–{max(per):.2f}x)"
    return f"{main:.2f}x"


def report(R, started, total_s, complete=True):
    c1, c2, c3, c4, c5 = (R.get(k, {}) for k in ("1", "2", "3", "4", "5"))
    L = []
    a = L.append
    a("# mailguard benchmark results\n")
    if not complete:
        a("**INCOMPLETE: the run stopped with an error (see the log of bench/run.sh); "
          "only the cases measured before it are below.**\n")
    a(f"Written by `bench/run.sh` ({'BENCH_QUICK=1 smoke run: small N, one repetition — not a result' if QUICK else 'full run'}) "
      f"on {started.strftime('%Y-%m-%d %H:%M UTC')}; the whole run took {total_s / 60:.1f} minutes. "
      "Every figure below comes from this one run; every ratio is computed from figures of this run. "
      "Nothing here is asserted by a test (SPEC §10).\n")
    a("## Machine\n")
    a("| | |\n|---|---|")
    for k, v in machine(W):
        a(f"| {k} | {v} |")
    a("")
    a("The machine is shared: other work may run at the same time, which is why each case "
      f"is repeated {REPS} time(s), cases are interleaved (one repetition of every case, "
      "then the next), and each figure is given as **median (min–max) over the repetitions**.\n")
    a("## How it is measured\n")
    a(f"""- **Sink (same for every case):** Postfix's `smtp-sink` on 127.0.0.1 behind `stunnel`
  (implicit TLS, like port 465; EC P-256 certificate from a CA made for the run, SAN
  `localhost` + `127.0.0.1`). Every sender verifies the certificate against that CA. stunnel
  rather than Postfix `smtpd` with TLS as the sink: `smtp-sink` accepts and discards without a
  queue, so the sink costs the same to every client and never becomes a second MTA whose
  queue work would be charged to one side; its `-c` counter tells how many messages
  arrived (every case checks that all of them did).
- **Postfix:** a private instance (own `config_directory`, queue and log, no listener, no
  chroot), `relayhost = [localhost]:<tls>`, `smtp_tls_wrappermode = yes`,
  `smtp_tls_security_level = secure` with the run's CA, TLS session cache on; everything
  else stock (`default_destination_concurrency_limit` 20, no TLS connection reuse).
  PHP's `sendmail_path = /usr/sbin/sendmail -C <private config> -t -i`.
- **msmtp:** `sendmail_path = /usr/bin/msmtp -C <rc> -t -i`, `tls on`, `tls_starttls off`,
  `tls_trust_file` = the run's CA: one TLS connection per message, synchronously inside mail().
- **mailguard:** the release build of this tree, `php -n -d extension=libmailguard.so`,
  `mailguard.rate_quota=` and `mailguard.rate_burst=` empty (unlimited),
  `mailguard.spam_check=1` unless marked, a fresh `mailguard.state_dir` per case and
  repetition. `transport=runner`: the worker only queues, while `mailguard run`
  (`--interval 200ms`, same TLS sink, CA in `ca_file`) delivers in the background during
  the measurement, as Postfix's queue manager does in the Postfix case.
  `transport=smtp`: `mailguard.smtp_relay=127.0.0.1:<tls>`, `smtp_security=ssl`,
  `smtp_ca_file` = the run's CA (an immediate TLS delivery inside mail()).
- **Floor:** the same 5 KB bytes written by PHP into a new file (`fopen 'x'`, `fwrite`,
  `fsync`, `fclose`), then `fsync` of the directory, per message, in the same work
  directory (same filesystem as every queue).
- **Message:** `mail($to, $subject, $body, $headers)` of an order confirmation, 5,112 bytes
  as PHP pipes it (To/Subject lines, 5 headers, text body), numbered so no two are alike.
- **Latency:** `hrtime(true)` around each `mail()` call in the PHP script (PHP's own
  loop); p50/p99 are nearest-rank percentiles of all calls of one repetition.
  **Throughput** = messages / wall time of that loop (one process).
- Between cases the bench waits until every message handed on has reached the sink and
  Postfix's queue is empty, so no case pays for another's background deliveries.
""")

    if c1:
        a(f"## 1. mail() latency, one PHP process, {N1} messages of 5 KB\n")
        a("PHP CLI (`php -n`), one process calling mail() in a loop. Per case: p50, p99, max of the "
          "per-call latency (ms) and the loop's throughput (messages/s).\n")
        a("| case | p50 ms | p99 ms | max ms | msgs/s | at sink |\n|---|---|---|---|---|---|")
        for case in CASE1:
            runs = c1.get(case)
            if not runs:
                continue
            a(f"| {LABEL[case]} | {fmt_ms([r['p50_ms'] for r in runs])} | {fmt_ms([r['p99_ms'] for r in runs])} "
              f"| {fmt_ms([r['max_ms'] for r in runs])} | {spread([r['per_s'] for r in runs], '{:.0f}')} "
              f"| {'/'.join(str(r['delivered']) for r in runs)}"
              + (f" ({sum(r['fails'] for r in runs)} mail() false)" if any(r['fails'] for r in runs) else "")
              + " |")
        a("")
    if c2:
        a(f"## 2. {SENDERS} concurrent senders (php-fpm, {N2} messages in all)\n")
        a(f"php-fpm (`pm = static`, {SENDERS} workers, `php -n` settings as in case 1) driven by "
          f"`bench/bench.py`'s own asyncio FastCGI client over the Unix socket: {SENDERS} connections at once, "
          f"each request runs `bench/php/fpm.php`, which makes {PER_REQ} mail() calls timed with hrtime "
          "and returns their latencies; requests are handed out until all messages are sent. "
          "(cgi-fcgi per request would fork a process per request and be the bottleneck.) "
          "**Sender = php-fpm worker**: messages per worker min–max shows whether one starved; "
          "throughput = messages / wall time of the whole load.\n")
        a("| case | p50 ms | p99 ms | max ms | msgs/s (all senders) | workers used | msgs per worker (min–max, per run) |\n"
          "|---|---|---|---|---|---|---|")
        for case in CASE1:
            runs = c2.get(case)
            if not runs:
                continue
            a(f"| {LABEL[case]} | {fmt_ms([r['p50_ms'] for r in runs])} | {fmt_ms([r['p99_ms'] for r in runs])} "
              f"| {fmt_ms([r['max_ms'] for r in runs])} | {spread([r['per_s'] for r in runs], '{:.0f}')} "
              f"| {'/'.join(str(r['workers']) for r in runs)} "
              f"| {per_worker(runs)}"
              + (f" ({sum(r['fails'] for r in runs)} mail() false)" if any(r['fails'] for r in runs) else "")
              + " |")
        a("")
    if c3:
        a(f"## 3. Delivery of a queue of {N3} messages (5 KB) to the loopback TLS sink\n")
        a("- **mailguard:** the queue is filled by 2 PHP processes with `transport=runner` (no runner "
          "running); then `mailguard run --once --state-dir … --config …` is timed from start to exit "
          "(the exit comes after the last message is recorded as sent).\n"
          "- **Postfix:** the same messages (plus an `X-Bench-Hold: yes` header, which "
          "`header_checks` turns into HOLD) are submitted by 4 PHP processes through `sendmail`; "
          "once all of them sit in the hold queue, the clock starts, `postsuper -H ALL` releases "
          "them (to the deferred queue) and `postqueue -f` flushes; the clock stops when the sink "
          "has counted all of them (then the queue is checked empty).\n")
        a("| | seconds | msgs/s | at sink | fill (s) |\n|---|---|---|---|---|")
        for k, name in (("mailguard", "`mailguard run --once`"), ("postfix", "Postfix (release → sink)")):
            runs = c3.get(k)
            if runs:
                a(f"| {name} | {spread([r['secs'] for r in runs], '{:.2f}')} | {spread([r['per_s'] for r in runs], '{:.0f}')} "
                  f"| {'/'.join(str(r['at_sink']) for r in runs)} | {spread([r['fill_s'] for r in runs], '{:.1f}')} |")
        for k, name in (("mailguard", "mailguard (2 processes, transport=runner)"), ("postfix", "Postfix sendmail (4 processes)")):
            for r in c3.get(k, []):
                f = r.get("fill", {})
                if f:
                    a(f"\nFilling, {name}: {N3 if k == 'postfix' else N3 - 1} messages in {f['secs']:.1f} s; "
                      f"p50 of mail() over the first tenth of each process's calls {f['p50_first_ms']:.2f} ms, "
                      f"over the last tenth {f['p50_last_ms']:.2f} ms"
                      + (f"; {f['fails']} refused: `{f['warning']}`" if f["fails"] else "") + ".")
        if c3.get("postfix"):
            a(f"\n`postsuper -H ALL` alone took {spread([r['release_s'] for r in c3['postfix']], '{:.2f}')} s of Postfix's time. "
              f"The runner's peak RSS (VmHWM) delivering these: {spread([r['hwm_kib'] / 1024 for r in c3['mailguard']], '{:.1f}')} MiB.")
        a("")
    if c4:
        a("## 4. Memory\n")
        if c4.get("with"):
            a(f"php-fpm, `pm = static` with {FPM_MEM_WORKERS} workers, after {FPM_MEM_REQ} requests that each call "
              "mail() once (**without**: no extension, `sendmail_path = /bin/cat > /dev/null`; **with**: "
              "mailguard loaded, `transport=runner`, spam check on). Median over the workers of "
              "/proc/PID/status VmRSS and VmHWM and /proc/PID/smaps_rollup Pss and Private (KiB); "
              "median (min–max) over repetitions.\n")
            cols = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Pss", "Private")
            a("| worker | " + " | ".join(f"{c} KiB" for c in cols) + " |\n|---" * 1 + "|---" * len(cols) + "|")
            for k in ("without", "with"):
                runs = c4[k]
                a(f"| {k} mailguard | " + " | ".join(spread([r[m] for r in runs], "{:.0f}") for m in cols) + " |")
            a("| **added by mailguard** | " + " | ".join(
                spread([w[m] - o[m] for w, o in zip(c4["with"], c4["without"])], "{:.0f}") for m in cols) + " |")
            a("\nVmRSS counts every resident page the worker maps, including the shared, file-backed pages of "
              "`libmailguard.so` and of the libraries it pulls in (RssFile), which every worker shares with the "
              "master and the other workers; RssAnon is the worker's own heap and stacks; Pss divides shared pages "
              "among the processes that map them; Private is what only this worker holds.")
            a("")
        if not c4.get("runner") and c3.get("mailguard"):
            a("Runner: its peak RSS is the VmHWM of `mailguard run --once` in case 3 (read every 100 ms "
              f"from /proc/PID/status until it exits), with {N3} 5 KB messages queued and all of them delivered: "
              f"**{spread([r['hwm_kib'] / 1024 for r in c3['mailguard']], '{:.1f}')} MiB**. "
              "100,000 queued messages were not measured: the bench keeps the default queue cap of "
              "10,000 messages per state directory (`mailguard.queue_max_messages`).\n")
        if c4.get("runner"):
            r = c4["runner"]
            a(f"Runner: a state directory filled with {r['queued']} small messages (about 600 bytes, 2 PHP "
              f"processes, `transport=runner`, {r['fill_s']:.0f} s), then `mailguard run --once"
              + (f" --max {r['max']}" if r['max'] else "")
              + f"` against the sink. VmHWM (the kernel's high-water mark of its RSS) read every 100 ms from /proc/PID/status "
              f"until it exits: **{r['hwm_kib'] / 1024:.1f} MiB**. It delivered {r['at_sink']} messages in "
              f"{r['secs']:.1f} s ({r['at_sink'] / r['secs']:.0f}/s, small messages)"
              + (f"; `--max {r['max']}` keeps the run short (delivering all of them at this rate would take "
                 f"{r['queued'] / max(r['at_sink'] / r['secs'], 1) / 60:.0f} minutes); the runner starts, "
                 "opens the store and claims batches with all of them queued" if r["max"] else "")
              + ".\n")
    if c5:
        a("## 5. Spam scorer and store (the crates' own benches)\n")
        a(f"`{c5['spam_cmd']}` (criterion; `time: [low estimate high]` per message):\n")
        a("| bench | time [low est high] |\n|---|---|")
        for name, t in c5.get("spam", []):
            a(f"| {name.strip()} | {t} |")
        if c5.get("spam_rc"):
            a(f"\nThe spam bench exited {c5['spam_rc']}:\n\n```\n{c5['spam_raw']}\n```")
        a(f"\n`{c5['store_cmd']}` (5 KB message; submit = `Store::submit`, WAL + synchronous=FULL; "
          "floor = write + fsync of a new file + fsync of its directory, interleaved in the same loop):\n")
        a("```\n" + "\n".join(c5.get("store", [])) + "\n```")
        if c5.get("store_rc"):
            a(f"\nThe store bench exited {c5['store_rc']}:\n\n```\n{c5['store_raw']}\n```")
        a("")

    # Headline ratios
    a("## Headline ratios (SPEC §10 targets; same run)\n")
    a("Ratios of medians over the repetitions; in brackets the min–max of the same ratio "
      "computed per repetition (repetition k of one case against repetition k of the other). "
      "For 'A / B' with latencies, a value above 1 means B (mailguard) is faster.\n")
    a("| ratio | value | SPEC §10 target |\n|---|---|---|")
    if c1.get("mg-runner"):
        mg = c1["mg-runner"]
        if c1.get("postfix"):
            a(f"| stock+Postfix p50 / mailguard (runner) p50 | {ratio_spread(c1['postfix'], mg, 'p50_ms', 'p50_ms')} | ≥ 15x |")
        if c1.get("msmtp"):
            a(f"| stock+msmtp p50 / mailguard (runner) p50 | {ratio_spread(c1['msmtp'], mg, 'p50_ms', 'p50_ms')} | – |")
        if c1.get("floor"):
            a(f"| mailguard (runner) p50 / floor p50 | {ratio_spread(mg, c1['floor'], 'p50_ms', 'p50_ms')} | ≤ 3x |")
        a(f"| mailguard (runner) p99, one process | {fmt_ms([r['p99_ms'] for r in mg])} ms | ≤ 2 ms |")
        if c1.get("mg-smtp") and c1.get("postfix"):
            a(f"| stock+Postfix p50 / mailguard (smtp) p50 | {ratio_spread(c1['postfix'], c1['mg-smtp'], 'p50_ms', 'p50_ms')} | – |")
        if c2.get("mg-runner"):
            a(f"| 16-sender p99 / one-process p50, mailguard (runner) | {ratio_spread(c2['mg-runner'], mg, 'p99_ms', 'p50_ms')} | ≤ 10x |")
            a(f"| 16 senders: messages per worker (min–max) | {per_worker(c2['mg-runner'])} "
              f"over {'/'.join(str(r['workers']) for r in c2['mg-runner'])} workers | no sender starves |")
    if c3.get("mailguard") and c3.get("postfix"):
        a(f"| runner msgs/s / Postfix msgs/s ({N3} queued) | {ratio_spread(c3['mailguard'], c3['postfix'], 'per_s', 'per_s')} | ≥ 1x |")
    if c4.get("with"):
        d = [w["VmRSS"] - o["VmRSS"] for w, o in zip(c4["with"], c4["without"])]
        a(f"| RSS added per php-fpm worker | {spread([x / 1024 for x in d], '{:.2f}')} MiB | ≤ 2 MB |")
    if c4.get("runner"):
        a(f"| runner VmHWM with {c4['runner']['queued']} queued | {c4['runner']['hwm_kib'] / 1024:.1f} MiB | ≤ 50 MB with 100,000 |")
    elif c3.get("mailguard"):
        a(f"| runner VmHWM with {N3} queued (case 3; 100,000 is above the product's queue cap) | "
          f"{spread([r['hwm_kib'] / 1024 for r in c3['mailguard']], '{:.1f}')} MiB | ≤ 50 MB with 100,000 |")
    if c5.get("spam"):
        five = [t for n, t in c5["spam"] if "5" in n and "kb" in n.lower()]
        if five:
            a(f"| spam scorer, 5 KB message (criterion estimate) | {five[0].split()[2] + ' ' + five[0].split()[3] if len(five[0].split()) >= 4 else five[0]} | ≤ 50 µs |")
    a("")
    with open(RESULTS, "w") as f:
        f.write("\n".join(L))
    log(f"wrote {RESULTS}")


# ---------------------------------------------------------------- main

LOAD0 = ""


def main():
    global W, LOAD0
    if os.geteuid() != 0:
        sys.exit("bench.py: run as root (it starts a private Postfix instance and php-fpm)")
    for what, path in (("MAILGUARD_SO", SO), ("MAILGUARD_BIN", MG)):
        if not path or not os.path.exists(path):
            sys.exit(f"bench.py: {what} must name the release build (is {path!r}); use bench/run.sh")
    LOAD0 = " ".join(open("/proc/loadavg").read().split()[:3])
    started = datetime.now(timezone.utc)
    t_start = time.monotonic()
    base = os.environ.get("BENCH_WORKDIR", "/var/tmp")
    W = tempfile.mkdtemp(prefix="mailguard-bench.", dir=base)
    os.chmod(W, 0o755)
    import atexit
    atexit.register(cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    log(f"work dir {W}; quick={QUICK} reps={REPS} N={N1} N16={N2} queue={N3} rss-queue={N4} cases={' '.join(CASES)}")

    ca = make_certs(W)
    sink = Sink(W)
    pfx = Postfix(W, sink, ca)
    s = Setup(W, sink, pfx, ca)
    # One message through every path first: a broken setup fails here, not after an hour.
    for case in ("postfix", "msmtp", "mg-smtp"):
        d = s.fresh(f"check-{case}")
        before = sink.count()
        r = run(s.php_cmd(case, os.path.join(d, "state"), [0, 1, os.path.join(d, "o.json"), "-"]), check=False)
        if r.returncode != 0 or json.load(open(os.path.join(d, "o.json")))["fails"]:
            raise RuntimeError(f"the {case} path does not work: {r.stderr}")
        if not sink.wait_for(before + 1, 60, f"check {case}"):
            raise RuntimeError(f"the {case} path did not reach the sink; see {pfx.dir}/maillog")
    log(f"sink 127.0.0.1:{sink.tls} (TLS) → :{sink.plain}; every path delivers")

    R = {}
    try:
        run_cases(s, R)
    finally:
        # Also after a failure: what was measured so far is written (marked incomplete).
        with open(os.path.join(W, "results.json"), "w") as f:
            json.dump(R, f)
        report(R, started, time.monotonic() - t_start, complete=sys.exc_info()[0] is None)
    if KEEP:
        log(f"kept {W}")


def run_cases(s, R):
    for rep in range(REPS):
        if "1" in CASES:
            order = CASE1[rep % len(CASE1):] + CASE1[:rep % len(CASE1)]
            for case in order:
                case1_one(s, case, rep, R.setdefault("1", {}))
        if "2" in CASES:
            order = [c for c in CASE1 if c != "mg-runner-nospam"]
            order = order[rep % len(order):] + order[:rep % len(order)]
            for case in order:
                case2_one(s, case, rep, R.setdefault("2", {}))
        if "3" in CASES and rep < REPS3:
            case3_one(s, rep, R.setdefault("3", {}))
        if "4" in CASES:
            case4_fpm(s, rep, R.setdefault("4", {}))
    if "4" in CASES and N4:
        case4_runner(s, R.setdefault("4", {}))
    if "5" in CASES:
        case5(R.setdefault("5", {}))


if __name__ == "__main__":
    main()
