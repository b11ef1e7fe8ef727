//! `laissez declare` and `consume`'s dead-letter check on the real broker (docs/spec.md §9):
//! the standard topology declared twice with nothing changed, a conflicting queue refused with
//! the argument named, a worker that will not start on a queue whose refused messages would be
//! dropped; and the failures that must say why at once: a refused port, an unresolvable host,
//! a refused Redis, and a first start that logs no ERROR.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::broker::{Setup, unique};
use laissez_amqp::Topology;
use laissez_amqp::lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use laissez_amqp::lapin::types::{AMQPValue, FieldTable};
use laissez_test_support::amqp_url;

/// A guard on every process run here: none may hang a test run (not a timing assertion).
const GUARD: Duration = Duration::from_secs(120);

fn laissez(args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("laissez")
        .unwrap()
        .env_remove("LAISSEZ_AMQP_URL")
        .env_remove("LAISSEZ_REDIS_URL")
        .args(args)
        .timeout(GUARD)
        .output()
        .unwrap()
}

fn run(cmd: std::process::Command) -> std::process::Output {
    assert_cmd::Command::from_std(cmd)
        .timeout(GUARD)
        .output()
        .unwrap()
}

async fn delete(connection: &laissez_amqp::lapin::Connection, topology: &Topology) {
    let channel = connection.create_channel().await.unwrap();
    common::teardown::delete_topology(&channel, topology, &[]).await;
}

