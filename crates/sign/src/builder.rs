//! The claims builder: every rule is checked before anything is signed, and every envelope
//! is re-verified before it is handed out.

use std::time::{SystemTime, UNIX_EPOCH};

use laissez_verify::delegation::DelegationFault;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::tools::is_tool_pattern;
use laissez_verify::wire::MAX_ENVELOPE_LEN;
use laissez_verify::wire::budget::{MAX_AMOUNT, MAX_BUDGETS};
use laissez_verify::{ActionClass, Claims, Classes, Denial, Kid, TrustedKey, Verifier};
use rand_core::TryCryptoRng;

use crate::approval_rule::ApprovalSpec;
use crate::args::{Args, Budget};
use crate::encode::{WireClaims, WireTool, encode_envelope};
use crate::error::BuildError;
use crate::keys::SecretKey;
use crate::spec::ToolSpec;
use crate::text::encode_text;

/// Longest TTL (`exp - nbf`) the signer accepts: 24 hours, in seconds.
pub const MAX_TTL: u64 = 24 * 3600;
/// Default TTL: 5 minutes, in seconds.
pub const DEFAULT_TTL: u64 = 300;
/// Default `max_uses`.
pub const DEFAULT_MAX_USES: u64 = 1;

/// Seconds since the Unix epoch, from the system clock (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Builds the claims of one envelope and signs them.
///
/// ```
/// use laissez_sign::{EnvelopeBuilder, SecretKey};
/// use laissez_verify::{ActionClass, Request, Verifier};
///
/// let key = SecretKey::generate()?;
/// let envelope = EnvelopeBuilder::new("spiffe://acme.example/agent/support-bot")
///     .audience("billing-queue")
///     .tool("crm.ticket.*")
///     .ttl_secs(600)
///     .sign(&key)?;
///
/// let keys = [key.public_key()];
/// let request = Request::new("crm.ticket.read", ActionClass::Read)?;
/// let now = laissez_sign::unix_now();
/// Verifier::new(&keys, "billing-queue").verify(envelope.as_bytes(), now, Some(&request))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EnvelopeBuilder {
    agent: String,
    audiences: Vec<String>,
    tools: Vec<ToolSpec>,
    /// The args of each entry of `tools` given with [`Self::tool_with_args`], by position.
    tool_own_args: Vec<Option<Args>>,
    /// Args given by pattern ([`Self::tool_args`]), for every tool grant of that pattern.
    tool_args: Vec<(String, Args)>,
    budgets: Vec<Budget>,
    classes: Classes,
    max_uses: u64,
    ttl: u64,
    not_before: Option<u64>,
    issuer: Option<String>,
    pub(crate) obo: Option<String>,
    pub(crate) session: Option<String>,
    pub(crate) holder: Option<TrustedKey>,
    approval: Option<ApprovalSpec>,
    /// SHA-256 of the parent envelope: set only when delegating (`delegate_at`), never by a
    /// caller, so a root envelope names no parent.
    pub(crate) parent: Option<[u8; 32]>,
}

impl EnvelopeBuilder {
    /// A builder for `agent` (the `sub` claim) with the contract's defaults: classes
    /// `read`, one use, a 5-minute TTL starting at the signing time.
    pub fn new(agent: impl Into<String>) -> Self {
        EnvelopeBuilder {
            agent: agent.into(),
            audiences: Vec::new(),
            tools: Vec::new(),
            tool_own_args: Vec::new(),
            tool_args: Vec::new(),
            budgets: Vec::new(),
            classes: Classes::only(ActionClass::Read),
            max_uses: DEFAULT_MAX_USES,
            ttl: DEFAULT_TTL,
            not_before: None,
            issuer: None,
            obo: None,
            session: None,
            holder: None,
            approval: None,
            parent: None,
        }
    }

    /// Adds a queue or worker pool that may act on the envelope (`aud`).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Adds a bare tool pattern, allowed the builder's [`classes`](Self::classes).
    #[must_use]
    pub fn tool(mut self, pattern: impl Into<String>) -> Self {
        self.tools.push(ToolSpec {
            pattern: pattern.into(),
            classes: None,
        });
        self.tool_own_args.push(None);
        self
    }

    /// Adds a tool pattern with its own classes.
    #[must_use]
    pub fn tool_with_classes(mut self, pattern: impl Into<String>, classes: Classes) -> Self {
        self.tools.push(ToolSpec {
            pattern: pattern.into(),
            classes: Some(classes),
        });
        self.tool_own_args.push(None);
        self
    }

    /// Adds a parsed tool spec (`PATTERN[=CLASSES]`).
    #[must_use]
    pub fn tool_spec(mut self, spec: ToolSpec) -> Self {
        self.tools.push(spec);
        self.tool_own_args.push(None);
        self
    }

    /// Adds a tool grant whose calls must also have a body that satisfies `args`
    /// (`docs/spec.md` §16): `[pattern, classes, args]` on the wire. Without its own
    /// classes it takes the builder's [`classes`](Self::classes), written into the grant.
    #[must_use]
    pub fn tool_with_args(
        mut self,
        pattern: impl Into<String>,
        classes: Option<Classes>,
        args: Args,
    ) -> Self {
        self.tools.push(ToolSpec {
            pattern: pattern.into(),
            classes,
        });
        self.tool_own_args.push(Some(args));
        self
    }

