//! The queue topology as data for the Python helpers (`laissez.pika.declare_topology`,
//! `laissez.aio_pika.declare_topology`): the names and each queue's arguments come from
//! `laissez_amqp::Topology`, the one that `laissez declare` and Rust workers declare
//! (`docs/spec.md` §9); the helpers only issue their client's calls.

use laissez_amqp::{Argument, ArgumentValue, Topology};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt};

/// `(names, arguments)` of `queue`'s standard topology. `names` maps `queue`,
/// `dead_letter_exchange`, `dead_letter_queue` and `retry_queue` to their names;
/// `arguments` maps `dead_letter_queue`, `queue` and `retry_queue` to that queue's
/// declaration arguments (quorum queues when `quorum` is true, the work queue with
/// `x-delivery-limit` = `delivery_limit`). Raises ValueError for an empty queue name or a
/// delivery limit that is not an integer from 1 to 2**31-1.
#[pyfunction]
#[pyo3(name = "_topology", signature = (queue, *, quorum, delivery_limit))]
pub(crate) fn topology<'py>(
    py: Python<'py>,
    queue: &str,
    quorum: &Bound<'py, PyAny>,
    delivery_limit: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    if queue.is_empty() {
        return Err(PyValueError::new_err("the queue name must not be empty"));
    }
    let delivery_limit = delivery_limit_of(delivery_limit)
        .ok_or_else(|| PyValueError::new_err("delivery_limit is an integer from 1 to 2**31-1"))?;
    let mut topology = Topology::new(queue);
    if quorum.is_truthy()? {
        topology = topology.quorum(delivery_limit);
    }
    let names = PyDict::new(py);
    names.set_item("queue", &topology.queue)?;
    names.set_item("dead_letter_exchange", &topology.dead_letter_exchange)?;
    names.set_item("dead_letter_queue", &topology.dead_letter_queue)?;
    names.set_item("retry_queue", &topology.retry_queue)?;
    let arguments = PyDict::new(py);
    for (role, of_queue) in [
        ("dead_letter_queue", topology.dead_letter_queue_arguments()),
        ("queue", topology.queue_arguments()),
        ("retry_queue", topology.retry_queue_arguments()),
    ] {
        arguments.set_item(role, table(py, &of_queue)?)?;
    }
    Ok((names, arguments))
}

/// A delivery limit Python gave: an `int` (not a `bool`) from 1 to
/// `Topology::MAX_DELIVERY_LIMIT`, or None.
fn delivery_limit_of(value: &Bound<'_, PyAny>) -> Option<u32> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return None;
    }
    let limit = u32::try_from(value.extract::<i64>().ok()?).ok()?;
    (1..=Topology::MAX_DELIVERY_LIMIT)
        .contains(&limit)
        .then_some(limit)
}

/// `arguments` as a dict of argument name to `str` or `int`.
fn table<'py>(py: Python<'py>, arguments: &[Argument]) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for argument in arguments {
        match &argument.value {
            ArgumentValue::Text(text) => dict.set_item(argument.key, text)?,
            ArgumentValue::Integer(number) => dict.set_item(argument.key, number)?,
            other => {
                return Err(PyValueError::new_err(format!(
                    "the argument {} has a value this binding cannot give Python: {other:?}",
                    argument.key
                )));
            }
        }
    }
    Ok(dict)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(topology, m)?)?;
    Ok(())
}