async fn connect() -> laissez_amqp::lapin::Connection {
    laissez_amqp::connect(&amqp_url(), "laissez declare tests")
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 must be running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_makes_the_standard_topology_and_a_second_run_changes_nothing() {
    let connection = connect().await;
    let topology = Topology::new(unique("declare"));
    let q = topology.queue.as_str();
    let first = laissez(&["declare", "--amqp", &amqp_url(), "--queue", q]);
    let stdout = common::stdout(&first);
    assert!(first.status.success(), "{}", common::stderr(&first));
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert_eq!(stdout.matches("created").count(), 4, "{stdout}");
    for name in [
        format!("{q}.dlx"),
        format!("{q}.dlq"),
        format!("{q}.retry"),
        format!("x-dead-letter-exchange={q}.dlx"),
    ] {
        assert!(stdout.contains(&name), "{name} missing: {stdout}");
    }
    let second = laissez(&["declare", "--amqp", &amqp_url(), "--queue", q]);
    let again = common::stdout(&second);
    assert!(second.status.success(), "{}", common::stderr(&second));
    assert_eq!(again.matches("already there").count(), 4, "{again}");
    assert!(!again.contains("created"), "{again}");
    // The broker holds exactly what Topology declares (an equivalent declaration succeeds) and
    // the queue dead-letters to Q.dlx.
    topology
        .declare(&connection.create_channel().await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        laissez_amqp::check_dead_letters(&connection, q)
            .await
            .unwrap(),
        topology.dead_letter_exchange
    );
    delete(&connection, &topology).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_quorum_is_idempotent_and_a_classic_redeclaration_names_the_conflict() {
    let connection = connect().await;
    let topology = Topology::new(unique("declare-quorum")).quorum(5);
    let q = topology.queue.as_str();
    let args = [
        "declare",
        "--amqp",
        &amqp_url(),
        "--queue",
        q,
        "--quorum",
        "--delivery-limit",
        "5",
    ];
    let first = laissez(&args);
    assert!(first.status.success(), "{}", common::stderr(&first));
    assert!(common::stdout(&first).contains("x-delivery-limit=5"));
    let second = laissez(&args);
    assert!(second.status.success(), "{}", common::stderr(&second));
    assert_eq!(common::stdout(&second).matches("already there").count(), 4);
    // Exactly Topology's quorum declaration.
    topology
        .declare(&connection.create_channel().await.unwrap())
        .await
        .unwrap();
    // The dead-letter check learns a quorum queue's arguments too.
    assert_eq!(
        laissez_amqp::check_dead_letters(&connection, q)
            .await
            .unwrap(),
        topology.dead_letter_exchange
    );
    let classic = laissez(&["declare", "--amqp", &amqp_url(), "--queue", q]);
    assert_eq!(classic.status.code(), Some(3));
    let stderr = common::stderr(&classic);
    assert!(stderr.contains("conflicts"), "{stderr}");
    assert!(stderr.contains("PRECONDITION_FAILED"), "{stderr}");
    assert!(stderr.contains("x-queue-type"), "{stderr}");
    assert!(!stderr.contains("guest:guest"), "{stderr}");
    delete(&connection, &topology).await;
}

/// A queue declared by someone else, with these arguments.
async fn plain_queue(connection: &laissez_amqp::lapin::Connection, name: &str, args: FieldTable) {
    connection
        .create_channel()
        .await
        .unwrap()
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_on_a_queue_without_dead_letters_is_exit_3_naming_the_argument() {
    let connection = connect().await;
    let topology = Topology::new(unique("declare-conflict"));
    plain_queue(&connection, &topology.queue, FieldTable::default()).await;
    let out = laissez(&["declare", "--amqp", &amqp_url(), "--queue", &topology.queue]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = common::stderr(&out);
    assert!(stderr.contains("x-dead-letter-exchange"), "{stderr}");
    assert!(
        stderr.contains("nothing that existed was changed"),
        "{stderr}"
    );
    delete(&connection, &topology).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_refuses_a_queue_whose_refused_messages_would_be_dropped() {
    let setup = Setup::new("dlx-check").await;
    let connection = &setup.connection;
    // The queue without a dead-letter exchange (the topology deleted and the queue redone).
    let bare = Topology::new(unique("dlx-none"));
    plain_queue(connection, &bare.queue, FieldTable::default()).await;
    // One whose dead-letter exchange does not exist: its rejections would be dropped too.
    let dangling = Topology::new(unique("dlx-dangling"));
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(dangling.dead_letter_exchange.as_str().into()),
    );
    plain_queue(connection, &dangling.queue, args).await;
    for (queue, why) in [
        (&bare.queue, "no x-dead-letter-exchange"),
        (&dangling.queue, "NOT_FOUND"),
    ] {
        let out = run(setup.consume_queue(queue, &["--exit-when-idle", "1s"]));
        let stderr = common::stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
        assert!(stderr.contains("laissez declare"), "{stderr}");
        assert!(stderr.contains("--no-dead-letter-check"), "{stderr}");
        // With the opt-out it starts (and stops when idle).
        let out =
            run(setup.consume_queue(queue, &["--exit-when-idle", "1s", "--no-dead-letter-check"]));
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
    // After `laissez declare` on the same name the worker starts.
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_delete(bare.queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let declared = laissez(&["declare", "--amqp", &amqp_url(), "--queue", &bare.queue]);
    assert!(declared.status.success(), "{}", common::stderr(&declared));
    let out = run(setup.consume_queue(&bare.queue, &["--exit-when-idle", "1s"]));
    assert!(out.status.success(), "{}", common::stderr(&out));
    delete(connection, &bare).await;
    delete(connection, &dangling).await;
    setup.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_on_a_fresh_stream_logs_no_error() {
    let setup = Setup::new("first-start").await;
    let out = run(setup.consume(&["--exit-when-idle", "1s"]));
    let stderr = common::stderr(&out);
    assert!(out.status.success(), "{stderr}");
    // The stream was absent (the test's own name) and has been declared.
    assert!(stderr.contains("revocation"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "ERROR on a normal first start: {errors:?}"
    );
    setup.delete().await;
}

/// The unreachable services: exit 3 with the cause, and no panic text. No timing is asserted;
/// the guard only keeps a regression (a long silent retry) from hanging the run.
fn assert_fails_with_cause(out: &std::process::Output, cause: &str) {
    let stderr = common::stderr(out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.to_lowercase().contains(cause), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("guest:guest"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_or_redis_is_named_with_its_cause() {
    let setup = Setup::new("unreachable").await;
    let refused = "amqp://guest:guest@127.0.0.1:1/%2f";
    let unresolvable = "amqp://guest:guest@no-such-host.invalid:5672/%2f";
    for (url, cause) in [
        (refused, "refused"),
        (unresolvable, "could not be resolved"),
    ] {
        let mut consume = setup.consume(&["--exit-when-idle", "1s"]);
        consume.env("LAISSEZ_AMQP_URL", url);
        assert_fails_with_cause(&run(consume), cause);
        assert_fails_with_cause(&laissez(&["declare", "--amqp", url, "--queue", "q"]), cause);
        let key = setup.dir.path().join("issuer.key");
        std::fs::write(&key, setup.key.to_pkcs8_pem().unwrap().as_str()).unwrap();
        common::set_mode(&key, 0o600);
        let revoke = laissez(&[
            "revoke",
            "--key",
            key.to_str().unwrap(),
            "--session",
            "s",
            "--amqp",
            url,
        ]);
        assert_fails_with_cause(&revoke, cause);
    }
    let mut consume = setup.consume_without_ledger();
    consume.args(["--redis", "redis://127.0.0.1:1/", "--exit-when-idle", "1s"]);
    assert_fails_with_cause(&run(consume), "refused");
    setup.delete().await;
}
