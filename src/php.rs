//! The one place where mailguard touches the engine's raw C API: the PHP symbols
//! ext-php-rs does not bind, handler swapping, argument slots and INI reads.
//! Every `unsafe` block of the extension lives here, each with its reason.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use ext_php_rs::ffi::{
    self, zend_execute_data, zend_function, zend_long, zend_module_entry, zend_string, zval,
    HashTable,
};
use ext_php_rs::types::Zval;

// PHP 8.2 symbols exported by the php binary (PHPAPI / ZEND_API) that ext-php-rs'
// bindgen allow-list leaves out. Signatures from /usr/include/php/20220829.
// ZEND_FASTCALL is empty on x86_64 and aarch64, so "C" is the right ABI.
unsafe extern "C" {
    fn zend_parse_arg_str_slow(arg: *mut zval, dest: *mut *mut zend_string, arg_num: u32) -> bool;
    fn zend_parse_arg_long_slow(arg: *mut zval, dest: *mut zend_long, arg_num: u32) -> bool;
    fn php_mail(
        to: *const c_char,
        subject: *const c_char,
        message: *const c_char,
        headers: *const c_char,
        extra_cmd: *const c_char,
    ) -> c_int;
    fn php_mail_build_headers(headers: *mut HashTable) -> *mut zend_string;
    fn php_escape_shell_cmd(s: *const c_char) -> *mut zend_string;
    fn zend_ini_string_ex(
        name: *const c_char,
        len: usize,
        orig: c_int,
        exists: *mut bool,
    ) -> *mut c_char;
    fn zend_error(kind: c_int, format: *const c_char, ...);
    fn display_ini_entries(module: *mut zend_module_entry);
    fn zend_unregister_ini_entries_ex(module_number: c_int, module_type: c_int);
}

const E_WARNING: c_int = 2;
const ZEND_INTERNAL_FUNCTION: u8 = 1;

/// The handler type of an internal function (`zif_handler`).
pub type Handler = unsafe extern "C" fn(*mut zend_execute_data, *mut zval);

/// One swapped handler: the function's name, our replacement, and the original.
pub struct Hook {
    pub name: &'static CStr,
    ours: Handler,
    original: AtomicUsize,
}

impl Hook {
    pub const fn new(name: &'static CStr, ours: Handler) -> Self {
        Hook {
            name,
            ours,
            original: AtomicUsize::new(0),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name.to_str().unwrap_or("?")
    }

    /// Swaps the handler in the compiler's function table (MINIT; `EG` is not up
    /// yet). Returns false when the function does not exist (e.g. no mbstring).
    pub fn install(&self) -> bool {
        // SAFETY: called from MINIT on the main thread, before any request runs;
        // CG(function_table) is the live table and we only replace a fn pointer
        // of an internal function, as Snuffleupagus and Datadog do.
        unsafe {
            let cg = ffi::ext_php_rs_compiler_globals();
            if cg.is_null() {
                return false;
            }
            let func = find_function((*cg).function_table, self.name);
            let Some(func) = func else { return false };
            let current = (*func).internal_function.handler;
            match current {
                Some(h) if h as usize != self.ours as usize => {
                    self.original.store(h as usize, Ordering::SeqCst);
                    (*func).internal_function.handler = Some(self.ours);
                    true
                }
                Some(_) => true,
                None => false,
            }
        }
    }

    pub fn is_installed(&self) -> bool {
        self.original.load(Ordering::SeqCst) != 0
    }

    /// Puts the original back (MSHUTDOWN), only if the handler is still ours.
    pub fn uninstall(&self) {
        let orig = self.original.swap(0, Ordering::SeqCst);
        if orig == 0 {
            return;
        }
        // SAFETY: MSHUTDOWN, single-threaded; fresh lookup, and `orig` came from
        // this same slot in MINIT.
        unsafe {
            let cg = ffi::ext_php_rs_compiler_globals();
            if cg.is_null() {
                return;
            }
            if let Some(func) = find_function((*cg).function_table, self.name) {
                if (*func).internal_function.handler.map(|h| h as usize) == Some(self.ours as usize)
                {
                    (*func).internal_function.handler =
                        Some(std::mem::transmute::<usize, Handler>(orig));
                }
            }
        }
    }

    /// Whether the function exists for scripts now (disable_functions removes it
    /// after MINIT) and still runs our handler.
    pub fn is_active(&self) -> bool {
        // SAFETY: called during a request, when EG(function_table) is set.
        unsafe {
            let eg = ffi::ext_php_rs_executor_globals();
            if eg.is_null() || (*eg).function_table.is_null() {
                return false;
            }
            match find_function((*eg).function_table, self.name) {
                Some(func) => {
                    (*func).internal_function.handler.map(|h| h as usize)
                        == Some(self.ours as usize)
                }
                None => false,
            }
        }
    }

    /// Whether the original was found at startup but the function is gone now.
    pub fn is_disabled(&self) -> bool {
        self.original.load(Ordering::SeqCst) != 0 && !self.exists_now()
    }

    fn exists_now(&self) -> bool {
        // SAFETY: as in `is_active`.
        unsafe {
            let eg = ffi::ext_php_rs_executor_globals();
            !eg.is_null()
                && !(*eg).function_table.is_null()
                && find_function((*eg).function_table, self.name).is_some()
        }
    }

    /// Calls the original handler with the (possibly normalised) call frame.
    pub fn call_original(&self, call: &Call) {
        let orig = self.original.load(Ordering::SeqCst);
        if orig == 0 {
            return;
        }
        // SAFETY: `orig` is the engine's own handler for this very function,
        // called with the frame and return slot the engine gave us.
        unsafe {
            let h = std::mem::transmute::<usize, Handler>(orig);
            h(call.ex, call.rv);
        }
    }
}

/// # Safety
/// `table` must be a live function table.
unsafe fn find_function(table: *mut HashTable, name: &CStr) -> Option<*mut zend_function> {
    if table.is_null() {
        return None;
    }
    let bytes = name.to_bytes();
    // SAFETY: the caller guarantees `table`; the name is a valid buffer.
    let f = unsafe { ffi::zend_hash_str_find_ptr_lc(table, bytes.as_ptr().cast(), bytes.len()) }
        .cast::<zend_function>();
    // SAFETY: a non-null entry of the function table is a zend_function.
    (!f.is_null() && unsafe { (*f).type_ } == ZEND_INTERNAL_FUNCTION).then_some(f)
}

/// What a hooked call can do when an argument does not normalise to a string.
pub enum NotString {
    /// An exception is pending (e.g. `__toString` threw): return at once.
    Threw,
    /// Let the original handler run: it raises PHP's exact TypeError/ValueError.
    Delegate,
}

/// One call of a hooked function: the engine's frame and return slot.
pub struct Call {
    ex: *mut zend_execute_data,
    rv: *mut zval,
}

impl Call {
    /// # Safety
    /// Both pointers must be the ones the engine passed to the handler.
    pub unsafe fn new(ex: *mut zend_execute_data, rv: *mut zval) -> Self {
        Call { ex, rv }
    }

