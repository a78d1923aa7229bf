//! The guard as the shim sees it: reads the effective settings and asks the core.
//! No policy lives here; this file only turns PHP settings into core values.

use mailguard_core::message::{self, Bytes, Outgoing, Refusal, DEFAULT_MAX_MESSAGE_SIZE};

use crate::php;

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

/// Every check of the guard that applies before queueing, in SPEC order.
/// `user_params` is the 5th argument when PHP would use it (no forced params).
pub fn check(outgoing: &Outgoing, user_params: Option<&[u8]>) -> Result<(), Refusal> {
    fault_injection();
    message::precheck(outgoing, max_message_size()?, user_params).map(|_sender| ())
}

/// `mailguard.fault_injection = panic`: a deliberate panic inside the guard, so
/// the tests can prove a panic is contained (a refused message, not a crash).
/// The setting is PHP_INI_SYSTEM: scripts cannot turn it on.
fn fault_injection() {
    if php::ini_string("mailguard.fault_injection").as_deref() == Some("panic") {
        panic!("fault injection: mailguard.fault_injection=panic");
    }
}
