//! One connection on the submission socket: who is calling (the kernel's `SO_PEERCRED`,
//! never the client's word), which account that is (the operator's table), and the
//! request, checked again from scratch (the client may be a script talking to the
//! socket directly).

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use mailguard_core::intake::{self, Intake};
use mailguard_core::message::{self, Refusal};
use mailguard_core::spam::{self, SpamContext, Thresholds};
use mailguard_proto::{
    read_frame_with, write_frame, ClaimedOrigin, Disposition, FrameError, Request, Response, Submit,
};
use mailguard_store::{now, Action, DayStats, ErrorEntry, Origin, SpamSummary, Store, StoreError};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use serde_json::{json, Value};

use super::accounts::{Accounts, Policy};
use super::commit::{Job, Ticket};
use mailguard_core::limits::Limits;

/// How long a client may take to send its request (a slow or stuck client must not hold
/// a connection slot for long).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a submission may wait for the commit thread to take it (a group commit is
/// milliseconds; this bounds a wedged disk). Shorter than the client's own timeout, so the
/// client hears the answer; once taken into a batch, the connection waits for the result.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(20);

/// What every connection thread shares.
pub struct Shared {
    pub accounts: RwLock<Accounts>,
    /// uid -> user name, from the system's user database (cleared at reload).
    pub users: Mutex<HashMap<u32, Option<String>>>,
    pub jobs: SyncSender<Job>,
    /// Reads and operator actions (a connection of its own; writes still queue on the
    /// store's gate).
    pub queries: Mutex<Store>,
    pub host: String,
    /// The largest body any account may send, plus room for what the limit refuses
    /// with its own message.
    pub max_body: u64,
    /// Request bytes held in memory per caller uid (bounded by [`UID_BYTES`]).
    pub bytes: Mutex<HashMap<u32, u64>>,
    /// `[serve] origin_header` (default on): stamp `X-Mailguard-Origin`.
    pub origin_header: bool,
    /// `[serve] queue_max_messages` and `queue_max_bytes`: the cap of the whole queue.
    pub queue_max: (u64, u64),
}

/// Request bytes one uid may have in the daemon's memory at once: a few messages at the
/// largest size limit. Past it the request is answered "busy" before its body is read.
const UID_BYTES: u64 = 64 << 20;

/// A share of a uid's byte budget, given back when the request is done.
struct Held<'a> {
    shared: &'a Shared,
    uid: u32,
    bytes: u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut all = self.shared.bytes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = all.get_mut(&self.uid) {
            *n = n.saturating_sub(self.bytes);
            if *n == 0 {
                all.remove(&self.uid);
            }
        }
    }
}

/// The caller as the kernel reports it.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub uid: u32,
    pub pid: u32,
}

impl Shared {
    fn user_name(&self, uid: u32) -> Option<String> {
        let mut cache = self.users.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }
}

/// The request must arrive whole within [`REQUEST_TIMEOUT`]: `SO_RCVTIMEO` alone bounds
/// each read, so a client trickling a byte every few seconds would keep its connection
/// slot for ever.
struct Deadline<'a> {
    stream: &'a UnixStream,
    end: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the request took over {} s", REQUEST_TIMEOUT.as_secs()),
            ));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut s = self.stream;
        s.read(buf)
    }
}

/// Serves one connection: one request, one answer.
pub fn handle(stream: UnixStream, shared: &Shared) {
    let answer = match serve(&stream, shared) {
        Ok(a) => a,
        Err(reason) => Response::Error { reason },
    };
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let mut w = &stream;
    let _ = write_frame(&mut w, &answer, b"");
}

