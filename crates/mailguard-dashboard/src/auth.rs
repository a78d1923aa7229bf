//! Who may see what: the credentials file (salted PBKDF2-HMAC-SHA256 hashes), login
//! sessions with their CSRF tokens, bearer tokens for the API, and a login throttle.
//!
//! A principal is either the owner of one account (sees and acts on that account only)
//! or an operator (sees and acts on every account). The credentials file has one line per
//! principal, `ROLE NAME HASH`:
//!
//! ```text
//! account site1 pbkdf2-sha256$600000$<salt hex>$<hash hex>
//! operator admin pbkdf2-sha256$600000$<salt hex>$<hash hex>
//! ```
//!
//! It lives with the operator's configuration ([`DEFAULT_AUTH_FILE`], root:mailguard
//! 0640), never in the state directory, which the guarded PHP scripts can write: a line
//! added there would make a script an operator. A malformed line is reported on stderr
//! (file and line number) and skipped; every other credential keeps working.
//!
//! The file is read again on every authentication, so a changed or removed line takes
//! effect at once, also for open sessions and cached bearer tokens.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Where `mailguard dashboard` and `dashboard passwd` keep the credentials by default.
pub const DEFAULT_AUTH_FILE: &str = "/etc/mailguard/dashboard-auth";
/// The mode `dashboard passwd` writes: the dashboard's group may read, nobody else.
pub const AUTH_FILE_MODE: u32 = 0o640;
/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// Below this a hash is refused (tests use it to keep debug builds fast).
pub const MIN_ITERATIONS: u32 = 1_000;
const SCHEME: &str = "pbkdf2-sha256";
/// A session ends after this long without a request...
const SESSION_IDLE: Duration = Duration::from_secs(2 * 3600);
/// ...and after this long in any case.
const SESSION_MAX: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: usize = 10_000;
/// A verified bearer token is remembered this long (so that each API call does not
/// cost a full PBKDF2); the credentials line is still compared on every use.
const BEARER_CACHE: Duration = Duration::from_secs(600);
/// At most this many failed logins per name in [`THROTTLE_WINDOW`].
const THROTTLE_FAILURES: u32 = 10;
/// Failures from one peer address (over all names) before its form logins are refused.
const THROTTLE_PEER_FAILURES: u32 = 50;
const THROTTLE_WINDOW: Duration = Duration::from_secs(600);
/// The throttle map's size bound.
pub const THROTTLE_ENTRIES: usize = 4096;
/// Longer passwords are refused unchecked (PBKDF2 time grows with the password).
const MAX_PASSWORD: usize = 1024;
const DEVICE_COOKIE_LIFETIME: Duration = Duration::from_secs(30 * 86400);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Owns one account: the principal's name is the account's name.
    Account,
    /// Sees and acts on every account.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Account => "account",
            Role::Operator => "operator",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// The owner of A never sees B; an operator sees all.
    pub fn may_access(&self, account: &str) -> bool {
        match self.role {
            Role::Operator => true,
            Role::Account => self.name == account,
        }
    }

    /// The actor recorded with a transition the principal causes.
    pub fn actor(&self) -> String {
        format!("dashboard:{}:{}", self.role.as_str(), self.name)
    }
}

/// One line of the credentials file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub role: Role,
    pub name: String,
    /// The stored hash text; also identifies this version of the credential.
    pub hash: String,
}

/// A name valid in the credentials file and in URLs: letters, digits, `.`, `_`, `-`, `@`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS generator failing is not something to serve pages without.
    getrandom::fill(&mut b).expect("the operating system's random generator failed");
    b
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A new salted hash of `password`: `pbkdf2-sha256$ITERATIONS$SALT$HASH` (hex).
pub fn hash_password(password: &str, iterations: u32) -> String {
    let salt: [u8; 16] = random_bytes();
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut out);
    format!("{SCHEME}${iterations}${}${}", hex(&salt), hex(&out))
}

/// Does `password` match the stored `hash`? Constant-time in the comparison.
pub fn verify_password(hash: &str, password: &str) -> bool {
    let mut parts = hash.split('$');
    let (Some(SCHEME), Some(iter), Some(salt), Some(expected), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iterations), Some(salt), Some(expected)) =
        (iter.parse::<u32>(), unhex(salt), unhex(expected))
    else {
        return false;
    };
    if iterations < MIN_ITERATIONS || expected.len() != 32 {
        return false;
    }
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut out);
    bool::from(out.ct_eq(expected.as_slice()))
}

