//! An independent encoder of §16's JSON form into args CBOR, for tests: the verifier is
//! checked against bytes it did not produce (the signing crate has its own encoder).
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use serde_json::Value as Json;

use super::{head, int, raw_array, raw_map, text};

/// The CBOR of an args map in §16's JSON form, keys in the order of their encodings.
pub fn args_cbor(form: &Json) -> Vec<u8> {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = form
        .as_object()
        .expect("args are an object")
        .iter()
        .map(|(name, c)| (text(name), constraint_cbor(c)))
        .collect();
    pairs.sort();
    raw_map(&pairs)
}

/// One value: text, integer, bool or null.
pub fn value_cbor(v: &Json) -> Vec<u8> {
    match v {
        Json::String(s) => text(s),
        Json::Number(n) if n.is_i64() => int(n.as_i64().unwrap()),
        Json::Number(n) if n.is_u64() => head(0, n.as_u64().unwrap()),
        Json::Bool(false) => vec![0xf4],
        Json::Bool(true) => vec![0xf5],
        Json::Null => vec![0xf6],
        other => panic!("no value: {other}"),
    }
}

fn sorted_values(list: &Json) -> Vec<u8> {
    let mut values: Vec<Vec<u8>> = list.as_array().unwrap().iter().map(value_cbor).collect();
    values.sort();
    raw_array(&values)
}

/// One constraint in its JSON form.
pub fn constraint_cbor(c: &Json) -> Vec<u8> {
    if c == "any" {
        return raw_array(&[int(0)]);
    }
    let object = c.as_object().expect("a constraint");
    if let (Some(item), Some(max)) = (object.get("each"), object.get("max_items")) {
        return raw_array(&[int(11), constraint_cbor(item), value_cbor(max)]);
    }
    let (kind, arg) = object.iter().next().expect("one field");
    match kind.as_str() {
        "optional" => raw_array(&[int(1), constraint_cbor(arg)]),
        "eq" => raw_array(&[int(2), value_cbor(arg)]),
        "one_of" => raw_array(&[int(3), sorted_values(arg)]),
        "not_one_of" => raw_array(&[int(4), sorted_values(arg)]),
        "range" => raw_array(&[int(5), value_cbor(&arg[0]), value_cbor(&arg[1])]),
        "prefix" => raw_array(&[int(6), value_cbor(arg)]),
        "suffix" => raw_array(&[int(7), value_cbor(arg)]),
        "subpath" => raw_array(&[int(8), value_cbor(arg)]),
        "max_len" => raw_array(&[int(9), value_cbor(arg)]),
        "object" => raw_array(&[int(10), args_cbor(arg)]),
        "all" => raw_array(&[
            int(12),
            raw_array(
                &arg.as_array()
                    .unwrap()
                    .iter()
                    .map(constraint_cbor)
                    .collect::<Vec<_>>(),
            ),
        ]),
        other => panic!("no constraint kind {other}"),
    }
}
