//! One delivery, in one direction: read the headers, ask the gate
//! ([`laissez_verify::Verifier::decide`]), hold the use in the ledger, run the handler, plan
//! what becomes of the delivery ([`crate::outcome::plan`]), settle. Every refusal on the way
//! is one [`Verdict`] ([`crate::decide`]), reported and settled in one place.

use std::panic::AssertUnwindSafe;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures_lite::FutureExt as _;
use laissez_ledger::{HeldUse, UseLedger, UseRequest};
use laissez_verify::{
    ActionClass, Kid, OwnedClaims, Presented, ToolCatalogue as _, UntrustedEnvelope,
};
use lapin::message::Delivery;
use lapin::{Acker, BasicProperties};
use tokio::sync::watch;

use crate::audit;
use crate::decide::{Facts, Verdict, decide};
use crate::decision::Decision;
use crate::handler::{Authorized, Handler, Message};
use crate::headers;
use crate::outcome::{after_handler, release};
use crate::settle::{Broker, Settlement, settle};
use crate::shared::{Counters, Shared};
use crate::telemetry::{self, LedgerOp, RequeueCause};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What is known of a delivery for its report, as far as it got.
#[derive(Default)]
struct Report {
    /// The observer's decision: message id, tool, class, and once known the cti and agent.
    decision: Option<Decision>,
    class_header: Option<ActionClass>,
    /// The kid the root names (authentic only once verified).
    kid: Option<Kid>,
    /// The cti and agent the leaf claims, for denials before its signature held.
    claimed: Option<(String, String)>,
    /// The chain's agents, root first (one when not delegated): what the links claim until
    /// the chain verified, authentic after.
    chain_agents: Vec<String>,
}

/// A delivery the gate allowed and the ledger granted: what the handler gets.
struct Admitted<'l, L> {
    held: HeldUse<'l, L>,
    kid: Kid,
    claims: OwnedClaims,
    tool: String,
    class: ActionClass,
    /// The approvers whose approvals counted (`docs/spec.md` §12).
    approved_by: Vec<Kid>,
}

/// How far a delivery got.
enum Admission<'l, L> {
    /// Run the handler.
    Run(Admitted<'l, L>),
    /// Not run: denied or requeued.
    Stopped(Facts),
    /// The channel died: the broker redelivers; nothing was spent (or the use was released).
    ChannelLost,
}

/// The parts of a delivery the handler gets.
struct Parts {
    properties: BasicProperties,
    body: Vec<u8>,
    routing_key: String,
    redelivered: bool,
}

