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
  serve     mailguard's hardened mode: `mailguard serve` (the daemon that owns the state,
            group commit, delivery in parallel) and the extension's mailguard.socket

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
import threading
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
N4S = env_int("BENCH_SERVE_QUEUE", 2000 if QUICK else 100000)  # case 4: messages offered to the daemon
SIZE4S = env_int("BENCH_SERVE_SIZE", 2048)               # case 4: their size (bytes)
FILL_PROCS = env_int("BENCH_FILL_PROCS", 4)               # PHP processes filling a queue (hardened, Postfix)
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

    def first_after(self, before, t0, timeout=120):
        """Seconds from t0 until the sink counts more than `before` (None: never)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.count() > before:
                return time.monotonic() - t0
            time.sleep(0.005)
        return None

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
        # Hardened mode: the operator file of `mailguard serve` (the daemon owns the state
        # and delivers; the callers' uid maps to an account named after the user, here
        # root: php-fpm -R and the PHP CLI run as root). Empty quota/burst: unlimited.
        self.serve_toml = os.path.join(w, "serve.toml")
        with open(self.serve_toml, "w") as f:
            f.write(f"""transport = "smtp"
[smtp]
host = "localhost"
port = {sink.tls}
security = "ssl"
ca_file = "{ca}"
[runner]
concurrency = 20
[accounts]
quota = ""
burst = ""
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
        if case in ("mg-serve", "mg-serve-held"):
            # Hardened mode: the worker keeps no state; mail() asks the daemon over the
            # socket (Serve below puts it next to the state directory).
            return True, {"mailguard.socket": serve_socket(state_dir)}
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


def serve_socket(state_dir):
    return os.path.join(os.path.dirname(state_dir), "submit.sock")


