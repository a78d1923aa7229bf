//! A transport's answer in the queue's terms: what a relay answered ([`Delivered`] or a
//! [`DeliveryError`]) becomes the [`Plan`] the store records (its [`Outcome`] and the
//! recipients to split off), for the runner and for the extension's immediate attempt.

pub use mailguard_core::outcome::{Failure, Outcome, Plan, Split};

use crate::{Delivered, DeliveryError, EnhancedStatus, Kind};

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

fn split_of(temp: &[&DeliveryError]) -> Option<Split> {
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
    Some(Split {
        recipients: rcpts,
        reply,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stage;

    fn refused(code: u16, text: &str, rcpt: &str) -> DeliveryError {
        DeliveryError::reply(Stage::RcptTo, code, text).with_recipient(rcpt)
    }

    fn rcpts(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn accepted_with_refusals_splits_off_the_deferred() {
        let delivered = Delivered {
            accepted: rcpts(&["a@x"]),
            refused: vec![
                refused(550, "5.1.1 no such user", "b@x"),
                refused(452, "4.5.3 too many recipients", "c@x"),
            ],
            reply: "250 ok".into(),
        };
        let p = plan(&rcpts(&["a@x", "b@x", "c@x"]), Ok(delivered));
        assert_eq!(
            p.outcome,
            Outcome::Sent {
                rejected: vec![Failure {
                    recipient: "b@x".into(),
                    code: Some(550),
                    enhanced: Some("5.1.1".into()),
                    text: "no such user".into(),
                }]
            }
        );
        assert_eq!(
            p.split,
            Some(Split {
                recipients: rcpts(&["c@x"]),
                reply: "452 4.5.3 too many recipients".into(),
            })
        );
    }

    #[test]
    fn every_recipient_deferred_is_a_retry_of_the_whole_message() {
        let e = DeliveryError::all_recipients_refused(vec![
            refused(451, "4.3.0 later", "a@x"),
            refused(452, "4.5.3 later", "b@x"),
        ]);
        let p = plan(&rcpts(&["a@x", "b@x"]), Err(e));
        assert!(matches!(
            p.outcome,
            Outcome::TempFail {
                code: Some(451),
                ..
            }
        ));
        assert_eq!(p.split, None);
    }

    #[test]
    fn refused_and_deferred_fails_some_and_splits_off_the_others() {
        let e = DeliveryError::all_recipients_refused(vec![
            refused(550, "5.1.1 unknown", "a@x"),
            refused(452, "4.5.3 later", "b@x"),
        ]);
        let p = plan(&rcpts(&["a@x", "b@x"]), Err(e));
        match &p.outcome {
            Outcome::PermFail(f) => assert_eq!(f.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.split.unwrap().recipients, rcpts(&["b@x"]));
    }

    #[test]
    fn stock_pipe_and_reported_ok() {
        let ok = stock_pipe(true, &rcpts(&["a@x"]));
        assert!(reported_ok(&ok));
        let failed = stock_pipe(false, &[]);
        match &failed {
            Outcome::PermFail(f) => assert_eq!(f[0].recipient, "*"),
            other => panic!("{other:?}"),
        }
        assert!(!reported_ok(&failed));
        let retry = Outcome::TempFail {
            code: Some(421),
            enhanced: None,
            text: "busy".into(),
        };
        assert!(reported_ok(&retry));
    }
}
