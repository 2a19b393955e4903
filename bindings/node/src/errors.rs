//! The core's errors as JS errors: `err.code` is the ErrorKind's stable code
//! (`ERR_TIMEOUT`, `ERR_NOT_FOUND`, …), mapped here once.

use napi::bindgen_prelude::*;

/// A core error for a sync function, returning `Result<T, String>`: napi
/// puts that status string in `err.code`.
pub(crate) fn coded(e: &roomcast::Error) -> Error<String> {
    Error::new(e.kind().code().to_owned(), e.message().to_owned())
}

/// An error of `kind` made here, for a sync function.
pub(crate) fn kind(kind: roomcast::ErrorKind, message: impl Into<String>) -> Error<String> {
    Error::new(kind.code().to_owned(), message.into())
}

/// A napi error (bad argument types, conversions) for a sync function.
pub(crate) fn from_napi(e: Error) -> Error<String> {
    kind(roomcast::ErrorKind::InvalidArgument, e.reason.clone())
}

/// A core error as a rejection, built on the JS thread so that it keeps its
/// code (async rejections otherwise carry napi's status names).
pub(crate) fn rejection(env: &Env, e: &roomcast::Error) -> Error {
    let js = JsError::from(coded(e)).into_unknown(*env);
    Error::from_unknown_without_coercion(js)
}
