//! JS values ↔ event arguments through napi's serde bridge: JSON types both
//! ways, `Buffer` / typed arrays ↔ binary (serde bytes become Buffers).

use std::collections::BTreeMap;
use std::fmt;

use napi::bindgen_prelude::*;
use roomcast::{Args, Data};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Borrowed event data, serialized to JS.
struct Out<'a>(&'a Data);

impl Serialize for Out<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Data::Null => s.serialize_unit(),
            Data::Bool(b) => s.serialize_bool(*b),
            Data::Number(n) => number(n, s),
            Data::String(v) => s.serialize_str(v),
            Data::Binary(b) => s.serialize_bytes(b),
            Data::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Out(item))?;
                }
                seq.end()
            }
            Data::Object(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(k, &Out(v))?;
                }
                m.end()
            }
        }
    }
}

/// A JSON number as a JS number: napi would make an integer beyond u32 a
/// BigInt (e.g. `Date.now()`); as a number it is what `JSON.parse` gives.
fn number<S: Serializer>(n: &serde_json::Number, s: S) -> std::result::Result<S::Ok, S::Error> {
    match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => s.serialize_i64(i),
        (None, Some(f)) => s.serialize_f64(f),
        (None, None) => n.serialize(s),
    }
}

/// Event data read from JS. `undefined` reads as null.
struct In(Data);

impl<'de> Deserialize<'de> for In {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(InVisitor).map(In)
    }
}

struct InVisitor;

impl<'de> Visitor<'de> for InVisitor {
    type Value = Data;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value or binary (Buffer, typed array)")
    }
    fn visit_unit<E>(self) -> std::result::Result<Data, E> {
        Ok(Data::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Data, E> {
        Ok(Data::Null)
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Data, E> {
        Ok(Data::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Data, E> {
        Ok(Data::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Data, E> {
        Ok(Data::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Data, E> {
        // JSON.stringify sends NaN and infinities as null; so do we.
        Ok(serde_json::Number::from_f64(v).map_or(Data::Null, Data::Number))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Data, E> {
        Ok(Data::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Data, E> {
        Ok(Data::String(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> std::result::Result<Data, E> {
        Ok(Data::Binary(bytes::Bytes::copy_from_slice(v)))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> std::result::Result<Data, E> {
        Ok(Data::Binary(v.into()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Data, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(In(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Data::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Data, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((k, In(v))) = map.next_entry::<String, In>()? {
            out.insert(k, v);
        }
        Ok(Data::Object(out))
    }
}

/// A JS array of arguments as event arguments.
pub(crate) fn args_from_js(env: &Env, args: Unknown<'_>) -> Result<Args> {
    let items: Vec<In> = env.from_js_value(args)?;
    Ok(Args::new(items.into_iter().map(|In(d)| d).collect()))
}

/// A JS value (JSON values, binary) as the core keeps socket data: JSON,
/// binary as `{"$binary": base64}`.
pub(crate) fn data_from_js(env: &Env, value: Unknown<'_>) -> Result<serde_json::Value> {
    let In(data) = env.from_js_value(value)?;
    Ok(roomcast::hub::args::to_json(&data))
}

/// Event arguments handed to a JS callback (a JS array, built on the JS thread).
pub struct JsArgs(pub Args);

/// JSON handed to a JS callback, built on the JS thread.
pub struct JsJson<T: Serialize>(pub T);

/// Plain JSON handed to JS (numbers as numbers): what the core serializes
/// (members, metadata, `auth`), built on the JS thread.
pub struct JsPlain(pub Data);

impl JsPlain {
    pub fn of<T: Serialize>(value: &T) -> Self {
        Self(serde_json::to_value(value).map_or(Data::Null, Data::from))
    }
}

impl Serialize for JsPlain {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        Out(&self.0).serialize(s)
    }
}

impl Serialize for JsArgs {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.as_slice().iter().map(Out))
    }
}

/// A JS event callback's answer: the ack's arguments (an array), none
/// (`undefined` / `null`), or `false` when no listener took the event.
pub struct ReplyIn(pub roomcast::Reply);

// napi's conversion traits are `unsafe fn`s; these bodies only call napi's
// safe serde bridge on the JS thread that napi calls them on.
#[allow(unsafe_code)]
mod conversions {
    use napi::bindgen_prelude::*;
    use napi::sys;
    use serde::Serialize;

    use roomcast::Reply;

    use super::{In, JsArgs, JsJson, JsPlain, ReplyIn};

    impl ToNapiValue for JsArgs {
        unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
            unsafe { JsJson::to_napi_value(env, JsJson(val)) }
        }
    }

    impl ToNapiValue for JsPlain {
        unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
            unsafe { JsJson::to_napi_value(env, JsJson(val)) }
        }
    }

    impl<T: Serialize> ToNapiValue for JsJson<T> {
        unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
            let env = Env::from_raw(env);
            let js = env.to_js_value(&val.0)?;
            Ok(js.raw())
        }
    }

    impl FromNapiValue for ReplyIn {
        unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
            let env = Env::from_raw(env);
            let js = unsafe { Unknown::from_raw_unchecked(env.raw(), value) };
            let reply = match js.get_type()? {
                ValueType::Undefined | ValueType::Null => Reply::None,
                ValueType::Boolean => Reply::Unhandled,
                _ => {
                    let items: Vec<In> = env.from_js_value(js)?;
                    Reply::Data(roomcast::Args::new(items.into_iter().map(|In(d)| d).collect()))
                }
            };
            Ok(ReplyIn(reply))
        }
    }
}
