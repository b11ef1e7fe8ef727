//! Errors of the signer. Each has a stable snake_case [`code`](BuildError::code) for logs
//! and scripts, and a one-line `Display` for people.

use core::fmt;
use std::path::PathBuf;

use laissez_verify::{ActionClass, Denial, Kid};

/// A key that cannot be generated, read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random number generator failed.
    Rng,
    /// The text holds no `-----BEGIN PRIVATE KEY-----` block.
    NotPrivateKeyPem,
    /// The PKCS#8 document is not an Ed25519 secret key (the decoder's explanation).
    Pkcs8(String),
    /// The SubjectPublicKeyInfo document is not an Ed25519 public key.
    Spki(String),
    /// The public key fails the key checks of `docs/spec.md` §3.
    UntrustedPublicKey(laissez_verify::keys::KeyError),
    /// A trust file holds a PEM block other than `PUBLIC KEY` (1-based line).
    UnexpectedPemBlock {
        /// Line of the offending boundary.
        line: usize,
        /// Its label, e.g. `PRIVATE KEY`.
        label: String,
    },
    /// A public key block of a trust file is unusable (1-based block number).
    InTrustBlock {
        /// Which block.
        block: usize,
        /// What is wrong with it.
        source: Box<KeyError>,
    },
    /// A trust file holds no `PUBLIC KEY` block.
    NoPublicKeys,
    /// A file that must name exactly one public key (a holder's) holds several (how many).
    SeveralPublicKeys(usize),
}

impl KeyError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::Rng => "rng_failed",
            KeyError::NotPrivateKeyPem => "not_private_key_pem",
            KeyError::Pkcs8(_) => "bad_pkcs8",
            KeyError::Spki(_) => "bad_spki",
            KeyError::UntrustedPublicKey(e) => e.code(),
            KeyError::UnexpectedPemBlock { .. } => "unexpected_pem_block",
            KeyError::InTrustBlock { source, .. } => source.code(),
            KeyError::NoPublicKeys => "no_public_keys",
            KeyError::SeveralPublicKeys(_) => "several_public_keys",
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Rng => f.write_str("the operating system's random number generator failed"),
            KeyError::NotPrivateKeyPem => {
                f.write_str("not a PKCS#8 PEM secret key (no -----BEGIN PRIVATE KEY----- line)")
            }
            KeyError::Pkcs8(e) => write!(f, "not an Ed25519 PKCS#8 secret key: {e}"),
            KeyError::Spki(e) => write!(f, "not an Ed25519 SubjectPublicKeyInfo public key: {e}"),
            KeyError::UntrustedPublicKey(e) => write!(f, "{e}"),
            KeyError::UnexpectedPemBlock { line, label } => write!(
                f,
                "line {line}: expected only PUBLIC KEY blocks, found {label} \
                 (a trust file holds public keys only)"
            ),
            KeyError::InTrustBlock { block, source } => {
                write!(f, "public key block {block}: {source}")
            }
            KeyError::NoPublicKeys => {
                f.write_str("no -----BEGIN PUBLIC KEY----- block found (expected SPKI PEM)")
            }
            KeyError::SeveralPublicKeys(n) => write!(
                f,
                "{n} PUBLIC KEY blocks found where exactly one key is expected"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// A key file that cannot be read or written: the path and what went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Reading or writing failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file already exists and overwriting was not asked for.
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A secret key file is readable or writable by group or others.
    LoosePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A secret key file is owned by another user than the effective one.
    WrongOwner {
        /// The file.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// The uid this process runs as.
        euid: u32,
    },
    /// A secret key path names a directory, device, FIFO or socket, not a regular file.
    NotRegularFile {
        /// The file.
        path: PathBuf,
    },
    /// The file's content is not a usable key.
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: KeyError,
    },
}

