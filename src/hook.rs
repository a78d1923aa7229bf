//! The replaced handlers of `mail()`, `mb_send_mail()` and `error_log()`.
//!
//! Each handler first normalises its arguments in place exactly as stock ZPP
//! would (so an object's `__toString` runs once and no check can be bypassed),
//! lets the original handler raise PHP's own errors for anything invalid, then
//! asks the guard, then delivers. A Rust panic never leaves this file: it becomes
//! a refused message with one warning.

use std::panic::AssertUnwindSafe;

use ext_php_rs::ffi::{zend_execute_data, zval};
use ext_php_rs::zend::{try_catch, CatchError};
use mailguard_core::message::{self, sanitize_field, trim_headers, Outgoing, Refusal};

use crate::guard;
use crate::php::{self, Call, Hook, NotString};

pub static MAIL: Hook = Hook::new(c"mail", mail_handler);
pub static MB_SEND_MAIL: Hook = Hook::new(c"mb_send_mail", mb_send_mail_handler);
pub static ERROR_LOG: Hook = Hook::new(c"error_log", error_log_handler);

/// Every hooked function, in a stable order.
pub static ALL: [&Hook; 3] = [&MAIL, &MB_SEND_MAIL, &ERROR_LOG];

unsafe extern "C" fn mail_handler(ex: *mut zend_execute_data, rv: *mut zval) {
    // SAFETY: the engine's frame and return slot for this call.
    let call = unsafe { Call::new(ex, rv) };
    contained(&MAIL, &call, mail);
}

unsafe extern "C" fn mb_send_mail_handler(ex: *mut zend_execute_data, rv: *mut zval) {
    // SAFETY: as above.
    let call = unsafe { Call::new(ex, rv) };
    contained(&MB_SEND_MAIL, &call, mb_send_mail);
}

unsafe extern "C" fn error_log_handler(ex: *mut zend_execute_data, rv: *mut zval) {
    // SAFETY: as above.
    let call = unsafe { Call::new(ex, rv) };
    contained(&ERROR_LOG, &call, error_log);
}

/// What a handler decided.
enum Outcome {
    /// Run the original handler on the (normalised) frame.
    Delegate,
    /// An exception is pending; return without a value.
    Threw,
    /// Refused: one warning, `false`.
    Refused(Refusal),
    /// Done; the return value is set.
    Done,
}

/// Runs a handler with panics and bailouts contained: a bailout (fatal error in a
/// user error handler) is re-raised to the engine; a panic becomes a refusal.
fn contained(hook: &'static Hook, call: &Call, body: fn(&Call) -> Outcome) {
    if !guard::enabled() {
        hook.call_original(call);
        return;
    }
    let result = try_catch(AssertUnwindSafe(|| body(call)));
    let outcome = match result {
        Ok(outcome) => outcome,
        // SAFETY: re-raise the engine's longjmp to the enclosing zend_try.
        Err(CatchError::Bailout) => unsafe { ext_php_rs::zend::bailout() },
        Err(err) => Outcome::Refused(Refusal::Internal {
            what: err.to_string(),
        }),
    };
    match outcome {
        Outcome::Delegate => hook.call_original(call),
        Outcome::Threw => {}
        Outcome::Refused(refusal) => {
            php::warn(&refusal.to_string());
            call.set_bool(false);
        }
        Outcome::Done => {}
    }
}

/// How a hooked function declares one parameter.
#[derive(Clone, Copy)]
enum Param {
    Str,
    NullableStr,
    ArrayOrStr,
    /// Not a string parameter; handled by the caller.
    Other,
}

/// Normalises the passed arguments in declaration order, as ZPP would; the first
/// failure decides the outcome (the original handler then raises PHP's error).
fn normalise(call: &Call, params: &[Param]) -> Result<(), Outcome> {
    for (i, &param) in params.iter().enumerate() {
        let n = i as u32 + 1;
        let Some(arg) = call.arg(n) else { break };
        let skip = match param {
            Param::Str => false,
            Param::NullableStr => arg.is_null(),
            Param::ArrayOrStr => arg.is_array(),
            Param::Other => true,
        };
        if skip {
            continue;
        }
        match call.normalise_string(n) {
            Ok(()) => {}
            Err(NotString::Threw) => return Err(Outcome::Threw),
            Err(NotString::Delegate) => return Err(Outcome::Delegate),
        }
        if call.bytes(n).is_some_and(|b| b.contains(&0)) {
            // Stock raises "must not contain any null bytes".
            return Err(Outcome::Delegate);
        }
    }
    Ok(())
}

