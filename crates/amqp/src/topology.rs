//! The queue topology: a work queue with its dead-letter exchange and queue, and the retry
//! queue that holds messages which must come back later.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::error::AmqpError;

/// The kind of queue [`Topology::declare`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueKind {
    /// A durable classic queue.
    Classic,
    /// A quorum queue (replicated). `delivery_limit`: after this many returns to the queue
    /// (requeues, or redeliveries after a lost consumer) the broker dead-letters the message.
    Quorum {
        /// The explicit delivery limit (`x-delivery-limit`).
        delivery_limit: u32,
    },
}

/// A work queue with its dead-letter exchange and queue, and its retry queue.
///
/// The retry queue holds messages that did not run and must come back later (their use in
/// flight on another worker, the ledger unreachable, or a handler's requeue): the middleware
/// configured with it ([`crate::ConsumerConfig::retry_queue`]) publishes a copy there with the
/// delay as per-message TTL (`expiration`), and the broker dead-letters the copy back to the
/// work queue through the default exchange when the TTL is over. Nothing consumes the retry
/// queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Topology {
    /// The work queue.
    pub queue: String,
    /// Its dead-letter exchange (fanout, durable). Default `<queue>.dlx`.
    pub dead_letter_exchange: String,
    /// The queue bound to it, where denials and failures land. Default `<queue>.dlq`.
    pub dead_letter_queue: String,
    /// The retry queue, dead-lettering back to the work queue. Default `<queue>.retry`.
    pub retry_queue: String,
    /// Classic or quorum.
    pub kind: QueueKind,
}

impl Topology {
    /// A classic queue `queue` with `<queue>.dlx`, `<queue>.dlq` and `<queue>.retry`.
    pub fn new(queue: impl Into<String>) -> Self {
        let queue = queue.into();
        Topology {
            dead_letter_exchange: format!("{queue}.dlx"),
            dead_letter_queue: format!("{queue}.dlq"),
            retry_queue: format!("{queue}.retry"),
            queue,
            kind: QueueKind::Classic,
        }
    }

    /// Makes it a quorum queue with `delivery_limit` (the dead-letter and retry queues too are
    /// quorum; the retry queue dead-letters at least once).
    #[must_use]
    pub fn quorum(mut self, delivery_limit: u32) -> Self {
        self.kind = QueueKind::Quorum { delivery_limit };
        self
    }

    /// The largest delivery limit a quorum queue takes: `x-delivery-limit` is a signed 32-bit
    /// integer on the wire. A larger one is declared as this; `laissez declare` and the Python
    /// binding refuse it.
    pub const MAX_DELIVERY_LIMIT: u32 = i32::MAX as u32;

    /// What [`Topology::declare`] declares, in its order, as data: the dead-letter exchange,
    /// the dead-letter queue, its binding to the exchange, the work queue, and the retry
    /// queue. Clients that declare the topology themselves (the Python helpers) issue exactly
    /// these, so every declaration of it is this one.
    pub fn declarations(&self) -> [Declaration; 5] {
        let queue = |name: &str, arguments| Declaration::Queue {
            name: name.to_owned(),
            arguments,
        };
        [
            Declaration::Exchange {
                name: self.dead_letter_exchange.clone(),
            },
            queue(&self.dead_letter_queue, self.dead_letter_queue_arguments()),
            Declaration::Binding {
                queue: self.dead_letter_queue.clone(),
                exchange: self.dead_letter_exchange.clone(),
            },
            queue(&self.queue, self.queue_arguments()),
            queue(&self.retry_queue, self.retry_queue_arguments()),
        ]
    }

    /// The dead-letter queue's arguments: its type, when quorum.
    pub fn dead_letter_queue_arguments(&self) -> Vec<Argument> {
        match self.kind {
            QueueKind::Quorum { .. } => vec![Argument::text("x-queue-type", "quorum")],
            QueueKind::Classic => Vec::new(),
        }
    }

