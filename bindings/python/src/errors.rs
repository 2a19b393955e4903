//! The core's `ErrorKind`, mapped once: one exception class per kind, all
//! under `RoomcastError`.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use roomcast::ErrorKind;

/// Declare the exception classes and the function adding them to the module.
macro_rules! exceptions {
    ($($name:ident($base:ty): $doc:literal),* $(,)?) => {
        $(create_exception!(_native, $name, $base, $doc);)*

        pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $(m.add(stringify!($name), m.py().get_type::<$name>())?;)*
            Ok(())
        }
    };
}

exceptions! {
    RoomcastError(PyException): "Base class of every roomcast error.",
    InvalidArgumentError(RoomcastError): "An argument was malformed.",
    ConfigError(RoomcastError): "The configuration is inconsistent.",
    RoomcastIOError(RoomcastError): "An operating-system I/O error (bind failed, ...).",
    ProtocolError(RoomcastError): "The peer broke the wire protocol.",
    UnauthorizedError(RoomcastError): "Authentication failed.",
    RefusedError(RoomcastError): "A hook refused the operation.",
    ConnectionRefusedError(RefusedError):
        "Raised by a connect handler to refuse the connection: `ConnectionRefusedError(message, data)`.",
    NotFoundError(RoomcastError): "The socket, namespace or room does not exist.",
    TimeoutError(RoomcastError): "No answer within the deadline.",
    ClosedError(RoomcastError): "The connection or server is closed.",
    RateLimitedError(RoomcastError): "The peer exceeded its rate limit.",
    PayloadTooLargeError(RoomcastError): "A message exceeded the maximum payload.",
    QueueFullError(RoomcastError): "A bounded queue is full.",
    InternalError(RoomcastError): "A bug or unexpected state inside roomcast.",
}

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
