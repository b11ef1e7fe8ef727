//! The fixture of the two holder-binding targets (`invocation`, `invocation_forge`): a
//! holder-bound envelope signed deterministically, one call on it, and the holder's
//! invocation of exactly that call (`docs/spec.md` §11).

use std::sync::OnceLock;

use laissez_sign::{EnvelopeBuilder, Invocation, SecretKey, parse_classes};
use laissez_verify::invocation::Call;
use laissez_verify::{ActionClass, Denial, TrustedKey, VerifiedEnvelope, Verifier};

use crate::alloc_count::assert_counter_works;
use crate::forge::FixedRng;

/// The moment the call is checked at: inside the envelope's window.
pub const NOW: u64 = 1_760_000_000;
/// When the invocation was made.
pub const IAT: u64 = NOW - 30;
/// The worker's audience.
pub const AUDIENCE: &str = "billing-queue";
/// The call's message id, tool and body.
pub const MESSAGE_ID: &str = "msg-42";
/// The call's tool (class write).
pub const TOOL: &str = "crm.ticket.close";
/// The message body the invocation covers.
pub const BODY: &[u8] = br#"{"ticket": 42, "note": "done"}"#;
/// Seeds of the issuer's and the holder's keys (fixed, public test keys).
const ISSUER_SEED: [u8; 32] = [0x5a; 32];
const HOLDER_SEED: [u8; 32] = [0x6b; 32];

/// Everything both targets check against; built once per process.
#[derive(Debug)]
pub struct Fixture {
    /// The issuer's public key, the verifier's only trusted key.
    pub keys: &'static [TrustedKey; 1],
    /// The holder's public key (the envelope's `cnf`).
    pub holder: TrustedKey,
    /// The envelope, authenticated once: each run checks only the call.
    pub envelope: VerifiedEnvelope<'static>,
    /// The call the worker is about to run.
    pub call: Call<'static>,
    /// The holder's invocation of exactly that call.
    pub invocation: Vec<u8>,
}

impl Fixture {
    /// The worker's decision on the call with `invocation`: every check after the envelope's
    /// signature (`Verifier::check_call`). Allocates nothing.
    pub fn check(&self, invocation: &[u8]) -> Result<(), Denial> {
        Verifier::new(self.keys, AUDIENCE)
            .check_call(&self.envelope, NOW, &self.call, Some(invocation))
            .map(|_| ())
    }
}

/// Signs the envelope and the invocation once per process. Set-up failures are harness bugs,
/// not findings about fuzz inputs.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        assert_counter_works();
        let issuer = SecretKey::from_seed(&ISSUER_SEED).expect("a fixed seed makes a key");
        let holder = SecretKey::from_seed(&HOLDER_SEED).expect("a fixed seed makes a key");
        let signed = EnvelopeBuilder::new("spiffe://acme.example/agent/fuzz")
            .audience(AUDIENCE)
            .audience("audit-queue")
            .tool("crm.ticket.*")
            .classes(parse_classes("read+write").expect("a constant class list"))
            .ttl_secs(600)
            .not_before(NOW - 60)
            .holder(holder.public_key())
            .sign_at(&issuer, NOW - 60, &mut FixedRng(0))
            .expect("the fixture's claims are valid");
        // 'static borrows for the verified envelope and the verifier: leaked once.
        let bytes: &'static [u8] = Box::leak(signed.into_bytes().into_boxed_slice());
        let keys: &'static [TrustedKey; 1] = Box::leak(Box::new([issuer.public_key()]));
        let envelope = Verifier::new(keys, AUDIENCE)
            .authenticate(bytes)
            .expect("the fixture envelope authenticates");
        let call = Call::new(bytes, AUDIENCE, MESSAGE_ID, TOOL, ActionClass::Write, BODY)
            .expect("a constant call");
        let invocation = Invocation::sign(&holder, bytes, &call, IAT)
            .expect("the envelope grants the fixture's call")
            .into_bytes();
        let fixture = Fixture {
            keys,
            holder: holder.public_key(),
            envelope,
            call,
            invocation,
        };
        // The properties are only meaningful if the original itself is accepted.
        assert_eq!(
            fixture.check(&fixture.invocation),
            Ok(()),
            "the original is refused"
        );
        fixture
    })
}

/// The holder's invocation (the `invocation_forge` target's committed seed).
pub fn original() -> &'static [u8] {
    &fixture().invocation
}