/// Constant-time equality of two secrets (length is not secret).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Is `hash` of the form [`hash_password`] writes, with enough iterations?
fn well_formed_hash(hash: &str) -> bool {
    let mut parts = hash.split('$');
    let (Some(SCHEME), Some(iter), Some(salt), Some(h), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    iter.parse::<u32>().is_ok_and(|n| n >= MIN_ITERATIONS)
        && unhex(salt).is_some_and(|s| !s.is_empty())
        && unhex(h).is_some_and(|h| h.len() == 32)
}

/// What one reading of the credentials file found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The valid credentials with their line numbers (from 1), in file order.
    pub credentials: Vec<(usize, Credential)>,
    /// One text per skipped line: `FILE line N: what is wrong` (never the line itself,
    /// which may hold a secret).
    pub problems: Vec<String>,
}

/// The credentials file.
#[derive(Debug, Clone)]
pub struct CredentialsFile {
    pub path: PathBuf,
    /// The problems reported last, so that a malformed line is reported once while it
    /// stays (the file is read on every request), and again if it comes back.
    reported: Arc<Mutex<Vec<String>>>,
}

impl CredentialsFile {
    pub fn new(path: impl Into<PathBuf>) -> CredentialsFile {
        CredentialsFile {
            path: path.into(),
            reported: Arc::default(),
        }
    }

