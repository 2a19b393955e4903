//! What every exported function shares: panics caught at the boundary,
//! argument checks, the library's runtime, per-handle error details.

use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use parking_lot::Mutex;
use tokio::runtime::Runtime;

use crate::result::roomcast_result;

/// The library's tokio runtime, started on first use, shared by every handle.
pub(crate) static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("roomcast")
        .build()
        .expect("roomcast: cannot start the tokio runtime")
});

/// Wait for `fut` on the library's runtime. From one of its own threads
/// (a callback) that would deadlock or panic: BAD_STATE instead.
pub(crate) fn block_on<F: std::future::Future>(fut: F) -> Result<F::Output, roomcast_result> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(roomcast_result::ROOMCAST_RESULT_BAD_STATE);
    }
    Ok(RUNTIME.block_on(fut))
}

/// Run an exported function's body: a panic becomes `ROOMCAST_RESULT_PANIC`
/// rather than unwinding into C.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), roomcast_result>) -> roomcast_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => roomcast_result::ROOMCAST_RESULT_OK,
        Ok(Err(r)) => r,
        Err(_) => roomcast_result::ROOMCAST_RESULT_PANIC,
    }
}

/// `p` as a reference, or `NULL_ARGUMENT`.
///
/// # Safety
/// `p` is NULL or points to a live `T` (the caller's contract).
pub(crate) unsafe fn arg<'a, T>(p: *const T) -> Result<&'a T, roomcast_result> {
    // SAFETY: non-NULL pointers are live handles by the API's contract.
    unsafe { p.as_ref() }.ok_or(roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT)
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string live for the call.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char) -> Result<&'a str, roomcast_result> {
    if p.is_null() {
        return Err(roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT);
    }
    // SAFETY: checked non-NULL; NUL-terminated by contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| roomcast_result::ROOMCAST_RESULT_INVALID_UTF8)
}

/// An optional string argument (NULL is None).
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(p: *const c_char) -> Result<Option<&'a str>, roomcast_result> {
    if p.is_null() { Ok(None) } else { unsafe { str_arg(p) }.map(Some) }
}

/// `len` bytes at `p` (NULL is allowed when `len` is 0).
///
/// # Safety
/// `p` points to `len` readable bytes live for the call.
pub(crate) unsafe fn bytes_arg<'a>(p: *const u8, len: usize) -> Result<&'a [u8], roomcast_result> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT);
    }
    // SAFETY: checked non-NULL; `len` readable bytes by contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// `NULL_ARGUMENT` for a NULL out-pointer: checked before a call does its work.
pub(crate) fn out_arg<T>(out: *mut T) -> Result<(), roomcast_result> {
    if out.is_null() { Err(roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT) } else { Ok(()) }
}

/// Write `value` through an out-pointer.
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) -> Result<(), roomcast_result> {
    if out.is_null() {
        return Err(roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT);
    }
    // SAFETY: checked non-NULL; writable by contract.
    unsafe { out.write(value) };
    Ok(())
}

/// Hand a new handle out through `out` (nothing is allocated when `out` is NULL).
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn write_new<T>(
    out: *mut *mut T,
    value: impl FnOnce() -> Result<T, roomcast_result>,
) -> Result<(), roomcast_result> {
    if out.is_null() {
        return Err(roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT);
    }
    let handle = Box::into_raw(Box::new(value()?));
    // SAFETY: checked non-NULL; writable by contract.
    unsafe { out.write(handle) };
    Ok(())
}

/// Hand a new string out through `out` (free with `roomcast_string_free`;
/// nothing is allocated when `out` is NULL).
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn write_string(out: *mut *mut c_char, s: impl Into<Vec<u8>>) -> Result<(), roomcast_result> {
    if out.is_null() {
        return Err(roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT);
    }
    // SAFETY: checked non-NULL; writable by contract.
    unsafe { out.write(c_string(s).into_raw()) };
    Ok(())
}

/// A string for C: interior NULs (never in ids or JSON) are dropped.
pub(crate) fn c_string(s: impl Into<Vec<u8>>) -> CString {
    let mut bytes: Vec<u8> = s.into();
    bytes.retain(|b| *b != 0);
    CString::new(bytes).unwrap_or_default()
}

/// The detail of a handle's last failure, readable until its next call.
#[derive(Default)]
pub(crate) struct LastError(Mutex<CString>);

