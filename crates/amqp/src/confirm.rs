//! The one confirmed publish: every message this crate sends (a tool call, a copy to retry
//! later, an approved copy of a parked message, a revocation record, a barrier) goes through
//! [`publish_confirmed`], and every way it can fail is a [`PublishError`].
//!
//! Fail closed: `Ok` only when the broker confirmed that a queue took the message. A channel
//! without publisher confirms gives no such answer (lapin says `NotRequested`), so it is an
//! error too, [`PublishError::ConfirmsOff`], never a success: a message must never be thought
//! delivered when it was not confirmed.

use std::fmt;

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel, Confirmation};

/// Why a confirmed publish did not deliver its message. Whatever the variant, the caller must
/// assume the message was not delivered.
#[derive(Debug)]
#[non_exhaustive]
pub enum PublishError {
    /// The broker refused the message (publisher confirm nack), e.g. a full queue with
    /// `x-overflow: reject-publish`.
    Nacked,
    /// No queue received the message: the publish is mandatory, so the broker returned it.
    Unroutable {
        /// The exchange it was published to (`""`: the default exchange).
        exchange: String,
        /// Its routing key.
        routing_key: String,
    },
    /// Publisher confirms are not enabled on the channel: whether the broker took the message
    /// cannot be known, so it is not taken as delivered.
    ConfirmsOff,
    /// The channel or its connection failed before the broker confirmed (e.g. the broker
    /// closed the channel because the exchange does not exist).
    Channel(lapin::Error),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Nacked => f.write_str("the broker did not confirm the message"),
            PublishError::Unroutable {
                exchange,
                routing_key,
            } => write!(
                f,
                "no queue received the message (exchange {exchange:?}, routing key {routing_key:?})"
            ),
            PublishError::ConfirmsOff => f.write_str(
                "publisher confirms are off on the channel: the message cannot be known delivered",
            ),
            // The same words as `AmqpError::Broker`: the CLI says what it always said.
            PublishError::Channel(e) => write!(f, "AMQP broker error: {e}"),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PublishError::Channel(e) => Some(e),
            PublishError::Nacked | PublishError::Unroutable { .. } | PublishError::ConfirmsOff => {
                None
            }
        }
    }
}

impl From<lapin::Error> for PublishError {
    fn from(e: lapin::Error) -> Self {
        PublishError::Channel(e)
    }
}

/// Publishes `body` with `properties` to `exchange` with `routing_key`, mandatory, and waits
/// for the broker's confirm. `channel` must be in confirm mode (`confirm_select`); it is not
/// turned on here, because a channel's confirm mode is its owner's choice and cannot be undone.
pub(crate) async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    properties: BasicProperties,
    body: &[u8],
) -> Result<(), PublishError> {
    let mandatory = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirm = channel
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
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(PublishError::Unroutable {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
        }),
        Confirmation::Nack(_) => Err(PublishError::Nacked),
        Confirmation::NotRequested => Err(PublishError::ConfirmsOff),
    }
}
