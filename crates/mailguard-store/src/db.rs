//! Opening the state directory and its database, the per-process connection (reopened
//! after a fork), the writer gate and the schema.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mailguard_core::rate::Timestamp;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{access, AccessFlags};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::StoreError;
use crate::Result;

/// The state directory proposed for installs; the extension passes its own.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/mailguard";
/// The database file inside the state directory.
pub const DB_FILE: &str = "mailguard.db";
/// The writers' gate file inside the state directory.
const GATE_FILE: &str = "mailguard.lock";
/// How long a claim (`sending`) lasts before the message goes back to the queue. Longer
/// than a whole SMTP session with RFC 5321 timeouts (the final dot alone may take 600 s).
pub const SENDING_LEASE: Duration = Duration::from_secs(30 * 60);
/// How long a writer waits for the database before giving up (the caller then refuses
/// the message with a temporary error rather than block a PHP request for longer).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The schema version this binary creates and understands (`PRAGMA user_version`): the
/// last of [`MIGRATIONS`].
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The wall clock as a [`Timestamp`]: the one place the store reads the time for callers
/// that have no clock of their own.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Timestamp(ms)
}

/// How durable one write transaction's commit must be when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// fsync of the WAL before the commit returns (`synchronous=FULL`).
    Full,
    /// Durable with the next fsync; for records whose loss only repeats work.
    Relaxed,
}

/// A handle on one state directory's database.
///
/// `Store::open` must be called in the process that uses the store (the php-fpm worker, on
/// first use), never in a parent that forks afterwards. If a handle does cross a fork
/// anyway, the child notices the pid change on its next call and opens its own connection
/// and gate; the inherited connection is leaked, never closed, so the child cannot disturb
/// the parent's locks or WAL.
pub struct Store {
    dir: PathBuf,
    db_path: PathBuf,
    pid: u32,
    conn: Connection,
    gate: Option<File>,
}

