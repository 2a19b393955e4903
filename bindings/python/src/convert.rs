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

/// An ack's arguments as a Python list.
pub(crate) fn to_py_list<'py>(py: Python<'py>, args: &Args) -> PyResult<Bound<'py, PyAny>> {
    let items = args.as_slice().iter().map(|d| to_py(py, d)).collect::<PyResult<Vec<_>>>()?;
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
