//! The core's `ErrorKind`, mapped once: one exception class per kind, all
//! under `RoomcastError`.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use roomcast::ErrorKind;

create_exception!(_native, RoomcastError, PyException, "Base class of every roomcast error.");
create_exception!(_native, InvalidArgumentError, RoomcastError, "An argument was malformed.");
create_exception!(_native, ConfigError, RoomcastError, "The configuration is inconsistent.");
create_exception!(_native, RoomcastIOError, RoomcastError, "An operating-system I/O error (bind failed, ...).");
create_exception!(_native, ProtocolError, RoomcastError, "The peer broke the wire protocol.");
create_exception!(_native, UnauthorizedError, RoomcastError, "Authentication failed.");
create_exception!(_native, RefusedError, RoomcastError, "A hook refused the operation.");
create_exception!(
    _native,
    ConnectionRefusedError,
    RefusedError,
    "Raised by a connect handler to refuse the connection: `ConnectionRefusedError(message, data)`."
);
create_exception!(_native, NotFoundError, RoomcastError, "The socket, namespace or room does not exist.");
create_exception!(_native, TimeoutError, RoomcastError, "No answer within the deadline.");
create_exception!(_native, ClosedError, RoomcastError, "The connection or server is closed.");
create_exception!(_native, RateLimitedError, RoomcastError, "The peer exceeded its rate limit.");
create_exception!(_native, PayloadTooLargeError, RoomcastError, "A message exceeded the maximum payload.");
create_exception!(_native, QueueFullError, RoomcastError, "A bounded queue is full.");
create_exception!(_native, InternalError, RoomcastError, "A bug or unexpected state inside roomcast.");

/// The Python exception for a core error, its `code` attribute the kind's stable name.
pub(crate) fn to_py(e: roomcast::Error) -> PyErr {
    let message = e.message().to_owned();
    let err = match e.kind() {
        ErrorKind::InvalidArgument => InvalidArgumentError::new_err(message),
        ErrorKind::Config => ConfigError::new_err(message),
        ErrorKind::Io => RoomcastIOError::new_err(message),
        ErrorKind::Protocol => ProtocolError::new_err(message),
        ErrorKind::Unauthorized => UnauthorizedError::new_err(message),
        ErrorKind::Refused => RefusedError::new_err(message),
        ErrorKind::NotFound => NotFoundError::new_err(message),
        ErrorKind::Timeout => TimeoutError::new_err(message),
        ErrorKind::Closed => ClosedError::new_err(message),
        ErrorKind::RateLimited => RateLimitedError::new_err(message),
        ErrorKind::PayloadTooLarge => PayloadTooLargeError::new_err(message),
        ErrorKind::QueueFull => QueueFullError::new_err(message),
        ErrorKind::Internal => InternalError::new_err(message),
        // A kind added to the core and not mapped yet still reads as a roomcast error.
        _ => RoomcastError::new_err(message),
    };
    Python::attach(|py| {
        // Best effort: the class is ours, setting an attribute cannot fail in practice.
        let _ = err.value(py).setattr("code", e.kind().code());
    });
    err
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("RoomcastError", py.get_type::<RoomcastError>())?;
    m.add("InvalidArgumentError", py.get_type::<InvalidArgumentError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("RoomcastIOError", py.get_type::<RoomcastIOError>())?;
    m.add("ProtocolError", py.get_type::<ProtocolError>())?;
    m.add("UnauthorizedError", py.get_type::<UnauthorizedError>())?;
    m.add("RefusedError", py.get_type::<RefusedError>())?;
    m.add("ConnectionRefusedError", py.get_type::<ConnectionRefusedError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("TimeoutError", py.get_type::<TimeoutError>())?;
    m.add("ClosedError", py.get_type::<ClosedError>())?;
    m.add("RateLimitedError", py.get_type::<RateLimitedError>())?;
    m.add("PayloadTooLargeError", py.get_type::<PayloadTooLargeError>())?;
    m.add("QueueFullError", py.get_type::<QueueFullError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}
