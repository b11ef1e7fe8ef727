//! `approval`: any byte string as one of the two approvals a destructive call needs, next to
//! a genuine approval by the other approver (`docs/spec.md` §12).
//!
//! Proves, for every input: decoding (`UntrustedApproval::decode`), reading every field, the
//! signature check and the worker's whole call check (`Verifier::check_call`) neither panic
//! nor allocate; what decodes keeps the format's invariants (tag byte, at most 1024 bytes, a
//! message id of 1 to 256 bytes, a tool name); the decision is only ever "allowed, by both
//! approvers" or "approval_required, 1 of 2"; and it is allowed exactly when the input is
//! approver A's own approval of this call.

use std::hint::black_box;
use std::sync::OnceLock;

use laissez_sign::{Approval, ApprovalSpec, EnvelopeBuilder, SecretKey, parse_classes};
use laissez_verify::approval::UntrustedApproval;
use laissez_verify::invocation::{Attached, Call};
use laissez_verify::tools::is_tool_name;
use laissez_verify::wire::ENVELOPE_FIRST_BYTE;
use laissez_verify::wire::{MAX_APPROVAL_LEN, MAX_MESSAGE_ID_LEN};
use laissez_verify::{ActionClass, Classes, Denial, Kid, TrustedKey, VerifiedEnvelope, Verifier};

use crate::alloc_count::{allocations_during, assert_counter_works};
use crate::display_len;
use crate::forge::FixedRng;

/// The moment the call is checked at.
pub const NOW: u64 = 1_760_000_000;
/// The worker's audience.
pub const AUDIENCE: &str = "billing-queue";
const MESSAGE_ID: &str = "msg-7";
const TOOL: &str = "crm.ticket.delete";
const BODY: &[u8] = br#"{"ticket": 7}"#;
const ISSUER_SEED: [u8; 32] = [0x71; 32];
const APPROVER_SEEDS: [[u8; 32]; 2] = [[0x72; 32], [0x73; 32]];

/// What the target checks against; built once per process.
#[derive(Debug)]
pub struct Fixture {
    keys: &'static [TrustedKey; 1],
    approvers: &'static [TrustedKey; 2],
    envelope: VerifiedEnvelope<'static>,
    call: Call<'static>,
    /// Approver A's approval of the call (the seed), and approver B's.
    pub original: Vec<u8>,
    other: Vec<u8>,
}

impl Fixture {
    /// The worker's decision with `approval` and B's genuine one. Allocates nothing.
    pub fn check(&self, approval: &[u8]) -> Result<usize, Denial> {
        let attached: [&[u8]; 2] = [approval, &self.other];
        Verifier::new(self.keys, AUDIENCE)
            .with_approvers(self.approvers)
            .map_err(|_| Denial::UnknownKey)?
            .check_call(
                &self.envelope,
                NOW,
                &self.call,
                Attached::new(None, &attached),
            )
            .map(|counted| counted.len())
    }

    fn approver_kids(&self) -> [Kid; 2] {
        [self.approvers[0].kid(), self.approvers[1].kid()]
    }
}

/// Signs the envelope and both approvals once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        assert_counter_works();
        let issuer = SecretKey::from_seed(&ISSUER_SEED).expect("a fixed seed makes a key");
        let people = APPROVER_SEEDS.map(|seed| SecretKey::from_seed(&seed).expect("a key"));
        let approvers: &'static [TrustedKey; 2] =
            Box::leak(Box::new([people[0].public_key(), people[1].public_key()]));
        let rule = ApprovalSpec::new(Classes::only(ActionClass::Destructive), 2, approvers)
            .expect("a 2-of-2 rule");
        let signed = EnvelopeBuilder::new("spiffe://acme.example/agent/fuzz")
            .audience(AUDIENCE)
            .tool("crm.ticket.*")
            .classes(parse_classes("read+write+destructive").expect("a constant class list"))
            .ttl_secs(600)
            .not_before(NOW - 60)
            .approval(rule)
            .sign_at(&issuer, NOW - 60, &mut FixedRng(1))
            .expect("the fixture's claims are valid");
        let bytes: &'static [u8] = Box::leak(signed.into_bytes().into_boxed_slice());
        let keys: &'static [TrustedKey; 1] = Box::leak(Box::new([issuer.public_key()]));
        let envelope = Verifier::new(keys, AUDIENCE)
            .authenticate(bytes)
            .expect("the fixture envelope authenticates");
        let call = Call::new(
            bytes,
            AUDIENCE,
            MESSAGE_ID,
            TOOL,
            ActionClass::Destructive,
            BODY,
        )
        .expect("a constant call");
        let approve = |person: &SecretKey| {
            Approval::sign(person, bytes, &call, NOW - 30, NOW + 600, Some("fuzz"))
                .expect("the rule lists the approver")
                .into_bytes()
        };
        let fixture = Fixture {
            keys,
            approvers,
            envelope,
            call,
            original: approve(&people[0]),
            other: approve(&people[1]),
        };
        assert_eq!(
            fixture.check(&fixture.original),
            Ok(2),
            "the original is refused"
        );
        fixture
    })
}

/// Checks one input. Panics on a finding.
pub fn run(data: &[u8]) {
    let fixture = fixture();
    let ((), allocations) = allocations_during(|| check(fixture, data));
    assert_eq!(
        allocations, 0,
        "the approval path allocated {allocations} times"
    );
}

fn check(fixture: &Fixture, data: &[u8]) {
    let decision = fixture.check(data);
    match decision {
        Ok(2) => assert_eq!(data, fixture.original, "a forged approval counts"),
        Err(Denial::ApprovalRequired {
            counted: 1,
            needed: 2,
        }) => assert_ne!(data, fixture.original, "the original does not count"),
        other => panic!("an approval made the decision {other:?}"),
    }
    if let Ok(approval) = UntrustedApproval::decode(data) {
        assert!(
            data.len() <= MAX_APPROVAL_LEN,
            "decoded an oversized approval"
        );
        assert_eq!(
            data.first(),
            Some(&ENVELOPE_FIRST_BYTE),
            "decoded without tag 18"
        );
        let call = approval.call();
        let id = call.message_id();
        assert!(
            !id.is_empty() && id.len() <= MAX_MESSAGE_ID_LEN,
            "message id bounds"
        );
        assert!(
            is_tool_name(call.tool()),
            "a tool that is no tool name decoded"
        );
        black_box((
            approval.iat(),
            approval.exp(),
            approval.by(),
            call.audience(),
        ));
        black_box((call.envelope_digest(), call.body_digest(), call.class()));
        let kids = fixture.approver_kids();
        if approval.signed_by(&fixture.approvers[0]) {
            assert!(kids.contains(&approval.kid()));
            black_box(display_len(&approval.kid()));
        }
    }
}
