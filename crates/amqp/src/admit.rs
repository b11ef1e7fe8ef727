//! Admission of one delivery (`docs/spec.md` §9, §15): read the headers, ask the gate, hold
//! the use. What the report of a refusal needs is learnt on the way by the [`Report`] itself
//! and returned with the answer.

use std::time::{SystemTime, UNIX_EPOCH};

use laissez_ledger::{HeldUse, NotGranted, UseLedger, UseRequest};
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::owned::OwnedClaims;
use laissez_verify::{ActionClass, Allowed, Denial, Kid, Presented, Refused, ToolCatalogue as _};
use lapin::{Acker, BasicProperties};

use crate::decide::Facts;
use crate::decision::Decision;
use crate::headers::{self, ToolCallHeaders};
use crate::outcome::release;
use crate::shared::Shared;
use crate::telemetry::{self, LedgerOp};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What is known of a delivery for its report, as far as it got.
pub(crate) struct Report {
    /// The observer's decision: message id, tool, class, and once known the cti and agent.
    pub(crate) decision: Decision,
    pub(crate) class_header: Option<ActionClass>,
    /// The kid the root names (authentic only once verified).
    pub(crate) kid: Option<Kid>,
    /// The cti and agent the leaf claims, for denials before its signature held.
    pub(crate) claimed: Option<(String, String)>,
    /// The chain's agents, root first (one when not delegated): what the links claim until
    /// the chain verified, authentic after.
    pub(crate) chain_agents: Vec<String>,
}

impl Report {
    fn of(properties: &BasicProperties) -> Self {
        Report {
            decision: Decision::new(headers::message_id(properties)),
            class_header: None,
            kid: None,
            claimed: None,
            chain_agents: Vec::new(),
        }
    }

    /// The call as read: its tool, the catalogue's class (even when the header contradicts
    /// it), the class header, and the kid the root names.
    fn learn_call(
        &mut self,
        call: &ToolCallHeaders<'_>,
        class: Option<ActionClass>,
        kid: Option<Kid>,
    ) {
        self.decision.tool = Some(call.tool.to_owned());
        self.decision.class = class;
        self.class_header = call.class_header;
        self.kid = kid;
    }

    /// The gate's refusal: after the signatures held the ids and agents are authentic;
    /// before, what the links claim (nothing for an envelope that does not decode).
    fn learn_refusal(&mut self, refused: &Refused<'_>, envelope: &[u8], links: &[&[u8]]) {
        let denial = refused.denial();
        match refused.chain() {
            Some(chain) if denial.reason().after_signature() => {
                self.learn_ids(chain.leaf().claims().cti(), chain.leaf().claims().sub());
                self.chain_agents = chain.iter().map(|e| e.claims().sub().to_owned()).collect();
            }
            _ if !matches!(denial, Denial::Malformed(_)) => {
                let claims_of = |bytes: &[u8]| {
                    UntrustedEnvelope::decode(bytes).ok().and_then(|e| {
                        e.claims_unverified()
                            .ok()
                            .map(|c| (hex::encode(c.cti()), c.sub().to_owned()))
                    })
                };
                self.claimed = claims_of(envelope);
                self.chain_agents = links
                    .iter()
                    .map(|link| claims_of(link).map(|(_, sub)| sub))
                    .collect::<Option<Vec<_>>>()
                    .unwrap_or_default();
            }
            _ => {}
        }
    }

    /// The gate's allowance: the authentic ids and the chain's agents.
    fn learn_allowed(&mut self, allowed: &Allowed<'_>) {
        let leaf = allowed.leaf().claims();
        self.learn_ids(leaf.cti(), leaf.sub());
        self.chain_agents = allowed
            .chain()
            .iter()
            .map(|e| e.claims().sub().to_owned())
            .collect();
    }

    fn learn_ids(&mut self, cti: &[u8; 16], agent: &str) {
        self.decision.cti = Some(hex::encode(cti));
        self.decision.agent = Some(agent.to_owned());
    }
}

/// A delivery the gate allowed and the ledger granted: what the handler gets.
pub(crate) struct Admitted<'l, L> {
    pub(crate) held: HeldUse<'l, L>,
    pub(crate) kid: Kid,
    pub(crate) claims: OwnedClaims,
    pub(crate) tool: String,
    pub(crate) class: ActionClass,
    /// The approvers whose approvals counted (`docs/spec.md` §12).
    pub(crate) approved_by: Vec<Kid>,
    /// The budgets the use spends, for the audit event (`docs/spec.md` §17).
    pub(crate) amounts: Vec<crate::audit::Amount>,
}