    /// The lines of `text`: comments and blank lines ignored, malformed lines and
    /// repeated names skipped with a problem each.
    pub fn parse(&self, text: &str) -> Parsed {
        let mut out = Parsed::default();
        let file = self.path.display();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let role = match f[0] {
                "account" => Role::Account,
                "operator" => Role::Operator,
                _ => {
                    out.problems.push(format!(
                        "{file} line {n}: expected \"account|operator NAME HASH\""
                    ));
                    continue;
                }
            };
            if f.len() != 3 || !valid_name(f[1]) {
                out.problems.push(format!(
                    "{file} line {n}: expected \"{} NAME HASH\" (NAME: letters, digits, . _ - @)",
                    role.as_str()
                ));
                continue;
            }
            if !well_formed_hash(f[2]) {
                out.problems.push(format!(
                    "{file} line {n}: the hash of {} is not \
                     {SCHEME}$ITERATIONS$SALT$HASH (at least {MIN_ITERATIONS} iterations); \
                     set it again with `mailguard dashboard passwd`",
                    f[1]
                ));
                continue;
            }
            if let Some((first, _)) = out.credentials.iter().find(|(_, c)| c.name == f[1]) {
                out.problems.push(format!(
                    "{file} line {n}: {} is already defined on line {first}",
                    f[1]
                ));
                continue;
            }
            out.credentials.push((
                n,
                Credential {
                    role,
                    name: f[1].to_owned(),
                    hash: f[2].to_owned(),
                },
            ));
        }
        out
    }

    /// The file's text; `None` when it does not exist.
    fn text(&self) -> Result<Option<String>, String> {
        match fs::read_to_string(&self.path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", self.path.display())),
        }
    }

    /// Reads and parses the file without reporting anything; a missing file is empty.
    pub fn read(&self) -> Result<Parsed, String> {
        Ok(self.text()?.map(|t| self.parse(&t)).unwrap_or_default())
    }

    /// Prints each problem not printed by the previous call on stderr.
    fn report(&self, problems: Vec<String>) {
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        for p in problems.iter().filter(|p| !reported.contains(p)) {
            eprintln!("mailguard dashboard: {p}; that line is skipped");
        }
        *reported = problems;
    }

    /// Every valid credential; a missing file has none. Malformed lines are skipped and
    /// reported on stderr. An unreadable file is an error (and reported).
    pub fn load(&self) -> Result<Vec<Credential>, String> {
        match self.read() {
            Ok(parsed) => {
                self.report(parsed.problems);
                Ok(parsed.credentials.into_iter().map(|(_, c)| c).collect())
            }
            Err(e) => {
                let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
                if !reported.contains(&e) {
                    eprintln!("mailguard dashboard: cannot read the credentials: {e}");
                    *reported = vec![e.clone()];
                }
                Err(e)
            }
        }
    }

    pub fn find(&self, name: &str) -> Option<Credential> {
        self.load().ok()?.into_iter().find(|c| c.name == name)
    }

    /// Adds or replaces `name`'s line. Every other line (comments, other credentials,
    /// malformed lines) is kept as it is. The new file is written next to the old one
    /// (mode 0640, the old file's group), fsynced, renamed over it, and the directory
    /// fsynced.
    pub fn set(&self, role: Role, name: &str, hash: String) -> Result<(), String> {
        let old = self.text()?;
        let parsed = old.as_deref().map(|t| self.parse(t)).unwrap_or_default();
        if let Some((_, c)) = parsed
            .credentials
            .iter()
            .find(|(_, c)| c.name == name && c.role != role)
        {
            return Err(format!(
                "{name} is already an {} in {}; names are unique across roles",
                c.role.as_str(),
                self.path.display()
            ));
        }
        let entry = format!("{} {name} {hash}\n", role.as_str());
        let mut text = String::new();
        let mut written = false;
        match &old {
            None => text.push_str(
                "# mailguard dashboard credentials: ROLE NAME HASH (written by `mailguard dashboard passwd`)\n",
            ),
            Some(old) => {
                for (n, line) in old.lines().enumerate() {
                    let mine = parsed
                        .credentials
                        .iter()
                        .any(|(at, c)| *at == n + 1 && c.name == name);
                    if !mine {
                        text.push_str(line);
                        text.push('\n');
                    } else if !written {
                        text.push_str(&entry);
                        written = true;
                    }
                }
            }
        }
        if !written {
            text.push_str(&entry);
        }
        let group = fs::metadata(&self.path).ok().map(|m| m.gid());
        write_atomically(&self.path, text.as_bytes(), AUTH_FILE_MODE, group)
    }

    /// What is wrong with who may change or read the file: writable by group or others,
    /// readable by others, in a directory others may write, or (when running as root)
    /// not owned by root. One warning text per finding, naming the file.
    pub fn permission_warnings(&self, running_as_root: bool) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(meta) = fs::metadata(&self.path) else {
            return out;
        };
        let file = self.path.display();
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => "its group and every user",
                (true, false) => "its group",
                _ => "every user",
            };
            out.push(format!(
                "{file} is writable by {who} (mode {:04o}): whoever can write it can make \
                 themselves a dashboard operator; chmod 0640 {file}",
                mode & 0o777
            ));
        } else if mode & 0o004 != 0 {
            out.push(format!(
                "{file} is readable by every user (mode {:04o}), password hashes included; \
                 chmod 0640 {file}",
                mode & 0o777
            ));
        }
        if running_as_root && meta.uid() != 0 {
            out.push(format!(
                "{file} is owned by uid {}, not root, and the dashboard runs as root: that user \
                 can make themselves a dashboard operator; chown root {file}",
                meta.uid()
            ));
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = fs::metadata(dir) {
                // Sticky (/tmp) still lets others create files, but not replace this one.
                if d.mode() & 0o022 != 0 && d.mode() & 0o1000 == 0 {
                    out.push(format!(
                        "{file} is in {}, which others may write (mode {:04o}): they can \
                         replace the file; keep it in a directory only root can write",
                        dir.display(),
                        d.mode() & 0o777
                    ));
                }
            }
        }
        out
    }
}

/// Writes `bytes` to `path` all at once: a new file in the same directory (`mode`,
/// `group` when given), fsynced, renamed over `path`, then the directory fsynced.
fn write_atomically(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    group: Option<u32>,
) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let base = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        base.to_string_lossy(),
        hex(&random_bytes::<6>())
    ));
    let err = |e: std::io::Error| format!("{}: {e}", tmp.display());
    // create_new: never follows a planted symlink, never reuses someone's file.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    let written = (|| {
        // The umask may have taken bits away; the mode is exact either way.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(err)?;
        if let Some(gid) = group {
            if f.metadata().map_err(err)?.gid() != gid {
                std::os::unix::fs::fchown(&f, None, Some(gid)).map_err(|e| {
                    format!(
                        "{}: cannot keep the group (gid {gid}) of the file it replaces: {e}",
                        tmp.display()
                    )
                })?;
            }
        }
        f.write_all(bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// A login session.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// The credential line's hash when the session began: a new password ends it.
    pub credential: String,
    /// Sent with every state-changing form and compared in constant time.
    pub csrf: String,
    created: Instant,
    last: Instant,
}