impl Store {
    /// Opens (and on first use creates, mode 0700) the state directory `dir` and its
    /// database. An unusable directory is an error naming the path.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        prepare_dir(&dir)?;
        let db_path = dir.join(DB_FILE);
        // Creating the database (WAL mode, schema) behind the writers' gate: processes
        // that start together on a new state directory would otherwise see
        // "database is locked" from the journal-mode switch.
        let gate = open_gate(&dir)?;
        let locked =
            Flock::lock(gate, FlockArg::LockExclusive).map_err(|(_, e)| StoreError::StateDir {
                path: dir.join(GATE_FILE),
                problem: format!("cannot lock the writers' gate: {e}"),
            })?;
        let conn = open_connection(&db_path);
        let gate = locked.unlock().ok();
        let conn = conn?;
        let gate = match gate {
            Some(g) => g,
            None => open_gate(&dir)?,
        };
        Ok(Store {
            dir,
            db_path,
            pid: std::process::id(),
            conn,
            gate: Some(gate),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// After a fork, replace the inherited connection and gate with the child's own.
    fn ensure_own_process(&mut self) -> Result<()> {
        let pid = std::process::id();
        if pid != self.pid {
            let fresh = open_connection(&self.db_path)?;
            let inherited = std::mem::replace(&mut self.conn, fresh);
            // Closing the parent's connection here could checkpoint or unlink its WAL.
            std::mem::forget(inherited);
            self.gate = Some(open_gate(&self.dir)?);
            self.pid = pid;
        }
        Ok(())
    }

    pub(crate) fn db_err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Db {
            path: self.db_path.clone(),
            source,
        }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction behind the writers' gate, and
    /// commits (fsync of the WAL, `synchronous=FULL`) before returning its value.
    pub(crate) fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.write_with(Durability::Full, f)
    }

    /// As [`Store::write`], but the commit of a `Durability::Relaxed` write is not
    /// fsynced itself (WAL `synchronous=NORMAL`): it becomes durable with the next
    /// fsync of the WAL (the next full commit or checkpoint). For records whose loss
    /// in a power failure only repeats work, never loses mail: the outcome of a
    /// delivery (lost, the message is delivered again: twice, never zero times).
    pub(crate) fn write_with<T>(
        &mut self,
        durability: Durability,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.ensure_own_process()?;
        let gate = match self.gate.take() {
            Some(g) => g,
            None => open_gate(&self.dir)?,
        };
        let locked =
            Flock::lock(gate, FlockArg::LockExclusive).map_err(|(_, e)| StoreError::StateDir {
                path: self.dir.join(GATE_FILE),
                problem: format!("cannot lock the writers' gate: {e}"),
            })?;
        let path = self.db_path.clone();
        let db_err = |source| StoreError::Db {
            path: path.clone(),
            source,
        };
        let relaxed = durability == Durability::Relaxed;
        let result = (|| {
            if relaxed {
                self.conn
                    .pragma_update(None, "synchronous", "NORMAL")
                    .map_err(db_err)?;
            }
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let value = f(&tx)?;
            tx.commit().map_err(db_err)?;
            Ok(value)
        })();
        if relaxed {
            // Every other write of this connection stays FULL.
            let restored = self.conn.pragma_update(None, "synchronous", "FULL");
            if let Err(e) = restored {
                self.gate = locked.unlock().ok();
                return Err(db_err(e));
            }
        }
        // On unlock failure the lock goes with the file when it is dropped.
        self.gate = locked.unlock().ok();
        result
    }

    /// Runs `f` in one read transaction (a consistent snapshot; WAL readers never wait).
    pub(crate) fn read<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.ensure_own_process()?;
        let path = self.db_path.clone();
        let db_err = |source| StoreError::Db {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(db_err)?;
        let value = f(&tx)?;
        tx.finish().map_err(db_err)?;
        Ok(value)
    }

    /// Free bytes for unprivileged users in the state directory's file system.
    pub fn free_disk_bytes(&self) -> Result<u64> {
        let st = nix::sys::statvfs::statvfs(&self.dir).map_err(|e| StoreError::StateDir {
            path: self.dir.clone(),
            problem: format!("cannot read the free space: {e}"),
        })?;
        Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
    }

    /// The schema version of the database (`PRAGMA user_version`): [`SCHEMA_VERSION`]
    /// once opened by this binary.
    pub fn schema_version(&self) -> Result<i64> {
        user_version(&self.conn).map_err(|e| self.db_err(e))
    }

    /// Folds the WAL back into the database (the runner calls this now and then, so that
    /// long readers cannot make the WAL grow without bound).
    pub fn checkpoint(&mut self) -> Result<()> {
        self.ensure_own_process()?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| self.db_err(e))
    }
}

fn dir_err(dir: &Path, problem: impl Into<String>) -> StoreError {
    StoreError::StateDir {
        path: dir.to_path_buf(),
        problem: problem.into(),
    }
}

fn prepare_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(dir_err(dir, "exists but is not a directory")),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| dir_err(dir, format!("cannot create it: {e}")))?;
            // Only the owner (the pool's or the runner's user): queued mail is private.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| dir_err(dir, format!("cannot set its mode to 0700: {e}")))?;
            if let Some(parent) = dir.parent() {
                // Make the new directory entry itself durable.
                if let Ok(p) = File::open(parent) {
                    let _ = p.sync_all();
                }
            }
        }
        Err(e) => return Err(dir_err(dir, format!("cannot read it: {e}"))),
    }
    access(
        dir,
        AccessFlags::R_OK | AccessFlags::W_OK | AccessFlags::X_OK,
    )
    .map_err(|e| {
        dir_err(
            dir,
            format!(
                "this user (uid {}) cannot read and write it: {e}",
                nix::unistd::getuid()
            ),
        )
    })
}

fn open_gate(dir: &Path) -> Result<File> {
    let path = dir.join(GATE_FILE);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| StoreError::StateDir {
            path,
            problem: format!("cannot open the writers' gate: {e}"),
        })
}

