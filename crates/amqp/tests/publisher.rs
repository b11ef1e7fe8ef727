//! `Publisher` on the real broker: a publish succeeds only when the broker took the message
//! into a queue. A queue that refuses it (`x-overflow: reject-publish` when full) nacks it, and
//! a message no queue receives (unroutable) is returned: both are errors, never a silent
//! success that loses a tool call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use laissez_amqp::lapin::ExchangeKind;
use laissez_amqp::lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use laissez_amqp::lapin::types::{AMQPValue, FieldTable};
use laissez_amqp::{AmqpError, Publisher, ToolCall};
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
    assert!(matches!(err, AmqpError::PublishNacked), "{err:?}");
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
        matches!(&err, AmqpError::Unroutable { exchange, routing_key }
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
        matches!(&err, AmqpError::Unroutable { exchange: e, routing_key }
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
