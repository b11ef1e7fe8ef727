//! One delivery: read, verify, spend, run, settle.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_lite::FutureExt as _;
use laissez_ledger::{Begin, Cti, LeaseToken, LedgerError, Outcome, UseLedger};
use laissez_verify::{ActionClass, Denial, Kid, UntrustedEnvelope};
use lapin::Acker;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use tokio::sync::watch;

use crate::consumer::{Counters, OnHandlerError, Shared};
use crate::decision::Decision;
use crate::handler::{Authorized, Disposition, Handler, Message};
use crate::headers::{self, ToolCallHeaders};

/// Retry entries kept for the requeue backoff before the map is cleared.
const MAX_RETRY_ENTRIES: usize = 4096;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The use this message holds, once granted.
struct Held {
    cti: Cti,
    message_id: String,
    lease: LeaseToken,
    class: ActionClass,
}

pub(crate) async fn process<L: UseLedger, H: Handler>(
    shared: &Shared<L, H>,
    delivery: Delivery,
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
    if *stop.borrow() {
        // Shutting down before this message started: hand it back untouched.
        requeue(shared, &acker, "shutdown", None, Duration::ZERO, &stop).await;
        return;
    }
    let mut decision = Decision::new(headers::message_id(&properties));
    let call = match headers::read_headers(&properties) {
        Ok(call) => call,
        Err(e) => {
            deny(shared, &acker, decision, e.code(), e.detail(), None, None).await;
            return;
        }
    };
    decision.request(call.tool, call.class);
    let granted = match authorize(shared, &call, &mut decision, &acker, &stop).await {
        Some(granted) => granted,
        None => return,
    };
    let (authorized, held) = granted;
    drop(call);
    decision.allowed = true;
    decision.use_number = Some(authorized.use_number);
    Counters::bump(&shared.counters.handled);
    tracing::info!(
        target: "laissez::audit",
        allowed = true,
        message_id = %authorized.message_id,
        cti = %authorized.cti_hex(),
        agent = %authorized.agent,
        obo = authorized.obo.as_deref().unwrap_or(""),
        sid = authorized.session.as_deref().unwrap_or(""),
        kid = %authorized.kid,
        tool = %authorized.tool,
        class = authorized.class.name(),
        use_number = authorized.use_number,
        taken_over = authorized.taken_over,
        "laissez: message authorised"
    );
    if let Some(observer) = &shared.observer {
        observer(&decision);
    }
    let message = Message {
        authorized,
        body: data,
        properties,
        routing_key: routing_key.to_string(),
        redelivered,
    };
    let outcome = AssertUnwindSafe(shared.handler.handle(message))
        .catch_unwind()
        .await;
    let outcome = match outcome {
        Ok(Ok(disposition)) => Ok(disposition),
        Ok(Err(error)) => Err(error.to_string()),
        Err(panic) => Err(panic_text(panic.as_ref())),
    };
    settle(shared, &acker, held, outcome, &stop).await;
}

