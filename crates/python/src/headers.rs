//! AMQP headers from what a Python client received (`Worker.admit`): the `laissez-*` entries
//! of a pika or aio-pika header dict, back in the types the broker sent, for the middleware's
//! own header reader (`docs/spec.md` §9), which judges them.

use laissez_amqp::lapin::types::{AMQPValue, ByteArray, FieldArray, FieldTable, LongString};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyTuple};

use crate::{bytes_like, is_str};

/// How deep a header value's lists and tables are read; deeper values are void (which the
/// header reader refuses like any value of the wrong type).
const MAX_HEADER_DEPTH: usize = 8;

/// The `laissez-*` headers of a pika or aio-pika header dict, as the broker sent them.
pub(crate) fn laissez_headers(headers: &Bound<'_, PyAny>) -> PyResult<FieldTable> {
    let headers = headers
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err("headers is a dict (or None)"))?;
    let mut table = FieldTable::default();
    for (key, value) in headers.iter() {
        let Ok(key) = key.extract::<String>() else {
            continue;
        };
        if key.starts_with("laissez-") {
            table.insert(key.into(), amqp_value(&value, 0)?);
        }
    }
    Ok(table)
}

/// One header value as AMQP carries it: a str is a long string, bytes a byte array, a list or
/// tuple an array, a dict a table, an int, a float, a bool or None the number, boolean or void;
/// anything else (a client's timestamp or decimal) void, which the header reader refuses as
/// it refuses every value of the wrong type.
fn amqp_value(value: &Bound<'_, PyAny>, depth: usize) -> PyResult<AMQPValue> {
    if depth > MAX_HEADER_DEPTH || value.is_none() {
        return Ok(AMQPValue::Void);
    }
    if value.is_instance_of::<PyBool>() {
        return Ok(AMQPValue::Boolean(value.extract()?));
    }
    if is_str(value) {
        return Ok(AMQPValue::LongString(LongString::from(
            value.extract::<String>()?,
        )));
    }
    if let Ok(bytes) = bytes_like(value, "a header") {
        return Ok(AMQPValue::ByteArray(ByteArray::from(bytes)));
    }
    if value.is_instance_of::<PyInt>() {
        return Ok(value
            .extract::<i64>()
            .map_or(AMQPValue::Void, AMQPValue::LongLongInt));
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(AMQPValue::Double(value.extract()?));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for item in value.try_iter()? {
            items.push(amqp_value(&item?, depth + 1)?);
        }
        return Ok(AMQPValue::FieldArray(FieldArray::from(items)));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut table = FieldTable::default();
        for (key, item) in dict.iter() {
            if let Ok(key) = key.extract::<String>() {
                table.insert(key.into(), amqp_value(&item, depth + 1)?);
            }
        }
        return Ok(AMQPValue::FieldTable(table));
    }
    Ok(AMQPValue::Void)
}