    /// The work queue's arguments: it dead-letters to the dead-letter exchange; a quorum one
    /// has the explicit delivery limit.
    pub fn queue_arguments(&self) -> Vec<Argument> {
        let mut arguments = vec![Argument::text(
            "x-dead-letter-exchange",
            &self.dead_letter_exchange,
        )];
        if let QueueKind::Quorum { delivery_limit } = self.kind {
            arguments.push(Argument {
                key: "x-delivery-limit",
                value: ArgumentValue::Integer(i32::try_from(delivery_limit).unwrap_or(i32::MAX)),
            });
            arguments.push(Argument::text("x-queue-type", "quorum"));
        }
        arguments
    }

    /// The retry queue's arguments: expired messages go through the default exchange to the
    /// work queue. A quorum retry queue dead-letters at least once (which needs
    /// `reject-publish` overflow); a classic one at most once, as RabbitMQ does for classic
    /// queues (see `docs/amqp.md`).
    pub fn retry_queue_arguments(&self) -> Vec<Argument> {
        let mut arguments = vec![
            Argument::text("x-dead-letter-exchange", ""),
            Argument::text("x-dead-letter-routing-key", &self.queue),
        ];
        if let QueueKind::Quorum { .. } = self.kind {
            arguments.push(Argument::text("x-dead-letter-strategy", "at-least-once"));
            arguments.push(Argument::text("x-overflow", "reject-publish"));
            arguments.push(Argument::text("x-queue-type", "quorum"));
        }
        arguments
    }