fn open_connection(path: &Path) -> Result<Connection> {
    let err = |source| StoreError::Db {
        path: path.to_path_buf(),
        source,
    };
    let existed = path.exists();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    if !existed {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
    }
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    // WAL is persistent in the file; FULL makes every commit durable (WAL with NORMAL may
    // lose the last commits on power loss, and an accepted message must never be lost).
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::StateDir {
            path: path.to_path_buf(),
            problem: format!(
                "SQLite refused WAL mode (got {mode}); is this a network file system?"
            ),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(err)?;
    // 512 KiB of page cache instead of SQLite's 2 MB: the connection lives in every
    // php-fpm worker, and the hot pages of one submit are few.
    conn.pragma_update(None, "cache_size", -512).map_err(err)?;
    migrate(&conn, path)?;
    if !existed {
        // The database file's directory entry (SQLite syncs the WAL's own entry).
        if let Some(dir) = path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
    }
    Ok(conn)
}

/// Brings the database to [`SCHEMA_VERSION`], applying the missing [`MIGRATIONS`] in
/// order in one transaction. A database of a newer schema is refused, never touched.
fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    let err = |source| StoreError::Db {
        path: path.to_path_buf(),
        source,
    };
    let version = user_version(conn).map_err(err)?;
    not_newer(path, version)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    let applied = (|| {
        // Another process may have migrated while we waited for the lock.
        let version = user_version(conn).map_err(err)?;
        not_newer(path, version)?;
        for &(to, sql) in MIGRATIONS {
            if version < to {
                conn.execute_batch(sql).map_err(err)?;
                conn.pragma_update(None, "user_version", to).map_err(err)?;
            }
        }
        Ok(())
    })();
    match applied {
        Ok(()) => conn.execute_batch("COMMIT").map_err(err),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

fn not_newer(path: &Path, found: i64) -> Result<()> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// The whole schema, in order: `(version, sql)` brings a database of the version before
/// to `version`. Append only; a released step is never edited.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, SCHEMA_V1),
    (2, QUEUE_TOTALS),
    (3, RUNNER_TABLES),
    (4, QUARANTINE_LOG),
    (5, TRACK),
];

/// Version 5: what `mailguard track` follows: each message's `Message-ID`, and every
/// delivery attempt and bounce with the relay's reply.
const TRACK: &str = "
ALTER TABLE messages ADD COLUMN message_id_header TEXT;
CREATE INDEX messages_message_id ON messages(message_id_header);
CREATE INDEX messages_created ON messages(created);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL,
    time INTEGER NOT NULL,
    result TEXT NOT NULL,
    reply TEXT NOT NULL DEFAULT ''
);
CREATE INDEX attempts_message ON attempts(message_id, id);
";

/// Version 4: who released, deleted or dropped (cap) which quarantined message.
const QUARANTINE_LOG: &str = "
CREATE TABLE quarantine_log (
    id INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    account TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT ''
);
CREATE INDEX quarantine_log_account ON quarantine_log(account, id);
";

