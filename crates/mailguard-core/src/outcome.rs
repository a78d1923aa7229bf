//! How one delivery attempt ended, as the queue records it: the pure data shared by the
//! transport (which turns a relay's answer into a [`Plan`]) and the store (which records
//! it in one transaction).

/// One recipient (or the whole message, recipient `*`) that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub recipient: String,
    /// The SMTP reply code, e.g. 550.
    pub code: Option<u16>,
    /// The enhanced status code, e.g. `5.1.1`.
    pub enhanced: Option<String>,
    pub text: String,
}

/// What a delivery attempt ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the relay (2xx after the final dot). `rejected` lists recipients the
    /// relay refused permanently at RCPT while accepting the others (each is an error).
    Sent { rejected: Vec<Failure> },
    /// 4xx, a timeout, a TLS or connection error: retried with backoff until `hold` ends.
    TempFail {
        code: Option<u16>,
        enhanced: Option<String>,
        text: String,
    },
    /// 5xx: a permanent failure, one entry per failed recipient (an empty list means the
    /// whole message, logged as recipient `*`).
    PermFail(Vec<Failure>),
}

/// Recipients a relay deferred (4xx) while it accepted or refused the others for good:
/// they are split off into a message of their own and retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub recipients: Vec<String>,
    /// The reply that deferred them (code, enhanced status, text).
    pub reply: String,
}

/// What to record for one attempt: its outcome, and the recipients to split off first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub outcome: Outcome,
    pub split: Option<Split>,
}

impl From<Outcome> for Plan {
    /// An outcome for every recipient of the message (nothing split off).
    fn from(outcome: Outcome) -> Plan {
        Plan {
            outcome,
            split: None,
        }
    }
}
