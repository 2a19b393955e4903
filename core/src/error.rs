//! The one error type of roomcast. Every binding maps [`ErrorKind`] once
//! (C result codes, Python exception classes, Node error codes), so the kinds
//! are stable and never reused.

use std::fmt;

/// What went wrong, independent of the language the caller uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument was malformed (empty room name, bad address, bad key).
    InvalidArgument,
    /// The server or client configuration is inconsistent.
    Config,
    /// An operating-system I/O error (bind failed, connection reset).
    Io,
    /// The peer broke the wire protocol.
    Protocol,
    /// Authentication failed.
    Unauthorized,
    /// A hook refused the operation (join refused, connection refused).
    Refused,
    /// The socket, namespace or room does not exist.
    NotFound,
    /// No answer within the deadline (acks, connects).
    Timeout,
    /// The connection or server is closed.
    Closed,
    /// The peer exceeded its rate limit.
    RateLimited,
    /// A message exceeded the maximum payload size.
    PayloadTooLarge,
    /// A bounded queue is full (outbound queue, client offline queue).
    QueueFull,
    /// A bug or an unexpected state inside roomcast.
    Internal,
}

impl ErrorKind {
    const ALL: [ErrorKind; 13] = [
        Self::InvalidArgument,
        Self::Config,
        Self::Io,
        Self::Protocol,
        Self::Unauthorized,
        Self::Refused,
        Self::NotFound,
        Self::Timeout,
        Self::Closed,
        Self::RateLimited,
        Self::PayloadTooLarge,
        Self::QueueFull,
        Self::Internal,
    ];

    /// The kind whose [`ErrorKind::code`] is `code` (as another node reports it).
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Stable machine-readable name, used as the Node `code` and in logs.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidArgument => "ERR_INVALID_ARGUMENT",
            Self::Config => "ERR_CONFIG",
            Self::Io => "ERR_IO",
            Self::Protocol => "ERR_PROTOCOL",
            Self::Unauthorized => "ERR_UNAUTHORIZED",
            Self::Refused => "ERR_REFUSED",
            Self::NotFound => "ERR_NOT_FOUND",
            Self::Timeout => "ERR_TIMEOUT",
            Self::Closed => "ERR_CLOSED",
            Self::RateLimited => "ERR_RATE_LIMITED",
            Self::PayloadTooLarge => "ERR_PAYLOAD_TOO_LARGE",
            Self::QueueFull => "ERR_QUEUE_FULL",
            Self::Internal => "ERR_INTERNAL",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An error with its kind and a human-readable message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The kind, for matching and for bindings.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn closed() -> Self {
        Self::new(ErrorKind::Closed, "connection closed")
    }

    pub(crate) fn timeout(what: &str) -> Self {
        Self::new(ErrorKind::Timeout, format!("{what} timed out"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::new(ErrorKind::Io, e.to_string()).with_source(e)
    }
}

/// `Result` with roomcast's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn codes_name_their_kinds() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(ErrorKind::from_code("ERR_NOPE"), None);
    }
}
