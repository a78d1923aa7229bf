//! The guard as the shim sees it: reads the effective settings, gathers the
//! message's origin, asks the core and the store, and runs the delivery the
//! store releases. No policy lives here.

use mailguard_core::account::{self, RefusedBecause};
use mailguard_core::limits::Mode;
use mailguard_core::message::{self, Bytes, Outgoing, Refusal, DEFAULT_MAX_MESSAGE_SIZE};
use mailguard_core::origin;
use mailguard_core::spam::{self, SpamContext, Thresholds};
use mailguard_store::{Action, Origin, SpamSummary, Submission};

use crate::delivery;
use crate::php::{self, Call};
use crate::state::{self, Settings};

/// `mailguard.enabled`: off means the stock handlers run untouched.
pub fn enabled() -> bool {
    php::ini_bool("mailguard.enabled")
}

/// The effective size limit, or the refusal an invalid setting causes.
pub fn max_message_size() -> Result<Bytes, Refusal> {
    match php::ini_string("mailguard.max_message_size") {
        None => Ok(DEFAULT_MAX_MESSAGE_SIZE),
        Some(text) => Bytes::parse(&text).map_err(|e| Refusal::BadSetting {
            name: "mailguard.max_message_size",
            problem: e.to_string(),
        }),
    }
}

/// What the guard decided for one message.
pub enum Verdict {
    /// Accepted: `true` when delivered or durably queued, `false` when the
    /// immediate delivery failed (as stock mail() reports it).
    Accepted(bool),
    Refused(Refusal),
}

/// Every check of SPEC §3 in order, then the durable queue, then the immediate
/// delivery when the store releases the message. `user_params` is the 5th
/// argument when PHP would use it (no forced params); `deliver` runs the stock
/// pipe and says whether it succeeded.
pub fn send(
    call: &Call,
    outgoing: &Outgoing,
    entry: &str,
    user_params: Option<&[u8]>,
    deliver: impl FnOnce() -> bool,
) -> Verdict {
    if let Some(socket) = crate::daemon::socket() {
        return crate::daemon::send(&socket, call, outgoing, entry, user_params);
    }
    let transport = match delivery::mode() {
        Ok(t) => t,
        Err(refusal) => return Verdict::Refused(refusal),
    };
    match admit(call, outgoing, user_params) {
        Err(refusal) => Verdict::Refused(refusal),
        Ok(admitted) => match admitted.admission.action {
            Action::DeliverNow => deliver_now(&admitted, transport, deliver),
            Action::Queued { .. } | Action::Held => Verdict::Accepted(true),
            Action::Refused(RefusedBecause::SpamScore) => Verdict::Refused(Refusal::Spam {
                summary: admitted.spam_summary.unwrap_or_default(),
            }),
            Action::Refused(because) => Verdict::Refused(Refusal::Policy {
                reason: because.to_string(),
            }),
        },
    }
}

/// What `admit` stored, kept for the delivery that follows.
struct Admitted {
    settings: Settings,
    admission: mailguard_store::Admission,
    raw: Vec<u8>,
    envelope_from: String,
    recipients: Vec<String>,
    /// The spam verdict in words, for the warning of a spam refusal.
    spam_summary: Option<String>,
}

/// The immediate attempt for a message the store released at once.
fn deliver_now(a: &Admitted, transport: delivery::Mode, deliver: impl FnOnce() -> bool) -> Verdict {
    match transport {
        delivery::Mode::Runner => {
            if let Some(id) = a.admission.id {
                if let Err(refusal) = state::release(&a.settings, id) {
                    php::warn(&format!(
                        "queued, but not handed to the runner yet: {refusal}"
                    ));
                }
            }
            Verdict::Accepted(true)
        }
        delivery::Mode::Smtp(toml) => {
            let plan = match delivery::smtp_attempt(&toml, &a.envelope_from, &a.recipients, &a.raw)
            {
                Ok(plan) => plan,
                Err(refusal) => {
                    // The relay settings are broken: leave the message to the runner.
                    if let Some(id) = a.admission.id {
                        let _ = state::release(&a.settings, id);
                    }
                    php::warn(&format!("queued for the runner: {refusal}"));
                    return Verdict::Accepted(true);
                }
            };
            let ok = mailguard_transport::reported_ok(&plan.outcome);
            if let Err(refusal) = state::record_plan(&a.settings, &a.admission, plan) {
                php::warn(&format!("delivery not recorded: {refusal}"));
            }
            Verdict::Accepted(ok)
        }
        delivery::Mode::Sendmail => {
            let sent = deliver();
            let outcome = mailguard_transport::stock_pipe(sent, &a.recipients);
            if let Err(refusal) = state::record(&a.settings, &a.admission, outcome) {
                // Delivered, but not recorded: the runner re-sends after its lease.
                php::warn(&format!("delivery not recorded: {refusal}"));
            }
            Verdict::Accepted(sent)
        }
    }
}

