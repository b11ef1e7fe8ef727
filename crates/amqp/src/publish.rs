//! Publisher side: tool-call messages with the laissez headers, confirmed by the broker.

use std::time::Duration;

use laissez_verify::ActionClass;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

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

/// One tool call to publish: the envelope that authorises it, the tool, and its id.
///
/// The class of a call is the worker's, from its tool catalogue: the publisher cannot choose
/// it. [`ToolCall::new`] still writes the class the publisher believes the tool has into the
/// optional `laissez-class` header, as a check: a worker whose catalogue gives the tool
/// another class refuses the message as `malformed` instead of running it under a class the
/// orchestrator did not mean. [`ToolCall::without_class`] leaves the header out.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ToolCall<'a> {
    /// The envelope, raw bytes.
    pub envelope: &'a [u8],
    /// The tool.
    pub tool: &'a str,
    /// The class the publisher expects the worker's catalogue to give the tool (header
    /// `laissez-class`); `None` writes no header.
    pub class: Option<ActionClass>,
    /// The message id: one use is spent per distinct id. Reuse the id when retrying the same
    /// call, so that a duplicate never spends a second use nor runs twice.
    pub message_id: &'a str,
}

impl<'a> ToolCall<'a> {
    /// A tool call whose `laissez-class` header says `class`.
    pub fn new(envelope: &'a [u8], tool: &'a str, class: ActionClass, message_id: &'a str) -> Self {
        ToolCall {
            envelope,
            tool,
            class: Some(class),
            message_id,
        }
    }

    /// The same call without the `laissez-class` header: the worker's catalogue alone decides.
    #[must_use]
    pub fn without_class(mut self) -> Self {
        self.class = None;
        self
    }

    /// Its message properties: laissez headers, message id, persistent (delivery mode 2).
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
    ///
    /// `Ok` only when the broker took the message into a queue: the publish is mandatory, so
    /// a message no queue receives is returned ([`AmqpError::Unroutable`]), and a queue that
    /// refuses it (e.g. full with `x-overflow: reject-publish`) nacks it
    /// ([`AmqpError::PublishNacked`]).
    pub async fn publish_with(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
        body: &[u8],
    ) -> Result<(), AmqpError> {
        let mandatory = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                mandatory,
                body,
                properties,
            )
            .await?
            .await?;
        match confirm {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) => Err(AmqpError::Unroutable {
                exchange: exchange.to_owned(),
                routing_key: routing_key.to_owned(),
            }),
            Confirmation::Nack(_) => Err(AmqpError::PublishNacked),
        }
    }
}
