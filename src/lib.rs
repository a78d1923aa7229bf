//! mailguard: the PHP extension. This crate is only the shim between PHP and the
//! core: it swaps the handlers of mail(), mb_send_mail() and error_log(), declares
//! the `mailguard.*` settings, and exposes `MailGuard\status()`.
//!
//! - [`hook`]: the replaced handlers (argument normalisation, panic containment).
//! - [`guard`]: settings in, core verdicts out.
//! - [`php`]: the raw engine API; every `unsafe` block lives there.

use std::ffi::c_int;

use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::prelude::*;
use ext_php_rs::zend::{IniEntryDef, IniEntryDefs, ModuleEntry};
use ext_php_rs::{info_table_end, info_table_row, info_table_start};

mod api;
use api::RegisterApi as _;
mod daemon;
mod delivery;
mod guard;
mod hook;
mod php;
mod state;

pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every `mailguard.*` setting. All are PHP_INI_SYSTEM: php.ini, `-d`, or FPM's
/// `php_admin_value`; a script can never change them (`ini_set()` returns false).
static INI: IniEntryDefs<21> = IniEntryDefs::new([
    IniEntryDef::new(c"mailguard.enabled", c"1", IniEntryPermission::System),
    IniEntryDef::new(
        c"mailguard.max_message_size",
        c"10M",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(
        c"mailguard.state_dir",
        c"/var/lib/mailguard",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(c"mailguard.account", c"default", IniEntryPermission::System),
    IniEntryDef::new(c"mailguard.socket", c"", IniEntryPermission::System),
    IniEntryDef::new(c"mailguard.mode", c"enforce", IniEntryPermission::System),
    IniEntryDef::new(
        c"mailguard.rate_quota",
        c"200/1h",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(
        c"mailguard.rate_burst",
        c"50/1m",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(
        c"mailguard.rate_count",
        c"recipients",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(
        c"mailguard.max_recipients",
        c"100",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(c"mailguard.hold", c"72h", IniEntryPermission::System),
    IniEntryDef::new(c"mailguard.allow_control", c"0", IniEntryPermission::System),
    IniEntryDef::new(c"mailguard.spam_check", c"1", IniEntryPermission::System),
    IniEntryDef::new(
        c"mailguard.transport",
        c"sendmail",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(c"mailguard.smtp_relay", c"", IniEntryPermission::System),
    IniEntryDef::new(
        c"mailguard.smtp_security",
        c"ssl",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(c"mailguard.smtp_ca_file", c"", IniEntryPermission::System),
    IniEntryDef::new(
        c"mailguard.queue_max_messages",
        c"10000",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(
        c"mailguard.queue_max_bytes",
        c"1G",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(
        c"mailguard.fault_injection",
        c"",
        IniEntryPermission::System,
    ),
    IniEntryDef::end(),
]);

unsafe extern "C" fn startup(_type: c_int, module_number: c_int) -> c_int {
    // A panic must not cross this boundary: it would abort php-fpm at start.
    let ok = std::panic::catch_unwind(|| {
        IniEntryDef::register(INI.as_slice(), module_number);
        for hook in hook::ALL {
            hook.install();
        }
    });
    if ok.is_ok() {
        0
    } else {
        -1
    }
}

/// RINIT: a function whose extension started after ours (mbstring loaded later in
/// php.ini) is hooked on the first request of each process.
unsafe extern "C" fn request_startup(_type: c_int, _module_number: c_int) -> c_int {
    let _ = std::panic::catch_unwind(|| {
        for hook in hook::ALL {
            if !hook.is_installed() {
                hook.install();
            }
        }
    });
    0
}

unsafe extern "C" fn shutdown(module_type: c_int, module_number: c_int) -> c_int {
    let _ = std::panic::catch_unwind(|| {
        for hook in hook::ALL {
            hook.uninstall();
        }
        php::unregister_ini(module_type, module_number);
    });
    0
}

extern "C" fn info(module: *mut ModuleEntry) {
    let _ = std::panic::catch_unwind(|| {
        info_table_start!();
        info_table_row!("mailguard support", "enabled");
        info_table_row!("version", VERSION);
        info_table_row!("hooked functions", api::hooked().join(", "));
        let disabled = api::disabled();
        if !disabled.is_empty() {
            info_table_row!("disabled by disable_functions", disabled.join(", "));
        }
        let limit = match guard::max_message_size() {
            Ok(b) => format!("{b} ({} bytes)", b.0),
            Err(e) => e.to_string(),
        };
        info_table_row!("effective max_message_size", limit);
        info_table_end!();
        php::display_module_ini(module);
    });
}

#[php_module]
pub fn get_module(module: ModuleBuilder) -> ModuleBuilder {
    module
        .name("mailguard")
        .version(VERSION)
        .startup_function(startup)
        .shutdown_function(shutdown)
        .request_startup_function(request_startup)
        .info_function(info)
        .register_api()
}
