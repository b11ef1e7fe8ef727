//! One delivery: learn (read the headers, verify, spend the use), [`decide`], then carry the
//! verdict out through [`settle`].

use std::panic::AssertUnwindSafe;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures_lite::FutureExt as _;
use laissez_ledger::{Ancestor, Begin, Cti, LeaseToken, UseLedger};
use laissez_verify::{
    ActionClass, Denial, Kid, OwnedClaims, Request, ToolCatalogue as _, UntrustedEnvelope,
};
use lapin::message::Delivery;
use lapin::{Acker, BasicProperties};
use tokio::sync::watch;

use crate::audit;
use crate::call_check::{call_of, check_call};
use crate::decide::{Facts, Grant, Verdict, decide};
use crate::decision::Decision;
use crate::handler::{Authorized, Handler, Message};
use crate::headers::{self, HeaderError, ToolCallHeaders};
use crate::outcome::after_handler;
use crate::settle::{Broker, Settlement, settle};
use crate::shared::{Counters, Shared};
use crate::telemetry::{self, LedgerOp, RequeueCause};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The use this message holds, once granted.
pub(crate) struct Held {
    pub(crate) cti: Cti,
    pub(crate) message_id: String,
    pub(crate) lease: LeaseToken,
    pub(crate) class: ActionClass,
}