fn serve(stream: &UnixStream, shared: &Shared) -> Result<Response, String> {
    let creds = getsockopt(stream, PeerCredentials)
        .map_err(|e| format!("cannot read the caller's credentials: {e}"))?;
    let peer = Peer {
        uid: creds.uid(),
        pid: creds.pid() as u32,
    };
    let mut r = Deadline {
        stream,
        end: Instant::now() + REQUEST_TIMEOUT,
    };
    let mut held = Held {
        shared,
        uid: peer.uid,
        bytes: 0,
    };
    let budget = |len: u64| {
        let mut all = shared.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let used = all.entry(peer.uid).or_insert(0);
        // One request alone always fits (the size limit bounds it).
        if *used > 0 && *used + len > UID_BYTES.max(shared.max_body) {
            return Err(format!(
                "the mailguard daemon is busy with {} MB from this user already; try again",
                *used >> 20
            ));
        }
        *used += len;
        held.bytes = len;
        Ok(())
    };
    let (request, body) = match read_frame_with::<Request>(&mut r, shared.max_body, budget) {
        Ok(x) => x,
        Err(FrameError::Io(e)) => return Err(format!("the request could not be read: {e}")),
        Err(FrameError::Invalid(problem)) => return Err(format!("bad request: {problem}")),
    };
    let user = shared.user_name(peer.uid);
    let policy = {
        let accounts = shared.accounts.read().unwrap_or_else(|p| p.into_inner());
        accounts.resolve(peer.uid, user.as_deref())
    };
    let policy = match policy {
        Ok(p) => p,
        Err(reason) => {
            return Ok(Response::Denied {
                reason: format!("no mail account for this user: {reason}"),
            })
        }
    };
    match request {
        Request::Submit(s) => Ok(submit(shared, &policy, peer, user.as_deref(), *s, body)),
        Request::Status => status(shared, &policy),
        other => control(shared, &policy, peer, other),
    }
}

fn refused(policy: &Policy, refusal: Refusal) -> Response {
    Response::Submitted {
        account: policy.account.clone(),
        outcome: Disposition::Refused,
        reason: Some(refusal.to_string()),
        id: None,
    }
}