/// Version 3: the runner's claims (messages it claimed and has not recorded yet, given
/// back after a crash) and the notices of rule trips already handled (never sent twice).
/// `IF NOT EXISTS`: earlier versions created them on first use.
const RUNNER_TABLES: &str = "
CREATE TABLE IF NOT EXISTS runner_claims (
    message_id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runner_notices (
    transition_id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    time INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
";

/// Version 2: the size of the waiting queue (queued, held, sending), kept by triggers
/// in the same transaction as every change of a message, so the queue cap is checked
/// in O(1) at each mail() instead of counting the queue.
const QUEUE_TOTALS: &str = "
CREATE TABLE queue_totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    messages INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT INTO queue_totals (id, messages, bytes)
    SELECT 1, count(*), coalesce(sum(size), 0) FROM messages
    WHERE state IN ('queued', 'held', 'sending');
CREATE TRIGGER queue_totals_insert AFTER INSERT ON messages
    WHEN NEW.state IN ('queued', 'held', 'sending')
BEGIN
    UPDATE queue_totals SET messages = messages + 1, bytes = bytes + NEW.size WHERE id = 1;
END;
CREATE TRIGGER queue_totals_delete AFTER DELETE ON messages
    WHEN OLD.state IN ('queued', 'held', 'sending')
BEGIN
    UPDATE queue_totals SET messages = messages - 1, bytes = bytes - OLD.size WHERE id = 1;
END;
CREATE TRIGGER queue_totals_update AFTER UPDATE OF state, size ON messages
BEGIN
    UPDATE queue_totals SET
        messages = messages - (OLD.state IN ('queued', 'held', 'sending'))
                            + (NEW.state IN ('queued', 'held', 'sending')),
        bytes = bytes - (CASE WHEN OLD.state IN ('queued', 'held', 'sending') THEN OLD.size ELSE 0 END)
                      + (CASE WHEN NEW.state IN ('queued', 'held', 'sending') THEN NEW.size ELSE 0 END)
    WHERE id = 1;
END;
";

/// Version 1. Counters (`accounts.*_total`, `daily`) are kept in step with `ledger` in
/// the same transactions; `check_integrity` verifies they agree.
const SCHEMA_V1: &str = "
CREATE TABLE accounts (
    account TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    since INTEGER NOT NULL,
    created INTEGER NOT NULL,
    report_to TEXT,
    limits TEXT NOT NULL DEFAULT '',
    mode TEXT NOT NULL DEFAULT 'enforce',
    sent_total INTEGER NOT NULL DEFAULT 0,
    errors_total INTEGER NOT NULL DEFAULT 0,
    refused_total INTEGER NOT NULL DEFAULT 0,
    held_total INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE transitions (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    time INTEGER NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    applied INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX transitions_account ON transitions(account, time);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    raw BLOB,
    size INTEGER NOT NULL,
    checksum BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER,
    lease_until INTEGER,
    released_at INTEGER,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    verdict TEXT NOT NULL DEFAULT '',
    spam TEXT,
    origin TEXT NOT NULL DEFAULT '{}',
    last_error TEXT
);
CREATE INDEX messages_due ON messages(state, next_attempt);
CREATE INDEX messages_account ON messages(account, state);
CREATE TABLE rate_log (
    account TEXT NOT NULL,
    kind TEXT NOT NULL,
    time INTEGER NOT NULL
);
CREATE INDEX rate_log_window ON rate_log(account, kind, time);
CREATE TABLE ledger (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    time INTEGER NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    message_id INTEGER
);
CREATE INDEX ledger_window ON ledger(account, kind, time);
CREATE TABLE daily (
    account TEXT NOT NULL,
    day TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0,
    held INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, day)
);
CREATE TABLE errors (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    time INTEGER NOT NULL,
    message_id INTEGER,
    recipient TEXT NOT NULL,
    code INTEGER,
    enhanced TEXT,
    text TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX errors_account ON errors(account, time);
";

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(store: &Store) -> Connection {
        Connection::open(store.db_path()).unwrap()
    }

    #[test]
    fn a_new_database_has_every_migration() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(SCHEMA_VERSION, 5);
        let tables: i64 = raw(&store)
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'
                 AND name IN ('runner_claims', 'runner_notices', 'queue_totals', 'messages')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 4);
    }

    #[test]
    fn an_older_database_is_migrated_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // As version 2 left it: no runner tables (they were created on first use).
        raw(&store)
            .execute_batch(
                "DROP TABLE runner_claims; DROP TABLE runner_notices; DROP TABLE quarantine_log;
                 DROP TABLE attempts; DROP INDEX messages_message_id; DROP INDEX messages_created;
                 ALTER TABLE messages DROP COLUMN message_id_header; PRAGMA user_version = 2;",
            )
            .unwrap();
        drop(store);
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store
            .note_runner_claims(&[], 1, Timestamp(1_750_000_000_000))
            .unwrap();
        assert!(store.pending_notices(Timestamp(0)).unwrap().is_empty());
        assert!(store.quarantine_log(None, 1).unwrap().is_empty());
    }

    #[test]
    fn a_database_of_a_newer_mailguard_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let newer = SCHEMA_VERSION + 1;
        raw(&store)
            .pragma_update(None, "user_version", newer)
            .unwrap();
        drop(store);
        let err = match Store::open(dir.path()) {
            Err(e) => e,
            Ok(_) => panic!("opened a database of schema {newer}"),
        };
        assert!(matches!(err, StoreError::SchemaTooNew { found, known, .. }
            if found == newer && known == SCHEMA_VERSION));
        assert!(!err.is_transient());
        let text = err.to_string();
        let file = dir.path().join(DB_FILE);
        assert!(text.contains(&file.display().to_string()), "{text}");
        assert!(
            text.contains(&format!(
                "created by a newer mailguard (schema {newer}, this binary knows {SCHEMA_VERSION}); upgrade mailguard"
            )),
            "{text}"
        );
        let version: i64 = Connection::open(&file)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, newer);
    }
}
