//! The JSON form of args (`docs/spec.md` §16): what the command line takes and the other
//! languages' APIs write. `{"amount": {"range": [1, 500]}, "note": {"optional": "any"}}`.
//!
//! JSON text is read by serde_json through a visitor that refuses a member name written
//! twice: serde_json's own `Value` keeps the last of two, and args that silently lost a
//! constraint would grant more than was written.

use core::cell::RefCell;
use core::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value as Json};

use super::{Args, ArgsError, ArgsProblem, Constraint, Value, kind_path, member_path};
use laissez_verify::wire::args::MAX_LEVELS;

impl Args {
    /// Args from their JSON text, refusing a member name repeated in any object, then as
    /// [`Args::from_json`] does.
    pub fn from_json_str(text: &str) -> Result<Args, ArgsError> {
        let found = RefCell::new(None);
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = Strict {
            path: String::new(),
            found: &found,
        }
        .deserialize(&mut de)
        .and_then(|json| de.end().map(|()| json));
        match parsed {
            Ok(json) => Args::from_json(&json),
            // A repeated member is reported as itself, with its path; any other failure is
            // the parser's, with its line and column.
            Err(e) => Err(found
                .into_inner()
                .unwrap_or_else(|| ArgsError::new("", ArgsProblem::Json(e.to_string())))),
        }
    }

    /// Args from their JSON form (a JSON value that already holds no repeated member
    /// names: `serde_json::Value` cannot). Refused, with the path where it went wrong: any
    /// shape that is not the JSON form, and whatever [`Args::new`] refuses.
    pub fn from_json(json: &Json) -> Result<Args, ArgsError> {
        let members = args_members(json, "", 0)?;
        Args::new(members)
    }

    /// The JSON form: the object of member names, in wire order.
    pub fn to_json(&self) -> Json {
        Json::Object(
            self.members
                .iter()
                .map(|(name, c)| (name.clone(), constraint_json(c)))
                .collect(),
        )
    }
}

impl Value {
    /// The value as JSON.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Text(s) => Json::String(s.clone()),
            Value::Int(n) => Json::Number((*n).into()),
            Value::Bool(b) => Json::Bool(*b),
            Value::Null => Json::Null,
        }
    }

    /// A JSON string, integer within i64, `true`, `false` or `null`.
    pub fn from_json(json: &Json) -> Result<Value, ArgsProblem> {
        match json {
            Json::String(s) => Ok(Value::Text(s.clone())),
            Json::Number(n) => int(n).map(Value::Int),
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::Null => Ok(Value::Null),
            Json::Array(_) | Json::Object(_) => Err(ArgsProblem::NotAValue),
        }
    }
}

fn int(n: &Number) -> Result<i64, ArgsProblem> {
    n.as_i64()
        .ok_or_else(|| ArgsProblem::NotAnInteger(n.to_string()))
}

fn constraint_json(c: &Constraint) -> Json {
    let values = |vs: &[Value]| Json::Array(vs.iter().map(Value::to_json).collect());
    let bound = |b: Option<i64>| b.map_or(Json::Null, |n| Json::Number(n.into()));
    let one = |kind: &str, v: Json| {
        let mut map = Map::new();
        map.insert(kind.to_owned(), v);
        Json::Object(map)
    };
    match c {
        Constraint::Any => Json::String("any".to_owned()),
        Constraint::Optional(inner) => one("optional", constraint_json(inner)),
        Constraint::Eq(v) => one("eq", v.to_json()),
        Constraint::OneOf(vs) => one("one_of", values(vs)),
        Constraint::NotOneOf(vs) => one("not_one_of", values(vs)),
        Constraint::Range(min, max) => one("range", Json::Array(vec![bound(*min), bound(*max)])),
        Constraint::Prefix(s) => one("prefix", Json::String(s.clone())),
        Constraint::Suffix(s) => one("suffix", Json::String(s.clone())),
        Constraint::Subpath(s) => one("subpath", Json::String(s.clone())),
        Constraint::MaxLen(n) => one("max_len", Json::Number((*n).into())),
        Constraint::Object(args) => one("object", args.to_json()),
        Constraint::Each(item, max_items) => {
            let mut map = Map::new();
            map.insert("each".to_owned(), constraint_json(item));
            map.insert("max_items".to_owned(), Json::Number((*max_items).into()));
            Json::Object(map)
        }
        Constraint::All(all) => one(
            "all",
            Json::Array(all.iter().map(constraint_json).collect()),
        ),
    }
}

/// The members of an args object. `level` counts enclosing optional, object, each and all,
/// so a deep document is refused before it is walked further (the depth of a
/// `serde_json::Value` built in memory is not bounded by its parser's limit).
fn args_members(
    json: &Json,
    path: &str,
    level: usize,
) -> Result<Vec<(String, Constraint)>, ArgsError> {
    let Json::Object(map) = json else {
        return Err(ArgsError::new(path, ArgsProblem::NotAnObject));
    };
    map.iter()
        .map(|(name, c)| {
            Ok((
                name.clone(),
                constraint(c, &member_path(path, name), level)?,
            ))
        })
        .collect()
}

fn deeper(path: &str, level: usize) -> Result<usize, ArgsError> {
    if level >= MAX_LEVELS {
        return Err(ArgsError::new(path, ArgsProblem::TooDeep));
    }
    Ok(level + 1)
}