    /// Declares, idempotently, [`Topology::declarations`] in their order: the dead-letter
    /// exchange, the dead-letter queue bound to it, the work queue dead-lettering to it, and
    /// the retry queue dead-lettering to the work queue. All durable.
    pub async fn declare(&self, channel: &Channel) -> Result<(), AmqpError> {
        for declaration in self.declarations() {
            match declaration {
                Declaration::Exchange { name } => {
                    let durable = ExchangeDeclareOptions {
                        durable: true,
                        ..ExchangeDeclareOptions::default()
                    };
                    channel
                        .exchange_declare(
                            name.as_str().into(),
                            ExchangeKind::Fanout,
                            durable,
                            FieldTable::default(),
                        )
                        .await?;
                }
                Declaration::Queue { name, arguments } => {
                    let durable = QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    };
                    channel
                        .queue_declare(name.as_str().into(), durable, field_table(&arguments))
                        .await?;
                }
                Declaration::Binding { queue, exchange } => {
                    channel
                        .queue_bind(
                            queue.as_str().into(),
                            exchange.as_str().into(),
                            "".into(),
                            QueueBindOptions::default(),
                            FieldTable::default(),
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// One thing [`Topology::declare`] declares (see [`Topology::declarations`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Declaration {
    /// A durable fanout exchange, without arguments.
    Exchange {
        /// Its name.
        name: String,
    },
    /// A durable queue.
    Queue {
        /// Its name.
        name: String,
        /// Its arguments, sorted by key.
        arguments: Vec<Argument>,
    },
    /// `queue` bound to `exchange` with the empty routing key, without arguments.
    Binding {
        /// The queue.
        queue: String,
        /// The exchange.
        exchange: String,
    },
}

/// One argument of a queue declaration (`x-...`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Argument {
    /// The argument's name, e.g. `x-dead-letter-exchange`.
    pub key: &'static str,
    /// Its value.
    pub value: ArgumentValue,
}

impl Argument {
    fn text(key: &'static str, value: &str) -> Self {
        Argument {
            key,
            value: ArgumentValue::Text(value.to_owned()),
        }
    }
}

/// The value of an [`Argument`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgumentValue {
    /// A string (an AMQP long string).
    Text(String),
    /// A signed 32-bit integer (an AMQP long int).
    Integer(i32),
}

/// `arguments` as the field table of a declaration.
fn field_table(arguments: &[Argument]) -> FieldTable {
    let mut table = FieldTable::default();
    for argument in arguments {
        let value = match &argument.value {
            ArgumentValue::Text(text) => AMQPValue::LongString(text.as_str().into()),
            ArgumentValue::Integer(number) => AMQPValue::LongInt(*number),
        };
        table.insert(argument.key.into(), value);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(key: &'static str, value: &str) -> Argument {
        Argument::text(key, value)
    }

    #[test]
    fn a_classic_topology_declares_the_exchange_the_three_queues_and_the_binding() {
        let declarations = Topology::new("billing").declarations();
        assert_eq!(
            declarations,
            [
                Declaration::Exchange {
                    name: "billing.dlx".to_owned()
                },
                Declaration::Queue {
                    name: "billing.dlq".to_owned(),
                    arguments: vec![],
                },
                Declaration::Binding {
                    queue: "billing.dlq".to_owned(),
                    exchange: "billing.dlx".to_owned(),
                },
                Declaration::Queue {
                    name: "billing".to_owned(),
                    arguments: vec![text("x-dead-letter-exchange", "billing.dlx")],
                },
                Declaration::Queue {
                    name: "billing.retry".to_owned(),
                    arguments: vec![
                        text("x-dead-letter-exchange", ""),
                        text("x-dead-letter-routing-key", "billing"),
                    ],
                },
            ]
        );
    }

    #[test]
    fn a_quorum_topology_types_every_queue_and_limits_deliveries_of_the_work_queue() {
        let topology = Topology::new("billing").quorum(7);
        assert_eq!(
            topology.dead_letter_queue_arguments(),
            [text("x-queue-type", "quorum")]
        );
        assert_eq!(
            topology.queue_arguments(),
            [
                text("x-dead-letter-exchange", "billing.dlx"),
                Argument {
                    key: "x-delivery-limit",
                    value: ArgumentValue::Integer(7),
                },
                text("x-queue-type", "quorum"),
            ]
        );
        assert_eq!(
            topology.retry_queue_arguments(),
            [
                text("x-dead-letter-exchange", ""),
                text("x-dead-letter-routing-key", "billing"),
                text("x-dead-letter-strategy", "at-least-once"),
                text("x-overflow", "reject-publish"),
                text("x-queue-type", "quorum"),
            ]
        );
        // The declarations carry exactly these arguments.
        let queues: Vec<_> = topology
            .declarations()
            .into_iter()
            .filter_map(|d| match d {
                Declaration::Queue { arguments, .. } => Some(arguments),
                _ => None,
            })
            .collect();
        assert_eq!(
            queues,
            [
                topology.dead_letter_queue_arguments(),
                topology.queue_arguments(),
                topology.retry_queue_arguments(),
            ]
        );
    }

    #[test]
    fn a_delivery_limit_beyond_the_wire_integer_is_declared_as_the_largest() {
        let limit = |n| match Topology::new("q").quorum(n).queue_arguments()[1].value {
            ArgumentValue::Integer(limit) => limit,
            ArgumentValue::Text(_) => panic!("x-delivery-limit is an integer"),
        };
        assert_eq!(limit(Topology::MAX_DELIVERY_LIMIT), i32::MAX);
        assert_eq!(limit(u32::MAX), i32::MAX);
    }

    #[test]
    fn arguments_become_the_field_table_lapin_sends() {
        let table = field_table(&Topology::new("q").quorum(3).queue_arguments());
        let inner = table.inner();
        assert_eq!(
            inner.get("x-delivery-limit"),
            Some(&AMQPValue::LongInt(3)),
            "{table:?}"
        );
        assert_eq!(
            inner.get("x-dead-letter-exchange"),
            Some(&AMQPValue::LongString("q.dlx".into()))
        );
        assert_eq!(inner.len(), 3);
    }
}