    pub fn num_args(&self) -> u32 {
        // SAFETY: `ex` is the live frame of this call.
        unsafe { (*self.ex).This.u2.num_args }
    }

    /// The slot of argument `n` (1-based), if passed.
    fn slot(&self, n: u32) -> Option<*mut Zval> {
        if n == 0 || n > self.num_args() {
            return None;
        }
        // SAFETY: `n` is within num_args, so the slot holds an initialised zval.
        unsafe { (*self.ex.cast::<ext_php_rs::zend::ExecuteData>()).zend_call_arg(n as usize - 1) }
            .map(ptr::from_mut)
    }

    /// Argument `n` (1-based), if passed.
    pub fn arg(&self, n: u32) -> Option<&Zval> {
        // SAFETY: a live argument slot of this call.
        self.slot(n).map(|z| unsafe { &*z })
    }

    /// Converts argument `n` to a string in place, exactly as stock ZPP does for
    /// a `string` parameter (weak-mode coercion, `__toString` once, the null
    /// deprecation), so the checks and the handler that follow see one value.
    pub fn normalise_string(&self, n: u32) -> Result<(), NotString> {
        let Some(arg) = self.slot(n) else {
            return Ok(());
        };
        // SAFETY: a live argument slot of this call.
        if unsafe { (*arg).is_string() } {
            return Ok(());
        }
        let mut dest: *mut zend_string = ptr::null_mut();
        // SAFETY: `arg` is a live argument slot; the engine's own slow path
        // replaces the zval in place on success and leaves it alone on failure.
        let ok = unsafe { zend_parse_arg_str_slow(arg.cast(), &mut dest, n) };
        if ok {
            Ok(())
        } else if exception_pending() {
            Err(NotString::Threw)
        } else {
            Err(NotString::Delegate)
        }
    }

    /// The same for an `int` parameter.
    pub fn normalise_long(&self, n: u32) -> Result<(), NotString> {
        let Some(arg) = self.slot(n) else {
            return Ok(());
        };
        // SAFETY: a live argument slot of this call.
        if unsafe { (*arg).is_long() } {
            return Ok(());
        }
        let mut dest: zend_long = 0;
        // SAFETY: as above; on success we store the long back into the slot,
        // as the fast ZPP path would have read it.
        let ok = unsafe { zend_parse_arg_long_slow(arg.cast(), &mut dest, n) };
        if ok {
            // SAFETY: the same live slot; a long needs no release of the old value
            // beyond what the slow path already did.
            unsafe { (*arg).set_long(dest) };
            Ok(())
        } else if exception_pending() {
            Err(NotString::Threw)
        } else {
            Err(NotString::Delegate)
        }
    }

