//! The wire vocabulary of laissez v1 (`docs/spec.md` §1): tags, COSE header labels, claim and
//! grant keys, the external_aad of each signed object and the size limits. One table, read
//! by the decoder here and by the encoder in `laissez-sign`, so the two cannot drift apart.
//! Integer keys are given as their signed values; [`nint_arg`] turns a negative one into the
//! argument of its CBOR head.

/// CBOR tag of a COSE_Sign1.
pub const TAG_COSE_SIGN1: u64 = 18;

/// The first byte of every raw envelope: tag 18 in one byte.
pub const ENVELOPE_FIRST_BYTE: u8 = 0xd2;

/// Largest envelope accepted, in bytes.
pub const MAX_ENVELOPE_LEN: usize = 4096;

/// The external_aad of an envelope's Sig_structure: domain separation from other COSE uses
/// of the same key and from laissez's other signed objects. Never on the wire.
pub const ENVELOPE_AAD: &[u8; 10] = b"laissez/v1";

/// The external_aad of an invocation's Sig_structure (`docs/spec.md` §11).
pub const INVOCATION_AAD: &[u8; 21] = b"laissez/v1/invocation";

/// Largest invocation accepted, in bytes.
pub const MAX_INVOCATION_LEN: usize = 1024;

/// The external_aad of a revocation record's Sig_structure (`docs/spec.md` §14).
pub const REVOCATION_AAD: &[u8; 21] = b"laissez/v1/revocation";

/// Largest revocation record accepted, in bytes.
pub const MAX_RECORD_LEN: usize = 4096;

/// The external_aad of an approval's Sig_structure (`docs/spec.md` §12).
pub const APPROVAL_AAD: &[u8; 19] = b"laissez/v1/approval";

/// Largest approval accepted, in bytes.
pub const MAX_APPROVAL_LEN: usize = 1024;

/// Most approvals that may come with one call; more is `malformed`.
pub const MAX_APPROVALS: usize = 16;

/// Most approver kids in a grant's approval rule.
pub const MAX_APPROVERS: usize = 16;

/// Most envelopes in a delegation chain, root and leaf included.
pub const MAX_CHAIN_LEN: usize = 4;

/// Most ancestors of a delegated envelope: a chain is at most [`MAX_CHAIN_LEN`] long and its
/// leaf is not its own ancestor. The most entries of the `laissez-chain` header (`docs/spec.md`
/// §13), and the most envelopes a use is spent on besides the leaf.
pub const MAX_ANCESTORS: usize = MAX_CHAIN_LEN - 1;

/// Longest message id in a call, in bytes.
pub const MAX_MESSAGE_ID_LEN: usize = 256;

/// The longest text form of an envelope that is read, whitespace included, in bytes: four
/// times the longest envelope (base64 takes 4/3 of it, the rest is room for whitespace and
/// padding). Longer text is refused before any decoding (`docs/spec.md` §4).
pub const MAX_TEXT_LEN: usize = 4 * MAX_ENVELOPE_LEN;

/// The longest text form of an invocation that is read (the `laissez-invocation` header),
/// whitespace included: four times the longest invocation, as [`MAX_TEXT_LEN`] is for an
/// envelope.
pub const MAX_INVOCATION_TEXT_LEN: usize = 4 * MAX_INVOCATION_LEN;

/// The longest text form of one approval that is read (an entry of `laissez-approvals`),
/// whitespace included: four times the longest approval, as [`MAX_TEXT_LEN`] is for an
/// envelope.
pub const MAX_APPROVAL_TEXT_LEN: usize = 4 * MAX_APPROVAL_LEN;

/// The start of every Sig_structure: a 4-element array and the text "Signature1".
pub const SIG_STRUCTURE_PREFIX: &[u8; 12] = b"\x84\x6aSignature1";

/// COSE header labels and the one algorithm.
pub mod header {
    /// `alg`.
    pub const ALG: i64 = 1;
    /// `kid`.
    pub const KID: i64 = 4;
    /// EdDSA, the only algorithm.
    pub const ALG_EDDSA: i64 = -8;
    /// Length of a kid, in bytes.
    pub const KID_LEN: usize = 8;
}

/// Keys of the claims map.
pub mod claim {
    /// `iss`: issuer name, informational.
    pub const ISS: i64 = 1;
    /// `sub`: the agent.
    pub const SUB: i64 = 2;
    /// `aud`: the audiences.
    pub const AUD: i64 = 3;
    /// `exp`: expiry.
    pub const EXP: i64 = 4;
    /// `nbf`: not before.
    pub const NBF: i64 = 5;
    /// `iat`: issued at.
    pub const IAT: i64 = 6;
    /// `cti`: envelope id.
    pub const CTI: i64 = 7;
    /// `cnf`: the holder's key (RFC 8747); the envelope is holder-bound.
    pub const CNF: i64 = 8;
    /// `grant`: what the agent may do.
    pub const GRANT: i64 = -65537;
    /// `parent`: SHA-256 of the parent envelope; the envelope is delegated (`docs/spec.md`
    /// §13).
    pub const PARENT: i64 = -65538;
    /// Length of a cti, in bytes.
    pub const CTI_LEN: usize = 16;
}

/// The `cnf` map and its COSE_Key: `{1: {1: 1, -1: 6, -2: x}}`.
pub mod cnf {
    /// `COSE_Key` inside `cnf`.
    pub const COSE_KEY: i64 = 1;
    /// COSE_Key `kty`.
    pub const KTY: i64 = 1;
    /// `kty` OKP.
    pub const KTY_OKP: i64 = 1;
    /// COSE_Key `crv`.
    pub const CRV: i64 = -1;
    /// `crv` Ed25519.
    pub const CRV_ED25519: i64 = 6;
    /// COSE_Key `x`: the raw 32-byte public key.
    pub const X: i64 = -2;
}

