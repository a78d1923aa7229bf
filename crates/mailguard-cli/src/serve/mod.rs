//! `mailguard serve`: the hardened mode's daemon (SPEC §9). It owns the state directory
//! under its own user and is its only writer; guarded processes reach it only through the
//! submission socket, which lets them hand in a message and ask about their own account,
//! and nothing else (Postfix's postdrop boundary).
//!
//! - [`accounts`]: the operator's uid -> account table and each account's limits.
//! - [`conn`]: one connection: the caller from `SO_PEERCRED`, the request checked again.
//! - [`commit`]: the writer thread: group commit of submissions (one fsync per batch).
//! - Delivery: the runner of `mailguard run` in a thread, fed at once with what the
//!   commit releases, delivering in parallel.
//!
//! Threads: the accept loop (this one), one short-lived thread per connection (bounded),
//! the commit thread, the runner and its delivery workers.

pub mod accounts;
mod commit;
mod conn;

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use mailguard_proto::DEFAULT_SOCKET;
use mailguard_store::Store;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use toml::{Table, Value};

use crate::args::Args;
use crate::notice::{self, Places};
use crate::run;
use accounts::Accounts;
use conn::Shared;

const USAGE: &str = "\
usage: mailguard serve [--socket PATH] [--state-dir DIR] [--config FILE]
  --socket      where guarded processes submit (default [serve] socket, or /run/mailguard/submit.sock);
                under systemd socket activation the inherited socket is used instead
  --state-dir   default /var/lib/mailguard (the daemon's own, mode 0700)
  --config      default /etc/mailguard/mailguard.toml: [accounts], [serve], the transport
SIGTERM or SIGINT: stop accepting, store what was handed in, finish the deliveries under
way, exit 0. SIGHUP: read the account tables of the operator file again.";

/// Connections served at once; more wait in the socket's backlog.
const MAX_CONNECTIONS: usize = 512;
/// Connections of one uid served at once: one customer holding connections open (or
/// trickling its requests) must not take the slots every other customer needs.
const MAX_CONNECTIONS_PER_UID: usize = MAX_CONNECTIONS / 8;

struct Opts {
    places: Places,
    socket: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        places: Places::default(),
        socket: None,
    };
    let mut args = Args::new(args);
    while let Some(key) = args.next_key() {
        if o.places.take(key, &mut args)? {
            continue;
        }
        match key {
            "--socket" => o.socket = Some(PathBuf::from(args.value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// Runs `mailguard serve`; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mailguard serve: {e}\n{USAGE}");
            return 2;
        }
    };
    match serve(&opts) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mailguard serve: {e}");
            1
        }
    }
}

/// `[serve]` of the operator file.
struct ServeConfig {
    socket: PathBuf,
    socket_mode: u32,
    /// Stamp `X-Mailguard-Origin` on every message before it is stored and relayed.
    origin_header: bool,
    /// The cap of the whole queue (every account's waiting messages), and its bytes.
    queue_max_messages: u64,
    queue_max_bytes: u64,
}

const SERVE_KEYS: [&str; 5] = [
    "socket",
    "socket_mode",
    "origin_header",
    "queue_max_messages",
    "queue_max_bytes",
];

fn serve_config(root: &Table, socket: Option<&Path>) -> Result<ServeConfig, String> {
    let t = match root.get("serve") {
        None => None,
        Some(Value::Table(t)) => Some(t),
        Some(_) => return Err("serve: must be a table ([serve])".into()),
    };
    if let Some(k) = t.and_then(|t| t.keys().find(|k| !SERVE_KEYS.contains(&k.as_str()))) {
        return Err(format!(
            "serve.{k}: unknown key (known: {})",
            SERVE_KEYS.join(", ")
        ));
    }
    let defaults = mailguard_core::limits::Limits::default();
    let queue_max_messages = match t.and_then(|t| t.get("queue_max_messages")) {
        None => defaults.queue_max_messages,
        Some(Value::Integer(n)) if *n > 0 => *n as u64,
        Some(v) => {
            return Err(format!(
                "serve.queue_max_messages: must be a positive number, not {v:?}"
            ))
        }
    };
    let queue_max_bytes = match t.and_then(|t| t.get("queue_max_bytes")) {
        None => defaults.queue_max_bytes,
        Some(Value::String(s)) => {
            mailguard_core::message::Bytes::parse(s)
                .map_err(|e| format!("serve.queue_max_bytes: {e}"))?
                .0
        }
        Some(v) => {
            return Err(format!(
                "serve.queue_max_bytes: must be a size like \"1G\", not {v:?}"
            ))
        }
    };
    let origin_header = match t.and_then(|t| t.get("origin_header")) {
        None => true,
        Some(Value::Boolean(b)) => *b,
        Some(v) => {
            return Err(format!(
                "serve.origin_header: must be true or false, not {v:?}"
            ))
        }
    };
    let path = match (socket, t.and_then(|t| t.get("socket"))) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(Value::String(s))) => PathBuf::from(s),
        (None, None) => PathBuf::from(DEFAULT_SOCKET),
        (None, Some(v)) => return Err(format!("serve.socket: must be a path, not {v:?}")),
    };
    let socket_mode = match t.and_then(|t| t.get("socket_mode")) {
        None => 0o666,
        Some(Value::String(s)) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                format!("serve.socket_mode: \"{s}\" is not an octal mode like \"0660\"")
            })?,
        Some(v) => {
            return Err(format!(
                "serve.socket_mode: must be a string like \"0660\", not {v:?}"
            ))
        }
    };
    Ok(ServeConfig {
        socket: path,
        socket_mode,
        origin_header,
        queue_max_messages,
        queue_max_bytes,
    })
}

