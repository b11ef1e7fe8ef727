//! The dead-letter check of `laissez consume` (`docs/spec.md` §9): before taking a message,
//! confirm that what the worker rejects (denials, failures, calls parked for approval) has
//! somewhere to go, since a queue without a dead-letter exchange drops them in silence.
//!
//! AMQP 0-9-1 cannot read a queue's arguments, but the broker compares them when a queue is
//! declared again and names the first one that differs (PRECONDITION_FAILED, `inequivalent arg
//! 'K' … current is the value 'V' of type 'T'`). The check declares the existing queue again,
//! on throwaway channels, adding each argument the broker names with the value it names, until
//! the broker accepts the declaration: the arguments are then the queue's own, its
//! `x-dead-letter-exchange` included. Nothing changes on the broker (an equivalent declaration
//! is a no-op), and the queue's existence is checked passively first, so nothing is created.

use std::collections::BTreeMap;

use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Connection, ErrorKind, ExchangeKind};

use crate::error::AmqpError;

/// More declarations than any queue has arguments the broker compares: past it, the check gives
/// up rather than loop.
const MAX_ROUNDS: usize = 24;

/// The argument that names where rejected messages go.
const DLX: &str = "x-dead-letter-exchange";

/// Confirms that messages rejected from `queue` go to an exchange that exists (for the default
/// exchange, `""`, to a queue named by `x-dead-letter-routing-key` that exists). Returns the
/// dead-letter exchange's name; [`AmqpError::DeadLetters`] says what is wrong or why it could not
/// be confirmed (a DLX set by a policy is not an argument: it cannot be confirmed here).
pub async fn check_dead_letters(connection: &Connection, queue: &str) -> Result<String, AmqpError> {
    let refuse = |why: String| AmqpError::DeadLetters {
        queue: queue.to_owned(),
        why,
    };
    if let Some(reply) = passive_queue(connection, queue).await? {
        return Err(refuse(format!("the queue cannot be used ({reply})")));
    }
    let arguments = learn_arguments(connection, queue)
        .await
        .map_err(|e| match e {
            Learnt::Broker(e) => e,
            Learnt::Unknown(why) => refuse(why),
        })?;
    let text = |name: &str| match arguments.get(name) {
        Some(AMQPValue::LongString(s)) => Some(s.to_string()),
        Some(AMQPValue::ShortString(s)) => Some(s.to_string()),
        _ => None,
    };
    let Some(exchange) = text(DLX) else {
        return Err(refuse(format!("the queue has no {DLX} argument")));
    };
    if exchange.is_empty() {
        // The default exchange routes by the dead-letter routing key, to a queue of that name.
        let Some(target) = text("x-dead-letter-routing-key") else {
            return Err(refuse(
                "it dead-letters to the default exchange without x-dead-letter-routing-key"
                    .to_owned(),
            ));
        };
        if let Some(reply) = passive_queue(connection, &target).await? {
            return Err(refuse(format!(
                "it dead-letters to the queue {target:?}, which cannot be used ({reply})"
            )));
        }
        return Ok(exchange);
    }
    let channel = connection.create_channel().await?;
    let found = channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                passive: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    let reply = broker_refusal(found)?;
    if reply.is_none() {
        let _ = channel.close(200, "checked".into()).await;
    }
    match reply {
        None => Ok(exchange),
        Some(reply) => Err(refuse(format!(
            "its dead-letter exchange {exchange:?} cannot be used ({reply}): rejected messages \
             would be dropped"
        ))),
    }
}

/// Whether the queue `name` exists: `None`, or the broker's refusal of a passive declaration.
async fn passive_queue(connection: &Connection, name: &str) -> Result<Option<String>, AmqpError> {
    let channel = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let found = channel
        .queue_declare(name.into(), passive, FieldTable::default())
        .await;
    let reply = broker_refusal(found)?;
    if reply.is_none() {
        let _ = channel.close(200, "checked".into()).await;
    }
    Ok(reply)
}

/// Why the queue's arguments were not learnt.
enum Learnt {
    /// The connection failed.
    Broker(AmqpError),
    /// The broker's answers could not be read as the check expects.
    Unknown(String),
}

