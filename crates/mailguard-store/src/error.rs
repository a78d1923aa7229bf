//! The store's errors: each names the path or limit involved and says what to do.

use std::fmt;
use std::path::PathBuf;

use mailguard_core::status::Refusal;

use crate::model::MessageId;

#[derive(Debug)]
pub enum StoreError {
    /// The state directory cannot be created, read or written.
    StateDir { path: PathBuf, problem: String },
    /// SQLite failed on the database at `path` (includes "database is locked" after the
    /// busy timeout): temporary from the caller's point of view.
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The queue is at its cap; new mail must be refused until it drains.
    QueueFull {
        messages: u64,
        bytes: u64,
        max_messages: u64,
        max_bytes: u64,
    },
    /// The account has its whole share of the queue waiting; its new mail is refused
    /// until some of it is delivered (other accounts are not affected).
    AccountQueueFull {
        account: String,
        messages: u64,
        max: u64,
    },
    /// Accepting the message would leave less free disk than the reserve.
    DiskReserve {
        path: PathBuf,
        free_bytes: u64,
        reserve_bytes: u64,
    },
    /// The database at `path` has schema version `found`, newer than the `known` last
    /// one of this binary: it was created or migrated by a newer mailguard.
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// No message with this id.
    NoSuchMessage(MessageId),
    /// The status machine refused an operator action.
    Refused { account: String, refusal: Refusal },
    /// An SQL statement failed while the store was doing `context` (e.g. "recording a
    /// delivery's outcome"). Transient when SQLite was busy or locked.
    Sql {
        context: String,
        source: rusqlite::Error,
    },
    /// An envelope address handed to the store is not one plain address (it could carry
    /// an option to sendmail, CVE-2016-10033): refused before anything is stored.
    BadAddress { address: String, problem: String },
    /// Something stored does not parse (a status, a limits text): the database was edited
    /// by hand or by a newer version.
    BadData(String),
}

impl StoreError {
    /// Will retrying later (without operator action) plausibly succeed?
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db { .. }
            | StoreError::QueueFull { .. }
            | StoreError::AccountQueueFull { .. }
            | StoreError::DiskReserve { .. } => true,
            StoreError::Sql { source, .. } => is_busy(source),
            _ => false,
        }
    }

    /// An SQL error with what the store was doing when it happened.
    pub(crate) fn sql(context: impl Into<String>, source: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            context: context.into(),
            source,
        }
    }
}

/// SQLite was busy or locked (another writer held the database past the busy timeout).
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// `map_err(sql_in("what the store was doing"))`: an SQL error as [`StoreError::Sql`].
pub(crate) fn sql_in(context: &str) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::sql(context, source)
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::StateDir { path, problem } => write!(
                f,
                "state directory {}: {problem}; it must be a local directory the PHP workers and the runner can read and write",
                path.display()
            ),
            StoreError::Db { path, source } => {
                write!(f, "state database {}: {source}", path.display())
            }
            StoreError::QueueFull {
                messages,
                bytes,
                max_messages,
                max_bytes,
            } => write!(
                f,
                "the mail queue is full ({messages} messages, {bytes} bytes; the cap is {max_messages} messages, {max_bytes} bytes); \
                 try again later, or ask the operator to check the runner"
            ),
            StoreError::DiskReserve {
                path,
                free_bytes,
                reserve_bytes,
            } => write!(
                f,
                "not enough free disk space for the mail queue in {} ({free_bytes} bytes free, {reserve_bytes} bytes must stay free)",
                path.display()
            ),
            StoreError::SchemaTooNew { path, found, known } => write!(
                f,
                "state database {} was created by a newer mailguard (schema {found}, this binary knows {known}); upgrade mailguard",
                path.display()
            ),
            StoreError::NoSuchMessage(id) => write!(f, "no message {id} in the queue"),
            StoreError::Refused { account, refusal } => write!(f, "account {account}: {refusal}"),
            StoreError::Sql { context, source } => {
                write!(f, "state database: {context}: {source}")
            }
            StoreError::BadData(what) => write!(f, "unreadable data in the state database: {what}"),
            StoreError::AccountQueueFull { account, messages, max } => write!(
                f,
                "account {account} has {messages} messages waiting, its share of the queue is {max}; \
                 try again when some are delivered, or ask the operator"
            ),
            StoreError::BadAddress { address, problem } => write!(
                f,
                "the envelope address {address:?} is not one plain address ({problem}); nothing was stored"
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Db { source, .. } | StoreError::Sql { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn sql_errors_keep_their_cause_and_say_what_the_store_was_doing() {
        let e = StoreError::sql("claiming due messages", failure(rusqlite::ffi::SQLITE_BUSY));
        let text = e.to_string();
        assert!(text.contains("claiming due messages"), "{text}");
        assert!(text.contains("database is locked"), "{text}");
        let cause = e.source().expect("the SQL error");
        assert!(matches!(
            cause.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(..))
        ));
        assert!(e.is_transient());
        assert!(StoreError::sql("x", failure(rusqlite::ffi::SQLITE_LOCKED)).is_transient());
        let corrupt = StoreError::sql("x", failure(rusqlite::ffi::SQLITE_CORRUPT));
        assert!(!corrupt.is_transient());
        assert!(!StoreError::sql("x", rusqlite::Error::QueryReturnedNoRows).is_transient());
    }
}
