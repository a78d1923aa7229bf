//! Who may see what: the credentials file (salted PBKDF2-HMAC-SHA256 hashes, mode 0600),
//! login sessions with their CSRF tokens, bearer tokens for the API, and a login throttle.
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
//! The file is read again on every authentication, so a changed or removed line takes
//! effect at once, also for open sessions and cached bearer tokens.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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
const THROTTLE_WINDOW: Duration = Duration::from_secs(600);

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

/// The credentials file.
#[derive(Debug, Clone)]
pub struct CredentialsFile {
    pub path: PathBuf,
}

impl CredentialsFile {
    /// Every credential; a missing file has none. Malformed lines are reported.
    pub fn load(&self) -> Result<Vec<Credential>, String> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", self.path.display())),
        };
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let role = match f.first() {
                Some(&"account") => Role::Account,
                Some(&"operator") => Role::Operator,
                _ => {
                    return Err(format!(
                        "{} line {}: expected \"account|operator NAME HASH\"",
                        self.path.display(),
                        n + 1
                    ))
                }
            };
            if f.len() != 3 || !valid_name(f[1]) {
                return Err(format!(
                    "{} line {}: expected \"{} NAME HASH\"",
                    self.path.display(),
                    n + 1,
                    role.as_str()
                ));
            }
            out.push(Credential {
                role,
                name: f[1].to_owned(),
                hash: f[2].to_owned(),
            });
        }
        Ok(out)
    }

    pub fn find(&self, name: &str) -> Option<Credential> {
        self.load().ok()?.into_iter().find(|c| c.name == name)
    }

    /// Adds or replaces `name`'s line; written to a temporary file (0600) then renamed.
    pub fn set(&self, role: Role, name: &str, hash: String) -> Result<(), String> {
        let mut creds = self.load()?;
        if let Some(c) = creds.iter().find(|c| c.name == name && c.role != role) {
            return Err(format!(
                "{name} is already an {} in {}; names are unique across roles",
                c.role.as_str(),
                self.path.display()
            ));
        }
        creds.retain(|c| c.name != name);
        creds.push(Credential {
            role,
            name: name.to_owned(),
            hash,
        });
        let mut text = String::from(
            "# mailguard dashboard credentials: ROLE NAME HASH (written by `mailguard dashboard passwd`)\n",
        );
        for c in &creds {
            text.push_str(&format!("{} {} {}\n", c.role.as_str(), c.name, c.hash));
        }
        let tmp = self.path.with_extension("tmp");
        let err = |e: std::io::Error| format!("{}: {e}", tmp.display());
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(err)?;
        fs::rename(&tmp, &self.path).map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// Warns about a file others can read (hashes are still secrets worth guarding).
    pub fn loose_permissions(path: &Path) -> Option<u32> {
        let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
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

/// Failed attempts per name.
#[derive(Debug, Default)]
struct Throttle {
    failures: HashMap<String, (u32, Instant)>,
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
    /// A hash to spend the same time on when the name is unknown.
    dummy_hash: String,
}

/// Why an authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential, or a wrong one.
    Invalid,
    /// Too many failures for this name; try again later.
    Throttled,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking request must not lock everyone out.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Auth {
    pub fn new(file: CredentialsFile) -> Auth {
        Auth {
            file,
            sessions: Mutex::new(HashMap::new()),
            bearer: Mutex::new(HashMap::new()),
            throttle: Mutex::new(Throttle::default()),
            process_key: random_bytes(),
            dummy_hash: hash_password("mailguard-dummy", MIN_ITERATIONS),
        }
    }

    fn throttled(&self, name: &str) -> bool {
        let t = lock(&self.throttle);
        matches!(t.failures.get(name), Some((n, since)) if *n >= THROTTLE_FAILURES && since.elapsed() < THROTTLE_WINDOW)
    }

    fn record_failure(&self, name: &str) {
        let mut t = lock(&self.throttle);
        if t.failures.len() > 10_000 {
            t.failures
                .retain(|_, (_, since)| since.elapsed() < THROTTLE_WINDOW);
        }
        let e = t
            .failures
            .entry(name.to_owned())
            .or_insert((0, Instant::now()));
        if e.1.elapsed() >= THROTTLE_WINDOW {
            *e = (0, Instant::now());
        }
        e.0 += 1;
    }

    /// Checks a name and password against the credentials file.
    pub fn check_password(&self, name: &str, password: &str) -> Result<Credential, AuthFailure> {
        if self.throttled(name) {
            return Err(AuthFailure::Throttled);
        }
        match self.file.find(name) {
            Some(c) if verify_password(&c.hash, password) => {
                lock(&self.throttle).failures.remove(name);
                Ok(c)
            }
            found => {
                if found.is_none() {
                    let _ = verify_password(&self.dummy_hash, password);
                }
                self.record_failure(name);
                Err(AuthFailure::Invalid)
            }
        }
    }

    /// A bearer token is `NAME:SECRET`, the same secret as the login password.
    pub fn check_bearer(&self, token: &str) -> Result<Principal, AuthFailure> {
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
        let c = self.check_password(name, secret)?;
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
    fn credentials_file_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let f = CredentialsFile {
            path: dir.path().join("auth"),
        };
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
        assert_eq!(CredentialsFile::loose_permissions(&f.path), None);
        let auth = Auth::new(f);
        assert!(auth.check_password("site1", "three").is_ok());
        assert_eq!(
            auth.check_password("site1", "one"),
            Err(AuthFailure::Invalid)
        );
        let p = auth.check_bearer("admin:two").unwrap();
        assert_eq!(p.role, Role::Operator);
        assert!(p.may_access("anything"));
        assert!(auth.check_bearer("admin:two").is_ok());
        assert!(auth.check_bearer("admin:wrong").is_err());
        assert!(auth.check_bearer("admintwo").is_err());
    }

    #[test]
    fn sessions_end_when_the_password_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = CredentialsFile {
            path: dir.path().join("auth"),
        };
        f.set(Role::Account, "a", hash_password("pw", MIN_ITERATIONS))
            .unwrap();
        let auth = Auth::new(f.clone());
        let c = auth.check_password("a", "pw").unwrap();
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
        let f = CredentialsFile {
            path: dir.path().join("auth"),
        };
        f.set(Role::Account, "a", hash_password("pw", MIN_ITERATIONS))
            .unwrap();
        let auth = Auth::new(f);
        for _ in 0..THROTTLE_FAILURES {
            assert_eq!(auth.check_password("a", "x"), Err(AuthFailure::Invalid));
        }
        assert_eq!(auth.check_password("a", "pw"), Err(AuthFailure::Throttled));
    }
}