impl KeyFileError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            KeyFileError::Io { .. } => "io",
            KeyFileError::Exists { .. } => "exists",
            KeyFileError::LoosePermissions { .. } => "loose_permissions",
            KeyFileError::WrongOwner { .. } => "wrong_owner",
            KeyFileError::NotRegularFile { .. } => "not_regular_file",
            KeyFileError::Key { source, .. } => source.code(),
        }
    }
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            KeyFileError::Exists { path } => write!(
                f,
                "{}: already exists (pass --force to replace it)",
                path.display()
            ),
            KeyFileError::LoosePermissions { path, mode } => write!(
                f,
                "{}: secret key is accessible by group or others (mode {mode:03o}); \
                 fix with: chmod 600 {}",
                path.display(),
                path.display()
            ),
            KeyFileError::WrongOwner { path, owner, euid } => write!(
                f,
                "{}: secret key is owned by uid {owner}, not by the user running laissez \
                 (uid {euid}); use it as its owner",
                path.display()
            ),
            KeyFileError::NotRegularFile { path } => write!(
                f,
                "{}: not a regular file (a secret key must be a file)",
                path.display()
            ),
            KeyFileError::Key { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for KeyFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyFileError::Io { source, .. } => Some(source),
            KeyFileError::Key { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Claims that must not be signed, or an envelope that could not be produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The agent identity (`sub`) is empty.
    EmptyAgent,
    /// No audience was given.
    NoAudience,
    /// An audience is the empty string.
    EmptyAudience,
    /// No tool was given.
    NoTools,
    /// A tool pattern is out of grammar.
    ToolPattern(String),
    /// `max_uses` is 0.
    MaxUsesZero,
    /// The TTL is 0.
    TtlZero,
    /// The TTL exceeds [`crate::MAX_TTL`] (the seconds asked for).
    TtlTooLong(u64),
    /// `nbf + ttl` does not fit in a u64.
    TimeOverflow,
    /// An optional text claim (`iss`, `obo`, `sid`) was given but empty (its name).
    EmptyText(&'static str),
    /// The encoded envelope exceeds 4096 bytes (its length).
    TooLarge(usize),
    /// No random envelope id could be drawn.
    Rng,
    /// The CBOR encoder failed.
    Encoding(String),
    /// The verifier refused the freshly signed envelope (a bug: never handed out).
    SelfCheck(Denial),
    /// The signing key is one of the approval rule's approvers: an issuer never approves.
    ApproverIsIssuer,
    /// Args were given for a pattern that no tool grant has (the pattern).
    ArgsWithoutTool(String),
    /// Args were given twice for one pattern (the pattern).
    ArgsTwice(String),
    /// More than 8 budgets (how many).
    TooManyBudgets(usize),
    /// A budget's limit is 0 or above 2^53-1.
    BudgetLimit(crate::args::Budget),
    /// Two budgets have the same pattern and member (the second).
    BudgetTwice(crate::args::Budget),
}

impl BuildError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            BuildError::EmptyAgent => "empty_agent",
            BuildError::NoAudience => "no_audience",
            BuildError::EmptyAudience => "empty_audience",
            BuildError::NoTools => "no_tools",
            BuildError::ToolPattern(_) => "tool_pattern",
            BuildError::MaxUsesZero => "max_uses_zero",
            BuildError::TtlZero => "ttl_zero",
            BuildError::TtlTooLong(_) => "ttl_too_long",
            BuildError::TimeOverflow => "time_overflow",
            BuildError::EmptyText(_) => "empty_text",
            BuildError::TooLarge(_) => "too_large",
            BuildError::Rng => "rng_failed",
            BuildError::Encoding(_) => "encoding",
            BuildError::SelfCheck(_) => "self_check",
            BuildError::ApproverIsIssuer => "approver_is_issuer",
            BuildError::ArgsWithoutTool(_) => "args_without_tool",
            BuildError::ArgsTwice(_) => "args_twice",
            BuildError::TooManyBudgets(_) => "too_many_budgets",
            BuildError::BudgetLimit(_) => "budget_limit",
            BuildError::BudgetTwice(_) => "budget_twice",
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::EmptyAgent => f.write_str("the agent identity must not be empty"),
            BuildError::NoAudience => f.write_str("at least one audience is required"),
            BuildError::EmptyAudience => f.write_str("an audience must not be empty"),
            BuildError::NoTools => f.write_str("at least one tool pattern is required"),
            BuildError::ToolPattern(p) => write!(
                f,
                "tool pattern {p:?} is out of grammar (dot-separated segments of 1 to 64 \
                 characters a-z, 0-9, _ or -, optionally ending in .*, or *)"
            ),
            BuildError::MaxUsesZero => f.write_str("max uses must be at least 1"),
            BuildError::TtlZero => f.write_str("the TTL must be at least 1 second"),
            BuildError::TtlTooLong(s) => write!(
                f,
                "the TTL of {s} s exceeds the maximum of 24h ({} s)",
                crate::MAX_TTL
            ),
            BuildError::TimeOverflow => f.write_str("not-before plus TTL overflows"),
            BuildError::EmptyText(name) => write!(f, "{name} must not be empty when given"),
            BuildError::TooLarge(n) => write!(
                f,
                "the envelope would be {n} bytes, over the limit of {}",
                laissez_verify::wire::MAX_ENVELOPE_LEN
            ),
            BuildError::Rng => f.write_str("the operating system's random number generator failed"),
            BuildError::Encoding(e) => write!(f, "CBOR encoding failed: {e}"),
            BuildError::SelfCheck(d) => write!(
                f,
                "internal error: the verifier refused the envelope just signed ({}: {d})",
                d.code()
            ),
            BuildError::ApproverIsIssuer => f.write_str(
                "the signing key is one of the approvers: an issuer never approves its own envelopes",
            ),
            BuildError::ArgsWithoutTool(p) => write!(
                f,
                "args are given for the pattern {p:?}, but no tool grant has that pattern"
            ),
            BuildError::ArgsTwice(p) => write!(f, "args are given twice for the pattern {p:?}"),
            BuildError::TooManyBudgets(n) => write!(
                f,
                "{n} budgets: a grant holds at most {}",
                laissez_verify::wire::budget::MAX_BUDGETS
            ),
            BuildError::BudgetLimit(b) => write!(
                f,
                "the budget {}:{}={} has a limit out of 1..={}",
                b.pattern,
                b.member,
                b.limit,
                laissez_verify::wire::budget::MAX_AMOUNT
            ),
            BuildError::BudgetTwice(b) => write!(
                f,
                "two budgets for the pattern {:?} and the member {:?}",
                b.pattern, b.member
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// Why an agent may not sign an invocation ([`crate::Invocation::sign`]): the envelope does
/// not grant the call, or the invocation could not be produced.
///
/// The codes of refusals that a verifier would also make are its reason codes
/// (`wrong_audience`, `tool_not_granted`, `class_not_granted`, `not_yet_valid`, `expired`,
/// `malformed`, `unsupported`), so a script reads one vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvocationError {
    /// The envelope does not decode (`malformed`) or uses claims this version does not know
    /// (`unsupported`).
    Envelope(Denial),
    /// The envelope has no `cnf`: it is a bearer envelope, and no invocation goes with it.
    NotHolderBound,
    /// The envelope is bound to another key than the agent's.
    NotTheHolder {
        /// The kid of the envelope's holder key.
        holder: Kid,
        /// The kid of the key asked to sign.
        key: Kid,
    },
    /// The call names another envelope: its envelope digest is not this envelope's SHA-256.
    OtherEnvelope,
    /// The envelope's `aud` does not list the call's audience.
    WrongAudience(String),
    /// No tool pattern of the envelope matches the call's tool.
    ToolNotGranted(String),
    /// Patterns match the call's tool, but none allows its class.
    ClassNotGranted {
        /// The tool.
        tool: String,
        /// The class asked for.
        class: ActionClass,
    },
    /// The invocation's iat is before the envelope's nbf.
    NotYetValid {
        /// The invocation's iat.
        iat: u64,
        /// The envelope's nbf.
        nbf: u64,
    },
    /// The invocation's iat is at or after the envelope's exp.
    Expired {
        /// The invocation's iat.
        iat: u64,
        /// The envelope's exp.
        exp: u64,
    },
    /// The encoded invocation exceeds 1024 bytes (its length): the audience, message id and
    /// tool are too long together.
    TooLarge(usize),
    /// The CBOR encoder failed.
    Encoding(String),
    /// The invocation just signed does not decode or verify as that call (a bug: never
    /// handed out).
    SelfCheck(String),
}

impl InvocationError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            InvocationError::Envelope(d) => d.code(),
            InvocationError::NotHolderBound => "not_holder_bound",
            InvocationError::NotTheHolder { .. } => "not_the_holder",
            InvocationError::OtherEnvelope => "other_envelope",
            InvocationError::WrongAudience(_) => "wrong_audience",
            InvocationError::ToolNotGranted(_) => "tool_not_granted",
            InvocationError::ClassNotGranted { .. } => "class_not_granted",
            InvocationError::NotYetValid { .. } => "not_yet_valid",
            InvocationError::Expired { .. } => "expired",
            InvocationError::TooLarge(_) => "too_large",
            InvocationError::Encoding(_) => "encoding",
            InvocationError::SelfCheck(_) => "self_check",
        }
    }
}