    /// Gives `args` to every tool grant added with this exact pattern (the command line's
    /// `--args PATTERN=JSON`). [`validate`](Self::validate) refuses a pattern that no tool
    /// grant has, a second `tool_args` for one pattern, and a grant that has args already.
    #[must_use]
    pub fn tool_args(mut self, pattern: impl Into<String>, args: Args) -> Self {
        self.tool_args.push((pattern.into(), args));
        self
    }

    /// Adds a budget (`docs/spec.md` §17): the amounts of its member over every call the
    /// envelope authorises under it add up to at most its limit. At most 8, no two with the
    /// same pattern and member, each limit 1..=2^53-1 ([`validate`](Self::validate)).
    #[must_use]
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budgets.push(budget);
        self
    }

    /// Classes for bare tool patterns (default `read`).
    #[must_use]
    pub const fn classes(mut self, classes: Classes) -> Self {
        self.classes = classes;
        self
    }

    /// How many distinct messages the envelope may authorise (default 1).
    #[must_use]
    pub const fn max_uses(mut self, max_uses: u64) -> Self {
        self.max_uses = max_uses;
        self
    }

    /// Lifetime in seconds, `exp - nbf` (default 300, at most [`MAX_TTL`]).
    #[must_use]
    pub const fn ttl_secs(mut self, ttl: u64) -> Self {
        self.ttl = ttl;
        self
    }

    /// Not before, Unix seconds (default: the signing time).
    #[must_use]
    pub const fn not_before(mut self, nbf: u64) -> Self {
        self.not_before = Some(nbf);
        self
    }

    /// The issuer name (`iss`, informational).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The principal the agent acts on behalf of (`obo`).
    #[must_use]
    pub fn on_behalf_of(mut self, principal: impl Into<String>) -> Self {
        self.obo = Some(principal.into());
        self
    }

    /// The session or task the envelope is bound to (`sid`).
    #[must_use]
    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }

    /// Binds the envelope to the agent's own key (`cnf`, `docs/spec.md` §11): every call
    /// under it then needs an invocation signed with that key ([`crate::Invocation`]), so a
    /// copy of the envelope taken from a queue is worthless without the agent's secret key.
    ///
    /// The key is a [`TrustedKey`], so it has passed the key checks of `docs/spec.md` §3 (a
    /// key that fails them is refused where it is made: [`TrustedKey::from_bytes`],
    /// [`crate::parse_public_key_pem`]); a verifier would refuse an envelope whose `cnf`
    /// fails them as `malformed`.
    #[must_use]
    pub const fn holder(mut self, key: TrustedKey) -> Self {
        self.holder = Some(key);
        self
    }

    /// Requires human approval (`docs/spec.md` §12): calls of the rule's classes need its `m`
    /// distinct approvals from its approvers ([`ApprovalSpec::new`] checks the rule).
    #[must_use]
    pub fn approval(mut self, rule: ApprovalSpec) -> Self {
        self.approval = Some(rule);
        self
    }

    /// Checks every rule without signing: the same checks [`sign`](Self::sign) makes first.
    pub fn validate(&self) -> Result<(), BuildError> {
        if self.agent.is_empty() {
            return Err(BuildError::EmptyAgent);
        }
        if self.audiences.is_empty() {
            return Err(BuildError::NoAudience);
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err(BuildError::EmptyAudience);
        }
        if self.tools.is_empty() {
            return Err(BuildError::NoTools);
        }
        if let Some(bad) = self.tools.iter().find(|t| !is_tool_pattern(&t.pattern)) {
            return Err(BuildError::ToolPattern(bad.pattern.clone()));
        }
        self.validate_args()?;
        self.validate_budgets()?;
        if self.max_uses == 0 {
            return Err(BuildError::MaxUsesZero);
        }
        if self.ttl == 0 {
            return Err(BuildError::TtlZero);
        }
        if self.ttl > MAX_TTL {
            return Err(BuildError::TtlTooLong(self.ttl));
        }
        for (name, value) in [
            ("iss", &self.issuer),
            ("obo", &self.obo),
            ("sid", &self.session),
        ] {
            if value.as_deref() == Some("") {
                return Err(BuildError::EmptyText(name));
            }
        }
        Ok(())
    }

    fn validate_args(&self) -> Result<(), BuildError> {
        for (i, (pattern, _)) in self.tool_args.iter().enumerate() {
            if self.tool_args[..i].iter().any(|(p, _)| p == pattern) {
                return Err(BuildError::ArgsTwice(pattern.clone()));
            }
            let mut named = false;
            for (tool, own) in self.tools.iter().zip(&self.tool_own_args) {
                if &tool.pattern == pattern {
                    if own.is_some() {
                        return Err(BuildError::ArgsTwice(pattern.clone()));
                    }
                    named = true;
                }
            }
            if !named {
                return Err(BuildError::ArgsWithoutTool(pattern.clone()));
            }
        }
        Ok(())
    }

    fn validate_budgets(&self) -> Result<(), BuildError> {
        if self.budgets.len() > MAX_BUDGETS {
            return Err(BuildError::TooManyBudgets(self.budgets.len()));
        }
        for (i, b) in self.budgets.iter().enumerate() {
            if !is_tool_pattern(&b.pattern) {
                return Err(BuildError::ToolPattern(b.pattern.clone()));
            }
            if b.limit == 0 || b.limit > MAX_AMOUNT {
                return Err(BuildError::BudgetLimit(b.clone()));
            }
            if self.budgets[..i]
                .iter()
                .any(|o| o.pattern == b.pattern && o.member == b.member)
            {
                return Err(BuildError::BudgetTwice(b.clone()));
            }
        }
        Ok(())
    }

    /// The tool grants as they go on the wire: a grant with args always names its classes,
    /// the builder's when it has none of its own.
    fn wire_tools(&self) -> Vec<WireTool<'_>> {
        self.tools
            .iter()
            .zip(&self.tool_own_args)
            .map(|(tool, own)| {
                let args = own.as_ref().or_else(|| {
                    self.tool_args
                        .iter()
                        .find(|(p, _)| *p == tool.pattern)
                        .map(|(_, a)| a)
                });
                let pattern = tool.pattern.as_str();
                match (tool.classes, args) {
                    (own, Some(args)) => WireTool::Args(pattern, own.unwrap_or(self.classes), args),
                    (Some(own), None) => WireTool::Classes(pattern, own),
                    (None, None) => WireTool::Bare(pattern),
                }
            })
            .collect()
    }

    /// Signs at the system clock's time with an envelope id from the OS RNG.
    pub fn sign(&self, key: &SecretKey) -> Result<SignedEnvelope, BuildError> {
        self.sign_at(key, unix_now(), &mut getrandom::SysRng)
    }

    /// Signs as if the time were `now` (Unix seconds: `iat`, and `nbf` unless set), drawing
    /// the envelope id from `rng`.
    pub fn sign_at<R: TryCryptoRng + ?Sized>(
        &self,
        key: &SecretKey,
        now: u64,
        rng: &mut R,
    ) -> Result<SignedEnvelope, BuildError> {
        self.validate()?;
        let nbf = self.not_before.unwrap_or(now);
        let exp = nbf.checked_add(self.ttl).ok_or(BuildError::TimeOverflow)?;
        let mut cti = [0u8; 16];
        rng.try_fill_bytes(&mut cti).map_err(|_| BuildError::Rng)?;
        let claims = WireClaims {
            iss: self.issuer.as_deref(),
            sub: &self.agent,
            aud: &self.audiences,
            exp,
            nbf,
            iat: Some(now),
            cti,
            cnf: self.holder,
            tools: self.wire_tools(),
            classes: self.classes,
            max_uses: self.max_uses,
            obo: self.obo.as_deref(),
            sid: self.session.as_deref(),
            approval: self.approval.clone(),
            budgets: &self.budgets,
            parent: self.parent,
        };
        // An issuer never approves its own envelopes: a worker refuses a key that is both.
        if self
            .approval
            .as_ref()
            .is_some_and(|rule| rule.kids.contains(&key.kid()))
        {
            return Err(BuildError::ApproverIsIssuer);
        }
        let bytes = encode_envelope(&claims, key)?;
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(BuildError::TooLarge(bytes.len()));
        }
        // Never hand out an envelope the verifier would refuse.
        let keys = [key.public_key()];
        let first_audience = self.audiences.first().map_or("", String::as_str);
        match Verifier::new(&keys, first_audience).authenticate(&bytes) {
            Ok(_) => {}
            // A child (made by `delegate`) authenticates only inside its chain; this denial
            // comes after its signature and claims held, which is all this check is for.
            Err(Denial::BadDelegation(at))
                if at.fault == DelegationFault::RootHasParent && self.parent.is_some() => {}
            Err(denial) => return Err(BuildError::SelfCheck(denial)),
        }
        Ok(SignedEnvelope {
            bytes,
            kid: key.kid(),
            cti,
        })
    }
}

/// A signed envelope: its bytes, the kid of the key that signed it and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEnvelope {
    bytes: Vec<u8>,
    kid: Kid,
    cti: [u8; 16],
}

impl SignedEnvelope {
    /// The raw envelope (starts with 0xd2).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw envelope, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The text form: base64url without padding.
    pub fn to_text(&self) -> String {
        encode_text(&self.bytes)
    }

    /// The kid of the signing key.
    pub const fn kid(&self) -> Kid {
        self.kid
    }

    /// The envelope id (`cti`).
    pub const fn cti(&self) -> &[u8; 16] {
        &self.cti
    }

    /// The envelope id as 32 lowercase hex digits.
    pub fn cti_hex(&self) -> String {
        self.cti.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The claims as signed. They were verified when the envelope was made, so this does
    /// not fail for an envelope this crate produced.
    pub fn claims(&self) -> Result<Claims<'_>, Denial> {
        UntrustedEnvelope::decode(&self.bytes)?.claims_unverified()
    }
}