/// Verifies the envelope and spends the use. `None` when the message was denied or requeued
/// (already settled).
async fn authorize<L: UseLedger, H>(
    shared: &Shared<L, H>,
    call: &ToolCallHeaders<'_>,
    decision: &mut Decision,
    acker: &Acker,
    stop: &watch::Receiver<bool>,
) -> Option<(Authorized, Held)> {
    // The tool was checked against the grammar when the headers were read.
    let request = call.request().ok()?;
    // The verifier is not Send: verify, and copy out what is needed, before any await.
    let verified = {
        let verifier = shared.verifier();
        shared
            .cache
            .verify(&verifier, &call.envelope, unix_now(), Some(&request))
            .map(|v| (v.kid(), v.claims().to_owned_claims()))
    };
    let (kid, claims) = match verified {
        Ok(verified) => verified,
        Err(denial) => {
            let ids = unverified_ids(&call.envelope, denial);
            let mut decision = decision.clone();
            if signature_held(denial) {
                // Time, audience or request failed after the signature held: the ids are
                // authentic.
                if let Some((cti, agent)) = &ids {
                    decision.cti = Some(cti.clone());
                    decision.agent = Some(agent.clone());
                }
            }
            let kid = claimed_kid(&call.envelope);
            deny(shared, acker, decision, denial.code(), "", ids, kid).await;
            return None;
        }
    };
    let cti = claims.cti;
    decision.cti = Some(hex::encode(cti));
    decision.agent = Some(claims.sub.clone());
    if acker.poisoned() {
        // The channel died: the broker redelivers this message; do not spend a use for it.
        return None;
    }
    let begin = Begin {
        cti: &cti,
        message_id: call.message_id,
        max_uses: claims.max_uses,
        expires_at: claims.exp.saturating_add(shared.config.policy.leeway()),
        lease: shared.config.lease,
        tool: call.tool,
        class: call.class,
    };
    let retry_key = format!("{}:{}", hex::encode(cti), call.message_id);
    let reason = match shared.ledger.begin(&begin).await {
        Ok(Outcome::Granted {
            use_number,
            lease,
            taken_over,
        }) => {
            forget_retries(shared, &retry_key);
            let held = Held {
                cti,
                message_id: call.message_id.to_owned(),
                lease,
                class: call.class,
            };
            if acker.poisoned() {
                // Lost the channel while spending: give the lease back so the redelivery runs
                // at once under this use.
                release(shared, &held).await;
                return None;
            }
            let authorized = Authorized {
                agent: claims.sub.clone(),
                obo: claims.obo.clone(),
                session: claims.sid.clone(),
                tool: call.tool.to_owned(),
                class: call.class,
                cti,
                kid,
                use_number,
                taken_over,
                message_id: call.message_id.to_owned(),
                claims,
            };
            return Some((authorized, held));
        }
        Ok(Outcome::Replayed) => Err(Denial::Replayed.code()),
        Ok(Outcome::Exhausted) => Err(Denial::UsesExhausted.code()),
        Ok(Outcome::Abandoned) => Err("abandoned"),
        // The message id was spent on another call: to the contract, a replay.
        Ok(Outcome::OtherCall) => Err(Denial::Replayed.code()),
        Ok(Outcome::InFlight) => Ok("in_flight"),
        Ok(_) => Ok("ledger_outcome_unknown"),
        Err(LedgerError::Expired) => Err(Denial::Expired.code()),
        Err(LedgerError::InvalidMessageId | LedgerError::InvalidRequest(_)) => Err("malformed"),
        Err(error) => {
            tracing::warn!(%error, message_id = call.message_id, cti = %hex::encode(cti), %kid, "laissez: ledger unreachable, requeueing");
            Ok("ledger_unavailable")
        }
    };
    match reason {
        Err(code) => {
            forget_retries(shared, &retry_key);
            deny(shared, acker, decision.clone(), code, "", None, Some(kid)).await;
        }
        Ok(why) => {
            let delay = next_retry_delay(shared, retry_key);
            requeue(shared, acker, why, Some(call.message_id), delay, stop).await;
        }
    }
    None
}

/// Applies the handler's outcome: complete then settle on success; release then requeue when
/// asked; dead-letter (or requeue, when so configured and not destructive) on failure.
async fn settle<L: UseLedger, H>(
    shared: &Shared<L, H>,
    acker: &Acker,
    held: Held,
    outcome: Result<Disposition, String>,
    stop: &watch::Receiver<bool>,
) {
    let id = held.message_id.as_str();
    match outcome {
        Ok(Disposition::Ack) => {
            complete(shared, &held).await;
            report(acker.ack(BasicAckOptions::default()).await, id, "ack");
        }
        Ok(Disposition::Reject) => {
            complete(shared, &held).await;
            report(acker.reject(no_requeue()).await, id, "reject");
        }
        Ok(Disposition::Requeue { after }) => {
            wait(after, stop).await;
            release(shared, &held).await;
            Counters::bump(&shared.counters.requeued);
            report(acker.nack(requeue_opts()).await, id, "requeue");
        }
        Err(error) => {
            Counters::bump(&shared.counters.handler_failures);
            let cti = hex::encode(held.cti);
            match shared.config.on_handler_error {
                OnHandlerError::Requeue { after } if held.class != ActionClass::Destructive => {
                    tracing::warn!(message_id = id, %cti, %error, "laissez: handler failed, requeueing");
                    wait(after, stop).await;
                    release(shared, &held).await;
                    Counters::bump(&shared.counters.requeued);
                    report(acker.nack(requeue_opts()).await, id, "requeue");
                }
                _ => {
                    tracing::warn!(message_id = id, %cti, %error, "laissez: handler failed, dead-lettering");
                    report(acker.reject(no_requeue()).await, id, "reject");
                }
            }
        }
    }
}

async fn complete<L: UseLedger, H>(shared: &Shared<L, H>, held: &Held) {
    // Completed before the ack: a crash between the two leaves a message that ran and will be
    // redelivered as `replayed` (dead-lettered), never run twice.
    if let Err(error) = shared
        .ledger
        .complete(&held.cti, &held.message_id, &held.lease)
        .await
    {
        tracing::warn!(%error, message_id = %held.message_id, cti = %hex::encode(held.cti), "laissez: could not complete the use; it stays in flight until its lease lapses");
    }
}

async fn release<L: UseLedger, H>(shared: &Shared<L, H>, held: &Held) {
    if let Err(error) = shared
        .ledger
        .release(&held.cti, &held.message_id, &held.lease)
        .await
    {
        tracing::warn!(%error, message_id = %held.message_id, cti = %hex::encode(held.cti), "laissez: could not release the lease; a redelivery waits for it to lapse");
    }
}