/// Declares `queue` again until the broker accepts the declaration: the table returned is then
/// the queue's arguments (as far as the broker compares them).
async fn learn_arguments(
    connection: &Connection,
    queue: &str,
) -> Result<BTreeMap<ShortString, AMQPValue>, Learnt> {
    let mut arguments = BTreeMap::new();
    // Values tried for an argument whose value the broker's answer did not hold in full.
    let mut tried: BTreeMap<String, Vec<AMQPValue>> = BTreeMap::new();
    let mut options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    for _ in 0..MAX_ROUNDS {
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| Learnt::Broker(e.into()))?;
        let declared = channel
            .queue_declare(queue.into(), options, FieldTable::from(arguments.clone()))
            .await;
        let Some(reply) = broker_refusal(declared).map_err(Learnt::Broker)? else {
            let _ = channel.close(200, "checked".into()).await;
            return Ok(arguments);
        };
        let unfollowable = || {
            Learnt::Unknown(format!(
                "the broker's answer could not be followed ({reply})"
            ))
        };
        let Some(difference) = Inequivalent::parse(&reply) else {
            return Err(unfollowable());
        };
        let name = difference.name.as_str();
        match name {
            "durable" => options.durable = !options.durable,
            "auto_delete" => options.auto_delete = !options.auto_delete,
            "exclusive" => options.exclusive = !options.exclusive,
            _ => {
                let known = arguments.get(name).cloned();
                let value = match difference.current {
                    Current::Absent if known.is_some() => None,
                    Current::Value(value) if known.as_ref() != Some(&value) => Some(value),
                    Current::Cut(partial) => {
                        let seen = tried.entry(name.to_owned()).or_default();
                        let next = candidates(name, partial.as_deref(), queue)
                            .into_iter()
                            .find(|c| !seen.contains(c))
                            .ok_or_else(unfollowable)?;
                        seen.push(next.clone());
                        Some(next)
                    }
                    _ => return Err(unfollowable()),
                };
                match value {
                    Some(value) => arguments.insert(ShortString::from(name), value),
                    None => arguments.remove(name),
                };
            }
        }
    }
    Err(Learnt::Unknown(format!(
        "its arguments were not learnt in {MAX_ROUNDS} declarations"
    )))
}

/// The broker's refusal of an operation as text (`Some`), or `None` when it succeeded. A
/// failure that is not the broker's answer (the connection lost) is an error.
fn broker_refusal<T>(result: Result<T, lapin::Error>) -> Result<Option<String>, AmqpError> {
    match result {
        Ok(_) => Ok(None),
        Err(error) => match error.kind() {
            ErrorKind::ProtocolError(reply) => Ok(Some(reply.get_message().to_string())),
            _ => Err(error.into()),
        },
    }
}

/// One `inequivalent arg` answer of RabbitMQ: the argument (or flag) that differs and its value
/// on the queue.
#[derive(Debug, PartialEq)]
struct Inequivalent {
    name: String,
    current: Current,
}

/// The queue's value of the argument, as the answer gives it.
#[derive(Debug, PartialEq)]
enum Current {
    /// Absent on the queue.
    Absent,
    /// This value.
    Value(AMQPValue),
    /// The answer was cut short (an AMQP reply text holds 255 bytes; RabbitMQ ends a longer
    /// one with `...`): the value's text when it is whole, its type missing.
    Cut(Option<String>),
}

impl Inequivalent {
    /// Reads `… inequivalent arg 'NAME' for queue 'Q' in vhost 'V': received … but current is
    /// (none | the value 'V' of type 'T' | 'V')`. The last form comes when both values have the
    /// same type, which for an argument is one the check sent: text.
    fn parse(reply: &str) -> Option<Self> {
        let rest = reply.split_once("inequivalent arg '")?.1;
        let (name, rest) = rest.split_once('\'')?;
        let name = name.to_owned();
        let cut = reply.ends_with("...");
        let Some((_, current)) = rest.rsplit_once(" but current is ") else {
            return cut.then_some(Inequivalent {
                name,
                current: Current::Cut(None),
            });
        };
        let current = if current == "none" {
            Current::Absent
        } else if let Some(value) = current.strip_prefix("the value '") {
            match value.rsplit_once("' of type '") {
                Some((value, kind)) => match kind.strip_suffix('\'') {
                    Some(kind) => Current::Value(typed(value, kind)?),
                    None if cut => Current::Cut(Some(value.to_owned())),
                    None => return None,
                },
                None if cut => Current::Cut(None),
                None => return None,
            }
        } else if let Some(value) = current
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
        {
            Current::Value(AMQPValue::LongString(LongString::from(value)))
        } else if cut {
            Current::Cut(None)
        } else {
            return None;
        };
        Some(Inequivalent { name, current })
    }
}