    /// The bytes of a string argument.
    pub fn bytes(&self, n: u32) -> Option<&[u8]> {
        self.arg(n).and_then(|z| z.zend_str()).map(|s| s.as_bytes())
    }

    /// Whether the handler left `true` in the return slot.
    pub fn returned_true(&self) -> bool {
        // SAFETY: `rv` is the engine's return slot for this call.
        unsafe { (*self.rv.cast::<Zval>()).bool() == Some(true) }
    }

    pub fn set_bool(&self, value: bool) {
        // SAFETY: `rv` is the engine's return slot for this call.
        unsafe { (*self.rv.cast::<Zval>()).set_bool(value) }
    }

    /// `php_mail_build_headers()` on array argument `n`: the stock header block,
    /// with the stock TypeError/ValueError left pending on bad input. `Ok(None)`:
    /// not an array, or nothing to emit.
    pub fn build_headers(&self, n: u32) -> Result<Option<OwnedZendStr>, ()> {
        let Some(arg) = self.slot(n) else {
            return Ok(None);
        };
        // SAFETY: a live argument slot of this call.
        let Some(ht) = (unsafe { (*arg).array_mut() }) else {
            return Ok(None);
        };
        // SAFETY: a live array argument; PHP builds a new string or throws.
        let s = unsafe { php_mail_build_headers(ptr::from_mut(ht).cast()) };
        let built = (!s.is_null()).then(|| OwnedZendStr(s));
        if exception_pending() {
            Err(())
        } else {
            Ok(built)
        }
    }
}

/// Whether an exception is pending in the executor.
pub fn exception_pending() -> bool {
    // SAFETY: executor globals are live during a request.
    unsafe {
        let eg = ffi::ext_php_rs_executor_globals();
        !eg.is_null() && !(*eg).exception.is_null()
    }
}

/// An engine-owned string we must release.
pub struct OwnedZendStr(*mut zend_string);

impl OwnedZendStr {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: non-null, live until drop.
        unsafe { (*self.0.cast::<ext_php_rs::types::ZendStr>()).as_bytes() }
    }
    fn c_ptr(&self) -> *const c_char {
        // SAFETY: zend_string values are always NUL-terminated.
        unsafe { (*self.0).val.as_ptr() }
    }
}

impl Drop for OwnedZendStr {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { ffi::ext_php_rs_zend_string_release(self.0) }
    }
}

/// The stock sendmail pipe: `php_mail()` with exactly what stock mail() passes.
/// `extra` is escaped with `escapeshellcmd()` here, as stock mail() does.
pub fn stock_php_mail(
    to: &[u8],
    subject: &[u8],
    message: &[u8],
    headers: &[u8],
    extra: Option<&[u8]>,
) -> bool {
    let c = |b: &[u8]| CString::new(b).unwrap_or_default();
    let (to, subject, message) = (c(to), c(subject), c(message));
    let headers = (!headers.is_empty()).then(|| c(headers));
    let escaped = extra.map(|e| {
        let e = c(e);
        // SAFETY: a NUL-terminated string; PHP returns a new zend_string.
        OwnedZendStr(unsafe { php_escape_shell_cmd(e.as_ptr()) })
    });
    // SAFETY: every pointer is a NUL-terminated string living across the call.
    let ret = unsafe {
        php_mail(
            to.as_ptr(),
            subject.as_ptr(),
            message.as_ptr(),
            headers.as_ref().map_or(ptr::null(), |h| h.as_ptr()),
            escaped.as_ref().map_or(ptr::null(), OwnedZendStr::c_ptr),
        )
    };
    ret != 0
}

/// An INI value as a string (`None`: the entry is NULL or unknown).
pub fn ini_bytes(name: &str) -> Option<Vec<u8>> {
    let mut exists = false;
    // SAFETY: name buffer and length are valid; PHP returns its own value.
    let v = unsafe { zend_ini_string_ex(name.as_ptr().cast(), name.len(), 0, &mut exists) };
    if v.is_null() {
        None
    } else {
        // SAFETY: INI values are NUL-terminated strings owned by the engine.
        Some(unsafe { CStr::from_ptr(v) }.to_bytes().to_vec())
    }
}

pub fn ini_string(name: &str) -> Option<String> {
    ini_bytes(name).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// PHP's boolean INI reading ("1", "on", "yes", "true").
pub fn ini_bool(name: &str) -> bool {
    ini_string(name).is_some_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        matches!(v.as_str(), "on" | "yes" | "true") || v.parse::<i64>().is_ok_and(|n| n != 0)
    })
}

