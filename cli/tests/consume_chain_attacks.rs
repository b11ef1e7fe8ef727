//! Attacks on delegation chains (issue 23, items 3, 6 and 9), replayed against `laissez
//! consume` on the real broker: each forged child is made with the lower-level signing API
//! (`laissez_test_support::force_child_with`), bypassing `delegate`'s refusals, as a hostile
//! delegator would.
//!
//! - 3: a grandchild re-signed with its uncle's cti, and with a stranger root's cti, spends
//!   twice; the victims' first calls still run (redb and Redis: counts are keyed by path).
//! - 6: a child claiming `obo` its root never named is `not_attenuated` (`obo`) and never runs.
//! - 9: a child whose iat is a day ahead is `not_yet_valid`; an `--agent` revocation still
//!   stops a child with a plausible iat.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::{Command, Output};

use common::broker::Setup;
use laissez_amqp::ToolCall;
use laissez_sign::{EnvelopeBuilder, SecretKey, SignedEnvelope, delegate};
use laissez_test_support::{Forced, amqp_url, force_child_with, seed_of_pkcs8_pem};
use laissez_verify::ActionClass;

/// The decisions of a worker run until idle, by message id (sorted), with its stderr: the
/// lines the handler printed (`ran <id>` for each run) and the audit events.
struct Run {
    decisions: Vec<(String, String)>,
    stderr: String,
}

impl Run {
    fn of(out: &Output) -> Run {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let mut decisions = Vec::new();
        for line in String::from_utf8(out.stdout.clone()).unwrap().lines() {
            let d: serde_json::Value = serde_json::from_str(line).unwrap();
            if crate::common::is_outcome_line(&d) {
                // How a command ended; the decisions are the other lines.
                continue;
            }
            let id = d["message_id"].as_str().unwrap().to_owned();
            let reason = d["reason"].as_str().unwrap_or("allowed").to_owned();
            decisions.push((id, reason));
        }
        decisions.sort();
        Run { decisions, stderr }
    }

    fn ran(&self) -> Vec<&str> {
        let mut ran: Vec<&str> = self
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("ran "))
            .collect();
        ran.sort_unstable();
        ran
    }
}

/// Runs the worker until idle with a handler that prints `ran <message id> obo=<obo>`.
fn consume(mut cmd: Command) -> Run {
    let script = r#"echo "ran $LAISSEZ_MESSAGE_ID obo=${LAISSEZ_OBO-}" >&2"#;
    let out = cmd
        .args(["--exit-when-idle", "2s", "--exec", "sh", "-c", script])
        .output()
        .unwrap();
    Run::of(&out)
}

fn seed(key: &SecretKey) -> [u8; 32] {
    seed_of_pkcs8_pem(key.to_pkcs8_pem().unwrap().as_str()).unwrap()
}

fn cti(envelope: &[u8]) -> [u8; 16] {
    *laissez_verify::envelope::UntrustedEnvelope::decode(envelope)
        .unwrap()
        .claims_unverified()
        .unwrap()
        .cti()
}

/// A child of `parent` signed by `by` (the parent's holder) without `delegate`'s checks, for
/// `agent` bound to `holder`, `builder`'s claims, then `forced`'s.
fn forge(parent: &[u8], by: &SecretKey, builder: EnvelopeBuilder, forced: &Forced) -> Vec<u8> {
    let unparented: SignedEnvelope = builder.sign(by).unwrap();
    force_child_with(parent, unparented.as_bytes(), &seed(by), forced).unwrap()
}

fn root_for(setup: &Setup, holder: &SecretKey, max_uses: u64) -> Vec<u8> {
    EnvelopeBuilder::new("A")
        .audience(&setup.topology.queue)
        .tool("crm.*")
        .max_uses(max_uses)
        .ttl_secs(600)
        .holder(holder.public_key())
        .sign(&setup.key)
        .unwrap()
        .into_bytes()
}

fn child_builder(setup: &Setup, agent: &str, holder: &SecretKey, max_uses: u64) -> EnvelopeBuilder {
    EnvelopeBuilder::new(agent)
        .audience(&setup.topology.queue)
        .tool("crm.read")
        .max_uses(max_uses)
        .ttl_secs(120)
        .holder(holder.public_key())
}

