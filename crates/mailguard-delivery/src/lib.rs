//! One delivery attempt in the store's terms: what a transport answered
//! ([`Delivered`] or a [`DeliveryError`]) becomes the [`Outcome`] the store records,
//! for the runner and for the extension's immediate attempt alike.

use mailguard_store::{Failure, Outcome};
use mailguard_transport::{Delivered, DeliveryError, EnhancedStatus, Kind};

/// What to record for one attempt, and which recipients to split off first.
pub struct Plan {
    pub outcome: Outcome,
    /// Recipients deferred while others were accepted or refused for good, and the
    /// reply that deferred them: to be split off into a message of their own.
    pub split: Option<(Vec<String>, String)>,
}

/// The store's view of one attempt: 2xx with per-recipient refusals, 4xx/timeouts/TLS
/// (retry), 5xx (one error per recipient). Recipients a relay deferred while others
/// were accepted or refused for good are split off into a message of their own.
pub fn plan(recipients: &[String], result: Result<Delivered, DeliveryError>) -> Plan {
    match result {
        Ok(d) => {
            let (temp, perm): (Vec<_>, Vec<_>) = d.refused.iter().partition(|e| e.is_transient());
            let rejected = perm.iter().map(|e| failure(e, None)).collect();
            Plan {
                outcome: Outcome::Sent { rejected },
                split: split_of(&temp),
            }
        }
        Err(e) if !e.per_recipient().is_empty() => {
            let (temp, perm): (Vec<_>, Vec<_>) =
                e.per_recipient().iter().partition(|e| e.is_transient());
            if perm.is_empty() {
                Plan {
                    outcome: temp_fail(&e),
                    split: None,
                }
            } else {
                Plan {
                    outcome: Outcome::PermFail(perm.iter().map(|e| failure(e, None)).collect()),
                    split: split_of(&temp),
                }
            }
        }
        Err(e) if e.is_transient() => Plan {
            outcome: temp_fail(&e),
            split: None,
        },
        Err(e) => {
            let failures = if let Some(r) = e.recipient() {
                vec![failure(&e, Some(r))]
            } else if recipients.is_empty() {
                vec![failure(&e, Some("*"))]
            } else {
                recipients.iter().map(|r| failure(&e, Some(r))).collect()
            };
            Plan {
                outcome: Outcome::PermFail(failures),
                split: None,
            }
        }
    }
}

fn split_of(temp: &[&DeliveryError]) -> Option<(Vec<String>, String)> {
    let rcpts: Vec<String> = temp
        .iter()
        .filter_map(|e| e.recipient().map(str::to_owned))
        .collect();
    if rcpts.is_empty() {
        return None;
    }
    let e = temp[0];
    let (code, enhanced, text) = parts(e);
    let reply = [code.map(|c| c.to_string()), enhanced, Some(text)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Some((rcpts, reply))
}

/// Code, enhanced status and the text without the enhanced status it starts with.
fn parts(e: &DeliveryError) -> (Option<u16>, Option<String>, String) {
    let enhanced: Option<EnhancedStatus> = e.enhanced_status();
    let mut text = e.text().trim().to_owned();
    if e.kind() == Kind::Reply {
        if let Some((_, rest)) = EnhancedStatus::parse_prefix(&text) {
            if enhanced.is_some() {
                text = rest.trim().to_owned();
            }
        }
    } else {
        // Not a reply: say what failed where (tls at connect, timeout at message...).
        text = e.to_string();
    }
    if e.possibly_delivered() {
        text.push_str(" (the relay may have received the message: a retry may deliver it twice)");
    }
    (e.code(), enhanced.map(|s| s.to_string()), text)
}

fn temp_fail(e: &DeliveryError) -> Outcome {
    let (code, enhanced, text) = parts(e);
    Outcome::TempFail {
        code,
        enhanced,
        text,
    }
}

fn failure(e: &DeliveryError, recipient: Option<&str>) -> Failure {
    let (code, enhanced, text) = parts(e);
    Failure {
        recipient: recipient.or(e.recipient()).unwrap_or("*").to_owned(),
        code,
        enhanced,
        text,
    }
}

/// The outcome of stock `php_mail()`, which says only whether the pipe succeeded
/// (PHP 8.2 hides the exit status): a failed pipe is reported as stock does (false)
/// and logged as one failure per recipient.
pub fn stock_pipe(sent: bool, recipients: &[String]) -> Outcome {
    if sent {
        return Outcome::Sent { rejected: vec![] };
    }
    let failure = |r: &str| Failure {
        recipient: r.to_owned(),
        code: None,
        enhanced: None,
        text: "the sendmail command failed (non-zero exit status)".to_owned(),
    };
    Outcome::PermFail(if recipients.is_empty() {
        vec![failure("*")]
    } else {
        recipients.iter().map(|r| failure(r)).collect()
    })
}

/// Whether mail() reports an outcome as success: sent, or durably queued for retry.
pub fn reported_ok(outcome: &Outcome) -> bool {
    !matches!(outcome, Outcome::PermFail(_))
}