pub(crate) async fn process<L: UseLedger, H: Handler>(
    shared: &Shared<L, H>,
    broker: &Broker,
    delivery: Delivery,
    received_at: Instant,
    stop: watch::Receiver<bool>,
) {
    let Delivery {
        properties,
        data,
        acker,
        routing_key,
        redelivered,
        ..
    } = delivery;
    let id = headers::message_id(&properties).unwrap_or("").to_owned();
    if *stop.borrow() {
        // Shutting down before this message started: hand it back untouched.
        shared.count_requeue(RequeueCause::Shutdown);
        settle(broker, &acker, &id, Settlement::Requeue).await;
        return;
    }
    if let Some(held) = &shared.config.revocations {
        // Fail closed (`docs/spec.md` §14): no message is decided while the revocation
        // follower is not ready; it waits here (holding its prefetch slot, so at most
        // `prefetch` wait), and is handed back untouched on shutdown.
        let mut stop = stop.clone();
        if !held.status().wait_ready(&mut stop).await {
            shared.count_requeue(RequeueCause::Shutdown);
            settle(broker, &acker, &id, Settlement::Requeue).await;
            return;
        }
    }
    let mut report = Report {
        decision: Some(Decision::new(headers::message_id(&properties))),
        ..Report::default()
    };
    let admission = admit(shared, &properties, &data, &acker, &mut report).await;
    let mut decision = report
        .decision
        .take()
        .unwrap_or_else(|| Decision::new(None));
    let retry_key = format!("{}:{id}", decision.cti.as_deref().unwrap_or(""));
    let facts = match admission {
        Admission::ChannelLost => return,
        Admission::Run(admitted) => {
            shared.meters.allowed(received_at.elapsed());
            shared.forget_retries(&retry_key);
            let parts = Parts {
                properties,
                body: data,
                routing_key: routing_key.to_string(),
                redelivered,
            };
            run(
                shared, broker, &acker, admitted, decision, report, parts, &stop,
            )
            .await;
            return;
        }
        Admission::Stopped(facts) => facts,
    };
    // The one place every verdict is counted, as it is made: the metrics follow the decisions
    // (and their JSON lines) one for one.
    match decide(&facts) {
        Verdict::Deny(reason, detail) => {
            shared.meters.denied(reason, received_at.elapsed());
            shared.forget_retries(&retry_key);
            decision.allowed = false;
            decision.reason = Some(reason);
            decision.detail = (!detail.is_empty()).then(|| detail.into_owned());
            deny(shared, broker, &acker, &decision, &report).await;
        }
        Verdict::Requeue(reason, warning) => {
            shared.meters.undecided(received_at.elapsed());
            match warning {
                Some(warning) => tracing::warn!(
                    reason = reason.code(),
                    message_id = ?id,
                    cti = ?decision.cti,
                    warning = ?warning,
                    "laissez: requeueing without running"
                ),
                None => tracing::debug!(
                    reason = reason.code(),
                    message_id = ?id,
                    "laissez: requeueing without running"
                ),
            }
            shared.count_requeue(RequeueCause::of(reason));
            let delay = shared.next_retry_delay(retry_key);
            let later = Settlement::Later {
                delay,
                properties: &properties,
                body: &data,
            };
            settle(broker, &acker, &id, later).await;
        }
    }
}