/// Attack 3: orch → A (6 uses) → X for B (2 uses) and Y for C (4 uses); a stranger V, a root
/// of 2 uses. C re-signs two children of Y: one with X's cti, one with V's, and spends each
/// twice. Then B's and V's first calls run: nothing C did reached their counts.
async fn a_child_with_a_victims_cti_leaves_the_victims_uses_alone(
    prefix: &str,
    worker: impl Fn(&Setup) -> Command,
) {
    let setup = Setup::new(prefix).await;
    let queue = setup.topology.queue.clone();
    let [a, b, c, g] = [(); 4].map(|()| SecretKey::generate().unwrap());
    let root = root_for(&setup, &a, 6);
    let x = delegate(&a, &[&root], child_builder(&setup, "B", &b, 2)).unwrap();
    let y = delegate(&a, &[&root], child_builder(&setup, "C", &c, 4)).unwrap();
    let (x, y) = (x.leaf().to_vec(), y.leaf().to_vec());
    let stranger = EnvelopeBuilder::new("V")
        .audience(&queue)
        .tool("crm.read")
        .max_uses(2)
        .sign(&setup.key)
        .unwrap()
        .into_bytes();
    let named_after = |victim: &[u8]| {
        let forced = Forced {
            cti: Some(cti(victim)),
            ..Forced::default()
        };
        forge(&y, &c, child_builder(&setup, "G", &g, 2), &forced)
    };
    let (after_uncle, after_stranger) = (named_after(&x), named_after(&stranger));
    let under_y = [root.as_slice(), y.as_slice()];
    for (leaf, name) in [(&after_uncle, "uncle"), (&after_stranger, "stranger")] {
        for n in 1..=2 {
            let id = format!("attacker-{name}-{n}");
            let call = ToolCall::new(leaf, "crm.read", ActionClass::Read, &id)
                .with_chain(&under_y)
                .signed_by(&g, &queue);
            setup.publish_call(call).await;
        }
    }
    let under_root = [root.as_slice()];
    let call = ToolCall::new(&x, "crm.read", ActionClass::Read, "victim-uncle")
        .with_chain(&under_root)
        .signed_by(&b, &queue);
    setup.publish_call(call).await;
    setup
        .publish(&stranger, "crm.read", ActionClass::Read, "victim-stranger")
        .await;

    let run = consume(worker(&setup));
    let allowed = |id: &str| (id.to_owned(), "allowed".to_owned());
    assert_eq!(
        run.decisions,
        [
            allowed("attacker-stranger-1"),
            allowed("attacker-stranger-2"),
            allowed("attacker-uncle-1"),
            allowed("attacker-uncle-2"),
            allowed("victim-stranger"),
            allowed("victim-uncle"),
        ],
        "{}",
        run.stderr
    );
    assert_eq!(run.ran().len(), 6, "{}", run.stderr);
    setup.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_3_a_childs_stolen_cti_never_spends_the_victims_uses_redb() {
    a_child_with_a_victims_cti_leaves_the_victims_uses_alone("chain-cti-redb", |s| s.consume(&[]))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_3_a_childs_stolen_cti_never_spends_the_victims_uses_redis() {
    let redis = laissez_test_support::redis_url();
    a_child_with_a_victims_cti_leaves_the_victims_uses_alone("chain-cti-redis", |s| {
        let mut cmd = s.consume_without_ledger();
        cmd.args(["--redis", &redis]);
        cmd
    })
    .await;
}

/// Attack 6: the root names no principal; its holder signs a child claiming to act for
/// ceo@acme.example. The worker refuses it, naming the field, and the handler never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_6_a_child_cannot_claim_an_obo_its_root_never_named() {
    let setup = Setup::new("chain-obo").await;
    let queue = setup.topology.queue.clone();
    let [a, b] = [(); 2].map(|()| SecretKey::generate().unwrap());
    let root = root_for(&setup, &a, 5);
    let builder = child_builder(&setup, "B", &b, 2).on_behalf_of("ceo@acme.example");
    let forged = forge(&root, &a, builder, &Forced::default());
    let ancestors = [root.as_slice()];
    let call = ToolCall::new(&forged, "crm.read", ActionClass::Read, "as-the-ceo")
        .with_chain(&ancestors)
        .signed_by(&b, &queue);
    setup.publish_call(call).await;

    let run = consume(setup.consume(&[]));
    assert_eq!(
        run.decisions,
        [("as-the-ceo".to_owned(), "not_attenuated".to_owned())],
        "{}",
        run.stderr
    );
    // The audit event names the field.
    assert!(run.stderr.contains(r#""detail":"obo""#), "{}", run.stderr);
    assert!(run.ran().is_empty(), "{}", run.stderr);
    assert_eq!(
        setup.count(&setup.topology.dead_letter_queue).await,
        ["as-the-ceo"]
    );
    // delegate itself refuses to sign it, naming the field.
    let refused = delegate(
        &a,
        &[&root],
        child_builder(&setup, "B", &b, 2).on_behalf_of("ceo@acme.example"),
    )
    .unwrap_err();
    assert!(refused.to_string().contains("(obo)"), "{refused}");
    setup.delete().await;
}

/// Attack 9: after `revoke --agent B`, a child for B whose iat is a day ahead ("issued up to
/// iat" would not cover it) is `not_yet_valid`, and B's child with a plausible iat is
/// `revoked`: neither runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_9_a_future_iat_does_not_escape_an_agent_revocation() {
    let setup = Setup::new("chain-iat").await;
    let dir = setup.dir.path();
    let queue = setup.topology.queue.clone();
    let [a, b] = [(); 2].map(|()| SecretKey::generate().unwrap());
    let root = root_for(&setup, &a, 5);
    let plausible = delegate(&a, &[&root], child_builder(&setup, "B", &b, 2)).unwrap();
    let day_ahead = Forced {
        iat: Some(laissez_sign::unix_now() + 86_400),
        ..Forced::default()
    };
    let future = forge(&root, &a, child_builder(&setup, "B", &b, 2), &day_ahead);

    std::fs::write(dir.join("iss"), setup.key.to_pkcs8_pem().unwrap().as_str()).unwrap();
    common::set_mode(&dir.join("iss"), 0o600);
    // Issued up to now: the plausible child's iat is at most the record's.
    let out = Command::new(assert_cmd::cargo::cargo_bin("laissez"))
        .args(["revoke", "--key", "iss", "--agent", "B"])
        .args([
            "--amqp",
            &amqp_url(),
            "--stream",
            &setup.revocation_stream(),
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ancestors = [root.as_slice()];
    for (leaf, id) in [
        (future.as_slice(), "iat-ahead"),
        (plausible.leaf(), "iat-now"),
    ] {
        let call = ToolCall::new(leaf, "crm.read", ActionClass::Read, id)
            .with_chain(&ancestors)
            .signed_by(&b, &queue);
        setup.publish_call(call).await;
    }
    let run = consume(setup.consume(&[]));
    assert_eq!(
        run.decisions,
        [
            ("iat-ahead".to_owned(), "not_yet_valid".to_owned()),
            ("iat-now".to_owned(), "revoked".to_owned()),
        ],
        "{}",
        run.stderr
    );
    assert!(run.ran().is_empty(), "{}", run.stderr);
    setup.delete().await;
}