impl fmt::Display for InvocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvocationError::Envelope(d) => write!(f, "the envelope cannot be read: {d}"),
            InvocationError::NotHolderBound => f.write_str(
                "the envelope is not holder-bound (no cnf): a bearer envelope takes no invocation",
            ),
            InvocationError::NotTheHolder { holder, key } => write!(
                f,
                "the envelope is bound to the holder key {holder}, not to this key ({key})"
            ),
            InvocationError::OtherEnvelope => f.write_str(
                "the call names another envelope (its envelope digest is not this envelope's SHA-256)",
            ),
            InvocationError::WrongAudience(aud) => {
                write!(f, "the envelope's aud does not list the audience {aud:?}")
            }
            InvocationError::ToolNotGranted(tool) => {
                write!(f, "no tool pattern of the envelope matches the tool {tool:?}")
            }
            InvocationError::ClassNotGranted { tool, class } => write!(
                f,
                "the envelope grants the tool {tool:?}, but not for the class {class}"
            ),
            InvocationError::NotYetValid { iat, nbf } => write!(
                f,
                "the invocation's iat {iat} is before the envelope's nbf {nbf}"
            ),
            InvocationError::Expired { iat, exp } => write!(
                f,
                "the invocation's iat {iat} is at or after the envelope's exp {exp}"
            ),
            InvocationError::TooLarge(n) => write!(
                f,
                "the invocation would be {n} bytes, over the limit of {}",
                laissez_verify::wire::MAX_INVOCATION_LEN
            ),
            InvocationError::Encoding(e) => write!(f, "CBOR encoding failed: {e}"),
            InvocationError::SelfCheck(e) => write!(
                f,
                "internal error: the invocation just signed does not verify: {e}"
            ),
        }
    }
}

impl std::error::Error for InvocationError {}
