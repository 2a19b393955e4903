//! Python values ↔ event arguments: JSON types both ways, `bytes` ↔ binary.

use std::collections::BTreeMap;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use roomcast::{Args, Data};

/// A Python value as event data. Dict keys must be strings.
pub(crate) fn to_data(v: &Bound<'_, PyAny>) -> PyResult<Data> {
    if v.is_none() {
        return Ok(Data::Null);
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Data::Bool(b.is_true()));
    }
    if let Ok(i) = v.cast::<PyInt>() {
        if let Ok(n) = i.extract::<i64>() {
            return Ok(Data::Number(n.into()));
        }
        if let Ok(n) = i.extract::<u64>() {
            return Ok(Data::Number(n.into()));
        }
        return Err(PyTypeError::new_err("integer out of the 64-bit range"));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return serde_json::Number::from_f64(f.value())
            .map(Data::Number)
            .ok_or_else(|| PyTypeError::new_err("NaN and infinities are not JSON"));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Data::String(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Data::Binary(bytes::Bytes::copy_from_slice(b.as_bytes())));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(Data::Binary(bytes::Bytes::from(b.to_vec())));
    }
    if let Ok(l) = v.cast::<PyList>() {
        return l.iter().map(|x| to_data(&x)).collect::<PyResult<_>>().map(Data::Array);
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        return t.iter().map(|x| to_data(&x)).collect::<PyResult<_>>().map(Data::Array);
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut map = BTreeMap::new();
        for (k, x) in d.iter() {
            let key = k.cast::<PyString>().map_err(|_| PyTypeError::new_err("dict keys must be str"))?;
            map.insert(key.to_cow()?.into_owned(), to_data(&x)?);
        }
        return Ok(Data::Object(map));
    }
    Err(PyTypeError::new_err(format!("cannot send a {} (JSON types and bytes only)", v.get_type().name()?)))
}

/// Event data as a Python value.
pub(crate) fn to_py<'py>(py: Python<'py>, d: &Data) -> PyResult<Bound<'py, PyAny>> {
    Ok(match d {
        Data::Null => py.None().into_bound(py),
        Data::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Data::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Data::String(s) => PyString::new(py, s).into_any(),
        Data::Binary(b) => PyBytes::new(py, b).into_any(),
        Data::Array(items) => {
            PyList::new(py, items.iter().map(|x| to_py(py, x)).collect::<PyResult<Vec<_>>>()?)?.into_any()
        }
        Data::Object(map) => {
            let dict = PyDict::new(py);
            for (k, x) in map {
                dict.set_item(k, to_py(py, x)?)?;
            }
            dict.into_any()
        }
    })
}

/// A JSON value (a presence member, a lost socket, ...) as a Python value.
pub(crate) fn json_to_py(py: Python<'_>, v: serde_json::Value) -> PyResult<Bound<'_, PyAny>> {
    to_py(py, &Data::from(v))
}

/// A core value serialized by `serde_json::to_value` (a struct: a dict
/// with camelCase keys) as a Python value.
pub(crate) fn serialized(py: Python<'_>, v: serde_json::Result<serde_json::Value>) -> PyResult<Bound<'_, PyAny>> {
    json_to_py(py, v.map_err(|e| crate::errors::InternalError::new_err(e.to_string()))?)
}

/// A Python value as JSON (bytes as `{"$binary": base64}`).
pub(crate) fn to_json(v: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    Ok(roomcast::hub::args::to_json(&to_data(v)?))
}

/// An ack's arguments as a Python list.
pub(crate) fn to_py_list<'py>(py: Python<'py>, args: &Args) -> PyResult<Bound<'py, PyAny>> {
    let items = args.as_slice().iter().map(|d| to_py(py, d)).collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, items)?.into_any())
}

/// A cluster-wide answer as the tuple `(value, missing node ids)`.
pub(crate) fn partial<'py, T>(
    py: Python<'py>,
    answer: roomcast::Partial<T>,
    value: impl FnOnce(Python<'py>, T) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let missing = answer.missing.into_pyobject(py)?.into_any();
    Ok(PyTuple::new(py, [value(py, answer.value)?, missing])?.into_any())
}

/// A count as a Python int.
pub(crate) fn count(py: Python<'_>, n: usize) -> PyResult<Bound<'_, PyAny>> {
    Ok(n.into_pyobject(py)?.into_any())
}

/// Acks gathered across the cluster as a list of `(sid, reply, error)`:
/// `reply` the ack's arguments (a list) or None, `error` None or the error
/// code of a socket that did not ack (`ERR_TIMEOUT`, `ERR_CLOSED`).
pub(crate) fn ack_replies(py: Python<'_>, replies: Vec<roomcast::AckReply>) -> PyResult<Bound<'_, PyAny>> {
    let items = replies
        .into_iter()
        .map(|r| {
            let sid = PyString::new(py, &r.sid).into_any();
            let (reply, error) = match r.into_args() {
                Ok(args) => (to_py_list(py, &args)?, py.None().into_bound(py)),
                Err(code) => (py.None().into_bound(py), PyString::new(py, &code).into_any()),
            };
            PyTuple::new(py, [sid, reply, error])
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, items)?.into_any())
}

/// The value of an awaitable that has none.
pub(crate) fn none(py: Python<'_>, (): ()) -> PyResult<Bound<'_, PyAny>> {
    Ok(py.None().into_bound(py))
}

/// A duration given in seconds, as Python APIs take it.
pub(crate) fn seconds(s: f64, what: &str) -> PyResult<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(s).map_err(|_| {
        crate::errors::InvalidArgumentError::new_err(format!("{what} must be a positive number of seconds"))
    })
}

/// Arguments from a Python sequence of values.
pub(crate) fn to_args(items: &Bound<'_, PyAny>) -> PyResult<Args> {
    items.try_iter()?.map(|x| to_data(&x?)).collect::<PyResult<Vec<_>>>().map(Args::new)
}