class Serve:
    """`mailguard serve` on a fresh state directory `d/state`, its socket `d/submit.sock`,
    its log `d/serve.log`. Started before the senders, stopped (SIGTERM: it stores what
    was handed in and finishes the deliveries under way) after the case."""

    def __init__(self, s, d, config=None, before_start=None):
        self.state = os.path.join(d, "state")
        self.sock = serve_socket(self.state)
        self.log = os.path.join(d, "serve.log")
        if before_start:
            before_start(self.state)
        self.p = start("mailguard serve", [MG, "serve", "--socket", self.sock, "--state-dir", self.state,
                                           "--config", config or s.serve_toml],
                       stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        end = time.monotonic() + 30
        while "listening on" not in self.text():
            if time.monotonic() > end or self.p.poll() is not None:
                raise RuntimeError(f"mailguard serve did not start: {self.text()[-2000:]}")
            time.sleep(0.02)

    def text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cpu(self):
        """User + system CPU seconds the daemon has used so far (all its threads)."""
        try:
            with open(f"/proc/{self.p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def mem(self):
        m = proc_mem(self.p.pid)
        try:
            m["threads"] = len(os.listdir(f"/proc/{self.p.pid}/task"))
        except OSError:
            m["threads"] = 0
        return m

    def stop(self):
        """Returns the seconds SIGTERM took and the log lines other than the start line,
        the one line per delivered message ("message N (account): sent") and the runner's
        closing summary ("sent N, temporary failures ..."), which is logged when it is not
        "sent N, temporary failures 0, permanent failures 0, ...". """
        t0 = time.monotonic()
        stop(self.p, signal.SIGTERM, timeout=300)
        secs = time.monotonic() - t0
        lines = []
        for l in self.text().splitlines():
            if (not l.strip() or "listening on" in l or l.startswith("mailguard run: delivering from ")
                    or re.match(r"^message \d+ \(.*\): sent$", l)):
                continue
            if re.match(r"^sent \d+, temporary failures 0, permanent failures 0, expired 0, quarantined 0", l):
                continue
            lines.append(l)
        if self.p.returncode not in (0, None):
            lines.append(f"(exit status {self.p.returncode})")
            log(f"WARNING: mailguard serve exited {self.p.returncode}: {lines[-5:]}")
        return secs, lines


def mg_admin(cmd, state, *args):
    return run([MG, cmd, "--account", "root", "--state-dir", state, *args]).stdout.strip()


def queue_counts(state):
    """(queued, held) of account root, from `mailguard status`."""
    out = mg_admin("status", state)
    m = re.search(r"(\d+) queued, (\d+) held", out)
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


class MemWatch(threading.Thread):
    """VmRSS/VmHWM of a process every 100 ms until stopped (or the process is gone)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.halt, self.rss, self.hwm = pid, threading.Event(), [], 0

    def run(self):
        while not self.halt.is_set():
            try:
                m = proc_mem(self.pid)
                self.rss.append(m.get("VmRSS", 0))
                self.hwm = max(self.hwm, m.get("VmHWM", 0))
            except OSError:
                return
            self.halt.wait(0.1)

    def done(self):
        self.halt.set()
        self.join()
        return {"rss_max_kib": max(self.rss, default=0), "hwm_kib": self.hwm}


class ConnWatch(threading.Thread):
    """The client sessions open to the sink's TLS port, from /proc/net/tcp every 50 ms:
    how many at once (the delivery concurrency really used) and how many in all (distinct
    client ports; messages per session = messages / sessions)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = f"{port:04X}"
        self.halt, self.samples, self.sessions = threading.Event(), [], set()

    def sample(self):
        n = 0
        for path in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(path) as f:
                    next(f)
                    for line in f:
                        p = line.split()
                        # local, remote, state (01 = ESTABLISHED): the client's end of a session
                        if p[2].endswith(":" + self.port) and p[3] == "01":
                            n += 1
                            self.sessions.add(p[1])
            except OSError:
                pass
        return n

    def run(self):
        while not self.halt.is_set():
            self.samples.append(self.sample())
            self.halt.wait(0.05)

    def done(self):
        self.halt.set()
        self.join()
        busy = [x for x in self.samples if x > 0]
        return {"conc_max": max(self.samples, default=0), "conc_med": med(busy) if busy else 0,
                "sessions": len(self.sessions)}


def precreate(s, case, state):
    """One message from one process into a fresh state directory before concurrent
    senders start: the first mail() of several processes at once on a state directory that
    does not exist yet can fail with "database is locked" (reported; see README.md).
    Hardened mode needs none: the daemon creates its state before it listens."""
    if not case.startswith("mg") or case.startswith("mg-serve"):
        return
    out = os.path.join(os.path.dirname(state), "precreate.json")
    r = run(s.php_cmd(case, state, [99_000_000, 1, out, "-"]), check=False)
    if r.returncode != 0 or json.load(open(out))["fails"]:
        raise RuntimeError(f"precreate {case}: {r.stdout} {r.stderr}")


CASE1 = ["postfix", "msmtp", "mg-runner", "mg-runner-nospam", "mg-smtp", "mg-serve", "mg-serve-held", "floor"]
CASE1_ONLY = ("mg-runner-nospam", "mg-serve-held")   # variants not repeated with 16 senders
LABEL = {
    "postfix": "stock mail() → Postfix `sendmail -t -i`",
    "msmtp": "stock mail() → `msmtp -t` (TLS to the sink)",
    "mg-runner": "mailguard, transport=runner (durable queue; spam check on)",
    "mg-runner-nospam": "mailguard, transport=runner, spam_check=0",
    "mg-smtp": "mailguard, transport=smtp (queue + immediate TLS attempt)",
    "mg-serve": "**mailguard hardened**: `mailguard.socket` → `mailguard serve` (group commit; the daemon delivers in the background)",
    "mg-serve-held": "mailguard hardened, delivery paused (account blocked before the daemon started: every message held; the submission path alone)",
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
    srv = None
    if case == "mg-serve":
        srv = Serve(s, d)
    elif case == "mg-serve-held":
        srv = Serve(s, d, before_start=lambda st: mg_admin("block", st))
    before = s.sink.count()
    args = [rep * 1_000_000, N1, out, floor if case == "floor" else "-"]
    r = run(s.php_cmd(case, state, args), check=False)
    if r.returncode != 0:
        raise RuntimeError(f"case 1 {case}: php exited {r.returncode}: {r.stderr}")
    data = json.load(open(out))
    extra = {}
    if srv and case == "mg-serve-held":
        queued, held = queue_counts(srv.state)
        delivered_ok = held == N1 - data["fails"]
        if not delivered_ok:
            log(f"WARNING: case 1 {case}: {held} held, {queued} queued, expected {N1 - data['fails']} held")
        extra = serve_done(srv, 0, 0.0)
    elif srv:
        # The daemon delivered in the background during the loop; the case ends when it
        # has delivered every message it accepted (how long that took after the loop).
        at_end = s.sink.count() - before
        t0 = time.monotonic()
        delivered_ok = settle(s, before + N1 - data["fails"], f"case 1 {case}")
        extra = serve_done(srv, at_end, time.monotonic() - t0)
    elif runner:
        # The runner delivered in the background during the loop (as Postfix's qmgr
        # does); what it has not sent yet is left in this case's own state directory.
        stop(runner)
        delivered_ok = True
    else:
        expect = before + (0 if case == "floor" else N1 - data["fails"])
        delivered_ok = settle(s, expect, f"case 1 {case}")
    res = summary(data["lat"], data["wall"], N1)
    res["fails"] = data["fails"]
    res["warning"] = data.get("warning", "")
    res["delivered"] = s.sink.count() - before
    res.update(extra)
    results.setdefault(case, []).append(res)
    log(f"case 1 rep {rep + 1} {case:<17} p50 {res['p50_ms']:.3f} ms  p99 {res['p99_ms']:.3f} ms"
        f"  {res['per_s']:.0f}/s  fails {data['fails']}  at sink {res['delivered']}"
        + ("" if delivered_ok else " (incomplete)") + serve_note(extra)
        + (f"  first warning: {res['warning']}" if data["fails"] else ""))


def serve_done(srv, at_loop_end, drain_s):
    """After a hardened case: the daemon's memory, then its stop and what it logged."""
    m = srv.mem()
    cpu = srv.cpu()
    stop_s, lines = srv.stop()
    if lines:
        log(f"mailguard serve logged {len(lines)} line(s); last: {lines[-3:]}")
    return {"at_loop_end": at_loop_end, "drain_s": drain_s, "d_rss": m.get("VmRSS", 0),
            "d_hwm": m.get("VmHWM", 0), "d_threads": m.get("threads", 0), "stop_s": stop_s, "d_cpu": cpu,
            "log_lines": len(lines), "log_tail": lines[-3:]}


def serve_note(x):
    if not x:
        return ""
    return (f"  [daemon: {x['at_loop_end']} at sink when the loop ended, the rest {x['drain_s']:.1f} s later;"
            f" VmHWM {x['d_hwm'] / 1024:.1f} MiB, {x['d_threads']} threads, CPU {x['d_cpu']:.1f} s; stop {x['stop_s']:.1f} s;"
            f" {x['log_lines']} log line(s)]")


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
    srv = Serve(s, d) if case == "mg-serve" else None
    fpm = Fpm(d, SENDERS, ext, ini)
    runner = s.start_runner(state) if case == "mg-runner" else None
    before = s.sink.count()
    try:
        extra = f"&floor={floor}" if case == "floor" else ""
        lat, wall, by_pid, by_conn, fails = asyncio.run(
            fcgi_load(fpm.sock, os.path.join(PHPDIR, "fpm.php"), N2, PER_REQ, SENDERS, extra))
    finally:
        fpm.stop()
    x = {}
    if runner:
        stop(runner)
    elif srv:
        at_end = s.sink.count() - before
        t0 = time.monotonic()
        settle(s, before + N2 - fails, f"case 2 {case}")
        x = serve_done(srv, at_end, time.monotonic() - t0)
    else:
        settle(s, before + (0 if case == "floor" else N2 - fails), f"case 2 {case}")
    res = summary(lat, wall, N2)
    res.update(fails=fails, workers=len(by_pid), pid_min=min(by_pid.values()),
               pid_max=max(by_pid.values()), conn_min=min(by_conn), conn_max=max(by_conn),
               delivered=s.sink.count() - before, **x)
    results.setdefault(case, []).append(res)
    log(f"case 2 rep {rep + 1} {case:<10} p50 {res['p50_ms']:.3f} ms  p99 {res['p99_ms']:.3f} ms"
        f"  {res['per_s']:.0f}/s  workers {res['workers']} msgs/worker {res['pid_min']}–{res['pid_max']}"
        f"  fails {fails}" + serve_note(x))


# ---------------------------------------------------------------- case 3: delivery

def fill(s, case, state, n, procs, size=5120, extra="", max_fails=0):
    """n messages into the queue (mailguard's store or Postfix's hold queue) from
    `procs` PHP processes at once; returns the seconds it took and what was refused.
    With max_fails, each process stops after that many refusals."""
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
        ps.append(subprocess.Popen(s.php_cmd(case, state, [10_000_000 + k * share, cnt, out, "-", size, extra, max_fails]),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    fails, warning, lats, offered = 0, "", [], 0
    for k, p in enumerate(ps):
        outtext, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"fill {case}: php exited {p.returncode}: {err}")
        r = json.load(open(os.path.join(d, f"fill{k}.json")))
        fails += r["fails"]
        offered += len(r["lat"])
        lats.append(r["lat"])
        if r["fails"] and not warning:
            warning = r.get("warning") or next((l.strip() for l in outtext.splitlines() if "Warning" in l), "")
    secs = time.monotonic() - t0
    # Accept latency at the start and at the end of the fill (first and last tenth of
    # every process's calls): does accepting get slower as the queue grows?
    head = [x for l in lats for x in l[:max(1, len(l) // 10)]]
    tail = [x for l in lats for x in l[-max(1, len(l) // 10):]]
    info = {"secs": secs, "fails": fails, "warning": warning, "offered": offered,
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
    cw = ConnWatch(s.sink.tls)
    cw.start()
    r = runner_once(s, state)
    r.update(cw.done())
    r["fill_s"] = fill_s
    r["fill"] = f
    r["per_s"] = r["at_sink"] / r["secs"]
    results.setdefault("mailguard", []).append(r)
    log(f"case 3 rep {rep + 1} mailguard run --once: {r['at_sink']} in {r['secs']:.2f} s = "
        f"{r['per_s']:.0f}/s (filled in {fill_s:.1f} s; VmHWM {r['hwm_kib']} KiB; sessions at once "
        f"max {r['conc_max']}, median {r['conc_med']}, {r['sessions']} sessions)")
    settle(s, s.sink.count(), "case 3 mailguard")

    # Postfix: the same messages, held by header_checks, released at once.
    d = s.fresh("c3-postfix")
    state = os.path.join(d, "state")
    f = fill(s, "postfix", state, N3, FILL_PROCS, extra="X-Bench-Hold: yes")
    fill_s = f["secs"]
    end = time.monotonic() + 600
    while s.pfx.queued(("hold",)) < N3 and time.monotonic() < end:
        time.sleep(0.1)
    held = s.pfx.queued(("hold",))
    if held < N3:
        log(f"WARNING: only {held} of {N3} messages reached Postfix's hold queue")
    before = s.sink.count()
    cw = ConnWatch(s.sink.tls)
    cw.start()
    t0 = time.monotonic()
    run(["postsuper", "-c", s.pfx.etc, "-H", "ALL"])
    t_rel = time.monotonic() - t0
    run(["postqueue", "-c", s.pfx.etc, "-f"])
    first = s.sink.first_after(before, t0)
    s.sink.wait_for(before + held, 1200, "case 3 postfix")
    secs = time.monotonic() - t0
    conc = cw.done()
    s.pfx.wait_empty(120)
    got = s.sink.count() - before
    r = {"secs": secs, "at_sink": got, "per_s": got / secs, "fill_s": fill_s, "release_s": t_rel, "fill": f,
         "first_s": first, **conc}
    results.setdefault("postfix", []).append(r)
    log(f"case 3 rep {rep + 1} Postfix release: {got} in {secs:.2f} s = {r['per_s']:.0f}/s "
        f"(postsuper -H took {t_rel:.2f} s; filled in {fill_s:.1f} s; sessions at once max {conc['conc_max']}, "
        f"median {conc['conc_med']}, {conc['sessions']} sessions)")


def serve_queue_run(s, d, n, size, max_fails=0):
    """Hardened mode, delivery of a queue: `mailguard serve` (configured with the real
    sink) on a state directory whose account (root, the callers' user) was blocked with
    `mailguard block` before the daemon started, so every message it accepts is held:
    delivery paused, as Postfix's hold queue. FILL_PROCS PHP processes fill it over the
    socket. The clock starts at `mailguard unblock` (held -> queued, due at once; the
    daemon's runner picks them up at its next poll) and stops when the sink has counted
    them all. The daemon's memory is sampled all along; the sink's client sessions too."""
    srv = Serve(s, d, before_start=lambda st: mg_admin("block", st))
    r = {}
    try:
        mw = MemWatch(srv.p.pid)
        mw.start()
        f = fill(s, "mg-serve", srv.state, n, FILL_PROCS, size=size, max_fails=max_fails)
        time.sleep(2)
        queued, held = queue_counts(srv.state)
        hold = srv.mem()
        cpu_fill = srv.cpu()
        fill_mem = mw.done()
        log(f"hardened queue: {f['offered']} offered in {f['secs']:.1f} s, {f['fails']} refused, "
            f"{held} held, {queued} queued; daemon VmRSS {hold.get('VmRSS', 0) / 1024:.1f} MiB, "
            f"VmHWM {hold.get('VmHWM', 0) / 1024:.1f} MiB")
        mw = MemWatch(srv.p.pid)
        mw.start()
        cw = ConnWatch(s.sink.tls)
        cw.start()
        before = s.sink.count()
        t0 = time.monotonic()
        mg_admin("unblock", srv.state)
        t_rel = time.monotonic() - t0
        first = s.sink.first_after(before, t0)
        complete = s.sink.wait_for(before + held, 3600, "hardened queue delivery")
        secs = time.monotonic() - t0
        conc = cw.done()
        deliv_mem = mw.done()
        end = srv.mem()
        cpu_deliv = srv.cpu() - cpu_fill
        got = s.sink.count() - before
        r = {"secs": secs, "at_sink": got, "per_s": got / secs, "fill_s": f["secs"], "fill": f,
             "release_s": t_rel, "first_s": first, "held": held, "queued_left": queued, "complete": complete,
             "hold_rss": hold.get("VmRSS", 0), "hold_hwm": hold.get("VmHWM", 0),
             "hold_anon": hold.get("RssAnon", 0), "fill_rss_max": fill_mem["rss_max_kib"],
             "deliv_rss_max": deliv_mem["rss_max_kib"], "end_hwm": end.get("VmHWM", 0),
             "end_rss": end.get("VmRSS", 0), "threads": end.get("threads", 0), "size": size,
             "cpu_fill": cpu_fill, "cpu_deliv": cpu_deliv, **conc}
    finally:
        stop_s, lines = srv.stop()
        r.update(stop_s=stop_s, log_lines=len(lines), log_tail=lines[-3:])
    if lines:
        log(f"mailguard serve logged {len(lines)} line(s); last: {lines[-3:]}")
    return r


def case3_serve(s, rep, results):
    d = s.fresh("c3-serve")
    r = serve_queue_run(s, d, N3, 5120)
    results.setdefault("serve", []).append(r)
    log(f"case 3 rep {rep + 1} mailguard serve (unblock → sink): {r['at_sink']} in {r['secs']:.2f} s = "
        f"{r['per_s']:.0f}/s (unblock took {r['release_s']:.2f} s; filled in {r['fill_s']:.1f} s; sessions at once "
        f"max {r['conc_max']}, median {r['conc_med']}, {r['sessions']} sessions; daemon VmHWM {r['end_hwm'] / 1024:.1f} MiB)")
    settle(s, s.sink.count(), "case 3 serve")


def case4_serve(s, results):
    d = s.fresh("c4-serve")
    # Each filling process stops after 100 refusals (a queue cap refuses everything after it).
    r = serve_queue_run(s, d, N4S, SIZE4S, max_fails=100)
    results["serve"] = r
    log(f"case 4 mailguard serve: {r['held']} held of {r['fill']['offered']} offered ({r['fill']['fails']} refused); "
        f"VmRSS holding {r['hold_rss'] / 1024:.1f} MiB, VmHWM after fill {r['hold_hwm'] / 1024:.1f} MiB, "
        f"after delivery {r['end_hwm'] / 1024:.1f} MiB; delivered {r['at_sink']} in {r['secs']:.1f} s")


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
        ("1-minute load during the run", load_during()),
        ("PHP", sh(f"{PHP} -n -v | head -1")),
        ("Postfix", sh("postconf -d -h mail_version")),
        ("msmtp", sh("msmtp --version | head -1")),
        ("stunnel", sh("stunnel -version 2>&1 | grep -m1 '^stunnel'")),
        ("OpenSSL", sh("openssl version")),
        ("rustc", sh("rustc --version")),
        ("mailguard", BUILD_INFO),
    ]


def serve_paragraph(runs, n):
    if not runs:
        return ""
    return ("Hardened mode, the daemon in these runs: when the senders finished, "
            + "/".join(str(r["at_loop_end"]) for r in runs) + f" of the {n} messages were already at the sink; "
            "the rest arrived " + "/".join(f"{r['drain_s']:.1f}" for r in runs) + " s later. Daemon VmRSS at the end "
            + "/".join(f"{r['d_rss'] / 1024:.1f}" for r in runs) + " MiB, VmHWM "
            + "/".join(f"{r['d_hwm'] / 1024:.1f}" for r in runs) + " MiB, threads "
            + "/".join(str(r["d_threads"]) for r in runs) + ", CPU time (user + system, submissions and deliveries) "
            + "/".join(f"{r.get('d_cpu', float('nan')):.1f}" for r in runs) + " s; SIGTERM to exit "
            + "/".join(f"{r['stop_s']:.1f}" for r in runs) + " s; lines in its log other than the start line, "
            "the one line per delivered message and a closing summary without failures: "
            + "/".join(str(r["log_lines"]) for r in runs)
            + "".join(f" (`{' / '.join(r['log_tail'])}`)" for r in runs if r["log_lines"]) + ".\n")


def first_at(r):
    return "–" if r.get("first_s") is None else f"{r['first_s']:.2f}"


def after_first(r):
    if r.get("first_s") is None or r["secs"] <= r["first_s"]:
        return "–"
    return f"{(r['at_sink'] - 1) / (r['secs'] - r['first_s']):.0f}"


def msgs_per_session(runs):
    return "/".join(f"{r['at_sink'] / r['sessions']:.1f}" if r.get("sessions") else "–" for r in runs)


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


def met(ok):
    return "**met**" if ok else "**missed**"


def hardened_table(a, c1, c2, c3, c4):
    """Issue 10's targets for the hardened mode, each against its baseline of this run."""
    sv1, sv2 = c1.get("mg-serve"), c2.get("mg-serve")
    rows = []
    if sv1 and c1.get("postfix"):
        v = ratio(med([r["p50_ms"] for r in c1["postfix"]]), med([r["p50_ms"] for r in sv1]))
        rows.append(("one process, 5 KB: stock→Postfix p50 / hardened p50",
                     ratio_spread(c1["postfix"], sv1, "p50_ms", "p50_ms"), "≥ 15x", met(v >= 15)))
    if sv1:
        v = med([r["p99_ms"] for r in sv1])
        rows.append(("one process: hardened p99", f"{fmt_ms([r['p99_ms'] for r in sv1])} ms", "≤ 2 ms", met(v <= 2)))
        if c1.get("mg-serve-held"):
            h = c1["mg-serve-held"]
            rows.append(("one process, delivery paused (messages held): hardened p50 / p99",
                         f"{fmt_ms([r['p50_ms'] for r in h])} / {fmt_ms([r['p99_ms'] for r in h])} ms", "–", ""))
        if c1.get("floor"):
            v = ratio(med([r["p50_ms"] for r in sv1]), med([r["p50_ms"] for r in c1["floor"]]))
            rows.append(("one process: hardened p50 / floor p50 (write + fsync file + fsync dir)",
                         ratio_spread(sv1, c1["floor"], "p50_ms", "p50_ms"), "≤ 3x (SPEC §10)", met(v <= 3)))
    if sv2 and sv1:
        v = ratio(med([r["p99_ms"] for r in sv2]), med([r["p50_ms"] for r in sv1]))
        rows.append((f"{SENDERS} php-fpm senders: hardened p99 / one-process hardened p50",
                     ratio_spread(sv2, sv1, "p99_ms", "p50_ms")
                     + f" ({fmt_ms([r['p99_ms'] for r in sv2])} ms / {fmt_ms([r['p50_ms'] for r in sv1])} ms)",
                     "≤ 10x", met(v <= 10)))
    if sv2:
        lo = min(r["pid_min"] for r in sv2)
        expect = N2 / SENDERS
        rows.append((f"{SENDERS} senders: messages per worker (min–max per run)",
                     f"{per_worker(sv2)} over {'/'.join(str(r['workers']) for r in sv2)} workers (fair share {expect:.0f})"
                     + (f"; {sum(r['fails'] for r in sv2)} mail() false" if any(r["fails"] for r in sv2) else ""),
                     "no sender starves", met(lo >= expect / 2 and all(r["workers"] == SENDERS for r in sv2))))
        rows.append((f"{SENDERS} senders: hardened p50 / p99", f"{fmt_ms([r['p50_ms'] for r in sv2])} / "
                     f"{fmt_ms([r['p99_ms'] for r in sv2])} ms", "–", ""))
        if c2.get("postfix"):
            v = ratio(med([r["per_s"] for r in sv2]), med([r["per_s"] for r in c2["postfix"]]))
            rows.append((f"{SENDERS} senders: hardened msgs/s / stock→Postfix msgs/s",
                         ratio_spread(sv2, c2["postfix"], "per_s", "per_s")
                         + f" ({spread([r['per_s'] for r in sv2], '{:.0f}')} vs {spread([r['per_s'] for r in c2['postfix']], '{:.0f}')}/s)",
                         "≥ 5x", met(v >= 5)))
    if c3.get("serve") and c3.get("postfix"):
        v = ratio(med([r["per_s"] for r in c3["serve"]]), med([r["per_s"] for r in c3["postfix"]]))
        rows.append((f"delivery of {N3} queued: daemon msgs/s / Postfix msgs/s",
                     ratio_spread(c3["serve"], c3["postfix"], "per_s", "per_s")
                     + f" ({spread([r['per_s'] for r in c3['serve']], '{:.0f}')} vs {spread([r['per_s'] for r in c3['postfix']], '{:.0f}')}/s)",
                     "≥ 1.5x", met(v >= 1.5)))
        rows.append(("delivery: sessions at once, daemon (max / median) vs Postfix",
                     "; ".join(f"{r['conc_max']} / {r['conc_med']}" for r in c3["serve"]) + " vs "
                     + "; ".join(f"{r['conc_max']} / {r['conc_med']}" for r in c3["postfix"])
                     + f"; messages per session {msgs_per_session(c3['serve'])} vs {msgs_per_session(c3['postfix'])}",
                     "[runner] concurrency = 20", ""))
    if c4.get("serve"):
        r = c4["serve"]
        peak = max(r["end_hwm"], r["hold_hwm"])
        full = r["held"] >= 100000
        rows.append((f"daemon VmHWM holding {r['held']} queued ({r['size']} B) and delivering them",
                     f"{r['hold_hwm'] / 1024:.1f} MiB holding, {peak / 1024:.1f} MiB after delivering"
                     + ("" if full else (f" — only {r['held']} of the {r['fill']['offered']} offered were accepted (see case 4)"
                                         if r["fill"]["fails"] else f" ({r['held']} offered: BENCH_SERVE_QUEUE)")),
                     "≤ 50 MB with 100,000", met(peak <= 50 * 1000 * 1000 / 1024) if full
                     else ("**not measurable** (see case 4)" if r["fill"]["fails"] else "– (fewer than 100,000 offered)")))
    if not rows:
        return
    a("## Hardened mode: issue 10's targets (same run)\n")
    a("Each hardened figure against its baseline of this run; ratios of medians over the repetitions, "
      "per-repetition min–max in brackets. *Met* is judged on the median.\n")
    a("| figure | value | target | met? |\n|---|---|---|---|")
    for name, value, target, ok in rows:
        a(f"| {name} | {value} | {target} | {ok} |")
    a("")


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
    loads = [x for _, x in LOADS]
    if loads and med(loads) > (os.cpu_count() or 1):
        a(f"**Overloaded machine: the median 1-minute load during this run was {med(loads):.1f} on "
          f"{os.cpu_count()} CPUs (max {max(loads):.1f}).** Every process here waited for a CPU, and the "
          "disk was shared with other work (the fsync floor shows it): absolute figures are worse than on "
          "an idle machine, and the cases that start many processes per message (stock→Postfix, the "
          "floor's directory fsync under other writers) lose more than the others, which flatters "
          "mailguard's ratios against them. Re-run on a quiet machine for figures to quote.\n")
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
- **mailguard hardened mode:** `mailguard serve --socket DIR/submit.sock --state-dir DIR/state
  --config serve.toml` (a fresh daemon and state directory per case and repetition, started
  before the senders and stopped with SIGTERM after the case), and PHP with only
  `-d extension=libmailguard.so -d mailguard.socket=DIR/submit.sock`: mail() hands the
  message to the daemon, which checks it again, stores it with group commit (one fsync
  per batch) and answers; mail() returns true once the message is durable. The operator
  file: `transport = "smtp"`, `[smtp] host = "localhost"`, the sink's TLS port,
  `security = "ssl"`, `ca_file` = the run's CA; `[runner] concurrency = 20`;
  `[accounts] quota = ""`, `burst = ""` (unlimited; the callers run as root, so the account
  is `root`); spam check on (the daemon's default). The daemon delivers in the background
  while the senders run, and each hardened case ends only when the sink has counted every
  message the daemon accepted.
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
        a(serve_paragraph(c1.get("mg-serve"), N1))
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
        a(serve_paragraph(c2.get("mg-serve"), N2))
    if c3:
        a(f"## 3. Delivery of a queue of {N3} messages (5 KB) to the loopback TLS sink\n")
        a("- **mailguard (embedded):** the queue is filled by 2 PHP processes with `transport=runner` (no runner "
          "running); then `mailguard run --once --state-dir … --config …` is timed from start to exit "
          "(the exit comes after the last message is recorded as sent).\n"
          "- **mailguard hardened:** `mailguard serve` (the operator file above: the real sink, "
          "`[runner] concurrency = 20`) on a state directory whose account (`root`) was blocked with "
          "`mailguard block` before the daemon started: every message it accepts is *held* (delivery "
          f"paused, like Postfix's hold queue). {FILL_PROCS} PHP processes fill it over the socket "
          "(`mailguard.socket`); once the daemon has answered every mail() the clock starts, "
          "`mailguard unblock` turns every held message into a queued one that is due at once, the "
          "daemon's runner picks them up at its next poll (`[runner] interval`, default 1 s) and the "
          "clock stops when the sink has counted all of them. The daemon keeps running throughout "
          "(no restart).\n"
          "- **Postfix:** the same messages (plus an `X-Bench-Hold: yes` header, which "
          f"`header_checks` turns into HOLD) are submitted by {FILL_PROCS} PHP processes through `sendmail`; "
          "once all of them sit in the hold queue, the clock starts, `postsuper -H ALL` releases "
          "them (to the deferred queue) and `postqueue -f` flushes; the clock stops when the sink "
          "has counted all of them (then the queue is checked empty).\n"
          "- **Sessions:** during each delivery bench.py reads `/proc/net/tcp` every 50 ms and counts the "
          "ESTABLISHED client connections to the sink's TLS port (nothing else talks to it then): "
          "*at once* is the concurrency really used (max, and median of the samples with at least one), "
          "*sessions* the distinct client ports seen, so messages per session = messages / sessions.\n")
        a("| | seconds | msgs/s | at sink | fill (s) | first at sink after (s) | msgs/s from the first to the last | sessions at once: max / median | sessions | msgs per session |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
        for k, name in (("mailguard", "embedded: `mailguard run --once`"),
                        ("serve", "**hardened: `mailguard serve`** (unblock → sink)"),
                        ("postfix", "Postfix (release → sink)")):
            runs = c3.get(k)
            if runs:
                a(f"| {name} | {spread([r['secs'] for r in runs], '{:.2f}')} | {spread([r['per_s'] for r in runs], '{:.0f}')} "
                  f"| {'/'.join(str(r['at_sink']) for r in runs)} | {spread([r['fill_s'] for r in runs], '{:.1f}')} "
                  f"| {'/'.join(first_at(r) for r in runs)} "
                  f"| {'/'.join(after_first(r) for r in runs)} "
                  f"| {' ; '.join(str(r.get('conc_max', '–')) + ' / ' + str(r.get('conc_med', '–')) for r in runs)} "
                  f"| {'/'.join(str(r.get('sessions', '–')) for r in runs)} "
                  f"| {msgs_per_session(runs)} |")
        for k, name, n in (("mailguard", "mailguard embedded (2 processes, transport=runner)", N3 - 1),
                           ("serve", f"mailguard hardened ({FILL_PROCS} processes, mailguard.socket, account blocked)", N3),
                           ("postfix", f"Postfix sendmail ({FILL_PROCS} processes)", N3)):
            for r in c3.get(k, []):
                f = r.get("fill", {})
                if f:
                    a(f"\nFilling, {name}: {n} messages in {f['secs']:.1f} s; "
                      f"p50 of mail() over the first tenth of each process's calls {f['p50_first_ms']:.2f} ms, "
                      f"over the last tenth {f['p50_last_ms']:.2f} ms"
                      + (f"; {f['fails']} refused: `{f['warning']}`" if f["fails"] else "") + ".")
        if c3.get("postfix"):
            a(f"\n`postsuper -H ALL` alone took {spread([r['release_s'] for r in c3['postfix']], '{:.2f}')} s of Postfix's time.")
        if c3.get("serve"):
            a(f"`mailguard unblock` alone took {spread([r['release_s'] for r in c3['serve']], '{:.2f}')} s of the hardened time.")
        if c3.get("mailguard"):
            a(f"Peak RSS (VmHWM) of `mailguard run --once` delivering these: {spread([r['hwm_kib'] / 1024 for r in c3['mailguard']], '{:.1f}')} MiB.")
        for r in c3.get("serve", []):
            a(f"The daemon (`mailguard serve`): VmRSS {r['hold_rss'] / 1024:.1f} MiB holding the {r['held']} "
              f"messages, VmHWM {r['hold_hwm'] / 1024:.1f} MiB after the fill and {r['end_hwm'] / 1024:.1f} MiB after "
              f"delivering them; {r['threads']} threads; CPU time {r.get('cpu_fill', float('nan')):.1f} s accepting, "
              f"{r.get('cpu_deliv', float('nan')):.1f} s delivering ({1000 * r.get('cpu_deliv', float('nan')) / max(r['at_sink'], 1):.2f} ms per message); "
              f"SIGTERM to exit {r['stop_s']:.1f} s"
              + (f"; it logged {r['log_lines']} line(s), the last: `{' / '.join(r['log_tail'])}`" if r["log_lines"] else "; nothing logged")
              + ".")
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
    if c4.get("serve"):
        r = c4["serve"]
        f = r["fill"]
        a(f"**`mailguard serve` holding a large queue.** The daemon (operator file above) on a fresh state "
          f"directory whose account was blocked before it started (every accepted message is held: nothing "
          f"is delivered), {FILL_PROCS} PHP processes offering {N4S} messages of {r['size']} bytes over the "
          f"socket (each process stops after 100 refusals); then `mailguard unblock` and the daemon delivers "
          f"them all to the sink. /proc/PID/status of the daemon read every 100 ms.\n")
        a("| | value |\n|---|---|")
        a(f"| offered / accepted (held) / refused | {f['offered']} / {r['held']} / {f['fails']} |")
        if f["fails"]:
            a(f"| the refusal | `{f['warning']}` |")
        a(f"| fill time (accepting rate) | {f['secs']:.1f} s ({r['held'] / f['secs']:.0f}/s) |")
        a(f"| VmRSS holding them (2 s after the fill) | {r['hold_rss'] / 1024:.1f} MiB (RssAnon {r['hold_anon'] / 1024:.1f} MiB) |")
        a(f"| VmRSS peak while filling (sampled) | {r['fill_rss_max'] / 1024:.1f} MiB |")
        a(f"| VmHWM after the fill | {r['hold_hwm'] / 1024:.1f} MiB |")
        a(f"| VmRSS peak while delivering (sampled) | {r['deliv_rss_max'] / 1024:.1f} MiB |")
        a(f"| VmHWM after delivering them all | {r['end_hwm'] / 1024:.1f} MiB |")
        a(f"| delivery: unblock → all at the sink | {r['at_sink']} in {r['secs']:.1f} s ({r['per_s']:.0f}/s); sessions at once max {r['conc_max']}, median {r['conc_med']}; {r['sessions']} sessions |")
        a(f"| daemon CPU time accepting / delivering | {r.get('cpu_fill', float('nan')):.1f} s / {r.get('cpu_deliv', float('nan')):.1f} s |")
        a(f"| daemon threads at the end; SIGTERM to exit | {r['threads']}; {r['stop_s']:.1f} s |")
        if r["log_lines"]:
            a(f"| its log (last lines) | `{' / '.join(r['log_tail'])}` |")
        a("")
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
    hardened_table(a, c1, c2, c3, c4)
    with open(RESULTS, "w") as f:
        f.write("\n".join(L))
    log(f"wrote {RESULTS}")


# ---------------------------------------------------------------- main

LOAD0 = ""
BUILD_INFO = ""
LOADS = []      # (minutes since start, 1-minute load average), every 30 s


def watch_load(t0):
    def loop():
        while True:
            LOADS.append(((time.monotonic() - t0) / 60, float(open("/proc/loadavg").read().split()[0])))
            time.sleep(30)
    threading.Thread(target=loop, daemon=True).start()


def load_during():
    if not LOADS:
        return "–"
    v = [x for _, x in LOADS]
    top = sorted(LOADS, key=lambda p: -p[1])[:3]
    return (f"median {med(v):.2f}, min {min(v):.2f}, max {max(v):.2f} (read every 30 s, {len(v)} readings; "
            "highest at minute " + ", ".join(f"{m:.0f} ({x:.2f})" for m, x in sorted(top)) + "); 2 CPUs, "
            "so a load above 2 means runnable work waited for a CPU")


def main():
    global W, LOAD0
    if os.geteuid() != 0:
        sys.exit("bench.py: run as root (it starts a private Postfix instance and php-fpm)")
    for what, path in (("MAILGUARD_SO", SO), ("MAILGUARD_BIN", MG)):
        if not path or not os.path.exists(path):
            sys.exit(f"bench.py: {what} must name the release build (is {path!r}); use bench/run.sh")
    LOAD0 = " ".join(open("/proc/loadavg").read().split()[:3])
    global BUILD_INFO
    # What was built (run.sh builds right before this): the commit, and the files of the
    # working tree that differ from it outside bench/ (other work in progress).
    porcelain = run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], check=False).stdout
    dirty = [l[3:] for l in porcelain.splitlines() if l[3:] and not l[3:].startswith("bench/")]
    built = time.strftime("%H:%M UTC", time.gmtime(os.path.getmtime(MG)))
    BUILD_INFO = (sh(f"git -C {ROOT} rev-parse --short=12 HEAD") + f" in `{ROOT}`"
                  + (f", with uncommitted changes to {len(dirty)} file(s) outside bench/ in the working tree at the start "
                     f"of the run ({', '.join('`' + d + '`' for d in dirty)})" if dirty else ", clean outside bench/")
                  + f"; release build `{SO}`, `{MG}` (built {built})"
                  + (f"; {os.environ['BENCH_SOURCE_NOTE']}" if os.environ.get("BENCH_SOURCE_NOTE") else ""))
    started = datetime.now(timezone.utc)
    t_start = time.monotonic()
    watch_load(t_start)
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
    d = s.fresh("check-mg-serve")
    srv = Serve(s, d)
    before = sink.count()
    r = run(s.php_cmd("mg-serve", srv.state, [0, 1, os.path.join(d, "o.json"), "-"]), check=False)
    ok = r.returncode == 0 and not json.load(open(os.path.join(d, "o.json")))["fails"]
    ok = ok and sink.wait_for(before + 1, 60, "check mg-serve")
    srv.stop()
    if not ok:
        raise RuntimeError(f"the hardened path does not work: {r.stdout} {r.stderr} {srv.text()[-2000:]}")
    log(f"sink 127.0.0.1:{sink.tls} (TLS) → :{sink.plain}; every path delivers")

    R = {}
    try:
        run_cases(s, R)
    finally:
        # Also after a failure: what was measured so far is written (marked incomplete).
        with open(os.path.join(W, "results.json"), "w") as f:
            json.dump({**R, "_meta": {"loads": LOADS, "load0": LOAD0, "build": BUILD_INFO}}, f)
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
            order = [c for c in CASE1 if c not in CASE1_ONLY]
            order = order[rep % len(order):] + order[:rep % len(order)]
            for case in order:
                case2_one(s, case, rep, R.setdefault("2", {}))
        if "3" in CASES and rep < REPS3:
            case3_one(s, rep, R.setdefault("3", {}))
            case3_serve(s, rep, R.setdefault("3", {}))
        if "4" in CASES:
            case4_fpm(s, rep, R.setdefault("4", {}))
    if "4" in CASES and N4:
        case4_runner(s, R.setdefault("4", {}))
    if "4" in CASES and N4S:
        case4_serve(s, R.setdefault("4", {}))
    if "5" in CASES:
        case5(R.setdefault("5", {}))


if __name__ == "__main__":
    main()
