//! Arguments (`docs/spec.md` §16), budgets (§17) and approval waivers (§12) from Python
//! values, for `sign` and `delegate`. Python objects become a `serde_json::Value` here and
//! nothing more: every rule about what args may hold is `laissez_sign::args`'s, so Python
//! refuses exactly what `laissez sign --args` refuses, with the same codes and paths.

use laissez_sign::SpecError;
use laissez_sign::args::{Args, Budget, Waiver};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value as Json};

use crate::args::spec_error;
use crate::{SignError, error, is_str};

/// How deeply Python containers may nest before they are refused unread. Args allow about
/// 25 JSON levels (§16); this bound only keeps a self-containing or absurdly deep object from
/// exhausting the stack, and is far above anything the args reader accepts.
const MAX_DEPTH: usize = 64;

/// A Python value that cannot be written as JSON: where, and why.
struct NotJson {
    path: String,
    why: String,
}

fn member_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// `value` as JSON: `None`, `bool`, `int`, `float`, `str`, `dict` with `str` keys, `list` and
/// `tuple`. A finite float becomes a JSON number that the args reader then refuses where it
/// reads one, naming its path ("not an integer"); an int beyond both i64 and u64 cannot be a
/// JSON number that reader accepts, and is refused here.
fn to_json(value: &Bound<'_, PyAny>, path: &str, depth: usize) -> Result<Json, NotJson> {
    let fail = |why: String| NotJson {
        path: path.to_owned(),
        why,
    };
    if depth > MAX_DEPTH {
        return Err(fail(format!("nested more than {MAX_DEPTH} levels deep")));
    }
    if value.is_none() {
        return Ok(Json::Null);
    }
    // Before int: a Python bool is an int.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Json::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(n) = value.extract::<i64>() {
            return Ok(Json::Number(n.into()));
        }
        if let Ok(n) = value.extract::<u64>() {
            return Ok(Json::Number(n.into()));
        }
        return Err(fail(format!(
            "{} is not an integer within -2^63..2^63-1",
            value
                .str()
                .map_or_else(|_| "an int".into(), |s| s.to_string())
        )));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        let f = f.value();
        return Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| fail(format!("{f} is not a number JSON can hold")));
    }
    if value.is_instance_of::<PyString>() {
        return Ok(Json::String(
            value.extract::<String>().map_err(|e| fail(e.to_string()))?,
        ));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (key, item) in dict.iter() {
            if !key.is_instance_of::<PyString>() {
                let shown = key.repr().map_or_else(|_| "?".into(), |r| r.to_string());
                return Err(fail(format!("the member name {shown} is not a str")));
            }
            let name = key.extract::<String>().map_err(|e| fail(e.to_string()))?;
            let item = to_json(&item, &member_path(path, &name), depth + 1)?;
            map.insert(name, item);
        }
        return Ok(Json::Object(map));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in value
            .try_iter()
            .map_err(|e| fail(e.to_string()))?
            .enumerate()
        {
            let item = item.map_err(|e| fail(e.to_string()))?;
            items.push(to_json(&item, &format!("{path}[{i}]"), depth + 1)?);
        }
        return Ok(Json::Array(items));
    }
    let kind = value
        .get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string());
    Err(fail(format!(
        "a {kind} is not JSON: args are dicts, lists, str, int, bool and None"
    )))
}

/// Args for `pattern` from their JSON form: a dict (the JSON object, as Python values) or the
/// JSON text, whose repeated member names are refused (a dict cannot repeat one). Refused
/// with `SignError`, `.reason` the args reader's code (e.g. `range_order`, `not_an_integer`,
/// `duplicate_member`; `not_json` for a Python value JSON cannot hold) and a message naming
/// the pattern and the path, as `laissez sign --args`.
pub(crate) fn args_for(py: Python<'_>, pattern: &str, value: &Bound<'_, PyAny>) -> PyResult<Args> {
    let read = if is_str(value) {
        Args::from_json_str(&value.extract::<String>()?)
    } else {
        let json = to_json(value, "", 0).map_err(|e| {
            let at = if e.path.is_empty() {
                "at the top level".to_owned()
            } else {
                format!("at {}", e.path)
            };
            error::<SignError>(
                py,
                "not_json",
                format!("the args for {pattern} are not valid: {at}: {}", e.why),
            )
        })?;
        Args::from_json(&json)
    };
    read.map_err(|error| {
        spec_error(
            py,
            &SpecError::Args {
                pattern: pattern.to_owned(),
                error,
            },
        )
    })
}