impl LastError {
    /// Record `e` and hand back its result code.
    pub(crate) fn set(&self, e: &roomcast::Error) -> roomcast_result {
        *self.0.lock() = c_string(e.message());
        e.kind().into()
    }

    pub(crate) fn set_text(&self, r: roomcast_result, text: &str) -> roomcast_result {
        *self.0.lock() = c_string(text);
        r
    }

    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.0.lock().as_ptr()
    }
}

/// Parse a JSON array of event arguments.
pub(crate) fn args_from_json(json: &[u8]) -> Result<roomcast::Args, String> {
    match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(serde_json::Value::Array(items)) => {
            Ok(roomcast::Args::new(items.into_iter().map(roomcast::hub::args::from_json).collect()))
        }
        Ok(_) => Err("arguments must be a JSON array".to_owned()),
        Err(e) => Err(format!("arguments are not JSON: {e}")),
    }
}

/// Event arguments as a JSON array (binary as `{"$binary": base64}`).
pub(crate) fn args_to_json(args: &roomcast::Args) -> CString {
    c_string(args_to_value(args).to_string())
}

/// Event arguments as a JSON array value (binary as `{"$binary": base64}`).
pub(crate) fn args_to_value(args: &roomcast::Args) -> serde_json::Value {
    serde_json::Value::Array(args.as_slice().iter().map(roomcast::hub::args::to_json).collect())
}

/// Release a string roomcast handed out (NULL is ignored).
///
/// # Safety
/// `s` came from roomcast with "free with `roomcast_string_free`" and is not
/// used or freed again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: allocated by CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The library's version, e.g. "0.1.0" (static; do not free).
#[unsafe(no_mangle)]
pub extern "C" fn roomcast_version() -> *const c_char {
    static VERSION: LazyLock<CString> = LazyLock::new(|| c_string(env!("CARGO_PKG_VERSION")));
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_result_code() {
        let r = guard(|| panic!("a bug (expected by the test)"));
        assert_eq!(r, roomcast_result::ROOMCAST_RESULT_PANIC);
        assert_eq!(guard(|| Err(roomcast_result::ROOMCAST_RESULT_TIMEOUT)), roomcast_result::ROOMCAST_RESULT_TIMEOUT);
        assert_eq!(guard(|| Ok(())), roomcast_result::ROOMCAST_RESULT_OK);
    }

    #[test]
    fn blocking_calls_from_runtime_threads_are_refused() {
        let inside = RUNTIME.block_on(async { block_on(async { 1 }) });
        assert_eq!(inside, Err(roomcast_result::ROOMCAST_RESULT_BAD_STATE));
        assert_eq!(block_on(async { 1 }), Ok(1));
    }

    #[test]
    fn arguments_are_checked() {
        // SAFETY: NULL and a live string, as the contract allows.
        unsafe {
            assert_eq!(str_arg(std::ptr::null()).unwrap_err(), roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT);
            assert_eq!(str_arg(c"caf\xc3".as_ptr()).unwrap_err(), roomcast_result::ROOMCAST_RESULT_INVALID_UTF8);
            assert_eq!(bytes_arg(std::ptr::null(), 0).unwrap(), b"");
            assert_eq!(bytes_arg(std::ptr::null(), 3).unwrap_err(), roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT);
        }
        assert_eq!(args_from_json(b"[1, {\"$binary\": \"AQI=\"}]").unwrap().len(), 2);
        assert!(args_from_json(b"{}").is_err());
        assert_eq!(c_string("a\0b").as_bytes(), b"ab");
    }

    #[test]
    fn strings_are_handed_out_only_through_a_pointer() {
        let mut out: *mut c_char = std::ptr::null_mut();
        // SAFETY: NULL, and a writable out-pointer, as the contract allows.
        unsafe {
            assert_eq!(
                write_string(std::ptr::null_mut(), "x").unwrap_err(),
                roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT
            );
            write_string(&mut out, "[\"lobby\"]").unwrap();
            assert_eq!(CStr::from_ptr(out).to_str().unwrap(), "[\"lobby\"]");
            roomcast_string_free(out);
        }
        assert!(out_arg(std::ptr::null_mut::<usize>()).is_err());
        assert!(out_arg(&mut 0usize as *mut usize).is_ok());
    }
}
