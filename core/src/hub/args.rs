//! Event arguments: what an emit carries and a handler receives.
//!
//! Socket.IO events carry any number of arguments, each JSON with binary
//! leaves; the JSON protocol carries one `data` value. [`Args`] holds the
//! general form, and converts to the JSON protocol's single value only at
//! its edge.

use std::fmt;

use base64::Engine as _;
use serde_json::Value;

pub use crate::protocol::socketio::Data;

/// The arguments of one event or ack.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Args(Vec<Data>);

impl Args {
    /// No arguments.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Exactly one argument.
    pub fn one(data: impl Into<Data>) -> Self {
        Self(vec![data.into()])
    }

    /// The argument list as given.
    pub fn new(args: Vec<Data>) -> Self {
        Self(args)
    }

    /// Argument `i`.
    pub fn get(&self, i: usize) -> Option<&Data> {
        self.0.get(i)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Data] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Data> {
        self.0
    }

    /// Whether any argument holds binary.
    pub fn has_binary(&self) -> bool {
        self.0.iter().any(Data::has_binary)
    }

    /// A single JSON value: `null` for no argument, the argument itself for
    /// one, an array for several. Binary becomes `{"$binary": "<base64>"}`,
    /// the JSON protocol's representation of bytes.
    pub fn json(&self) -> Value {
        match self.0.as_slice() {
            [] => Value::Null,
            [one] => to_json(one),
            many => Value::Array(many.iter().map(to_json).collect()),
        }
    }

    /// Argument `i` as JSON (`null` when absent).
    pub fn json_at(&self, i: usize) -> Value {
        self.0.get(i).map_or(Value::Null, to_json)
    }
}

/// JSON with binary leaves as `{"$binary": base64}`.
pub fn to_json(data: &Data) -> Value {
    match data {
        Data::Null => Value::Null,
        Data::Bool(b) => Value::Bool(*b),
        Data::Number(n) => Value::Number(n.clone()),
        Data::String(s) => Value::String(s.clone()),
        Data::Binary(b) => {
            serde_json::json!({"$binary": base64::engine::general_purpose::STANDARD.encode(b)})
        }
        Data::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Data::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

/// The inverse of [`to_json`]: `{"$binary": base64}` objects become bytes.
pub fn from_json(value: Value) -> Data {
    match value {
        Value::Object(map) if map.len() == 1 => match map.get("$binary") {
            Some(Value::String(b64)) => match base64::engine::general_purpose::STANDARD.decode(b64) {
                Ok(bytes) => Data::Binary(bytes.into()),
                Err(_) => Data::from(Value::Object(map)),
            },
            _ => Data::Object(map.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
        },
        Value::Object(map) => Data::Object(map.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
        Value::Array(items) => Data::Array(items.into_iter().map(from_json).collect()),
        other => Data::from(other),
    }
}

impl From<Value> for Args {
    /// One argument (use [`Args::new`] for several).
    fn from(v: Value) -> Self {
        Self::one(v)
    }
}

impl From<Data> for Args {
    fn from(d: Data) -> Self {
        Self::one(d)
    }
}

impl From<Vec<Data>> for Args {
    fn from(v: Vec<Data>) -> Self {
        Self(v)
    }
}

impl From<()> for Args {
    fn from((): ()) -> Self {
        Self::none()
    }
}

impl fmt::Display for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_view() {
        assert_eq!(Args::none().json(), Value::Null);
        assert_eq!(Args::one(json!({"a": 1})).json(), json!({"a": 1}));
        assert_eq!(Args::new(vec![Data::Bool(true), Data::from("x")]).json(), json!([true, "x"]));
        let bin = Args::one(Data::Binary(bytes::Bytes::from_static(b"hi")));
        assert!(bin.has_binary());
        assert_eq!(bin.json(), json!({"$binary": "aGk="}));
        assert_eq!(bin.json_at(3), Value::Null);
        assert_eq!(from_json(bin.json()), Data::Binary(bytes::Bytes::from_static(b"hi")));
        assert_eq!(from_json(json!([{"$binary": "!!"}])), Data::from(json!([{"$binary": "!!"}])));
    }
}
