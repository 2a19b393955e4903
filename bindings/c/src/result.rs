//! `roomcast_result`: what every function returns. The numbers are part of
//! the ABI: stable, never reused. 1–99 are the C API's own outcomes,
//! 100 and up the core's error kinds (`ErrorKind`), mapped here once.

use std::ffi::c_char;

use roomcast::ErrorKind;

/// The outcome of a roomcast call. `ROOMCAST_RESULT_OK` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum roomcast_result {
    ROOMCAST_RESULT_OK = 0,
    /// A required pointer argument was NULL.
    ROOMCAST_RESULT_NULL_ARGUMENT = 1,
    /// A string argument was not UTF-8.
    ROOMCAST_RESULT_INVALID_UTF8 = 2,
    /// roomcast panicked inside the call (a bug); the handle may be unusable.
    ROOMCAST_RESULT_PANIC = 3,
    /// `roomcast_server_next_event`: no event waits.
    ROOMCAST_RESULT_NO_EVENT = 4,
    /// The call does not fit the handle's state (e.g. start twice, an event
    /// queue call on a server without one, a reply to an event that wants none).
    ROOMCAST_RESULT_BAD_STATE = 5,
    ROOMCAST_RESULT_INVALID_ARGUMENT = 100,
    ROOMCAST_RESULT_CONFIG = 101,
    ROOMCAST_RESULT_IO = 102,
    ROOMCAST_RESULT_PROTOCOL = 103,
    ROOMCAST_RESULT_UNAUTHORIZED = 104,
    ROOMCAST_RESULT_REFUSED = 105,
    ROOMCAST_RESULT_NOT_FOUND = 106,
    ROOMCAST_RESULT_TIMEOUT = 107,
    ROOMCAST_RESULT_CLOSED = 108,
    ROOMCAST_RESULT_RATE_LIMITED = 109,
    ROOMCAST_RESULT_PAYLOAD_TOO_LARGE = 110,
    ROOMCAST_RESULT_QUEUE_FULL = 111,
    ROOMCAST_RESULT_INTERNAL = 112,
}

use roomcast_result as R;

impl From<ErrorKind> for roomcast_result {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidArgument => R::ROOMCAST_RESULT_INVALID_ARGUMENT,
            ErrorKind::Config => R::ROOMCAST_RESULT_CONFIG,
            ErrorKind::Io => R::ROOMCAST_RESULT_IO,
            ErrorKind::Protocol => R::ROOMCAST_RESULT_PROTOCOL,
            ErrorKind::Unauthorized => R::ROOMCAST_RESULT_UNAUTHORIZED,
            ErrorKind::Refused => R::ROOMCAST_RESULT_REFUSED,
            ErrorKind::NotFound => R::ROOMCAST_RESULT_NOT_FOUND,
            ErrorKind::Timeout => R::ROOMCAST_RESULT_TIMEOUT,
            ErrorKind::Closed => R::ROOMCAST_RESULT_CLOSED,
            ErrorKind::RateLimited => R::ROOMCAST_RESULT_RATE_LIMITED,
            ErrorKind::PayloadTooLarge => R::ROOMCAST_RESULT_PAYLOAD_TOO_LARGE,
            ErrorKind::QueueFull => R::ROOMCAST_RESULT_QUEUE_FULL,
            ErrorKind::Internal => R::ROOMCAST_RESULT_INTERNAL,
            // A kind added to the core and not mapped yet.
            _ => R::ROOMCAST_RESULT_INTERNAL,
        }
    }
}

impl roomcast_result {
    fn message(self) -> &'static std::ffi::CStr {
        match self {
            R::ROOMCAST_RESULT_OK => c"ok",
            R::ROOMCAST_RESULT_NULL_ARGUMENT => c"a required argument was NULL",
            R::ROOMCAST_RESULT_INVALID_UTF8 => c"a string argument was not UTF-8",
            R::ROOMCAST_RESULT_PANIC => c"roomcast panicked (a bug); see the handle's last error",
            R::ROOMCAST_RESULT_NO_EVENT => c"no event waits",
            R::ROOMCAST_RESULT_BAD_STATE => c"the call does not fit the handle's state",
            R::ROOMCAST_RESULT_INVALID_ARGUMENT => c"invalid argument",
            R::ROOMCAST_RESULT_CONFIG => c"invalid configuration",
            R::ROOMCAST_RESULT_IO => c"I/O error",
            R::ROOMCAST_RESULT_PROTOCOL => c"protocol error",
            R::ROOMCAST_RESULT_UNAUTHORIZED => c"unauthorized",
            R::ROOMCAST_RESULT_REFUSED => c"refused",
            R::ROOMCAST_RESULT_NOT_FOUND => c"not found",
            R::ROOMCAST_RESULT_TIMEOUT => c"timed out",
            R::ROOMCAST_RESULT_CLOSED => c"closed",
            R::ROOMCAST_RESULT_RATE_LIMITED => c"rate limited",
            R::ROOMCAST_RESULT_PAYLOAD_TOO_LARGE => c"payload too large",
            R::ROOMCAST_RESULT_QUEUE_FULL => c"queue full",
            R::ROOMCAST_RESULT_INTERNAL => c"internal error",
        }
    }
}

impl roomcast_result {
    /// Every result, to look a number up without trusting it.
    const ALL: [Self; 19] = [
        R::ROOMCAST_RESULT_OK,
        R::ROOMCAST_RESULT_NULL_ARGUMENT,
        R::ROOMCAST_RESULT_INVALID_UTF8,
        R::ROOMCAST_RESULT_PANIC,
        R::ROOMCAST_RESULT_NO_EVENT,
        R::ROOMCAST_RESULT_BAD_STATE,
        R::ROOMCAST_RESULT_INVALID_ARGUMENT,
        R::ROOMCAST_RESULT_CONFIG,
        R::ROOMCAST_RESULT_IO,
        R::ROOMCAST_RESULT_PROTOCOL,
        R::ROOMCAST_RESULT_UNAUTHORIZED,
        R::ROOMCAST_RESULT_REFUSED,
        R::ROOMCAST_RESULT_NOT_FOUND,
        R::ROOMCAST_RESULT_TIMEOUT,
        R::ROOMCAST_RESULT_CLOSED,
        R::ROOMCAST_RESULT_RATE_LIMITED,
        R::ROOMCAST_RESULT_PAYLOAD_TOO_LARGE,
        R::ROOMCAST_RESULT_QUEUE_FULL,
        R::ROOMCAST_RESULT_INTERNAL,
    ];
}

/// A static description of `result` (never NULL; do not free). It takes the
/// number, so any value is safe: unknown ones read "unknown result".
#[unsafe(no_mangle)]
pub extern "C" fn roomcast_result_message(result: std::ffi::c_uint) -> *const c_char {
    let known = roomcast_result::ALL.iter().find(|r| **r as std::ffi::c_uint == result);
    known.map_or(c"unknown result", |r| r.message()).as_ptr()
}