/// The operator file as a table (the parts the transport and the runner own are read by
/// [`notice::load_config`]; this reads `[accounts]`, `[plans]`, `[account]`, `[serve]`).
fn operator_table(places: &Places) -> Result<Table, String> {
    let path = places.config_path();
    match fs::read_to_string(&path) {
        Ok(text) => text
            .parse()
            .map_err(|e| format!("{}: not valid TOML: {e}", path.display())),
        Err(e) if e.kind() == ErrorKind::NotFound && !places.config_given() => Ok(Table::new()),
        Err(e) => Err(format!(
            "cannot read the config file {}: {e}",
            path.display()
        )),
    }
}

fn serve(opts: &Opts) -> Result<(), String> {
    let table = operator_table(&opts.places)?;
    let accounts = Accounts::from_toml(&table)?;
    let serve_cfg = serve_config(&table, opts.socket.as_deref())?;
    let state_dir = &opts.places.state_dir;
    let open = || Store::open(state_dir).map_err(|e| e.to_string());
    let commit_store = open()?;
    private_state_dir(state_dir)?;
    let queries = open()?;
    // First make sure this is the only deliverer of the state directory and the only
    // daemon on the socket; only then may the claims of a stopped one be given back.
    let runner_lock = run::lock_runner(state_dir)?;
    let (listener, owned_path) = listen(&serve_cfg)?;
    // The daemon is the only deliverer: a message still `sending` was being delivered by
    // a daemon that stopped; it is due again now, not when its lease runs out.
    let mut startup = open()?;
    let released = startup
        .release_all_claims(mailguard_store::now())
        .map_err(|e| e.to_string())?;
    if released > 0 {
        eprintln!(
            "mailguard serve: {released} message(s) being delivered when the daemon stopped are due again (a relay may have received some: they may arrive twice)"
        );
    }
    drop(startup);

    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;

    let (jobs_tx, jobs_rx) = mpsc::sync_channel(4096);
    let (released_tx, released_rx) = mpsc::channel();
    let committer = std::thread::Builder::new()
        .name("commit".into())
        .spawn(move || commit::run(commit_store, jobs_rx, released_tx))
        .map_err(|e| format!("cannot start the commit thread: {e}"))?;
    let runner_stop = Arc::new(AtomicBool::new(false));
    let runner = run::spawn_for_daemon(
        &opts.places,
        released_rx,
        Arc::clone(&runner_stop),
        runner_lock,
    )?;

    let max_body = accounts.max_message_size().saturating_add(1 << 20);
    let shared = Arc::new(Shared {
        accounts: RwLock::new(accounts),
        users: Mutex::new(HashMap::new()),
        jobs: jobs_tx,
        queries: Mutex::new(queries),
        host: notice::host_name(),
        max_body,
        bytes: Mutex::new(HashMap::new()),
        origin_header: serve_cfg.origin_header,
        queue_max: (serve_cfg.queue_max_messages, serve_cfg.queue_max_bytes),
    });
    eprintln!(
        "mailguard serve: listening on {}, state in {}",
        serve_cfg.socket.display(),
        state_dir.display()
    );
    let active = Arc::new(AtomicUsize::new(0));
    let per_uid = Arc::new(Mutex::new(HashMap::new()));
    accept_loop(
        &listener,
        &shared,
        &active,
        &per_uid,
        &stop,
        &reload,
        &opts.places,
    );

    // Stop: no new connections; those under way finish; then the committer drains.
    drop(listener);
    if let Some(p) = owned_path {
        let _ = fs::remove_file(p);
    }
    while active.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(shared);
    let _ = committer.join();
    runner_stop.store(true, Ordering::SeqCst);
    match runner.join() {
        Ok(result) => result,
        Err(_) => Err("the delivery thread panicked".into()),
    }
}

