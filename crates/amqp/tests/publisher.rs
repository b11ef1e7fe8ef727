//! `Publisher` on the real broker: a publish succeeds only when the broker took the message
//! into a queue. A queue that refuses it (`x-overflow: reject-publish` when full) nacks it, and
//! a message no queue receives (unroutable) is returned: both are errors, never a silent
//! success that loses a tool call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use laissez_amqp::lapin::BasicProperties;
use laissez_amqp::lapin::ExchangeKind;
use laissez_amqp::lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use laissez_amqp::lapin::types::{AMQPValue, FieldTable};
use laissez_amqp::{AmqpError, PublishError, Publisher, ToolCall, parked, publish_record};
use laissez_verify::ActionClass;

/// A call the tests publish (its envelope need not verify: no worker reads it).
fn call(id: &str) -> ToolCall<'_> {
    ToolCall::new(b"not an envelope", "crm.read", ActionClass::Read, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_reject_publish_queue_nacks_and_the_publisher_says_so() {
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();
    let queue = unique("reject-publish");
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    channel
        .queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap();
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();
    publisher
        .publish("", &queue, &call("first"), b"first")
        .await
        .unwrap();
    let err = publisher
        .publish("", &queue, &call("second"), b"second")
        .await
        .unwrap_err();
    assert!(
        matches!(err, AmqpError::Publish(PublishError::Nacked)),
        "{err:?}"
    );
    // The queue holds the first message only: the refused one is not there either.
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let depth = channel
        .queue_declare(queue.as_str().into(), passive, FieldTable::default())
        .await
        .unwrap()
        .message_count();
    assert_eq!(depth, 1);
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_publish_is_an_error_not_a_silent_success() {
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();
    // The default exchange, to a queue that does not exist.
    let absent = unique("no-such-queue");
    let err = publisher
        .publish("", &absent, &call("to-nowhere"), b"x")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AmqpError::Publish(PublishError::Unroutable { exchange, routing_key })
            if exchange.is_empty() && *routing_key == absent),
        "{err:?}"
    );
    // An exchange with no queue bound.
    let exchange = unique("unbound");
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let err = publisher
        .publish(&exchange, "crm", &call("unbound"), b"x")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AmqpError::Publish(PublishError::Unroutable { exchange: e, routing_key })
            if *e == exchange && routing_key == "crm"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("no queue received the message (exchange \"{exchange}\", routing key \"crm\")")
    );
    // The publisher goes on: a routable message after the returned ones is confirmed.
    let q = Queue::declare(&connection, "routable").await;
    publisher
        .publish("", q.name(), &call("routed"), b"routed")
        .await
        .unwrap();
    assert_eq!(q.counts(q.name()).await, (1, 0));
    channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_to_an_exchange_that_does_not_exist_is_a_channel_error() {
    let connection = connect().await;
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();
    let absent = unique("no-such-exchange");
    let err = publisher
        .publish(&absent, "crm", &call("no-exchange"), b"x")
        .await
        .unwrap_err();
    // The broker closes the channel (404): never a success, and said as a broker error.
    assert!(
        matches!(&err, AmqpError::Publish(PublishError::Channel(_))),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("AMQP broker error: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_without_confirms_is_an_error_never_a_success() {
    // Fail closed: without publisher confirms nobody knows whether the broker took the
    // message, so it is not taken as delivered, even though it was routable.
    let connection = connect().await;
    let q = Queue::declare(&connection, "confirms-off").await;
    let plain = connection.create_channel().await.unwrap();
    let err = parked::republish(&plain, q.name(), BasicProperties::default(), b"x")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AmqpError::Publish(PublishError::ConfirmsOff)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("publisher confirms are off"),
        "{err}"
    );
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_record_to_no_stream_is_unroutable() {
    // publish_record turns confirms on itself: a plain channel is enough, and a record that
    // reaches no queue is returned, not confirmed.
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();
    let absent = unique("no-such-stream");
    let err = publish_record(&channel, &absent, b"not a record")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AmqpError::Publish(PublishError::Unroutable { exchange, routing_key })
            if exchange.is_empty() && *routing_key == absent),
        "{err:?}"
    );
}
