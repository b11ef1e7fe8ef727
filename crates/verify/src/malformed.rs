//! Decode failures: where a decode stopped and why. The bottom of the crate's layers: every
//! decoder (CBOR, COSE_Sign1, claims, invocation, approval, revocation record) reports a
//! [`Malformed`], and this module depends on no other, so any of them can use it without
//! reaching the denial types above them.

use core::fmt;

/// A decode failure: the byte offset in the envelope where it was found, and what it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    offset: usize,
    kind: MalformedKind,
}

impl Malformed {
    pub(crate) const fn new(offset: usize, kind: MalformedKind) -> Self {
        Malformed { offset, kind }
    }

    /// Byte offset into the envelope (not the payload) where the problem was found.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// What was wrong.
    pub const fn kind(&self) -> MalformedKind {
        self.kind
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

/// What made an envelope malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedKind {
    /// The input is longer than its size limit ([`crate::wire::MAX_ENVELOPE_LEN`] for an envelope).
    TooLarge,
    /// The input ends inside an item, or a declared length runs past the end.
    Truncated,
    /// A CBOR head that is not well formed (reserved additional information).
    InvalidHead,
    /// An integer, length or tag not in its shortest form.
    NotShortest,
    /// An indefinite-length item or a break.
    Indefinite,
    /// A floating-point value.
    Float,
    /// A simple value other than false, true, null or undefined.
    SimpleValue,
    /// A tag other than the single outer tag 18.
    Tag,
    /// The outer tag 18 (COSE_Sign1) is missing.
    Untagged,
    /// Nesting deeper than the format allows.
    TooDeep,
    /// Text that is not valid UTF-8.
    InvalidUtf8,
    /// Map keys not in bytewise order of their encodings.
    UnsortedKeys,
    /// The same map key twice.
    DuplicateKey,
    /// Bytes after the envelope.
    TrailingBytes,
    /// An item of the wrong type or size for its place.
    UnexpectedType,
    /// The protected header is not exactly `{1: -8, 4: kid}`.
    ProtectedHeader,
    /// The algorithm is not EdDSA (-8).
    Algorithm,
    /// The unprotected header is not empty.
    UnprotectedHeader,
    /// A required claim or grant field is missing.
    MissingClaim,
    /// `exp <= nbf`.
    ExpNotAfterNbf,
    /// A tool pattern out of grammar.
    ToolPattern,
    /// A classes value of 0 or above 7.
    Classes,
    /// `max_uses` of 0.
    MaxUses,
    /// An empty list where at least one entry is required (`aud`, `tools`).
    EmptyList,
    /// `cnf` is not `{1: {1: 1, -1: 6, -2: bstr .size 32}}`, or its key fails the key checks.
    HolderKey,
    /// A message id that is empty or longer than 256 bytes.
    MessageId,
    /// A class that is not exactly one of read (1), write (2) or destructive (4).
    Class,
    /// A key that this kind of object does not have.
    UnknownField,
    /// The grant's approval rule is not `{1: classes, 2: m, 3: [+ kid]}` with classes 1 to
    /// 7, 1 ≤ m ≤ n ≤ 16 and the kids distinct and ascending.
    ApprovalRule,
    /// More than 16 approvals came with one call.
    TooManyApprovals,
    /// A tool grant's or a waiver's args are not `docs/spec.md` §16's shape: a kind, count,
    /// order, value, range or subpath root out of its rules.
    Args,
    /// The budgets are not 1 to 8 `[pattern, member, limit]` with limits from 1 to 2^53-1 and
    /// no pattern and member twice (`docs/spec.md` §17).
    Budgets,
}

impl fmt::Display for MalformedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MalformedKind::TooLarge => "longer than the size limit (4096 bytes for an envelope)",
            MalformedKind::Truncated => "input ends inside an item",
            MalformedKind::InvalidHead => "invalid CBOR head",
            MalformedKind::NotShortest => "integer or length not in shortest form",
            MalformedKind::Indefinite => "indefinite length",
            MalformedKind::Float => "floating-point value",
            MalformedKind::SimpleValue => "unsupported simple value",
            MalformedKind::Tag => "unexpected tag",
            MalformedKind::Untagged => "missing COSE_Sign1 tag 18",
            MalformedKind::TooDeep => "nesting too deep",
            MalformedKind::InvalidUtf8 => "text is not UTF-8",
            MalformedKind::UnsortedKeys => "map keys out of order",
            MalformedKind::DuplicateKey => "duplicate map key",
            MalformedKind::TrailingBytes => "trailing bytes",
            MalformedKind::UnexpectedType => "item of the wrong type or size",
            MalformedKind::ProtectedHeader => "protected header is not exactly {alg, kid}",
            MalformedKind::Algorithm => "algorithm is not EdDSA (-8)",
            MalformedKind::UnprotectedHeader => "unprotected header is not empty",
            MalformedKind::MissingClaim => "required claim or field missing",
            MalformedKind::ExpNotAfterNbf => "exp is not after nbf",
            MalformedKind::ToolPattern => "tool pattern out of grammar",
            MalformedKind::Classes => "classes must be 1 to 7",
            MalformedKind::MaxUses => "max_uses must be at least 1",
            MalformedKind::EmptyList => "list must not be empty",
            MalformedKind::HolderKey => {
                "cnf is not an Ed25519 COSE_Key {1: {1: 1, -1: 6, -2: x}} with a sound key"
            }
            MalformedKind::MessageId => "message id must be 1 to 256 bytes",
            MalformedKind::Class => "class must be exactly one of 1, 2 or 4",
            MalformedKind::UnknownField => "a key this object does not have",
            MalformedKind::ApprovalRule => {
                "approval rule is not {1: classes, 2: m, 3: [kids]} with 1 <= m <= n <= 16 and kids distinct, ascending"
            }
            MalformedKind::TooManyApprovals => "more than 16 approvals with one call",
            MalformedKind::Args => {
                "args are not a map of 1 to 32 members to constraints of the contract's kinds, counts and order"
            }
            MalformedKind::Budgets => {
                "budgets are not 1 to 8 [pattern, member, limit] with limits 1 to 2^53-1, each pattern and member once"
            }
        })
    }
}