fn submit(
    shared: &Shared,
    policy: &Policy,
    peer: Peer,
    user: Option<&str>,
    s: Submit,
    raw: Vec<u8>,
) -> Response {
    let default_sender = format!(
        "{}@{}",
        user.map_or_else(|| format!("uid-{}", peer.uid), str::to_owned),
        shared.host
    );
    let envelope = match intake::check(&Intake {
        raw: &raw,
        params: s.params.as_deref(),
        sender: s.sender.as_deref(),
        recipients: &s.recipients,
        from_headers: s.from_headers,
        default_sender: &default_sender,
        max_size: policy.max_message_size,
    }) {
        Ok(e) => e,
        Err(refusal) => return refused(policy, refusal),
    };
    if policy.mode == mailguard_core::limits::Mode::Enforce {
        // Before the spam score; the store applies (and in observe mode records) it too.
        if let Some(why) =
            mailguard_core::account::recipient_cap(envelope.recipients.len(), &policy.limits)
        {
            return refused(
                policy,
                Refusal::Policy {
                    reason: why.to_string(),
                },
            );
        }
    }
    let verdict = policy.spam_check.then(|| {
        let ctx = SpamContext {
            origin_file: s.origin.caller_file.clone().or(s.origin.file.clone()),
            from_eval: s.origin.from_eval,
            // Claims: a client that lies only hides signals against itself, and the
            // guide rules and the engine still read the message.
            origin_modified_recently: s.origin.modified_recently,
        };
        spam::score(&raw, &ctx, &Thresholds::default())
    });
    let summary = verdict.as_ref().map(SpamSummary::of);
    // Who sent it, where the script cannot forge it: the account is the daemon's (from
    // the caller's uid); script and client IP are what the PHP worker reported.
    let raw = if shared.origin_header {
        let script = s.origin.caller_file.as_deref().or(s.origin.file.as_deref());
        let value =
            message::origin_header_value(&policy.account, script, s.origin.client_ip.as_deref());
        message::stamp_origin(&raw, &value)
    } else {
        raw
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let ticket = Ticket::default();
    let job = Job {
        policy: Policy {
            limits: Limits {
                queue_max_messages: shared.queue_max.0,
                queue_max_bytes: shared.queue_max.1,
                ..policy.limits.clone()
            },
            ..policy.clone()
        },
        raw,
        envelope_from: envelope.sender,
        recipients: envelope.recipients,
        origin: origin_of(&s.origin, &s.entry, peer),
        spam: summary,
        reply: tx,
        ticket: ticket.clone(),
    };
    if shared.jobs.send(job).is_err() {
        return refused(
            policy,
            Refusal::Store {
                problem: "the daemon is shutting down".to_owned(),
            },
        );
    }
    let answer = match rx.recv_timeout(COMMIT_TIMEOUT) {
        Ok(a) => Ok(a),
        // Refused only if it can no longer be stored; in a batch already: its result.
        Err(_) if ticket.give_up() => Err(()),
        Err(_) => rx.recv().map_err(|_| ()),
    };
    let admission = match answer {
        Ok(Ok(a)) => a,
        Ok(Err(problem)) => return refused(policy, Refusal::Store { problem }),
        Err(()) => {
            return refused(
                policy,
                Refusal::Store {
                    problem: "the queue did not take it in time (nothing was stored)".to_owned(),
                },
            )
        }
    };
    let outcome = match admission.action {
        Action::DeliverNow => Disposition::Accepted,
        Action::Queued { .. } => Disposition::Queued,
        Action::Held => Disposition::Held,
        Action::Refused(because) => {
            let refusal = match (because, &verdict) {
                (mailguard_core::account::RefusedBecause::SpamScore, Some(v)) => Refusal::Spam {
                    summary: v.summary(),
                },
                _ => Refusal::Policy {
                    reason: because.to_string(),
                },
            };
            return refused(policy, refusal);
        }
    };
    Response::Submitted {
        account: policy.account.clone(),
        outcome,
        reason: None,
        id: admission.id.map(|i| i.0),
    }
}

/// The origin as stored: what the client claims, marked as such, with the kernel's uid
/// and pid.
fn origin_of(c: &ClaimedOrigin, entry: &str, peer: Peer) -> Origin {
    let clip = |s: &Option<String>| s.as_ref().map(|s| s.chars().take(1024).collect::<String>());
    Origin {
        file: clip(&c.file),
        line: c.line,
        caller: clip(&c.caller),
        vhost: clip(&c.vhost),
        request_uri: clip(&c.request_uri),
        client_ip: clip(&c.client_ip),
        sapi: match entry {
            "sendmail" => Some("sendmail".to_owned()),
            _ => clip(&c.sapi),
        },
        uid: Some(peer.uid),
        pid: Some(peer.pid),
        claimed: true,
    }
}

fn store_text(e: StoreError) -> String {
    e.to_string()
}

fn status(shared: &Shared, policy: &Policy) -> Result<Response, String> {
    let snap = {
        let mut store = shared.queries.lock().unwrap_or_else(|p| p.into_inner());
        store
            .status_snapshot(&policy.account, now())
            .map_err(store_text)?
    };
    let mut value = snap.to_json();
    let windows = |w: &mailguard_core::rate::Windows| (!w.is_empty()).then(|| w.to_string());
    value["account"] = json!(policy.account);
    value["mode"] = json!(policy.mode.as_str());
    value["limits"] = json!({
        "quota": windows(&policy.limits.quota),
        "burst": windows(&policy.limits.burst),
        "count": policy.limits.counting.as_str(),
        "max_recipients": policy.limits.max_recipients,
        "hold_seconds": policy.limits.hold.as_secs(),
        "max_message_size": policy.max_message_size.0,
    });
    value["max_message_size"] = json!(policy.max_message_size.0);
    value["allow_control"] = json!(policy.allow_control);
    Ok(Response::Value { value })
}

fn control(
    shared: &Shared,
    policy: &Policy,
    peer: Peer,
    request: Request,
) -> Result<Response, String> {
    if !policy.allow_control {
        return Ok(Response::Denied {
            reason: format!(
                "operator functions are disabled for account {}; the operator can allow them with \
                 allow_control = true in [account.{}] of the operator file, or use the mailguard command",
                policy.account, policy.account
            ),
        });
    }
    let actor = format!("uid {} pid {}", peer.uid, peer.pid);
    let account = policy.account.as_str();
    let mut store = shared.queries.lock().unwrap_or_else(|p| p.into_inner());
    let value: Result<Value, StoreError> = match request {
        Request::Block => store.block(account, &actor, now()).map(|c| c.to_json()),
        Request::Unblock => store.unblock(account, &actor, now()).map(|c| c.to_json()),
        Request::Purge => store.purge(account, &actor, now()).map(|c| c.to_json()),
        Request::Errors { limit, offset } => store.errors(account, limit.min(10_000), offset).map(
            |rows| json!({ "errors": rows.iter().map(ErrorEntry::to_json).collect::<Vec<_>>() }),
        ),
        Request::History { days } => store
            .history(account, days.clamp(1, 3660), now())
            .map(|rows| json!({ "days": rows.iter().map(DayStats::to_json).collect::<Vec<_>>() })),
        Request::Submit(_) | Request::Status => unreachable!("served above"),
    };
    Ok(match value {
        Ok(value) => Response::Value { value },
        Err(StoreError::Refused { refusal, .. }) => Response::Denied {
            reason: refusal.to_string(),
        },
        Err(e) => Response::Error {
            reason: e.to_string(),
        },
    })
}