/// A denial: one audit event, the decision to the observer, reject without requeue.
async fn deny<L, H>(
    shared: &Shared<L, H>,
    acker: &Acker,
    mut decision: Decision,
    reason: &'static str,
    detail: &'static str,
    unverified: Option<(String, String)>,
    kid: Option<Kid>,
) {
    decision.allowed = false;
    decision.reason = Some(reason);
    Counters::bump(&shared.counters.denied);
    let claims_verified = decision.cti.is_some();
    let (cti, agent) = match (&decision.cti, &decision.agent, &unverified) {
        (Some(c), Some(a), _) => (c.as_str(), a.as_str()),
        (_, _, Some((c, a))) => (c.as_str(), a.as_str()),
        _ => ("", ""),
    };
    tracing::warn!(
        target: "laissez::audit",
        allowed = false,
        reason,
        detail,
        message_id = decision.message_id.as_deref().unwrap_or(""),
        cti,
        agent,
        claims_verified,
        tool = decision.tool.as_deref().unwrap_or(""),
        class = decision.class.unwrap_or(""),
        kid = %kid.map(|k| k.to_string()).unwrap_or_default(),
        queue = %shared.config.queue,
        "laissez: message denied"
    );
    if let Some(observer) = &shared.observer {
        observer(&decision);
    }
    let id = decision.message_id.as_deref().unwrap_or("");
    report(acker.reject(no_requeue()).await, id, "reject");
}

/// Requeues a message that did not run, after `delay` (cut short at shutdown).
async fn requeue<L, H>(
    shared: &Shared<L, H>,
    acker: &Acker,
    why: &'static str,
    message_id: Option<&str>,
    delay: Duration,
    stop: &watch::Receiver<bool>,
) {
    Counters::bump(&shared.counters.requeued);
    tracing::debug!(
        why,
        message_id = message_id.unwrap_or(""),
        delay_ms = delay.as_millis() as u64,
        "laissez: requeueing without running"
    );
    wait(delay, stop).await;
    report(
        acker.nack(requeue_opts()).await,
        message_id.unwrap_or(""),
        "requeue",
    );
}

/// Whether a denial came after the signature was found to hold.
fn signature_held(denial: Denial) -> bool {
    !matches!(
        denial,
        Denial::Malformed(_) | Denial::UnknownKey | Denial::BadSignature | Denial::Unsupported
    )
}

/// The claimed cti and agent of an envelope that did not verify, for the audit log (and, when
/// the signature held, the decision).
/// The kid the envelope names (authentic only if `claims_verified`): with the cti, what an
/// audit trail needs to find the envelope; the envelope itself is never logged.
fn claimed_kid(bytes: &[u8]) -> Option<Kid> {
    UntrustedEnvelope::decode(bytes).ok().map(|e| e.kid())
}

fn unverified_ids(bytes: &[u8], denial: Denial) -> Option<(String, String)> {
    if matches!(denial, Denial::Malformed(_)) {
        return None;
    }
    let claims = UntrustedEnvelope::decode(bytes)
        .ok()?
        .claims_unverified()
        .ok()?;
    Some((hex::encode(claims.cti()), claims.sub().to_owned()))
}

fn next_retry_delay<L, H>(shared: &Shared<L, H>, key: String) -> Duration {
    let mut retries = shared
        .retries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if retries.len() >= MAX_RETRY_ENTRIES {
        retries.clear();
    }
    let n = retries.entry(key).or_insert(0);
    let delay = shared
        .config
        .retry_delay
        .saturating_mul(1u32 << (*n).min(16))
        .min(shared.config.max_retry_delay);
    *n = n.saturating_add(1);
    delay
}

fn forget_retries<L, H>(shared: &Shared<L, H>, key: &str) {
    shared
        .retries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(key);
}

/// Sleeps for `delay`, or less if the consumer is stopping.
async fn wait(delay: Duration, stop: &watch::Receiver<bool>) {
    if delay.is_zero() || *stop.borrow() {
        return;
    }
    let mut stop = stop.clone();
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
}

fn no_requeue() -> BasicRejectOptions {
    BasicRejectOptions { requeue: false }
}

fn requeue_opts() -> BasicNackOptions {
    BasicNackOptions {
        requeue: true,
        ..BasicNackOptions::default()
    }
}

fn report(result: lapin::Result<bool>, message_id: &str, what: &'static str) {
    match result {
        Ok(true) => {}
        Ok(false) => tracing::info!(
            message_id,
            what,
            "laissez: channel gone before settling; the broker redelivers the message"
        ),
        Err(error) => {
            tracing::warn!(message_id, what, %error, "laissez: settling failed; the broker redelivers the message")
        }
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
