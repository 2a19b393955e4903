//! The benchmark payload `{"p":<publisher>,"n":<seq>,"t":<ns>,"x":"<padding>"}`,
//! padded to [`PAYLOAD_LEN`] bytes of JSON, and a fast parser for it.

use serde::Deserialize;

/// Size of one payload as JSON text.
pub const PAYLOAD_LEN: usize = 100;

/// What a payload carries: publisher (or client) number, sequence number and
/// send time in nanoseconds on the generator's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Payload {
    pub p: u32,
    pub n: u64,
    pub t: u64,
}

/// Append `v` in decimal.
pub fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Append the payload as exactly [`PAYLOAD_LEN`] bytes of JSON (longer only
/// if the numbers alone do not fit, which needs absurd values).
pub fn write_payload(out: &mut Vec<u8>, p: Payload) {
    let start = out.len();
    out.extend_from_slice(b"{\"p\":");
    write_u64(out, u64::from(p.p));
    out.extend_from_slice(b",\"n\":");
    write_u64(out, p.n);
    out.extend_from_slice(b",\"t\":");
    write_u64(out, p.t);
    out.extend_from_slice(b",\"x\":\"");
    let used = out.len() - start + 2; // closing `"}`
    let pad = PAYLOAD_LEN.saturating_sub(used);
    out.resize(out.len() + pad, b'x');
    out.extend_from_slice(b"\"}");
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

fn parse_uint(s: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let start = i;
    let mut v: u64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(s[i] - b'0'))?;
        i += 1;
    }
    (i > start).then_some((v, i))
}

/// Skip a JSON string starting at the opening quote; returns the index after
/// the closing quote.
fn skip_string(s: &[u8], mut i: usize) -> Option<usize> {
    if s.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// Fast path: parse a payload object at the start of `s` (after optional
/// whitespace), in any key order, with integer, string or null values only.
/// Returns the payload and the index just after its closing brace. `None`
/// means "not this simple shape" — callers then fall back to serde_json.
pub fn parse_payload(s: &[u8]) -> Option<(Payload, usize)> {
    let mut i = skip_ws(s, 0);
    if s.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let (mut p, mut n, mut t) = (None, None, None);
    loop {
        i = skip_ws(s, i);
        if s.get(i) == Some(&b'}') && p.is_none() && n.is_none() && t.is_none() {
            return None; // empty object
        }
        let key_start = i + 1;
        let key_end = skip_string(s, i)?;
        let key = &s[key_start..key_end - 1];
        i = skip_ws(s, key_end);
        if s.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(s, i + 1);
        match s.get(i)? {
            b'0'..=b'9' => {
                let (v, next) = parse_uint(s, i)?;
                // Integers written as floats (`1.0`, `1e3`) take the slow path.
                if matches!(s.get(next), Some(b'.' | b'e' | b'E')) {
                    return None;
                }
                match key {
                    b"p" => p = Some(u32::try_from(v).ok()?),
                    b"n" => n = Some(v),
                    b"t" => t = Some(v),
                    _ => {}
                }
                i = next;
            }
            b'"' => {
                if matches!(key, b"p" | b"n" | b"t") {
                    return None;
                }
                i = skip_string(s, i)?;
            }
            b'n' if s[i..].starts_with(b"null") => i += 4,
            _ => return None,
        }
        i = skip_ws(s, i);
        match s.get(i)? {
            b',' => i += 1,
            b'}' => {
                return Some((Payload { p: p?, n: n?, t: t? }, i + 1));
            }
            _ => return None,
        }
    }
}

/// Parse a payload from any JSON value (the slow path).
pub fn payload_from_value(v: &serde_json::Value) -> Option<Payload> {
    Payload::deserialize(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_100_bytes_and_round_trips() {
        let p = Payload { p: 3, n: 123_456, t: 987_654_321_000 };
        let mut out = Vec::new();
        write_payload(&mut out, p);
        assert_eq!(out.len(), PAYLOAD_LEN);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["n"], 123_456);
        assert_eq!(parse_payload(&out), Some((p, out.len())));
        assert_eq!(payload_from_value(&v), Some(p));
        let mut zero = Vec::new();
        write_payload(&mut zero, Payload { p: 0, n: 0, t: 0 });
        assert_eq!(zero.len(), PAYLOAD_LEN);
    }

    #[test]
    fn write_u64_extremes() {
        let mut out = Vec::new();
        write_u64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, format!("0 {}", u64::MAX).as_bytes());
    }

    #[test]
    fn parse_any_order_and_whitespace() {
        let s = br#"{"n": 5, "t": 7, "x": "a\"b", "p": 1, "z": null}]"#;
        let (p, end) = parse_payload(s).unwrap();
        assert_eq!(p, Payload { p: 1, n: 5, t: 7 });
        assert_eq!(&s[end..], b"]");
    }

    #[test]
    fn parse_rejects_other_shapes() {
        assert_eq!(parse_payload(br#"{"p":1,"n":2}"#), None); // missing t
        assert_eq!(parse_payload(br#"{"p":1,"n":2,"t":3.0}"#), None); // float: slow path
        assert_eq!(parse_payload(br#"{"p":1,"n":2,"t":3,"o":{}}"#), None); // nested: slow path
        assert_eq!(parse_payload(br#"{"p":"1","n":2,"t":3}"#), None);
        assert_eq!(parse_payload(br#"[1]"#), None);
        assert_eq!(parse_payload(br#"{}"#), None);
        assert_eq!(parse_payload(br#"{"p":1,"n":2,"t":3"#), None); // truncated
        assert_eq!(parse_payload(br#"{"p":99999999999,"n":2,"t":3}"#), None); // p over u32
    }
}
