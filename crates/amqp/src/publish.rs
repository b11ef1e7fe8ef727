//! Publisher side: tool-call messages with the laissez headers, confirmed by the broker; and
//! the queue topology with its dead-letter exchange and queue.

use std::time::Duration;

use laissez_verify::ActionClass;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};

use crate::error::AmqpError;
use crate::headers::{EnvelopeEncoding, tool_call_properties};

/// Connects to `url` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`) on the current Tokio
/// runtime, with lapin's automatic recovery: after a lost connection, lapin reconnects
/// (retrying with backoff for about ten minutes) and restores channels, qos and consumers.
pub async fn connect(url: &str, name: &str) -> Result<Connection, AmqpError> {
    let properties = ConnectionProperties::default()
        .with_connection_name(name.into())
        .enable_auto_recover()
        .configure_backoff(|b| {
            b.with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(120)
        });
    Ok(Connection::connect(url, properties).await?)
}

/// One tool call to publish: the envelope that authorises it, what it asks for, and its id.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ToolCall<'a> {
    /// The envelope, raw bytes.
    pub envelope: &'a [u8],
    /// The tool.
    pub tool: &'a str,
    /// The class.
    pub class: ActionClass,
    /// The message id: one use is spent per distinct id. Reuse the id when retrying the same
    /// call, so that a duplicate never spends a second use nor runs twice.
    pub message_id: &'a str,
}

impl<'a> ToolCall<'a> {
    /// A tool call.
    pub fn new(envelope: &'a [u8], tool: &'a str, class: ActionClass, message_id: &'a str) -> Self {
        ToolCall {
            envelope,
            tool,
            class,
            message_id,
        }
    }

    /// Its message properties: laissez headers, message id, persistent.
    pub fn properties(&self, encoding: EnvelopeEncoding) -> BasicProperties {
        tool_call_properties(
            self.envelope,
            self.tool,
            self.class,
            self.message_id,
            encoding,
        )
    }
}

/// Publishes tool calls on one channel with publisher confirms.
#[derive(Debug, Clone)]
pub struct Publisher {
    channel: Channel,
    encoding: EnvelopeEncoding,
}

impl Publisher {
    /// Turns on publisher confirms on `channel` and publishes on it.
    pub async fn new(channel: Channel) -> Result<Self, AmqpError> {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Publisher {
            channel,
            encoding: EnvelopeEncoding::default(),
        })
    }

    /// Writes the envelope header as `encoding` (default: raw bytes).
    #[must_use]
    pub fn with_encoding(mut self, encoding: EnvelopeEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// The channel it publishes on.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes `body` as `call` to `exchange` with `routing_key` (the default exchange `""`
    /// and the queue name route straight to a queue), and waits for the broker's confirm.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        call: &ToolCall<'_>,
        body: &[u8],
    ) -> Result<(), AmqpError> {
        self.publish_with(exchange, routing_key, call.properties(self.encoding), body)
            .await
    }

    /// Publishes with properties the caller built (e.g. [`ToolCall::properties`] plus a
    /// correlation id), and waits for the broker's confirm.
    pub async fn publish_with(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
        body: &[u8],
    ) -> Result<(), AmqpError> {
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await?
            .await?;
        match confirm {
            Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
            Confirmation::Nack(_) => Err(AmqpError::PublishNacked),
        }
    }
}

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

/// A work queue with its dead-letter exchange and queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Topology {
    /// The work queue.
    pub queue: String,
    /// Its dead-letter exchange (fanout, durable). Default `<queue>.dlx`.
    pub dead_letter_exchange: String,
    /// The queue bound to it, where denials and failures land. Default `<queue>.dlq`.
    pub dead_letter_queue: String,
    /// Classic or quorum.
    pub kind: QueueKind,
}

impl Topology {
    /// A classic queue `queue` with `<queue>.dlx` and `<queue>.dlq`.
    pub fn new(queue: impl Into<String>) -> Self {
        let queue = queue.into();
        Topology {
            dead_letter_exchange: format!("{queue}.dlx"),
            dead_letter_queue: format!("{queue}.dlq"),
            queue,
            kind: QueueKind::Classic,
        }
    }

    /// Makes it a quorum queue with `delivery_limit` (the dead-letter queue too is quorum).
    #[must_use]
    pub fn quorum(mut self, delivery_limit: u32) -> Self {
        self.kind = QueueKind::Quorum { delivery_limit };
        self
    }

    /// Declares, idempotently: the dead-letter exchange, the dead-letter queue bound to it,
    /// and the work queue dead-lettering to it. All durable.
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
        Ok(())
    }
}