/// Keys of a call (and of an invocation, which adds `IAT`).
pub mod call {
    /// SHA-256 of the envelope, its bytes exactly as received.
    pub const ENV: i64 = 1;
    /// The audience the worker runs the call under.
    pub const AUD: i64 = 2;
    /// The message id.
    pub const MSG: i64 = 3;
    /// The tool name.
    pub const TOOL: i64 = 4;
    /// The class: 1 read, 2 write, 4 destructive.
    pub const CLASS: i64 = 5;
    /// SHA-256 of the body, its bytes exactly as delivered.
    pub const BODY: i64 = 6;
    /// When the invocation or approval was made (not in a bare call).
    pub const IAT: i64 = 7;
    /// When the approval stops counting (approvals only).
    pub const EXP: i64 = 8;
    /// The approver's name, for the record (approvals only, optional).
    pub const BY: i64 = 9;
}

/// Keys of the grant's approval rule (`docs/spec.md` §12).
pub mod approval {
    /// Classes that need approval.
    pub const CLASSES: i64 = 1;
    /// `m`: approvals needed.
    pub const M: i64 = 2;
    /// The approvers' kids, distinct and ascending.
    pub const APPROVERS: i64 = 3;
    /// `unless`: waivers, (tool pattern, args) pairs (`docs/spec.md` §12, §16).
    pub const UNLESS: i64 = 4;
    /// Most waivers in one rule.
    pub const MAX_WAIVERS: usize = 8;
}

/// Limits of a grant's arguments and of a call's JSON body (`docs/spec.md` §16).
pub mod args {
    /// Most members one args map names.
    pub const MAX_MEMBERS: usize = 32;
    /// Most values in a `one_of` or `not_one_of`.
    pub const MAX_VALUES: usize = 32;
    /// Fewest and most constraints in an `all`.
    pub const MIN_ALL: usize = 2;
    /// Most constraints in an `all`.
    pub const MAX_ALL: usize = 8;
    /// Most `optional`, `object`, `each` and `all` constraints enclosing one another.
    pub const MAX_LEVELS: usize = 8;
    /// Longest JSON body whose arguments are read, in bytes: 1 MiB.
    pub const MAX_BODY_LEN: usize = 1 << 20;
    /// Most JSON arrays and objects open at once, the top-level object included.
    pub const MAX_BODY_DEPTH: usize = 32;
}

/// Limits of a grant's budgets (`docs/spec.md` §17).
pub mod budget {
    /// Most budgets in one grant.
    pub const MAX_BUDGETS: usize = 8;
    /// The largest limit and the largest amount: 2^53 - 1, so that every sum a ledger keeps
    /// is exact in a double (Redis's Lua numbers).
    pub const MAX_AMOUNT: u64 = (1 << 53) - 1;
}

/// Keys of a revocation record's payload, its entry kinds and its bounds (`docs/spec.md` §14).
pub mod record {
    /// `iat`: when the record was made.
    pub const IAT: i64 = 1;
    /// `until`: how long a worker keeps it.
    pub const UNTIL: i64 = 2;
    /// `entries`: what it revokes.
    pub const ENTRIES: i64 = 3;
    /// Entry kind: one envelope, by its cti (`bstr .size 16`).
    pub const KIND_CTI: u64 = 0;
    /// Entry kind: every envelope signed by or bound (`cnf`) to a key, by kid (`bstr .size 8`).
    pub const KIND_KID: u64 = 1;
    /// Entry kind: every envelope for an agent (`sub`, tstr) issued up to the record's iat.
    pub const KIND_SUB: u64 = 2;
    /// Entry kind: every envelope of a session (`sid`, tstr) issued up to the record's iat.
    pub const KIND_SID: u64 = 3;
    /// Entry kind: every envelope on behalf of a principal (`obo`, tstr) issued up to the
    /// record's iat.
    pub const KIND_OBO: u64 = 4;
    /// Most entries in one record.
    pub const MAX_ENTRIES: usize = 64;
    /// Longest a record may be kept: `until - iat` is at most 7 days, in seconds.
    pub const MAX_KEEP: u64 = 7 * 24 * 3600;
}

/// Keys of the grant map.
pub mod grant {
    /// `v`: grant version.
    pub const V: i64 = 0;
    /// `tools`: tool grants.
    pub const TOOLS: i64 = 1;
    /// `classes`: classes of bare-pattern grants.
    pub const CLASSES: i64 = 2;
    /// `max_uses`.
    pub const MAX_USES: i64 = 3;
    /// `obo`: on behalf of.
    pub const OBO: i64 = 4;
    /// `sid`: session id.
    pub const SID: i64 = 5;
    /// `approval`: which classes need how many of which approvers.
    pub const APPROVAL: i64 = 6;
    /// `budgets`: caps on the sum of a numeric argument.
    pub const BUDGETS: i64 = 7;
    /// The only grant version.
    pub const VERSION: u64 = 1;
}

/// The argument of the CBOR head that encodes the negative integer `n` (`-1 - n`).
pub const fn nint_arg(n: i64) -> u64 {
    // For n < 0, -1 - n is in 0..=i64::MAX: no overflow.
    (-1 - n) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_keys_map_to_their_head_arguments() {
        assert_eq!(nint_arg(claim::GRANT), 65536);
        assert_eq!(nint_arg(header::ALG_EDDSA), 7);
        assert_eq!(nint_arg(-1), 0);
        assert_eq!(ENVELOPE_FIRST_BYTE, 0xc0 | TAG_COSE_SIGN1 as u8);
    }
}