/// What the audit event needs beyond the decision.
#[derive(Default)]
struct Seen {
    class_header: Option<ActionClass>,
    /// The kid the envelope names (authentic only once verified).
    kid: Option<Kid>,
    /// The cti and agent the envelope claims, for denials before its signature held.
    claimed: Option<(String, String)>,
    /// Once verified: the key and the claims.
    verified: Option<(Kid, OwnedClaims)>,
    /// Once verified: the approvers whose approvals counted (`docs/spec.md` §12).
    approved_by: Vec<Kid>,
    /// The chain's agents, root first (one when not delegated): what the links claim until
    /// the chain verified, authentic after.
    chain_agents: Vec<String>,
    /// Once verified: the leaf's ancestors, root first, for the ledger (`docs/spec.md` §13):
    /// each one's cti, max_uses and exp.
    ancestors: Vec<(Cti, u64, u64)>,
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
    let mut decision = Decision::new(headers::message_id(&properties));
    let mut seen = Seen::default();
    let facts = learn(shared, &properties, &data, &acker, &mut decision, &mut seen).await;
    let Some(facts) = facts else {
        return; // The channel died: the broker redelivers; nothing was spent.
    };
    let retry_key = format!("{}:{id}", decision.cti.as_deref().unwrap_or(""));
    let verdict = decide(&facts);
    // The one place every verdict is counted, as it is made: the metrics follow the decisions
    // (and their JSON lines) one for one.
    let took = received_at.elapsed();
    match &verdict {
        Verdict::Run(_) => shared.meters.allowed(took),
        Verdict::Deny(reason, _) => shared.meters.denied(*reason, took),
        Verdict::Requeue(..) => shared.meters.undecided(took),
    }
    match verdict {
        Verdict::Run(grant) => {
            shared.forget_retries(&retry_key);
            let Some((kid, claims)) = seen.verified.take() else {
                return; // Unreachable: a grant follows a verified envelope.
            };
            let parts = Parts {
                properties,
                body: data,
                routing_key: routing_key.to_string(),
                redelivered,
            };
            run(
                shared, broker, &acker, grant, kid, claims, decision, seen, parts, &stop,
            )
            .await;
        }
        Verdict::Deny(reason, detail) => {
            shared.forget_retries(&retry_key);
            decision.allowed = false;
            decision.reason = Some(reason);
            decision.detail = (!detail.is_empty()).then(|| detail.into_owned());
            deny(shared, broker, &acker, &decision, &seen).await;
        }
        Verdict::Requeue(reason, warning) => {
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

/// Reads the headers, verifies, and spends the use: the facts for [`decide`]. `None` when the
/// channel died before the use was spent (or while spending it: the use is released).
async fn learn<L: UseLedger, H>(
    shared: &Shared<L, H>,
    properties: &BasicProperties,
    body: &[u8],
    acker: &Acker,
    decision: &mut Decision,
    seen: &mut Seen,
) -> Option<Facts> {
    let call = match headers::read_headers(properties) {
        Ok(call) => call,
        Err(error) => return Some(Facts::Headers(error)),
    };
    let tools = &shared.config.tools;
    decision.tool = Some(call.tool.to_owned());
    seen.class_header = call.class_header;
    // The trusted key is the root's: the first of `laissez-chain`, else the envelope.
    let root = call.chain.first().unwrap_or(&call.envelope);
    seen.kid = UntrustedEnvelope::decode(root).ok().map(|e| e.kid());
    // The decision reports the catalogue's class, even when the header contradicts it.
    decision.class = tools.class_of(call.tool);
    let class = match call.class_in(tools) {
        Ok(class) => class,
        Err(error) => return Some(Facts::Headers(error)),
    };
    // The request's class is the catalogue's; the tool passed the grammar when it was read.
    let Ok(request) = Request::from_catalogue(call.tool, tools) else {
        return Some(Facts::Headers(HeaderError::BadTool));
    };
    if let Err(refused) = verify(shared, &call, &request, class, body, seen) {
        let after_signature = match &refused {
            Facts::Verification(denial) => denial.reason().after_signature(),
            // The envelope held for the call; only its holder binding did not.
            _ => true,
        };
        if after_signature {
            // Time, audience, the call or its invocation failed after the signature held:
            // the ids are authentic.
            if let Some((cti, agent)) = seen.claimed.take() {
                decision.cti = Some(cti);
                decision.agent = Some(agent);
            }
        }
        return Some(refused);
    }
    let (_, claims) = seen.verified.as_ref()?;
    decision.cti = Some(hex::encode(claims.cti));
    decision.agent = Some(claims.sub.clone());
    let Some(class) = class else {
        // The verifier denies a tool the catalogue does not list; never spend without a class.
        return Some(Facts::Verification(Denial::UnknownTool));
    };
    // A value the handler cannot be given is refused here, before a use is spent for it.
    if shared.config.refuse_nul {
        if call.message_id.contains('\0') {
            return Some(Facts::Unpassable("nul_in_message_id"));
        }
        let claimed = [Some(&claims.sub), claims.obo.as_ref(), claims.sid.as_ref()];
        if claimed
            .into_iter()
            .flatten()
            .any(|text| text.contains('\0'))
        {
            return Some(Facts::Unpassable("nul_in_claims"));
        }
    }
    if acker.poisoned() {
        // The channel died: the broker redelivers this message; do not spend a use for it.
        return None;
    }
    let leeway = shared.config.policy.leeway();
    // A use spends one use of every envelope of the chain at once (`docs/spec.md` §13).
    let ancestors: Vec<Ancestor<'_>> = seen
        .ancestors
        .iter()
        .map(|(cti, max_uses, exp)| Ancestor {
            cti,
            max_uses: *max_uses,
            expires_at: exp.saturating_add(leeway),
        })
        .collect();
    let begin = Begin {
        cti: &claims.cti,
        message_id: call.message_id,
        max_uses: claims.max_uses,
        expires_at: claims.exp.saturating_add(leeway),
        lease: shared.config.lease,
        tool: call.tool,
        class,
        ancestors: &ancestors,
    };
    let answer = shared.ledger.begin(&begin).await;
    if let Err(error) = &answer {
        telemetry::ledger_error(LedgerOp::Begin, error);
    }
    if let Ok(laissez_ledger::Outcome::Granted { lease, .. }) = &answer
        && acker.poisoned()
    {
        // Lost the channel while spending: give the lease back so that the redelivery runs at
        // once under this use.
        let held = Held {
            cti: claims.cti,
            message_id: call.message_id.to_owned(),
            lease: *lease,
            class,
        };
        release(shared, &held).await;
        return None;
    }
    Some(Facts::Ledger(answer))
}

/// Verifies the envelope for the call through the cache (only its signature is cached, never
/// an invocation nor an approval), in the order of `docs/spec.md` §2: the envelope's rows
/// through `revoked`, then the holder binding, then approval. On success `seen.verified`
/// holds the key and claims and `seen.approved_by` the approvers that counted; on a denial
/// `seen.claimed` holds what the envelope claims, when it decodes, and the facts say why.
///
/// The call is the message as delivered: the envelope bytes as received (decoded from text
/// when the header was text), this worker's audience, the message id, the tool, the
/// catalogue's class and the body's exact bytes. A tool the catalogue does not list has no
/// class, hence no call: the envelope's rows alone run, and the verifier says `unknown_tool`
/// in its place. For a bearer envelope (without `require_holder`) whose call needs no
/// approval the call's rows have nothing to check and any invocation or approval is ignored,
/// so the body is not hashed.
fn verify<L, H>(
    shared: &Shared<L, H>,
    headers: &ToolCallHeaders<'_>,
    request: &Request<'_>,
    class: Option<ActionClass>,
    body: &[u8],
    seen: &mut Seen,
) -> Result<(), Facts> {
    // The verifier is not Send: verify, and copy out what is needed, before any await.
    let verifier = shared.verifier();
    let now = unix_now();
    let links = headers.links();
    let checked = match shared.cache.authenticate_chain(&verifier, &links, now) {
        Err(denial) => Err(Facts::Verification(denial)),
        Ok(chain) => {
            let leaf = chain.leaf();
            // Every approval rule of every envelope of the chain holds (`docs/spec.md` §13).
            let needs_call = |class: ActionClass| {
                leaf.claims().holder().is_some()
                    || verifier.policy().require_holder()
                    || chain.iter().any(|e| {
                        crate::approvals::may_need_approval(e.claims(), verifier.policy(), class)
                    })
            };
            let checked = match class {
                Some(class) if needs_call(class) => {
                    call_of(&shared.config.audience, headers, class, body)
                        .and_then(|call| check_call(&verifier, &chain, now, &call, headers))
                }
                _ => verifier
                    .check_chain(&chain, now, Some(request))
                    .map(|()| Vec::new())
                    .map_err(Facts::Verification),
            };
            match checked {
                Ok(approved_by) => {
                    seen.verified = Some((chain.root().kid(), leaf.claims().to_owned_claims()));
                    seen.approved_by = approved_by;
                    seen.chain_agents = chain.iter().map(|e| e.claims().sub().to_owned()).collect();
                    seen.ancestors = chain
                        .iter()
                        .take(chain.len() - 1)
                        .map(|e| {
                            let c = e.claims();
                            (*c.cti(), c.max_uses(), c.exp())
                        })
                        .collect();
                    Ok(())
                }
                Err(refused) => Err(refused),
            }
        }
    };
    if let Err(refused) = &checked
        && !matches!(refused, Facts::Verification(Denial::Malformed(_)))
    {
        seen.claimed = UntrustedEnvelope::decode(&headers.envelope)
            .ok()
            .and_then(|e| e.claims_unverified().ok())
            .map(|c| (hex::encode(c.cti()), c.sub().to_owned()));
        // What each link claims; nothing when one does not decode.
        seen.chain_agents = links
            .iter()
            .map(|link| {
                UntrustedEnvelope::decode(link)
                    .ok()
                    .and_then(|e| e.claims_unverified().ok())
                    .map(|c| c.sub().to_owned())
            })
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
    }
    checked
}

/// A denial: one audit event, the decision to the observer, dead-lettered.
async fn deny<L, H>(
    shared: &Shared<L, H>,
    broker: &Broker,
    acker: &Acker,
    decision: &Decision,
    seen: &Seen,
) {
    Counters::bump(&shared.counters.denied);
    let claims_verified = decision.cti.is_some();
    let (cti, agent) = match (&decision.cti, &decision.agent, &seen.claimed) {
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
        chain: &seen.chain_agents,
        claims_verified,
        kid: seen.kid,
        tool: decision.tool.as_deref(),
        class: decision.class,
        class_header: seen.class_header,
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
    grant: Grant,
    kid: Kid,
    claims: OwnedClaims,
    mut decision: Decision,
    seen: Seen,
    parts: Parts,
    stop: &watch::Receiver<bool>,
) {
    let (Some(tool), Some(class), Some(message_id)) = (
        decision.tool.clone(),
        decision.class,
        decision.message_id.clone(),
    ) else {
        return; // Unreachable: a grant follows a read call with a class.
    };
    let held = Held {
        cti: claims.cti,
        message_id: message_id.clone(),
        lease: grant.lease,
        class,
    };
    decision.allowed = true;
    decision.use_number = Some(grant.use_number);
    let cti = hex::encode(claims.cti);
    audit::allowed(&audit::Allowed {
        allowed: true,
        message_id: &message_id,
        cti: &cti,
        kid,
        agent: &claims.sub,
        chain: &seen.chain_agents,
        obo: claims.obo.as_deref(),
        sid: claims.sid.as_deref(),
        tool: &tool,
        class,
        class_header: seen.class_header,
        use_number: grant.use_number,
        taken_over: grant.taken_over,
        approved_by: &seen.approved_by,
        queue: &shared.config.queue,
    });
    if !observe(shared, &decision) {
        // Nothing ran: give the use back to this message and bring it back later.
        tracing::error!(message_id = ?message_id, "laissez: the decision observer panicked before the handler ran; releasing the use and requeueing");
        release(shared, &held).await;
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
            chain: seen.chain_agents,
            obo: claims.obo.clone(),
            session: claims.sid.clone(),
            tool,
            class,
            cti: claims.cti,
            kid,
            use_number: grant.use_number,
            taken_over: grant.taken_over,
            message_id,
            approved_by: seen.approved_by,
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
    after_handler(shared, broker, acker, held, outcome, kept, stop).await;
}

/// Gives the use back: a redelivery runs at once under it.
pub(crate) async fn release<L: UseLedger, H>(shared: &Shared<L, H>, held: &Held) {
    if let Err(error) = shared
        .ledger
        .release(&held.cti, &held.message_id, &held.lease)
        .await
    {
        telemetry::ledger_error(LedgerOp::Release, &error);
        tracing::warn!(error = ?error.to_string(), message_id = ?held.message_id, cti = hex::encode(held.cti), "laissez: could not release the lease; a redelivery waits for it to lapse");
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".to_owned());
    format!("handler panicked: {text}")
}