/// Reads the headers, asks the gate, and holds the use: the handler's admission or the facts
/// that stop the delivery. `report` gathers what the report of a refusal needs, step by step.
async fn admit<'l, L: UseLedger, H>(
    shared: &'l Shared<L, H>,
    properties: &BasicProperties,
    body: &[u8],
    acker: &Acker,
    report: &mut Report,
) -> Admission<'l, L> {
    let call = match headers::read_headers(properties) {
        Ok(call) => call,
        Err(error) => return Admission::Stopped(Facts::Headers(error)),
    };
    let tools = &shared.config.tools;
    report.class_header = call.class_header;
    let links = call.links();
    let approvals: Vec<&[u8]> = call.approvals.iter().map(|a| &a[..]).collect();
    // The trusted key is the root's: the first of `laissez-chain`, else the envelope.
    report.kid = Presented::new(&links).claimed_kid();
    let presented = call.presented(&links, &approvals, body, tools);
    if let Some(decision) = &mut report.decision {
        decision.tool = Some(call.tool.to_owned());
        // The decision reports the catalogue's class, even when the header contradicts it.
        decision.class = tools.class_of(call.tool);
    }
    let presented = match presented {
        Ok(presented) => presented,
        Err(error) => return Admission::Stopped(Facts::Headers(error)),
    };
    // The verifier holds the revocations' lock and is not Send: decide, and copy out what is
    // needed, before any await.
    let now = unix_now();
    let leeway = shared.config.policy.leeway();
    let decided = {
        let verifier = shared.verifier();
        verifier.decide(&presented, now)
    };
    let allowed = match decided {
        Ok(allowed) => allowed,
        Err(refused) => {
            let denial = *refused.denial();
            match refused.chain() {
                // Time, audience, the call or its invocation failed after the signatures held:
                // the ids and agents are authentic.
                Some(chain) if denial.reason().after_signature() => {
                    let leaf = chain.leaf().claims();
                    if let Some(decision) = &mut report.decision {
                        decision.cti = Some(hex::encode(leaf.cti()));
                        decision.agent = Some(leaf.sub().to_owned());
                    }
                    report.chain_agents =
                        chain.iter().map(|e| e.claims().sub().to_owned()).collect();
                }
                _ if !matches!(denial, laissez_verify::Denial::Malformed(_)) => {
                    claimed(&call.envelope, &links, report);
                }
                _ => {}
            }
            return Admission::Stopped(Facts::Refused(denial));
        }
    };
    let leaf = allowed.leaf().claims();
    let claims = leaf.to_owned_claims();
    report.chain_agents = allowed
        .chain()
        .iter()
        .map(|e| e.claims().sub().to_owned())
        .collect();
    if let Some(decision) = &mut report.decision {
        decision.cti = Some(hex::encode(claims.cti));
        decision.agent = Some(claims.sub.clone());
    }
    let Some(class) = tools.class_of(call.tool) else {
        // The gate denies a tool the catalogue does not list; never spend without a class.
        return Admission::Stopped(Facts::Refused(laissez_verify::Denial::UnknownTool));
    };
    // A value the handler cannot be given is refused here, before a use is spent for it.
    if shared.config.refuse_nul {
        if call.message_id.contains('\0') {
            return Admission::Stopped(Facts::Unpassable("nul_in_message_id"));
        }
        let claimed = [Some(&claims.sub), claims.obo.as_ref(), claims.sid.as_ref()];
        if claimed
            .into_iter()
            .flatten()
            .any(|text| text.contains('\0'))
        {
            return Admission::Stopped(Facts::Unpassable("nul_in_claims"));
        }
    }
    let kid = allowed.chain().root().kid();
    let approved_by = allowed.approvers().as_slice().to_vec();
    let uses = UseRequest::new(
        &allowed.uses(),
        call.message_id,
        call.tool,
        class,
        leeway,
        shared.config.lease,
    );
    if acker.poisoned() {
        // The channel died: the broker redelivers this message; do not spend a use for it.
        return Admission::ChannelLost;
    }
    let held = match uses.hold(&*shared.ledger).await {
        Ok(held) => held,
        Err(not_granted) => {
            if let laissez_ledger::NotGranted::Failed(error) = &not_granted {
                telemetry::ledger_error(LedgerOp::Begin, error);
            }
            return Admission::Stopped(Facts::NotGranted(not_granted));
        }
    };
    if acker.poisoned() {
        // Lost the channel while spending: give the lease back so that the redelivery runs at
        // once under this use.
        release(held).await;
        return Admission::ChannelLost;
    }
    Admission::Run(Admitted {
        held,
        kid,
        claims,
        tool: call.tool.to_owned(),
        class,
        approved_by,
    })
}

/// What each link claims, for the report of a denial before the signatures held; nothing
/// when one does not decode.
fn claimed(envelope: &[u8], links: &[&[u8]], report: &mut Report) {
    let claims_of = |bytes: &[u8]| {
        UntrustedEnvelope::decode(bytes).ok().and_then(|e| {
            e.claims_unverified()
                .ok()
                .map(|c| (hex::encode(c.cti()), c.sub().to_owned()))
        })
    };
    report.claimed = claims_of(envelope);
    report.chain_agents = links
        .iter()
        .map(|link| claims_of(link).map(|(_, sub)| sub))
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default();
}

/// A denial: one audit event, the decision to the observer, dead-lettered.
async fn deny<L, H>(
    shared: &Shared<L, H>,
    broker: &Broker,
    acker: &Acker,
    decision: &Decision,
    report: &Report,
) {
    Counters::bump(&shared.counters.denied);
    let claims_verified = decision.cti.is_some();
    let (cti, agent) = match (&decision.cti, &decision.agent, &report.claimed) {
        (Some(c), Some(a), _) | (_, _, Some((c, a))) => (Some(c.as_str()), Some(a.as_str())),
        _ => (None, None),
    };
    audit::denied(&audit::Denied {
        allowed: false,
        // Always set by the caller.
        reason: decision.reason.unwrap_or(laissez_verify::Reason::Malformed),
        detail: decision.detail.as_deref().unwrap_or(""),
        message_id: decision.message_id.as_deref(),
        cti,
        agent,
        chain: &report.chain_agents,
        claims_verified,
        kid: report.kid,
        tool: decision.tool.as_deref(),
        class: decision.class,
        class_header: report.class_header,
        queue: &shared.config.queue,
    });
    let id = decision.message_id.as_deref().unwrap_or("");
    if !observe(shared, decision) {
        tracing::error!(message_id = ?id, "laissez: the decision observer panicked; the denial stands");
    }
    settle(broker, acker, id, Settlement::DeadLetter).await;
}