/// Failed attempts, keyed by SHA-256 of (process key, "name"/"peer", value): an entry is
/// 44 bytes whatever the name's length, and there are at most [`THROTTLE_ENTRIES`]
/// (expired ones dropped first, then the oldest).
#[derive(Debug, Default)]
struct Throttle {
    failures: HashMap<[u8; 32], (u32, Instant)>,
}

impl Throttle {
    fn count(&self, key: &[u8; 32]) -> u32 {
        match self.failures.get(key) {
            Some((n, since)) if since.elapsed() < THROTTLE_WINDOW => *n,
            _ => 0,
        }
    }

    fn fail(&mut self, key: [u8; 32]) {
        if self.failures.len() >= THROTTLE_ENTRIES && !self.failures.contains_key(&key) {
            self.failures
                .retain(|_, (_, since)| since.elapsed() < THROTTLE_WINDOW);
            if self.failures.len() >= THROTTLE_ENTRIES {
                if let Some(k) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| *k)
                {
                    self.failures.remove(&k);
                }
            }
        }
        let e = self.failures.entry(key).or_insert((0, Instant::now()));
        if e.1.elapsed() >= THROTTLE_WINDOW {
            *e = (0, Instant::now());
        }
        e.0 += 1;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.failures.len()
    }
}

/// How a password is presented, which decides whether a throttle may refuse it unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The login form from a browser without a device cookie for this name: refused
    /// unchecked while the name or the peer is throttled.
    Form,
    /// The login form from a browser that logged in as this name before (a valid
    /// [`Auth::device_cookie`]), or an API Bearer credential: always checked, so
    /// someone else's failures never lock the owner out. Failures still count, and
    /// each check costs the full PBKDF2 work on one of the few workers.
    Trusted,
}

/// The authentication state of one running dashboard.
pub struct Auth {
    pub file: CredentialsFile,
    /// Keyed by SHA-256 of the session id, so a lookup never compares the secret itself.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    /// Keyed by SHA-256 of (process key, token).
    bearer: Mutex<HashMap<[u8; 32], (Credential, Instant)>>,
    throttle: Mutex<Throttle>,
    process_key: [u8; 32],
    /// Salt for the work spent when the name is unknown.
    dummy_salt: [u8; 16],
}

/// Why an authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential, or a wrong one.
    Invalid,
    /// Too many failures for this name or from this peer; try again later.
    Throttled,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking request must not lock everyone out.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The iteration count of a stored hash (0 if malformed).