fn admit(
    call: &Call,
    outgoing: &Outgoing,
    user_params: Option<&[u8]>,
) -> Result<Admitted, Refusal> {
    fault_injection();
    let sender = message::precheck(outgoing, max_message_size()?, user_params)?;
    let settings = Settings::read()?;
    // What the runner or the SMTP relay will send: the bytes stock php_mail() pipes,
    // X-PHP-Originating-Script included when mail.add_x_header is on.
    let x_header = php::ini_bool("mail.add_x_header").then(php::originating_script);
    let raw = outgoing.bytes_with_x_header(x_header.as_deref().map(str::as_bytes));
    // The envelope recipients are read from the bytes that are delivered, as
    // `sendmail -t` reads them: a Bcc line smuggled into error_log()'s `$to` is one.
    let recipients = message::envelope_recipients(&raw);
    if settings.mode == Mode::Enforce {
        // Before the costlier checks; the store applies (and in observe mode records)
        // the same rule.
        if let Some(why) = account::recipient_cap(recipients.len(), &settings.limits) {
            return Err(Refusal::Policy {
                reason: why.to_string(),
            });
        }
    }
    let Provenance {
        origin,
        caller_file,
        from_eval,
        modified_recently,
    } = origin_of(call);
    let verdict = php::ini_bool("mailguard.spam_check").then(|| {
        let ctx = SpamContext {
            origin_file: caller_file,
            from_eval,
            origin_modified_recently: modified_recently,
        };
        spam::score(&raw, &ctx, &Thresholds::default())
    });
    let summary = verdict.as_ref().map(SpamSummary::of);
    let envelope_from = sender.unwrap_or_else(default_sender);
    let submission = Submission {
        raw: &raw,
        envelope_from: &envelope_from,
        recipients: &recipients,
        origin: &origin,
        spam: summary.as_ref(),
    };
    // The store decides a spam refusal (enforce: kept for review, counted toward the
    // spam status, never sent; observe: delivered and counted).
    let admission = state::submit(&settings, submission)?;
    Ok(Admitted {
        settings,
        admission,
        raw,
        envelope_from,
        recipients,
        spam_summary: verdict.map(|v| v.summary()),
    })
}

/// The envelope sender when the script gave no `-f`: `sendmail_from` if the
/// operator set it, else what sendmail itself would use, `user@hostname`, with the
/// user from `$USER`, else the process's user from the system. A script can set
/// `sendmail_from` (ini_set) and `$USER` (putenv), so each candidate must be one
/// plain address (`core::address::check_mailbox`): `x@y.example -X/file`
/// is skipped, never stored. Empty (sendmail's own default) if nothing is valid.
fn default_sender() -> String {
    use mailguard_core::address::check_mailbox;
    let configured = php::ini_string("sendmail_from")
        .map(|f| f.trim().to_owned())
        .filter(|f| f.contains('@') && check_mailbox(f).is_ok());
    if let Some(from) = configured {
        return from;
    }
    let host = php::hostname();
    let env_user = std::env::var("USER").ok().filter(|u| !u.is_empty());
    let system_user = php::process_user();
    let sender = env_user
        .iter()
        .chain([&system_user])
        .flat_map(|user| [format!("{user}@{host}"), format!("{user}@localhost")])
        .find(|a| check_mailbox(a).is_ok());
    sender.unwrap_or_default()
}

/// Where the call came from: the calling file and line, the first caller outside
/// the mail libraries (only when it is not the call site itself) and the request;
/// also the file of that first caller, and whether any frame is eval()'d code.
/// Where a message comes from, as the worker sees it.
pub(crate) struct Provenance {
    pub origin: Origin,
    /// The file of the first caller outside the mail libraries (else the call site).
    pub caller_file: Option<String>,
    /// Some frame is eval()'d code.
    pub from_eval: bool,
    /// `caller_file` was modified in the last 24 hours (a dropped or edited script).
    pub modified_recently: bool,
}

/// Whether `file` was modified within the last 24 hours (false when it cannot be read).
fn modified_recently(file: &str) -> bool {
    std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < std::time::Duration::from_secs(24 * 3600))
}

pub(crate) fn origin_of(call: &Call) -> Provenance {
    let frames = call.user_frames(64);
    let first = origin::first_caller(frames.iter().map(|f| f.file.as_str()));
    let caller_file = first
        .or(Some(0))
        .and_then(|i| frames.get(i))
        .map(|f| f.file.clone());
    let caller = first
        .filter(|&i| i > 0)
        .map(|i| format!("{}:{}", frames[i].file, frames[i].line));
    let sapi = php::sapi_name();
    let web = sapi != "cli" && sapi != "phpdbg" && sapi != "embed";
    let var = |name: &str| php::request_var(name).filter(|v| !v.is_empty());
    let from_eval = frames.iter().any(|f| origin::is_eval(&f.file));
    let origin = Origin {
        file: frames.first().map(|f| f.file.clone()),
        line: frames.first().map(|f| f.line),
        caller,
        vhost: if web {
            var("HTTP_HOST").or_else(|| var("SERVER_NAME"))
        } else {
            None
        },
        request_uri: if web { var("REQUEST_URI") } else { None },
        client_ip: if web { var("REMOTE_ADDR") } else { None },
        sapi: Some(if web { "web" } else { "cli" }.to_owned()),
        ..Origin::default()
    };
    let modified_recently = caller_file.as_deref().is_some_and(modified_recently);
    Provenance {
        origin,
        caller_file,
        from_eval,
        modified_recently,
    }
}

/// `mailguard.fault_injection = panic`: a deliberate panic inside the guard, so
/// the tests can prove a panic is contained (a refused message, not a crash).
/// The setting is PHP_INI_SYSTEM: scripts cannot turn it on.
pub(crate) fn fault_injection() {
    if php::ini_string("mailguard.fault_injection").as_deref() == Some("panic") {
        panic!("fault injection: mailguard.fault_injection=panic");
    }
}