/// Calls the observer, if any; false when it panicked.
fn observe<L, H>(shared: &Shared<L, H>, decision: &Decision) -> bool {
    match &shared.observer {
        Some(observer) => std::panic::catch_unwind(AssertUnwindSafe(|| observer(decision))).is_ok(),
        None => true,
    }
}

/// An allowed message: audit event, observer, handler, then its outcome.
#[allow(clippy::too_many_arguments)]
async fn run<L: UseLedger, H: Handler>(
    shared: &Shared<L, H>,
    broker: &Broker,
    acker: &Acker,
    admitted: Admitted<'_, L>,
    mut decision: Decision,
    report: Report,
    parts: Parts,
    stop: &watch::Receiver<bool>,
) {
    let Admitted {
        held,
        kid,
        claims,
        tool,
        class,
        approved_by,
    } = admitted;
    let message_id = held.message_id().to_owned();
    decision.allowed = true;
    decision.use_number = Some(held.use_number());
    let cti = hex::encode(claims.cti);
    audit::allowed(&audit::Allowed {
        allowed: true,
        message_id: &message_id,
        cti: &cti,
        kid,
        agent: &claims.sub,
        chain: &report.chain_agents,
        obo: claims.obo.as_deref(),
        sid: claims.sid.as_deref(),
        tool: &tool,
        class,
        class_header: report.class_header,
        use_number: held.use_number(),
        taken_over: held.taken_over(),
        approved_by: &approved_by,
        queue: &shared.config.queue,
    });
    if !observe(shared, &decision) {
        // Nothing ran: give the use back to this message and bring it back later.
        tracing::error!(message_id = ?message_id, "laissez: the decision observer panicked before the handler ran; releasing the use and requeueing");
        release(held).await;
        shared.count_requeue(RequeueCause::ObserverFailed);
        let delay = shared.next_retry_delay(format!("{cti}:{message_id}"));
        let later = Settlement::Later {
            delay,
            properties: &parts.properties,
            body: &parts.body,
        };
        settle(broker, acker, &message_id, later).await;
        return;
    }
    Counters::bump(&shared.counters.handled);
    // A requeue through the retry queue republishes the message after the handler has it.
    let kept = broker
        .retry_queue
        .is_some()
        .then(|| (parts.properties.clone(), parts.body.clone()));
    let message = Message {
        authorized: Authorized {
            agent: claims.sub.clone(),
            chain: report.chain_agents,
            obo: claims.obo.clone(),
            session: claims.sid.clone(),
            tool,
            class,
            cti: claims.cti,
            kid,
            use_number: held.use_number(),
            taken_over: held.taken_over(),
            message_id,
            approved_by,
            claims,
        },
        body: parts.body,
        properties: parts.properties,
        routing_key: parts.routing_key,
        redelivered: parts.redelivered,
    };
    // A panic while making the future is the handler's failure as much as one inside it.
    let outcome =
        match std::panic::catch_unwind(AssertUnwindSafe(|| shared.handler.handle(message))) {
            Err(panic) => Err(panic_text(panic.as_ref())),
            Ok(future) => match AssertUnwindSafe(future).catch_unwind().await {
                Ok(Ok(disposition)) => Ok(disposition),
                Ok(Err(error)) => Err(error.to_string()),
                Err(panic) => Err(panic_text(panic.as_ref())),
            },
        };
    after_handler(shared, broker, acker, held, class, outcome, kept, stop).await;
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".to_owned());
    format!("handler panicked: {text}")
}
