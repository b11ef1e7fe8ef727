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

    /// Declares, idempotently: the dead-letter exchange, the dead-letter queue bound to it,
    /// the work queue dead-lettering to it, and the retry queue dead-lettering to the work
    /// queue. All durable.
    pub async fn declare(&self, channel: &Channel) -> Result<(), AmqpError> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.dead_letter_exchange.as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let mut dlq_args = FieldTable::default();
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_letter_exchange.as_str().into()),
        );
        if let QueueKind::Quorum { delivery_limit } = self.kind {
            for table in [&mut args, &mut dlq_args] {
                table.insert(
                    "x-queue-type".into(),
                    AMQPValue::LongString("quorum".into()),
                );
            }
            args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongInt(i32::try_from(delivery_limit).unwrap_or(i32::MAX)),
            );
        }
        channel
            .queue_declare(self.dead_letter_queue.as_str().into(), durable, dlq_args)
            .await?;
        channel
            .queue_bind(
                self.dead_letter_queue.as_str().into(),
                self.dead_letter_exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(self.queue.as_str().into(), durable, args)
            .await?;
        channel
            .queue_declare(self.retry_queue.as_str().into(), durable, self.retry_args())
            .await?;
        Ok(())
    }

    /// The retry queue's arguments: expired messages go through the default exchange to the
    /// work queue. A quorum retry queue dead-letters at least once (which needs
    /// `reject-publish` overflow); a classic one at most once, as RabbitMQ does for classic
    /// queues (see `docs/amqp.md`).
    fn retry_args(&self) -> FieldTable {
        let text = |s: &str| AMQPValue::LongString(s.into());
        let mut args = FieldTable::default();
        args.insert("x-dead-letter-exchange".into(), text(""));
        args.insert(
            "x-dead-letter-routing-key".into(),
            text(self.queue.as_str()),
        );
        if let QueueKind::Quorum { .. } = self.kind {
            args.insert("x-queue-type".into(), text("quorum"));
            args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
            args.insert("x-overflow".into(), text("reject-publish"));
        }
        args
    }
}
