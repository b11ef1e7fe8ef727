//! `laissez consume --log-format json`: every log line one JSON object (`docs/spec.md` §10).
//!
//! A formatter of our own rather than tracing-subscriber's `json` one: that one writes every
//! field as a string, so the audit event's object (field `audit`) and the stop event's counts
//! (field `stats`) would arrive as JSON inside a JSON string, to be parsed twice. Here those
//! two fields, which the middleware fills with JSON objects it serialised itself, are embedded
//! as objects; every other field is a string, number or boolean as recorded.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How `consume` writes its log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// tracing's usual text lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, then the fields.
    Json,
}

/// The fields whose values are JSON objects made by the middleware, embedded as objects.
const OBJECT_FIELDS: [&str; 2] = ["audit", "stats"];

/// The JSON line formatter of [`LogFormat::Json`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let line = json_line(meta.level().as_str(), meta.target(), fields.0);
        writeln!(writer, "{line}")
    }
}

/// One log line as JSON: `timestamp` (RFC 3339, UTC), `level`, `target`, then `fields` in
/// their order (`message` first, as tracing records it). Every character outside printable
/// ASCII is escaped, as in the audit events: one line whatever a publisher chose.
pub(crate) fn json_line(level: &str, target: &str, fields: Map<String, Value>) -> String {
    let mut timestamp = String::new();
    // Formatting the clock into a String cannot fail.
    let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
    let mut line = Map::new();
    line.insert("timestamp".into(), Value::String(timestamp));
    line.insert("level".into(), Value::String(level.to_owned()));
    line.insert("target".into(), Value::String(target.to_owned()));
    line.extend(fields);
    let json = serde_json::to_string(&line).unwrap_or_else(|_| String::from("{}"));
    ascii(&json)
}

/// `json` with every character outside printable ASCII written `\uXXXX` (UTF-16 units), as
/// the audit events are: outside strings compact JSON is ASCII already, so only characters
/// inside strings change, to escapes that mean the same character.
fn ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Collects an event's fields as JSON values.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        let value = match OBJECT_FIELDS.contains(&field.name()) {
            true => match serde_json::from_str::<Value>(&text) {
                Ok(object @ Value::Object(_)) => object,
                _ => Value::String(text),
            },
            false => Value::String(text),
        };
        self.0.insert(field.name().to_owned(), value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_object_of_printable_ascii() {
        let mut fields = Map::new();
        fields.insert("message".into(), Value::String("a\nb\u{1b}[2J é".into()));
        let line = json_line("INFO", "laissez::audit", fields);
        assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)), "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["message"], "a\nb\u{1b}[2J é");
        assert_eq!(v["level"], "INFO");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["timestamp", "level", "target", "message"]);
    }
}