/// How far a delivery got.
pub(crate) enum Admission<'l, L> {
    /// Run the handler.
    Run(Box<Admitted<'l, L>>),
    /// Not run: denied or requeued.
    Stopped(Facts),
    /// The channel died: the broker redelivers; nothing was spent (or the use was released).
    ChannelLost,
}

/// Whether the channel a delivery came on died: the broker redelivers it then, so no use is
/// spent for it (the middleware's [`Acker`]). A [`crate::Gatekeeper`]'s caller settles the
/// delivery itself: its channel is never seen dead here.
pub(crate) trait Poisoned {
    /// Whether the delivery's channel died.
    fn poisoned(&self) -> bool;
}

impl Poisoned for Acker {
    fn poisoned(&self) -> bool {
        Acker::poisoned(self)
    }
}

/// Reads the headers, asks the gate, and holds the use: the handler's admission or the facts
/// that stop the delivery, with the report of what was learnt.
pub(crate) async fn admit<'l, L: UseLedger, H>(
    shared: &'l Shared<L, H>,
    properties: &BasicProperties,
    body: &[u8],
    acker: &impl Poisoned,
) -> (Admission<'l, L>, Report) {
    let mut report = Report::of(properties);
    let call = match headers::read_headers(properties) {
        Ok(call) => call,
        Err(error) => return (Admission::Stopped(Facts::Headers(error)), report),
    };
    let tools = &shared.config.tools;
    let links = call.links();
    let approvals: Vec<&[u8]> = call.approvals.iter().map(|a| &a[..]).collect();
    // The trusted key is the root's: the first of `laissez-chain`, else the envelope.
    let kid = Presented::new(&links).claimed_kid();
    report.learn_call(&call, tools.class_of(call.tool), kid);
    let presented = match call.presented(&links, &approvals, body, tools) {
        Ok(presented) => presented,
        Err(error) => return (Admission::Stopped(Facts::Headers(error)), report),
    };
    // The verifier holds the revocations' lock and is not Send: decide, and copy out what is
    // needed, before any await.
    let decided = {
        let verifier = shared.verifier();
        verifier.decide(&presented, unix_now())
    };
    let allowed = match decided {
        Ok(allowed) => allowed,
        Err(refused) => {
            report.learn_refusal(&refused, &call.envelope, &links);
            return (
                Admission::Stopped(Facts::Refused(*refused.denial())),
                report,
            );
        }
    };
    report.learn_allowed(&allowed);
    let admission = hold(shared, &call, &allowed, acker).await;
    (admission, report)
}

/// Holds the use of an allowed call, unless a value the handler must get cannot reach it.
async fn hold<'l, L: UseLedger, H>(
    shared: &'l Shared<L, H>,
    call: &ToolCallHeaders<'_>,
    allowed: &Allowed<'_>,
    acker: &impl Poisoned,
) -> Admission<'l, L> {
    let Some(class) = shared.config.tools.class_of(call.tool) else {
        // The gate denies a tool the catalogue does not list; never spend without a class.
        return Admission::Stopped(Facts::Refused(Denial::UnknownTool));
    };
    let claims = allowed.leaf().claims().to_owned_claims();
    // A value the handler cannot be given is refused here, before a use is spent for it.
    if shared.config.refuse_control_characters {
        let control = |text: &str| text.chars().any(|c| c.is_ascii_control());
        if control(call.message_id) {
            return Admission::Stopped(Facts::Unpassable("control_in_message_id"));
        }
        let claimed = [Some(&claims.sub), claims.obo.as_ref(), claims.sid.as_ref()];
        if claimed.into_iter().flatten().any(|text| control(text)) {
            return Admission::Stopped(Facts::Unpassable("control_in_claims"));
        }
    }
    let uses = allowed.uses();
    let request = UseRequest::new(
        &uses,
        call.message_id,
        call.tool,
        class,
        shared.config.policy.leeway(),
        shared.config.lease,
    );
    if acker.poisoned() {
        // The channel died: the broker redelivers this message; do not spend a use for it.
        return Admission::ChannelLost;
    }
    let held = match request.hold(&*shared.ledger).await {
        Ok(held) => held,
        Err(not_granted) => {
            if let NotGranted::Failed(error) = &not_granted {
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
    Admission::Run(Box::new(Admitted {
        held,
        kid: allowed.chain().root().kid(),
        claims,
        tool: call.tool.to_owned(),
        class,
        approved_by: allowed.approvers().as_slice().to_vec(),
        amounts: crate::audit::Amount::of(&uses),
    }))
}