fn iterations_of(hash: &str) -> u32 {
    hash.split('$')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

type HmacSha256 = hmac::Hmac<Sha256>;

impl Auth {
    pub fn new(file: CredentialsFile) -> Auth {
        Auth {
            file,
            sessions: Mutex::new(HashMap::new()),
            bearer: Mutex::new(HashMap::new()),
            throttle: Mutex::new(Throttle::default()),
            process_key: random_bytes(),
            dummy_salt: random_bytes(),
        }
    }

    fn throttle_key(&self, kind: &str, value: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.process_key);
        h.update(kind.as_bytes());
        h.update([0]);
        h.update(value);
        h.finalize().into()
    }

    fn peer_key(&self, peer: Option<IpAddr>) -> [u8; 32] {
        self.throttle_key(
            "peer",
            peer.map(|p| p.to_string()).unwrap_or_default().as_bytes(),
        )
    }

    /// Entries in the throttle map (bounded by [`THROTTLE_ENTRIES`]).
    #[cfg(test)]
    pub fn throttle_entries(&self) -> usize {
        lock(&self.throttle).len()
    }

    /// The same PBKDF2 work as checking a real credential: the highest iteration count
    /// in the file (the default count when it is empty), so that the time of a wrong
    /// answer does not tell whether the name exists.
    fn dummy_work(&self, password: &str, credentials: &[Credential]) {
        let iterations = credentials
            .iter()
            .map(|c| iterations_of(&c.hash))
            .max()
            .unwrap_or(DEFAULT_ITERATIONS)
            .max(MIN_ITERATIONS);
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &self.dummy_salt, iterations, &mut out);
        std::hint::black_box(out);
    }

    /// Checks a name and password against the credentials file. Names that cannot exist
    /// (empty, longer than 128 bytes, other characters) are refused before any work and
    /// never enter the throttle map by name.
    pub fn check_password(
        &self,
        name: &str,
        password: &str,
        peer: Option<IpAddr>,
        attempt: Attempt,
    ) -> Result<Credential, AuthFailure> {
        let peer_key = self.peer_key(peer);
        if !valid_name(name) || password.len() > MAX_PASSWORD {
            lock(&self.throttle).fail(peer_key);
            return Err(AuthFailure::Invalid);
        }
        let name_key = self.throttle_key("name", name.as_bytes());
        let throttled = {
            let t = lock(&self.throttle);
            t.count(&name_key) >= THROTTLE_FAILURES || t.count(&peer_key) >= THROTTLE_PEER_FAILURES
        };
        if throttled && attempt == Attempt::Form {
            return Err(AuthFailure::Throttled);
        }
        let credentials = self.file.load().unwrap_or_default();
        match credentials.iter().find(|c| c.name == name) {
            Some(c) if verify_password(&c.hash, password) => {
                lock(&self.throttle).failures.remove(&name_key);
                Ok(c.clone())
            }
            found => {
                if found.is_none() {
                    self.dummy_work(password, &credentials);
                }
                let mut t = lock(&self.throttle);
                t.fail(name_key);
                t.fail(peer_key);
                Err(if throttled {
                    AuthFailure::Throttled
                } else {
                    AuthFailure::Invalid
                })
            }
        }
    }

    /// A bearer token is `NAME:SECRET`, the same secret as the login password. It is
    /// checked even while the name is throttled (see [`Attempt::Trusted`]).
    pub fn check_bearer(
        &self,
        token: &str,
        peer: Option<IpAddr>,
    ) -> Result<Principal, AuthFailure> {
        let Some((name, secret)) = token.split_once(':') else {
            return Err(AuthFailure::Invalid);
        };
        let mut h = Sha256::new();
        h.update(self.process_key);
        h.update(token.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        let current = self.file.find(name);
        {
            let cache = lock(&self.bearer);
            if let (Some((cached, at)), Some(cur)) = (cache.get(&key), &current) {
                if at.elapsed() < BEARER_CACHE && cached == cur {
                    return Ok(principal(cur));
                }
            }
        }
        let c = self.check_password(name, secret, peer, Attempt::Trusted)?;
        let mut cache = lock(&self.bearer);
        if cache.len() >= 1000 {
            cache.retain(|_, (_, at)| at.elapsed() < BEARER_CACHE);
            if cache.len() >= 1000 {
                cache.clear();
            }
        }
        cache.insert(key, (c.clone(), Instant::now()));
        Ok(principal(&c))
    }

    /// The value of a device cookie for `c`: `NAME.EXPIRY.MAC`, the MAC keyed by the
    /// credential's stored hash (secret, survives restarts, void once the password
    /// changes). A browser that shows one is never refused unchecked by the throttle.
    pub fn device_cookie(&self, c: &Credential) -> String {
        let expiry = unix_now() + DEVICE_COOKIE_LIFETIME.as_secs();
        format!("{}.{expiry}.{}", c.name, device_mac(c, expiry))
    }

    /// Does `cookie` vouch for a browser that logged in as `name` before?
    pub fn device_trusted(&self, cookie: &str, name: &str) -> bool {
        let mut parts = cookie.rsplitn(3, '.');
        let (Some(mac), Some(expiry), Some(who)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(expiry) = expiry.parse::<u64>() else {
            return false;
        };
        if who != name || expiry < unix_now() || !valid_name(name) {
            return false;
        }
        match self.file.find(name) {
            Some(c) => secrets_equal(&device_mac(&c, expiry), mac),
            None => false,
        }
    }

    /// Starts a session; returns its id (for the cookie) and the session.
    pub fn start_session(&self, c: &Credential) -> (String, Session) {
        let id = hex(&random_bytes::<32>());
        let now = Instant::now();
        let s = Session {
            principal: principal(c),
            credential: c.hash.clone(),
            csrf: hex(&random_bytes::<32>()),
            created: now,
            last: now,
        };
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| live(s));
            if sessions.len() >= MAX_SESSIONS {
                // Drop the oldest rather than refuse every new login.
                if let Some(k) = sessions.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| *k) {
                    sessions.remove(&k);
                }
            }
        }
        sessions.insert(session_key(&id), s.clone());
        (id, s)
    }

    /// The live session with this id, if its credential is unchanged.
    pub fn session(&self, id: &str) -> Option<Session> {
        let key = session_key(id);
        let mut sessions = lock(&self.sessions);
        let s = sessions.get_mut(&key)?;
        let current = self.file.find(&s.principal.name);
        let valid = live(s)
            && current
                .as_ref()
                .is_some_and(|c| c.hash == s.credential && c.role == s.principal.role);
        if !valid {
            sessions.remove(&key);
            return None;
        }
        s.last = Instant::now();
        Some(s.clone())
    }

    pub fn end_session(&self, id: &str) {
        lock(&self.sessions).remove(&session_key(id));
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn device_mac(c: &Credential, expiry: u64) -> String {
    use hmac::{KeyInit, Mac};
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(c.hash.as_bytes())
        .expect("HMAC takes keys of any length");
    m.update(b"mailguard-device\0");
    m.update(c.name.as_bytes());
    m.update(b"\0");
    m.update(expiry.to_string().as_bytes());
    hex(&m.finalize().into_bytes())
}

fn principal(c: &Credential) -> Principal {
    Principal {
        name: c.name.clone(),
        role: c.role,
    }
}

fn live(s: &Session) -> bool {
    s.last.elapsed() < SESSION_IDLE && s.created.elapsed() < SESSION_MAX
}

fn session_key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash_password("pw", MIN_ITERATIONS);
        let b = hash_password("pw", MIN_ITERATIONS);
        assert_ne!(a, b);
        assert!(verify_password(&a, "pw"));
        assert!(!verify_password(&a, "pW"));
        assert!(!verify_password("pbkdf2-sha256$10$00$00", "pw"));
        assert!(!verify_password("plain", "plain"));
        assert!(a.starts_with("pbkdf2-sha256$1000$"));
    }

    #[test]
    fn credentials_file_round_trips_with_mode_0640() {
        let dir = tempfile::tempdir().unwrap();
        let f = CredentialsFile::new(dir.path().join("auth"));
        assert!(f.load().unwrap().is_empty());
        f.set(Role::Account, "site1", hash_password("one", MIN_ITERATIONS))
            .unwrap();
        f.set(
            Role::Operator,
            "admin",
            hash_password("two", MIN_ITERATIONS),
        )
        .unwrap();
        f.set(
            Role::Account,
            "site1",
            hash_password("three", MIN_ITERATIONS),
        )
        .unwrap();
        assert!(f
            .set(Role::Operator, "site1", hash_password("x", MIN_ITERATIONS))
            .is_err());
        let creds = f.load().unwrap();
        assert_eq!(creds.len(), 2);
        let mode = fs::metadata(&f.path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert_eq!(f.permission_warnings(false), Vec::<String>::new());
        // Nothing but the file itself is left in the directory.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let auth = Auth::new(f);
        assert!(auth
            .check_password("site1", "three", None, Attempt::Form)
            .is_ok());
        assert_eq!(
            auth.check_password("site1", "one", None, Attempt::Form),
            Err(AuthFailure::Invalid)
        );
        let p = auth.check_bearer("admin:two", None).unwrap();
        assert_eq!(p.role, Role::Operator);
        assert!(p.may_access("anything"));
        assert!(auth.check_bearer("admin:two", None).is_ok());
        assert!(auth.check_bearer("admin:wrong", None).is_err());
        assert!(auth.check_bearer("admintwo", None).is_err());
    }

    #[test]
    fn sessions_end_when_the_password_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = CredentialsFile::new(dir.path().join("auth"));
        f.set(Role::Account, "a", hash_password("pw", MIN_ITERATIONS))
            .unwrap();
        let auth = Auth::new(f.clone());
        let c = auth.check_password("a", "pw", None, Attempt::Form).unwrap();
        let (id, s) = auth.start_session(&c);
        assert!(!s.principal.may_access("b"));
        assert!(auth.session(&id).is_some());
        assert!(auth.session("nope").is_none());
        f.set(Role::Account, "a", hash_password("new", MIN_ITERATIONS))
            .unwrap();
        assert!(auth.session(&id).is_none());
    }

    #[test]
    fn throttles_after_repeated_failures() {
        let dir = tempfile::tempdir().unwrap();
        let f = CredentialsFile::new(dir.path().join("auth"));
        f.set(Role::Account, "a", hash_password("pw", MIN_ITERATIONS))
            .unwrap();
        let auth = Auth::new(f);
        for _ in 0..THROTTLE_FAILURES {
            assert_eq!(
                auth.check_password("a", "x", None, Attempt::Form),
                Err(AuthFailure::Invalid)
            );
        }
        assert_eq!(
            auth.check_password("a", "pw", None, Attempt::Form),
            Err(AuthFailure::Throttled)
        );
        // A browser that logged in before, and a Bearer credential, are still checked.
        let c = auth.file.find("a").unwrap();
        assert!(auth.device_trusted(&auth.device_cookie(&c), "a"));
        assert!(!auth.device_trusted(&auth.device_cookie(&c), "b"));
        assert!(!auth.device_trusted("a.99999999999.00", "a"));
        assert!(auth
            .check_password("a", "pw", None, Attempt::Trusted)
            .is_ok());
        assert!(auth.check_bearer("a:pw", None).is_ok());
    }

    #[test]
    fn the_throttle_map_stays_bounded_and_long_names_never_enter_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = CredentialsFile::new(dir.path().join("auth"));
        f.set(Role::Account, "a", hash_password("pw", MIN_ITERATIONS))
            .unwrap();
        let auth = Auth::new(f);
        let long = "x".repeat(15_000);
        for i in 0..1000 {
            let r = auth.check_password(&format!("{long}{i}"), "x", None, Attempt::Form);
            assert_eq!(r, Err(AuthFailure::Invalid));
        }
        // Only the (one) peer entry: names that cannot exist are not keyed.
        assert_eq!(auth.throttle_entries(), 1);
        let mut t = lock(&auth.throttle);
        for i in 0..(THROTTLE_ENTRIES as u32 + 500) {
            t.fail(auth.throttle_key("name", &i.to_be_bytes()));
        }
        assert_eq!(t.len(), THROTTLE_ENTRIES);
        // The newest entries are kept, the oldest dropped.
        let newest = auth.throttle_key("name", &(THROTTLE_ENTRIES as u32 + 499).to_be_bytes());
        assert_eq!(t.count(&newest), 1);
        drop(t);
        assert!(auth.throttle_entries() <= THROTTLE_ENTRIES);
    }

    #[test]
    fn a_malformed_line_is_skipped_and_the_others_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let f = CredentialsFile::new(dir.path().join("auth"));
        let good = hash_password("good one", MIN_ITERATIONS);
        let other = hash_password("other one", MIN_ITERATIONS);
        fs::write(
            &f.path,
            format!(
                "# comment\n\
                 operator evil\n\
                 account site1 {good}\n\
                 root x {good}\n\
                 account bad/name {good}\n\
                 account site2 pbkdf2-sha256$10$00$00\n\
                 operator site1 {other}\n\
                 operator admin {other} extra\n\
                 \n\
                 operator admin {other}\n"
            ),
        )
        .unwrap();
        let parsed = f.read().unwrap();
        let names: Vec<(usize, &str)> = parsed
            .credentials
            .iter()
            .map(|(n, c)| (*n, c.name.as_str()))
            .collect();
        assert_eq!(names, [(3, "site1"), (10, "admin")]);
        let lines: Vec<&str> = parsed
            .problems
            .iter()
            .map(|p| p.split(": ").next().unwrap())
            .collect();
        let file = f.path.display().to_string();
        assert_eq!(
            lines,
            [2, 4, 5, 6, 7, 8].map(|n| format!("{file} line {n}"))
        );
        assert!(parsed.problems[4].contains("already defined on line 3"));
        // No problem text repeats the line (it may hold a secret).
        assert!(parsed.problems.iter().all(|p| !p.contains(&other)));

        let auth = Auth::new(f.clone());
        assert_eq!(
            auth.check_password("site1", "good one", None, Attempt::Form)
                .unwrap()
                .role,
            Role::Account
        );
        assert_eq!(
            auth.check_password("admin", "other one", None, Attempt::Form)
                .unwrap()
                .role,
            Role::Operator
        );
        assert_eq!(
            auth.check_password("evil", "x", None, Attempt::Form),
            Err(AuthFailure::Invalid)
        );

        // passwd keeps the lines it does not own, malformed ones included.
        f.set(
            Role::Account,
            "site1",
            hash_password("new one", MIN_ITERATIONS),
        )
        .unwrap();
        let text = fs::read_to_string(&f.path).unwrap();
        assert!(text.starts_with("# comment\noperator evil\naccount site1 pbkdf2-sha256$"));
        assert!(text.contains("\nroot x "));
        assert!(text.ends_with(&format!("\noperator admin {other}\n")));
        assert_eq!(text.lines().count(), 10);
        assert!(auth
            .check_password("site1", "new one", None, Attempt::Form)
            .is_ok());
        f.set(
            Role::Account,
            "site3",
            hash_password("third one", MIN_ITERATIONS),
        )
        .unwrap();
        assert_eq!(f.load().unwrap().len(), 3);
    }

    #[test]
    fn an_unreadable_file_is_an_error_not_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading fails whoever we are.
        let f = CredentialsFile::new(dir.path());
        assert!(f.load().is_err());
        assert!(f.find("a").is_none());
        assert!(CredentialsFile::new(dir.path().join("missing"))
            .load()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn passwd_keeps_the_group_of_the_file_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let f = CredentialsFile::new(dir.path().join("auth"));
        f.set(Role::Account, "a", hash_password("pw", MIN_ITERATIONS))
            .unwrap();
        if nix::unistd::geteuid().is_root() {
            let gid = 4321;
            std::os::unix::fs::chown(&f.path, None, Some(gid)).unwrap();
            f.set(Role::Account, "b", hash_password("pw", MIN_ITERATIONS))
                .unwrap();
            let meta = fs::metadata(&f.path).unwrap();
            assert_eq!(meta.gid(), gid);
            assert_eq!(meta.mode() & 0o7777, 0o640);
        }
        assert_eq!(
            f.load().unwrap().len(),
            1 + usize::from(nix::unistd::geteuid().is_root())
        );
    }

    #[test]
    fn loose_permissions_are_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let f = CredentialsFile::new(dir.path().join("auth"));
        f.set(Role::Account, "a", hash_password("pw", MIN_ITERATIONS))
            .unwrap();
        let file = f.path.display().to_string();
        for (mode, expect) in [
            (0o640, None),
            (0o600, None),
            (0o660, Some("writable by its group")),
            (0o646, Some("writable by every user")),
            (0o666, Some("writable by its group and every user")),
            (0o644, Some("readable by every user")),
        ] {
            fs::set_permissions(&f.path, fs::Permissions::from_mode(mode)).unwrap();
            let w = f.permission_warnings(false);
            match expect {
                None => assert!(w.is_empty(), "{mode:o}: {w:?}"),
                Some(text) => {
                    assert_eq!(w.len(), 1, "{mode:o}: {w:?}");
                    assert!(w[0].starts_with(&file) && w[0].contains(text), "{w:?}");
                }
            }
        }
        fs::set_permissions(&f.path, fs::Permissions::from_mode(0o640)).unwrap();
        let owner = fs::metadata(&f.path).unwrap().uid();
        let as_root = f.permission_warnings(true);
        assert_eq!(as_root.len(), usize::from(owner != 0), "{as_root:?}");
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&f.path, Some(4321), None).unwrap();
            let w = f.permission_warnings(true);
            assert!(
                w.len() == 1 && w[0].contains("owned by uid 4321, not root"),
                "{w:?}"
            );
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let w = f.permission_warnings(false);
        assert!(w.iter().any(|w| w.contains("others may write")), "{w:?}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    }
}