fn mail(call: &Call) -> Outcome {
    let n = call.num_args();
    if !(3..=5).contains(&n) {
        return Outcome::Delegate;
    }
    use Param::*;
    if let Err(o) = normalise(call, &[Str, Str, Str, ArrayOrStr, Str]) {
        return o;
    }
    let built = match call.arg(4) {
        Some(z) if z.is_array() => match call.build_headers(4) {
            Ok(b) => b,
            Err(()) => return Outcome::Threw,
        },
        _ => None,
    };
    let headers = match &built {
        Some(b) => b.bytes(),
        None => trim_headers(call.bytes(4).unwrap_or_default()),
    };
    let to = sanitize_field(call.bytes(1).unwrap_or_default());
    let subject = sanitize_field(call.bytes(2).unwrap_or_default());
    let message = call.bytes(3).unwrap_or_default();
    let outgoing = Outgoing {
        to: &to,
        subject: &subject,
        message,
        headers,
        mixed_lf: php::ini_bool("mail.mixed_lf_and_crlf"),
    };
    let forced = php::ini_bytes("mail.force_extra_parameters");
    let user_params = if n == 5 { call.bytes(5) } else { None };
    let extra = forced.as_deref().or(user_params);
    if message::malformed_newlines(headers, php::ini_bool("mail.add_x_header")) {
        // Stock validation, before the guard: php_mail() warns and returns false.
        call.set_bool(php::stock_php_mail(&to, &subject, message, headers, extra));
        return Outcome::Done;
    }
    let checked = forced.is_none().then_some(user_params).flatten();
    verdict(
        call,
        guard::send(call, &outgoing, "mail", checked, || {
            php::stock_php_mail(&to, &subject, message, headers, extra)
        }),
    )
}

fn mb_send_mail(call: &Call) -> Outcome {
    let n = call.num_args();
    if !(3..=5).contains(&n) {
        return Outcome::Delegate;
    }
    use Param::*;
    if let Err(o) = normalise(call, &[Str, Str, Str, ArrayOrStr, NullableStr]) {
        return o;
    }
    // mbstring encodes subject and body itself before calling php_mail(); the
    // guard sees the message as given, which is what the size limit is about.
    let headers = match call.arg(4) {
        Some(z) if z.is_array() => Vec::new(),
        _ => trim_headers(call.bytes(4).unwrap_or_default()).to_vec(),
    };
    let outgoing = Outgoing {
        to: call.bytes(1).unwrap_or_default(),
        subject: call.bytes(2).unwrap_or_default(),
        message: call.bytes(3).unwrap_or_default(),
        headers: &headers,
        mixed_lf: false,
    };
    let forced = php::ini_bytes("mail.force_extra_parameters").is_some();
    let user_params = if n == 5 { call.bytes(5) } else { None };
    let checked = (!forced).then_some(user_params).flatten();
    verdict(
        call,
        guard::send(call, &outgoing, "mb_send_mail", checked, || {
            original(&MB_SEND_MAIL, call)
        }),
    )
}

/// `error_log($message, 1, $to, $headers)` mails; every other type is left alone.
fn error_log(call: &Call) -> Outcome {
    let n = call.num_args();
    if !(2..=4).contains(&n) {
        return Outcome::Delegate;
    }
    match call.normalise_long(2) {
        Ok(()) => {}
        Err(NotString::Threw) => return Outcome::Threw,
        Err(NotString::Delegate) => return Outcome::Delegate,
    }
    if call.arg(2).and_then(|z| z.long()) != Some(1) {
        return Outcome::Delegate;
    }
    // error_log(string $message, int $type, ?string $destination, ?string $headers)
    use Param::*;
    if let Err(o) = normalise(call, &[Str, Other, NullableStr, NullableStr]) {
        return o;
    }
    let outgoing = Outgoing {
        to: call.bytes(3).unwrap_or_default(),
        subject: b"PHP error_log message",
        message: call.bytes(1).unwrap_or_default(),
        headers: call.bytes(4).unwrap_or_default(),
        mixed_lf: php::ini_bool("mail.mixed_lf_and_crlf"),
    };
    verdict(
        call,
        guard::send(call, &outgoing, "error_log", None, || {
            original(&ERROR_LOG, call)
        }),
    )
}

/// Runs the original handler (which calls php_mail() itself) and reads its result.
fn original(hook: &Hook, call: &Call) -> bool {
    hook.call_original(call);
    call.returned_true()
}

fn verdict(call: &Call, v: guard::Verdict) -> Outcome {
    match v {
        guard::Verdict::Accepted(ok) => {
            call.set_bool(ok);
            Outcome::Done
        }
        guard::Verdict::Refused(refusal) => Outcome::Refused(refusal),
    }
}
