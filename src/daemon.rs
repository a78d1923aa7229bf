//! Hardened mode as the shim sees it (`mailguard.socket` set): the worker keeps no state
//! and opens nothing in the state directory. It runs the stock validation and the cheap
//! checks in-process (so the script gets the precise warning at once), then asks
//! `mailguard serve`, which knows the caller from the kernel and checks everything again.
//! A daemon that cannot be reached is a refusal naming the socket: never a fallback to a
//! path the script controls.

use std::path::{Path, PathBuf};

use mailguard_core::message::{self, Outgoing, Refusal};
use mailguard_proto::{ClaimedOrigin, Request, Response, Submit, DEFAULT_TIMEOUT};
use serde_json::Value;

use crate::guard::{self, Verdict};
use crate::php::{self, Call};

/// `mailguard.socket`, when set: hardened mode.
pub fn socket() -> Option<PathBuf> {
    php::ini_string("mailguard.socket")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// One request to the daemon; a failure to reach it is the refusal the script sees.
pub fn ask(socket: &Path, request: &Request, body: &[u8]) -> Result<Response, Refusal> {
    mailguard_proto::call(socket, request, body, DEFAULT_TIMEOUT).map_err(|e| Refusal::Store {
        problem: e.to_string(),
    })
}

/// mail() in hardened mode: the message is handed to the daemon, which stores it
/// durably (then `true`) or refuses it with its reason (then `false` and the warning).
/// The daemon delivers; nothing is piped from the worker.
pub fn send(
    socket: &Path,
    call: &Call,
    outgoing: &Outgoing,
    entry: &str,
    user_params: Option<&[u8]>,
) -> Verdict {
    match submit(socket, call, outgoing, entry, user_params) {
        Ok(()) => Verdict::Accepted(true),
        Err(refusal) => Verdict::Refused(refusal),
    }
}

fn submit(
    socket: &Path,
    call: &Call,
    outgoing: &Outgoing,
    entry: &str,
    user_params: Option<&[u8]>,
) -> Result<(), Refusal> {
    guard::fault_injection();
    message::precheck(outgoing, guard::max_message_size()?, user_params)?;
    let x_header = php::ini_bool("mail.add_x_header").then(php::originating_script);
    let raw = outgoing.bytes_with_x_header(x_header.as_deref().map(str::as_bytes));
    let guard::Provenance {
        origin,
        caller_file,
        from_eval,
        modified_recently,
    } = guard::origin_of(call);
    let forced = php::ini_string("mail.force_extra_parameters");
    let params = forced.or_else(|| user_params.map(|p| String::from_utf8_lossy(p).into_owned()));
    let request = Request::Submit(Box::new(Submit {
        entry: entry.to_owned(),
        params,
        sender: php::ini_string("sendmail_from")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        recipients: Vec::new(),
        from_headers: true,
        origin: ClaimedOrigin {
            file: origin.file,
            line: origin.line,
            caller: origin.caller,
            caller_file,
            vhost: origin.vhost,
            request_uri: origin.request_uri,
            client_ip: origin.client_ip,
            sapi: origin.sapi,
            from_eval,
            modified_recently,
        },
    }));
    match ask(socket, &request, &raw)? {
        Response::Submitted {
            outcome, reason, ..
        } => {
            if outcome.is_stored() {
                Ok(())
            } else {
                Err(Refusal::Relayed {
                    text: reason
                        .unwrap_or_else(|| "message refused by the mailguard daemon".into()),
                })
            }
        }
        Response::Denied { reason } => Err(Refusal::Relayed {
            text: format!("message refused: {reason}"),
        }),
        Response::Error { reason } => Err(Refusal::Store { problem: reason }),
        Response::Value { .. } => Err(Refusal::Store {
            problem: "the mailguard daemon answered a submission with something else".into(),
        }),
    }
}

/// A query or operator action for the caller's account: the daemon's value, or the
/// reason it gives (denied, error) as text.
pub fn query(socket: &Path, request: &Request) -> Result<Value, String> {
    match ask(socket, request, b"").map_err(|r| match r {
        Refusal::Store { problem } => problem,
        other => other.to_string(),
    })? {
        Response::Value { value } => Ok(value),
        Response::Denied { reason } | Response::Error { reason } => Err(reason),
        Response::Submitted { .. } => Err("the mailguard daemon answered something else".into()),
    }
}