/// The values to try, in order, for the argument `name` when the broker's answer was cut short:
/// the value's text read as each type it may have, then the standard topology's value
/// (docs/spec.md §9). A wrong guess is refused again, naming the same argument.
fn candidates(name: &str, partial: Option<&str>, queue: &str) -> Vec<AMQPValue> {
    let mut values = Vec::new();
    if let Some(text) = partial {
        if let Ok(n) = text.parse() {
            values.push(AMQPValue::LongLongInt(n));
        }
        if let Ok(b) = text.parse() {
            values.push(AMQPValue::Boolean(b));
        }
        values.push(AMQPValue::LongString(LongString::from(text)));
    }
    let standard: &[String] = match name {
        DLX => &[format!("{queue}.dlx")],
        "x-dead-letter-routing-key" => &[queue.to_owned()],
        "x-queue-type" => &[
            "quorum".to_owned(),
            "classic".to_owned(),
            "stream".to_owned(),
        ],
        _ => &[],
    };
    values.extend(
        standard
            .iter()
            .map(|v| AMQPValue::LongString(LongString::from(v.as_str()))),
    );
    values
}

/// A value of RabbitMQ's type name `kind`, written `value`. Integers of every width compare
/// equal in RabbitMQ when their values do, so one width serves them all.
fn typed(value: &str, kind: &str) -> Option<AMQPValue> {
    match kind {
        "longstr" | "shortstr" => Some(AMQPValue::LongString(LongString::from(value))),
        "signedint" | "long" | "short" | "byte" | "unsignedbyte" | "unsignedshort"
        | "unsignedint" => value.parse().ok().map(AMQPValue::LongLongInt),
        "bool" => value.parse().ok().map(AMQPValue::Boolean),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_of_the_brokers_answer_is_read() {
        let current = |reply: &str| Inequivalent::parse(reply).map(|i| i.current);
        let missing = "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue \
                       'q' in vhost '/': received 'q.dlx' but current is none";
        assert_eq!(
            Inequivalent::parse(missing),
            Some(Inequivalent {
                name: DLX.to_owned(),
                current: Current::Absent
            })
        );
        let typed_value = "PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue \
                           'q' in vhost '/': received none but current is the value '7' of type \
                           'signedint'";
        assert_eq!(
            current(typed_value),
            Some(Current::Value(AMQPValue::LongLongInt(7)))
        );
        let quoted = "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue \
                      'q' in vhost '/': received 'a' but current is 'x'y'";
        assert_eq!(
            current(quoted),
            Some(Current::Value(AMQPValue::LongString("x'y".into())))
        );
        let flag = "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': \
                    received 'true' but current is 'false'";
        assert_eq!(Inequivalent::parse(flag).unwrap().name, "durable");
        assert_eq!(Inequivalent::parse("NOT_FOUND - no queue 'q'"), None);
        let unknown_type = "inequivalent arg 'x' for queue 'q' in vhost '/': received none but \
                            current is the value '1.5' of type 'double'";
        assert_eq!(Inequivalent::parse(unknown_type), None);
    }

    #[test]
    fn an_answer_cut_short_keeps_what_it_holds() {
        let current = |reply: &str| Inequivalent::parse(reply).map(|i| i.current);
        let type_cut = "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue \
                        'long' in vhost '/': received none but current is the value 'long.dlx' of \
                        type 'long...";
        assert_eq!(
            current(type_cut),
            Some(Current::Cut(Some("long.dlx".to_owned())))
        );
        let value_cut = "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for \
                         queue 'long' in vhost '/': received none but current is the value 'lo...";
        assert_eq!(current(value_cut), Some(Current::Cut(None)));
        let all_cut = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'long...";
        assert_eq!(current(all_cut), Some(Current::Cut(None)));
        // Without the mark of a cut, an unreadable answer is not guessed at.
        assert_eq!(
            current(
                "inequivalent arg 'x' for queue 'q': received none but current is the value 'a"
            ),
            None
        );
        assert_eq!(
            candidates(DLX, Some("q.dlx"), "q"),
            [
                AMQPValue::LongString("q.dlx".into()),
                AMQPValue::LongString("q.dlx".into())
            ]
        );
        assert_eq!(
            candidates("x-delivery-limit", Some("7"), "q"),
            [AMQPValue::LongLongInt(7), AMQPValue::LongString("7".into())]
        );
        assert_eq!(candidates("x-queue-type", None, "q").len(), 3);
        assert!(candidates("x-max-length", None, "q").is_empty());
    }
}