fn text(json: &Json, path: &str) -> Result<String, ArgsError> {
    json.as_str()
        .map(str::to_owned)
        .ok_or_else(|| ArgsError::new(path, ArgsProblem::NotText))
}

fn count(json: &Json, path: &str) -> Result<u64, ArgsError> {
    json.as_u64()
        .ok_or_else(|| ArgsError::new(path, ArgsProblem::NotACount))
}

fn list<'j>(json: &'j Json, path: &str) -> Result<&'j [Json], ArgsError> {
    json.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| ArgsError::new(path, ArgsProblem::NotAList))
}

fn values(json: &Json, path: &str) -> Result<Vec<Value>, ArgsError> {
    list(json, path)?
        .iter()
        .enumerate()
        .map(|(i, v)| Value::from_json(v).map_err(|p| ArgsError::new(&format!("{path}[{i}]"), p)))
        .collect()
}

fn bound(json: &Json, path: &str) -> Result<Option<i64>, ArgsError> {
    match json {
        Json::Null => Ok(None),
        Json::Number(n) => int(n).map(Some).map_err(|p| ArgsError::new(path, p)),
        _ => Err(ArgsError::new(path, ArgsProblem::NotARange)),
    }
}

/// One constraint: `"any"`, or an object naming its kind (and, for `each`, `max_items`).
fn constraint(json: &Json, path: &str, level: usize) -> Result<Constraint, ArgsError> {
    let map = match json {
        Json::String(s) if s == "any" => return Ok(Constraint::Any),
        Json::String(s) => return Err(ArgsError::new(path, ArgsProblem::UnknownKind(s.clone()))),
        Json::Object(map) => map,
        _ => return Err(ArgsError::new(path, ArgsProblem::NotAConstraint)),
    };
    if let Some(item) = map.get("each") {
        if let Some(extra) = map.keys().find(|k| *k != "each" && *k != "max_items") {
            return Err(ArgsError::new(
                path,
                ArgsProblem::UnexpectedField(extra.clone()),
            ));
        }
        let Some(max_items) = map.get("max_items") else {
            return Err(ArgsError::new(path, ArgsProblem::MissingField("max_items")));
        };
        let here = kind_path(path, "each");
        let item = constraint(item, &here, deeper(path, level)?)?;
        let max_items = count(max_items, &kind_path(path, "max_items"))?;
        return Ok(Constraint::Each(Box::new(item), max_items));
    }
    let mut entries = map.iter();
    let (kind, v) = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry,
        (None, _) => return Err(ArgsError::new(path, ArgsProblem::NotAConstraint)),
        (Some(_), Some((extra, _))) => {
            // `max_items` alone is an `each` without its constraint.
            let problem = if map.contains_key("max_items") {
                ArgsProblem::MissingField("each")
            } else {
                ArgsProblem::UnexpectedField(extra.clone())
            };
            return Err(ArgsError::new(path, problem));
        }
    };
    let here = kind_path(path, kind);
    Ok(match kind.as_str() {
        "optional" => Constraint::Optional(Box::new(constraint(v, &here, deeper(path, level)?)?)),
        "eq" => Constraint::Eq(Value::from_json(v).map_err(|p| ArgsError::new(&here, p))?),
        "one_of" => Constraint::OneOf(values(v, &here)?),
        "not_one_of" => Constraint::NotOneOf(values(v, &here)?),
        "range" => {
            match list(v, &here).map_err(|_| ArgsError::new(&here, ArgsProblem::NotARange))? {
                [min, max] => Constraint::Range(bound(min, &here)?, bound(max, &here)?),
                _ => return Err(ArgsError::new(&here, ArgsProblem::NotARange)),
            }
        }
        "prefix" => Constraint::Prefix(text(v, &here)?),
        "suffix" => Constraint::Suffix(text(v, &here)?),
        "subpath" => Constraint::Subpath(text(v, &here)?),
        "max_len" => Constraint::MaxLen(count(v, &here)?),
        "object" => Constraint::Object(Args {
            members: args_members(v, &here, deeper(path, level)?)?,
        }),
        "max_items" => return Err(ArgsError::new(path, ArgsProblem::MissingField("each"))),
        "all" => {
            let level = deeper(path, level)?;
            Constraint::All(
                list(v, &here)?
                    .iter()
                    .enumerate()
                    .map(|(i, c)| constraint(c, &format!("{here}[{i}]"), level))
                    .collect::<Result<_, _>>()?,
            )
        }
        other => {
            return Err(ArgsError::new(
                path,
                ArgsProblem::UnknownKind(other.to_owned()),
            ));
        }
    })
}

/// Deserializes any JSON into a `serde_json::Value`, refusing an object that names a member
/// twice. The typed refusal (with its path) goes into `found`, since serde's error carries
/// only text.
struct Strict<'f> {
    path: String,
    found: &'f RefCell<Option<ArgsError>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
        // Kept as a float so the args reader can say which number is no integer.
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict {
            path: format!("{}[{}]", self.path, items.len()),
            found: self.found,
        })? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                let problem = ArgsProblem::DuplicateMember(name.clone());
                *self.found.borrow_mut() = Some(ArgsError::new(&self.path, problem));
                return Err(de::Error::custom(format!(
                    "the member {name:?} is repeated"
                )));
            }
            let value = map.next_value_seed(Strict {
                path: member_path(&self.path, &name),
                found: self.found,
            })?;
            members.insert(name, value);
        }
        Ok(Json::Object(members))
    }
}
