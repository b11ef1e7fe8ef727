//! Keeps lapin's report of an expected answer out of the log (`docs/spec.md` §10): lapin logs
//! at ERROR every channel the broker closes, also when the closing is the answer asked for. A
//! passive declaration of something absent (the revocation stream on a first start) is closed
//! NOT_FOUND, and the dead-letter check's declarations are closed PRECONDITION_FAILED as they
//! learn a queue's arguments: normal, and an operator alerting on ERROR must not be paged for
//! them. The operation that failed returns the same error to its caller, who reports it when it
//! was not expected, so nothing is lost by dropping lapin's line.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The broker's answers that the probes expect.
const EXPECTED: [&str; 2] = ["NOT_FOUND", "PRECONDITION_FAILED"];

/// A layer that disables lapin's ERROR "Channel closed" events whose error is [`EXPECTED`].
pub(crate) struct ExpectedChannelCloses;

impl<S: Subscriber> Layer<S> for ExpectedChannelCloses {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || !meta.target().starts_with("lapin") {
            return true;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        !is_expected_close(&fields.message, &fields.error)
    }
}

/// Whether a lapin event with this message and error is an expected channel close.
fn is_expected_close(message: &str, error: &str) -> bool {
    message == "Channel closed" && EXPECTED.iter().any(|code| error.contains(code))
}

/// The two fields of lapin's event that decide.
#[derive(Default)]
struct Fields {
    message: String,
    error: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "error" => self.error = format!("{value:?}"),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => value.clone_into(&mut self.message),
            "error" => value.clone_into(&mut self.error),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_expected_answers_are_dropped() {
        assert!(is_expected_close(
            "Channel closed",
            "AMQPError { kind: Soft(NOTFOUND), message: \"NOT_FOUND - no queue 'x'\" }"
        ));
        assert!(is_expected_close(
            "Channel closed",
            "PRECONDITION_FAILED - inequivalent arg"
        ));
        assert!(!is_expected_close("Channel closed", "ACCESS_REFUSED - no"));
        assert!(!is_expected_close("Connection closed", "NOT_FOUND - vhost"));
    }
}
