//! A worker that dies between completing a message's use and acking it (`docs/spec.md` §9:
//! complete, then ack): the broker redelivers the message, the ledger says it was done, and
//! the copy is dead-lettered as `replayed`: it never runs a second time.
//!
//! The dying worker is this test binary re-run as a child process (`child_worker`) on a redb
//! ledger file shared with the parent. Its ledger completes each use, then the process
//! SIGKILLs itself before `complete` returns, so the middleware never gets to ack.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::*;
use laissez_amqp::{ConsumerConfig, Disposition, HandlerError, Message, Middleware};
use laissez_ledger::{
    Begin, Cti, LeaseToken, LedgerError, Outcome, RedbLedger, UseLedger, UseState,
};
use laissez_verify::owned::OwnedCatalogue;
use laissez_verify::{ActionClass, Reason};

const CHILD: &str = "LAISSEZ_AMQP_TEST_CRASH_CHILD";
const SEED: [u8; 32] = [9; 32];

fn tools() -> OwnedCatalogue {
    catalogue(&[("crm.update", ActionClass::Write)])
}

/// A ledger whose process dies the moment a `complete` has been made durable.
struct DiesAfterComplete(RedbLedger);

impl UseLedger for DiesAfterComplete {
    async fn begin(&self, req: &Begin<'_>) -> Result<Outcome, LedgerError> {
        self.0.begin(req).await
    }

    async fn complete(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        self.0.complete(cti, message_id, lease).await?;
        // Completed and committed: die before the middleware can ack.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::future::pending().await
    }

    async fn release(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        self.0.release(cti, message_id, lease).await
    }
}

/// The child process of [`a_crash_between_complete_and_ack_is_replayed_never_rerun`], which
/// runs it by name with `--ignored`: consumes, records each message its handler runs in the
/// marker file, and dies after completing the first. Run any other way it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_crash_between_complete_and_ack_is_replayed_never_rerun"]
async fn child_worker() {
    let queue = std::env::var(CHILD).expect(
        "child_worker runs only as the child process of \
         a_crash_between_complete_and_ack_is_replayed_never_rerun",
    );
    let ledger_path = PathBuf::from(std::env::var("LAISSEZ_TEST_LEDGER").unwrap());
    let marker = PathBuf::from(std::env::var("LAISSEZ_TEST_MARKER").unwrap());
    let keys = Keys::from_seed(SEED);
    let ledger = Arc::new(DiesAfterComplete(RedbLedger::open(&ledger_path).unwrap()));
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();
    let config = ConsumerConfig::new(&queue, &queue, keys.trusted, tools()).prefetch(1);
    let handler = move |m: Message| {
        let marker = marker.clone();
        async move {
            use std::io::Write as _;
            let a = &m.authorized;
            let line = format!("{} {}\n", a.message_id, a.use_number);
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&marker)
                .unwrap();
            f.write_all(line.as_bytes()).unwrap();
            f.sync_all().unwrap();
            Ok::<_, HandlerError>(Disposition::Ack)
        }
    };
    Middleware::new(config, ledger, handler)
        .run(&channel, std::future::pending())
        .await
        .unwrap();
    panic!("the child worker stopped instead of dying after complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_complete_and_ack_is_replayed_never_rerun() {
    let connection = connect().await;
    let q = Queue::declare(&connection, "crash-after-complete").await;
    let aud = q.name().to_owned();
    let keys = Keys::from_seed(SEED);
    let dir = tempfile::tempdir().unwrap();
    let ledger_path = dir.path().join("uses.redb");
    let marker = dir.path().join("marker");
    let env = keys.envelope(&aud, "crm.*", "write", 5);
    q.publish(env.as_bytes(), "crm.update", ActionClass::Write, "m1")
        .await;

    let status = tokio::task::spawn_blocking({
        let (aud, ledger_path, marker) = (aud.clone(), ledger_path.clone(), marker.clone());
        move || {
            std::process::Command::new(std::env::current_exe().unwrap())
                .arg(test_name(module_path!(), "child_worker"))
                .args(["--exact", "--ignored", "--nocapture"])
                .env(CHILD, &aud)
                .env("LAISSEZ_TEST_LEDGER", &ledger_path)
                .env("LAISSEZ_TEST_MARKER", &marker)
                .status()
                .unwrap()
        }
    });
    let status = tokio::time::timeout(PATIENCE, status)
        .await
        .expect("the child worker did not die")
        .unwrap();
    // It died of its own SIGKILL, which only follows a completed use.
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "m1 1\n");
    // Completed in the ledger, never acked: the broker holds the message again.
    let ledger = Arc::new(RedbLedger::open(&ledger_path).unwrap());
    let usage = ledger.usage_blocking(env.cti()).unwrap();
    assert_eq!(usage.messages.len(), 1);
    assert_eq!(usage.messages[0].state, UseState::Completed);
    assert_eq!(q.ready_after_stop().await, 1, "the message was acked");

    // Another worker on the same ledger: the redelivered copy is replayed, never run; the
    // next message takes the next use.
    let runs: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let handler = {
        let runs = runs.clone();
        move |m: Message| {
            let runs = runs.clone();
            async move {
                let a = &m.authorized;
                runs.lock()
                    .unwrap()
                    .push((a.message_id.clone(), a.use_number));
                Ok::<_, HandlerError>(Disposition::Ack)
            }
        }
    };
    let decisions = Decisions::default();
    let config = ConsumerConfig::new(q.name(), &aud, keys.trusted.clone(), tools());
    let worker = Worker::start(config, ledger.clone(), handler, &decisions).await;
    q.publish(env.as_bytes(), "crm.update", ActionClass::Write, "m2")
        .await;
    assert!(
        eventually(|| decisions.all().len() == 2).await,
        "decisions: {:?}",
        decisions.all()
    );
    let stats = worker.stop().await;
    let dead = q.drain_after_stop().await;
    assert_eq!(ids(&dead), ["m1"]);
    let denials = decisions.denials();
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials["m1"], [Reason::Replayed]);
    assert_eq!(
        *runs.lock().unwrap(),
        [("m2".to_owned(), 2)],
        "m1 never ran again"
    );
    assert_eq!((stats.handled, stats.denied), (1, 1), "{stats:?}");
    assert_eq!(ledger.usage_blocking(env.cti()).unwrap().granted, 2);
    q.delete().await;
}