/// One E_WARNING with our text, raised as a plain `Warning: mailguard: ...`.
pub fn warn(text: &str) {
    let msg = CString::new(format!("mailguard: {text}").replace('\0', " ")).unwrap_or_default();
    // SAFETY: "%s" with one NUL-terminated argument.
    unsafe { zend_error(E_WARNING, c"%s".as_ptr(), msg.as_ptr()) }
}

/// `DISPLAY_INI_ENTRIES()` for the phpinfo section.
pub fn display_module_ini(module: *mut zend_module_entry) {
    // SAFETY: called from the info function with the engine's module entry.
    unsafe { display_ini_entries(module) }
}

/// `UNREGISTER_INI_ENTRIES()` for MSHUTDOWN.
pub fn unregister_ini(module_type: c_int, module_number: c_int) {
    // SAFETY: MSHUTDOWN of the module that registered the entries.
    unsafe { zend_unregister_ini_entries_ex(module_number, module_type) }
}

/// One PHP frame of the running script: file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub file: String,
    pub line: u32,
}

const ZEND_USER_FUNCTION: u8 = 2;

impl Call {
    /// The user-code frames above this call, innermost first (at most `max`):
    /// the first is where mail() was called.
    pub fn user_frames(&self, max: usize) -> Vec<Frame> {
        let mut frames = Vec::new();
        // SAFETY: walking the engine's live frame chain of this request, read-only;
        // each frame's func, opline and filename are valid while the call runs.
        unsafe {
            let mut ex = (*self.ex).prev_execute_data;
            while !ex.is_null() && frames.len() < max {
                let func = (*ex).func;
                if !func.is_null() && (*func).type_ == ZEND_USER_FUNCTION && !(*ex).opline.is_null()
                {
                    let name = (*func).op_array.filename;
                    if !name.is_null() {
                        let file = (*name.cast::<ext_php_rs::types::ZendStr>()).as_bytes();
                        frames.push(Frame {
                            file: String::from_utf8_lossy(file).into_owned(),
                            line: (*(*ex).opline).lineno,
                        });
                    }
                }
                ex = (*ex).prev_execute_data;
            }
        }
        frames
    }
}

unsafe extern "C" {
    fn sapi_getenv(name: *const c_char, len: usize) -> *mut c_char;
}

/// A request variable from the SAPI (FastCGI params under php-fpm, the
/// environment under the CLI), without touching `$_SERVER`.
pub fn request_var(name: &str) -> Option<String> {
    let c = CString::new(name).ok()?;
    // SAFETY: a NUL-terminated name; the SAPI returns an emalloc'd copy or NULL.
    let v = unsafe { sapi_getenv(c.as_ptr(), name.len()) };
    if v.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string we now own and free with efree.
    let s = unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned();
    unsafe { ext_php_rs::ffi::_efree(v.cast()) };
    Some(s)
}

/// The SAPI's name: "cli", "fpm-fcgi", "apache2handler"...
pub fn sapi_name() -> String {
    // SAFETY: sapi_module is initialised before any request.
    unsafe {
        let m = ffi::ext_php_rs_sapi_module();
        if m.is_null() || (*m).name.is_null() {
            return String::new();
        }
        CStr::from_ptr((*m).name).to_string_lossy().into_owned()
    }
}

unsafe extern "C" {
    fn zend_get_executed_filename() -> *const c_char;
}

/// The file currently executing (the caller of a MailGuard\ function).
pub fn executed_file() -> Option<String> {
    // SAFETY: during a request PHP returns a NUL-terminated static or interned name.
    let p = unsafe { zend_get_executed_filename() };
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// The name of this machine, as sendmail would use it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The user this process runs as (from /etc/passwd), for the default sender.
pub fn process_user() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid{uid}"))
}

/// The value of `X-PHP-Originating-Script` as php_mail() writes it: the owner uid
/// of the main script file (getmyuid(), else the process uid) and the base name of
/// the file executing now.
pub fn originating_script() -> String {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: SAPI globals are live during a request; path_translated is NULL or a
    // NUL-terminated path owned by the SAPI.
    let main = unsafe {
        let sg = ffi::ext_php_rs_sapi_globals();
        let p = if sg.is_null() {
            ptr::null()
        } else {
            (*sg).request_info.path_translated
        };
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    let uid = main
        .and_then(|m| std::fs::metadata(m).ok())
        .map(|m| m.uid())
        .or_else(|| std::fs::metadata("/proc/self").ok().map(|m| m.uid()))
        .unwrap_or(0);
    let file = executed_file().unwrap_or_else(|| "[no active file]".to_owned());
    let base = file.rsplit('/').next().unwrap_or(&file).to_owned();
    format!("{uid}:{base}")
}
