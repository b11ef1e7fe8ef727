//! What the AMQP benches share: the broker, filling a queue, a handler that counts, the
//! consumer configuration and the process's CPU time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use laissez_amqp::{ConsumerConfig, Disposition, Handler, HandlerError, Message};
use laissez_sign::SecretKey;
use laissez_verify::ActionClass;
use laissez_verify::owned::OwnedCatalogue;
use tokio::sync::Notify;

pub(crate) mod publish;

pub(crate) use laissez_test_support::amqp_url;
pub(crate) use publish::{PREFETCH, env_number, fill};

/// A handler that acks every message and notifies the returned `Notify` once `n` have run.
pub(crate) fn counting_handler(n: usize) -> (impl Handler, Arc<Notify>) {
    let handled = Arc::new(AtomicUsize::new(0));
    let all_done = Arc::new(Notify::new());
    let notify = all_done.clone();
    let handler = move |_m: Message| {
        let handled = handled.clone();
        let all_done = all_done.clone();
        async move {
            if handled.fetch_add(1, Ordering::Relaxed) + 1 == n {
                all_done.notify_one();
            }
            Ok::<_, HandlerError>(Disposition::Ack)
        }
    };
    (handler, notify)
}

/// The consumer of the benches: `queue` under `audience`, trusting `key`, whose catalogue
/// lists the one tool the calls name; prefetch [`PREFETCH`].
pub(crate) fn consumer_config(queue: &str, audience: &str, key: &SecretKey) -> ConsumerConfig {
    let tools = OwnedCatalogue::new()
        .with("crm.ticket.read", ActionClass::Read)
        .unwrap();
    ConsumerConfig::new(queue, audience, vec![key.public_key()], tools).prefetch(PREFETCH)
}

/// CPU seconds this process's threads have run, in nanoseconds' precision: the sum of each
/// thread's `/proc/self/task/*/schedstat` time on CPU (Linux; `None` elsewhere). Finer than
/// `/proc/self/stat`'s 10 ms ticks. The threads (the runtime's, lapin's, the ledger's) live
/// through the whole bench.
pub(crate) fn cpu_seconds() -> Option<f64> {
    let mut total_ns: u64 = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?;
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total_ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total_ns as f64 / 1e9)
}
