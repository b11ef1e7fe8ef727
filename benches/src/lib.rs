//! The reference claim set of the benchmarks, shared by the bench binary and its tests so
//! that what is measured is known to verify.
//!
//! Agent SPIFFE id, obo, audience, three tools, read+write, max_uses 20, 15-minute TTL, cti,
//! kid: the same claims are given to every format compared.

use std::time::{Duration, Instant};

pub mod refund;

use laissez_sign::{BuildError, EnvelopeBuilder, KeyError, SecretKey, SignedEnvelope};
use laissez_verify::{ActionClass, Classes};

/// The agent.
pub const AGENT: &str = "spiffe://acme.example/agent/support-bot";
/// The principal the agent acts for.
pub const OBO: &str = "tenant:acme/user:alice";
/// The queue.
pub const AUDIENCE: &str = "support-tickets";
/// The tools.
pub const TOOLS: [&str; 3] = ["crm.ticket.*", "kb.search", "mail.draft"];
/// The issuer.
pub const ISSUER: &str = "orchestrator.acme.example";
/// TTL: 15 minutes.
pub const TTL: u64 = 900;
/// Max uses.
pub const MAX_USES: u64 = 20;
/// The tool the benchmark requests.
pub const REQUEST_TOOL: &str = "crm.ticket.update";

/// A fixed signing key (benchmarks must be reproducible). The seed is public: this key
/// protects nothing.
pub fn key() -> Result<SecretKey, KeyError> {
    SecretKey::from_seed(&[42; 32])
}

/// The classes of the reference grant.
pub fn classes() -> Classes {
    Classes::only(ActionClass::Read).with(ActionClass::Write)
}

/// The reference envelope, signed at `now` (Unix seconds).
pub fn reference_envelope(key: &SecretKey, now: u64) -> Result<SignedEnvelope, BuildError> {
    reference_builder().sign_at(key, now, &mut FixedRng(7))
}

/// The builder of the reference claims.
pub fn reference_builder() -> EnvelopeBuilder {
    let mut builder = EnvelopeBuilder::new(AGENT)
        .audience(AUDIENCE)
        .classes(classes())
        .max_uses(MAX_USES)
        .ttl_secs(TTL)
        .issuer(ISSUER)
        .on_behalf_of(OBO);
    for tool in TOOLS {
        builder = builder.tool(tool);
    }
    builder
}

/// The reference envelope, holder-bound to `holder` (`cnf`), signed at `now`.
pub fn holder_bound_envelope(
    key: &SecretKey,
    holder: &laissez_verify::TrustedKey,
    now: u64,
) -> Result<SignedEnvelope, BuildError> {
    reference_builder()
        .holder(*holder)
        .sign_at(key, now, &mut FixedRng(7))
}

/// The same claims as a JWT claims object (RFC 7519 names; the grant as private claims).
pub fn reference_jwt_claims(cti_hex: &str, now: u64) -> serde_json::Value {
    serde_json::json!({
        "iss": ISSUER,
        "sub": AGENT,
        "aud": AUDIENCE,
        "exp": now + TTL,
        "nbf": now,
        "iat": now,
        "jti": cti_hex,
        "grant": {
            "v": 1,
            "tools": TOOLS,
            "classes": ["read", "write"],
            "max_uses": MAX_USES,
            "obo": OBO,
        }
    })
}

/// A deterministic byte source for the envelope id (benchmarks only).
#[derive(Debug)]
pub struct FixedRng(pub u8);

impl rand_core::TryRng for FixedRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(u32::from(self.0))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(u64::from(self.0))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(self.0);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FixedRng {}

/// Median nanoseconds per call over `BATCHES` batches of about `BATCH_TIME` each.
pub fn measure(mut f: impl FnMut()) -> f64 {
    const BATCHES: usize = 21;
    const BATCH_TIME: Duration = Duration::from_millis(40);
    // Warm up and calibrate.
    let mut n = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed() >= BATCH_TIME / 4 {
            break;
        }
        n *= 2;
    }
    let n = n * 4;
    let mut per_call: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[BATCHES / 2]
}

/// The Sig_structure a laissez COSE_Sign1 was signed over, rebuilt from its bytes, and its
/// signature: what a benchmark's Ed25519 floor verifies. `object` is one of laissez's objects
/// (a 13-byte protected header and a payload of at least 24 bytes).
pub fn sig_structure(object: &[u8], aad: &[u8]) -> (Vec<u8>, [u8; 64]) {
    // object = d2 84 | protected item (0x4d + 13 bytes) | a0 | payload item | 58 40 | signature
    let protected = &object[2..16];
    let payload = &object[17..object.len() - 66];
    let mut m = vec![0x84, 0x6a];
    m.extend_from_slice(b"Signature1");
    m.extend_from_slice(protected);
    m.push(0x40 | aad.len() as u8);
    m.extend_from_slice(aad);
    m.extend_from_slice(payload);
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&object[object.len() - 64..]);
    (m, sig)
}

/// "met" or "NOT met", for the targets line of a benchmark's report.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use laissez_verify::{Request, Verifier};

    #[test]
    fn reference_envelope_verifies_for_the_benchmarked_request() {
        let key = key().unwrap();
        let now = 1_800_000_000;
        let env = reference_envelope(&key, now).unwrap();
        let keys = [key.public_key()];
        let req = Request::new(REQUEST_TOOL, ActionClass::Write).unwrap();
        let v = Verifier::new(&keys, AUDIENCE)
            .verify(env.as_bytes(), now + 60, Some(&req))
            .unwrap();
        assert_eq!(v.claims().max_uses(), MAX_USES);
        assert_eq!(v.claims().tools().count(), 3);
        assert_eq!(v.claims().exp() - v.claims().nbf(), TTL);
        // Deterministic: the same inputs give the same bytes.
        assert_eq!(env, reference_envelope(&key, now).unwrap());
    }

    #[test]
    fn jwt_claims_carry_the_same_grant() {
        let c = reference_jwt_claims("00", 5);
        assert_eq!(c["grant"]["tools"].as_array().unwrap().len(), 3);
        assert_eq!(c["exp"], 5 + TTL);
    }
}
