//! Deleting what a test or bench declared on the broker. The cli's benches include this file
//! by path (`#[path]`), so the tests and the benches delete a topology one way.

use laissez_amqp::Topology;
use laissez_amqp::lapin::Channel;
use laissez_amqp::lapin::options::QueueDeleteOptions;

/// Deletes `topology`'s work, dead-letter and retry queues, the queues `also` names (a
/// revocation stream, a reject queue), and its dead-letter exchange. What is absent already
/// is passed over: a failed test may have declared only part of it.
pub(crate) async fn delete_topology(channel: &Channel, topology: &Topology, also: &[&str]) {
    let own = [
        topology.queue.as_str(),
        topology.dead_letter_queue.as_str(),
        topology.retry_queue.as_str(),
    ];
    for queue in own.iter().chain(also) {
        let _ = channel
            .queue_delete((*queue).into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = channel
        .exchange_delete(
            topology.dead_letter_exchange.as_str().into(),
            Default::default(),
        )
        .await;
}