/// `args={pattern: args, ...}`: each pattern with its args (`args_for`). The builder then
/// refuses a pattern no tool grant names (`args_without_tool`).
pub(crate) fn tool_args(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Vec<(String, Args)>> {
    let dict = value.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(
            "args is a dict of tool pattern to args: {'billing.refund': {'amount': {'range': [0, 500]}}}",
        )
    })?;
    let mut out = Vec::new();
    for (pattern, args) in dict.iter() {
        let pattern: String = pattern
            .extract()
            .map_err(|_| PyTypeError::new_err("args: each key is a tool pattern (a str)"))?;
        let args = args_for(py, &pattern, &args)?;
        out.push((pattern, args));
    }
    Ok(out)
}

/// The items of a list of `n`-tuples whose first member is a pattern (a `str`): each as
/// (pattern, the tuple). Anything else is a `TypeError` saying the expected `shape`.
fn tuples<'py>(
    value: &Bound<'py, PyAny>,
    n: usize,
    shape: &'static str,
) -> PyResult<Vec<(String, Bound<'py, PyTuple>)>> {
    let wrong = || PyTypeError::new_err(shape);
    if is_str(value) {
        return Err(wrong());
    }
    let mut out = Vec::new();
    for item in value.try_iter().map_err(|_| wrong())? {
        let tuple = item?.cast_into::<PyTuple>().map_err(|_| wrong())?;
        if tuple.len() != n {
            return Err(wrong());
        }
        let pattern: String = tuple.get_item(0)?.extract().map_err(|_| wrong())?;
        out.push((pattern, tuple));
    }
    Ok(out)
}

/// `budgets=[(pattern, member, limit), ...]`. A limit that is not an int from 1 to 2^53-1 is
/// a `SignError` (`budget_limit`), as are a bad pattern and a repeated (pattern, member)
/// (the builder's checks).
pub(crate) fn budgets(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Vec<Budget>> {
    const SHAPE: &str = "budgets is a list of (pattern, member, limit) tuples: [('billing.refund', 'amount', 100000)]";
    let mut out = Vec::new();
    for (pattern, tuple) in tuples(value, 3, SHAPE)? {
        let member: String = tuple
            .get_item(1)?
            .extract()
            .map_err(|_| PyTypeError::new_err(SHAPE))?;
        let limit = tuple.get_item(2)?;
        // Python ints have no bound; one that is no u64 (negative, or huge) is a bad limit.
        let limit = match limit.extract::<u64>() {
            Ok(n) if limit.is_instance_of::<PyInt>() && !limit.is_instance_of::<PyBool>() => n,
            _ => {
                let shown = limit.str().map_or_else(|_| "?".into(), |s| s.to_string());
                let e = SpecError::BudgetLimit(shown);
                return Err(spec_error(py, &e));
            }
        };
        out.push(Budget::new(pattern, member, limit));
    }
    Ok(out)
}

/// `unless=[(pattern, args), ...]`: an approval rule's waivers, args as `args_for` reads them.
pub(crate) fn waivers(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Vec<Waiver>> {
    const SHAPE: &str = "unless is a list of (pattern, args) tuples: [('billing.refund', {'amount': {'range': [None, 500]}})]";
    let mut out = Vec::new();
    for (pattern, tuple) in tuples(value, 2, SHAPE)? {
        let args = args_for(py, &pattern, &tuple.get_item(1)?)?;
        out.push(Waiver::new(pattern, args));
    }
    Ok(out)
}