/// Connections under way per caller uid.
type PerUid = Arc<Mutex<HashMap<u32, usize>>>;

/// The state directory must be this daemon's alone (SPEC §9): owned by its user, no
/// access for group or others. Store::open creates a missing one 0700; one that already
/// existed with a looser mode (an embedded-mode directory, a hand-made one) would let a
/// guarded uid list or unlink the queue, so the daemon refuses to start on it.
fn private_state_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(dir).map_err(|e| format!("the state directory {}: {e}", dir.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if m.uid() != me {
        return Err(format!(
            "the state directory {} belongs to uid {}, not to this daemon's user (uid {me}); \
             it must be the daemon's alone: chown it to the daemon's user",
            dir.display(),
            m.uid()
        ));
    }
    if m.mode() & 0o077 != 0 {
        return Err(format!(
            "the state directory {} has mode {:04o}: other users could list or remove the \
             queue; it must be the daemon's alone: chmod 0700 {}",
            dir.display(),
            m.mode() & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

fn accept_loop(
    listener: &UnixListener,
    shared: &Arc<Shared>,
    active: &Arc<AtomicUsize>,
    per_uid: &PerUid,
    stop: &AtomicBool,
    reload: &AtomicBool,
    places: &Places,
) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    while !stop.load(Ordering::SeqCst) {
        if reload.swap(false, Ordering::SeqCst) {
            match operator_table(places).and_then(|t| Accounts::from_toml(&t)) {
                Ok(a) => {
                    *shared.accounts.write().unwrap_or_else(|p| p.into_inner()) = a;
                    shared
                        .users
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                    eprintln!("mailguard serve: account tables reloaded");
                }
                Err(e) => eprintln!("mailguard serve: reload refused, keeping the old tables: {e}"),
            }
        }
        let mut fds = [PollFd::new(listener.as_fd_borrowed(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(0) | Err(_) => continue,
            Ok(_) => {}
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                continue
            }
            Err(e) => {
                eprintln!("mailguard serve: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = stream.set_nonblocking(false);
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            busy(stream);
            continue;
        }
        // The kernel's uid (conn::handle reads it again for the account); a socket
        // without credentials shares one bucket.
        let uid = getsockopt(&stream, PeerCredentials).map_or(u32::MAX, |c| c.uid());
        {
            let mut counts = per_uid.lock().unwrap_or_else(|p| p.into_inner());
            let n = counts.entry(uid).or_insert(0);
            if *n >= MAX_CONNECTIONS_PER_UID {
                drop(counts);
                busy(stream);
                continue;
            }
            *n += 1;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (shared, active2, per_uid2) =
            (Arc::clone(shared), Arc::clone(active), Arc::clone(per_uid));
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                conn::handle(stream, &shared);
                release(&per_uid2, uid);
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            release(per_uid, uid);
            active.fetch_sub(1, Ordering::SeqCst);
            eprintln!("mailguard serve: cannot start a connection thread: {e}");
        }
    }
}

fn release(per_uid: &PerUid, uid: u32) {
    let mut counts = per_uid.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = counts.get_mut(&uid) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&uid);
        }
    }
}

fn busy(stream: UnixStream) {
    let mut w = &stream;
    let _ = mailguard_proto::write_frame(
        &mut w,
        &mailguard_proto::Response::Error {
            reason: "the mailguard daemon is busy; try again".into(),
        },
        b"",
    );
}

trait BorrowFd {
    fn as_fd_borrowed(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl BorrowFd for UnixListener {
    fn as_fd_borrowed(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

/// The listening socket: inherited from systemd (`LISTEN_FDS`), or bound at the
/// configured path (a stale socket of a stopped daemon is replaced; a live one is an
/// error). Returns the path to remove at exit when we bound it ourselves.
fn listen(cfg: &ServeConfig) -> Result<(UnixListener, Option<PathBuf>), String> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if ours && count >= 1 {
        // SAFETY: systemd passes the listening socket as fd 3 (SD_LISTEN_FDS_START).
        let listener = unsafe { UnixListener::from_raw_fd(3) };
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("the inherited socket: {e}"))?;
        return Ok((listener, None));
    }
    let path = &cfg.socket;
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
        }
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(format!(
                    "another mailguard serve is listening on {}",
                    path.display()
                ))
            }
            Err(_) => fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale socket {}: {e}", path.display()))?,
        },
        Ok(_) => {
            return Err(format!(
                "{} exists and is not a socket; remove it or choose another --socket",
                path.display()
            ))
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(cfg.socket_mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = listener.as_raw_fd();
    Ok((listener, Some(path.clone())))
}
