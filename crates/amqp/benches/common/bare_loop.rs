//! The bare lapin consumer the benches compare with: `next`, then `ack`, nothing else. Shared
//! by laissez-amqp's `amqp_throughput` bench and laissez-cli's `consume_handoff` bench, which
//! include this file by path (the metrics bench has no bare loop).

use std::time::{Duration, Instant};

use futures_lite::StreamExt as _;
use laissez_amqp::lapin::Channel;
use laissez_amqp::lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use laissez_amqp::lapin::types::FieldTable;

/// Consumes `n` messages of `queue` with `prefetch`, acking each, then cancels. Returns the
/// time to the last ack from the consume call and from the first delivery: a bench compares
/// the one that matches how it times what it compares (a worker started before, or a process
/// whose start is not counted).
pub(crate) async fn bare(
    channel: &Channel,
    queue: &str,
    prefetch: u16,
    n: usize,
) -> (Duration, Duration) {
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .unwrap();
    let start = Instant::now();
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut first = None;
    for _ in 0..n {
        let delivery = consumer.next().await.unwrap().unwrap();
        first.get_or_insert_with(Instant::now);
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    let (since_consume, since_first) = (start.elapsed(), first.unwrap_or(start).elapsed());
    channel
        .basic_cancel(consumer.tag(), Default::default())
        .await
        .unwrap();
    (since_consume, since_first)
}
