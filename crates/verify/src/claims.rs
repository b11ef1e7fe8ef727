//! The CWT claims set and the grant, decoded in one pass into borrowed views.

use crate::approval::ApprovalRule;
use crate::args::Args;
use crate::cbor::{Key, Reader};
use crate::error::Denial;
use crate::keys::TrustedKey;
use crate::malformed::{Malformed, MalformedKind};
use crate::tools::{Classes, ToolGrant, ToolPattern, is_tool_pattern};

/// Claim and grant keys as the decoder matches them: CBOR head arguments.
mod key {
    use crate::wire::{claim, grant, nint_arg};

    pub(super) const ISS: u64 = claim::ISS as u64;
    pub(super) const SUB: u64 = claim::SUB as u64;
    pub(super) const AUD: u64 = claim::AUD as u64;
    pub(super) const EXP: u64 = claim::EXP as u64;
    pub(super) const NBF: u64 = claim::NBF as u64;
    pub(super) const IAT: u64 = claim::IAT as u64;
    pub(super) const CTI: u64 = claim::CTI as u64;
    pub(super) const CNF: u64 = claim::CNF as u64;
    pub(super) const GRANT_NEG: u64 = nint_arg(claim::GRANT);
    pub(super) const PARENT_NEG: u64 = nint_arg(claim::PARENT);
    pub(super) const V: u64 = grant::V as u64;
    pub(super) const TOOLS: u64 = grant::TOOLS as u64;
    pub(super) const CLASSES: u64 = grant::CLASSES as u64;
    pub(super) const MAX_USES: u64 = grant::MAX_USES as u64;
    pub(super) const OBO: u64 = grant::OBO as u64;
    pub(super) const SID: u64 = grant::SID as u64;
    pub(super) const APPROVAL: u64 = grant::APPROVAL as u64;
    pub(super) const BUDGETS: u64 = grant::BUDGETS as u64;
}

/// Holder keys (`cnf`) already checked as §3 requires, so that decoding a `cnf` holding one of
/// them skips the key checks (a scalar multiplication): a cache's own memory of keys it has
/// checked. Only keys made by `TrustedKey::from_bytes` can be handed out, and a hit must hold
/// the very same 32 bytes.
pub(crate) trait KnownKeys {
    /// The checked key with exactly these bytes, if known.
    fn get(&self, x: &[u8; 32]) -> Option<TrustedKey>;
}

/// No key known: every `cnf` is checked in full.
pub(crate) struct NoKnownKeys;

impl KnownKeys for NoKnownKeys {
    fn get(&self, _: &[u8; 32]) -> Option<TrustedKey> {
        None
    }
}

impl KnownKeys for Option<&TrustedKey> {
    fn get(&self, x: &[u8; 32]) -> Option<TrustedKey> {
        self.filter(|key| key.as_bytes() == x).copied()
    }
}

/// The only grant version this verifier knows.
pub const GRANT_VERSION: u64 = crate::wire::grant::VERSION;

/// Where a list lives in the payload: the bytes after its head and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct ListSpan {
    start: usize,
    end: usize,
    len: usize,
}

/// A decoded claims set: borrowed from the payload bytes, nothing copied.
///
/// Obtained from [`crate::VerifiedEnvelope::claims`] (signature checked) or from
/// [`crate::envelope::UntrustedEnvelope::claims_unverified`] (not checked: display only).
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    payload: &'a [u8],
    base: usize,
    iss: Option<&'a str>,
    sub: &'a str,
    aud: Aud<'a>,
    exp: u64,
    nbf: u64,
    iat: Option<u64>,
    cti: [u8; 16],
    /// The holder's key, checked as a trusted key is (`docs/spec.md` §3), when holder-bound.
    holder: Option<TrustedKey>,
    version: u64,
    tools: ListSpan,
    classes: Classes,
    max_uses: u64,
    obo: Option<&'a str>,
    sid: Option<&'a str>,
    approval: Option<ApprovalRule<'a>>,
    /// Caps on sums of an argument (`docs/spec.md` §17); an empty span when none.
    budgets: ListSpan,
    /// SHA-256 of the parent envelope, when delegated (`docs/spec.md` §13).
    parent: Option<[u8; 32]>,
}

/// `aud` as it came: a single text, or a non-empty list of texts.
#[derive(Debug, Clone, Copy)]
enum Aud<'a> {
    One(&'a str),
    List(ListSpan),
}

/// Whether claims are decoded for the first time (every rule checked) or again, from bytes a
/// cache kept after a first pass accepted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    First,
    /// Only the cache (`std`) decodes again.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    Again,
}

/// What the grant decoded to before the required fields are checked.
#[derive(Default)]
struct Grant<'a> {
    version: Option<u64>,
    tools: Option<ListSpan>,
    classes: Option<Classes>,
    max_uses: Option<u64>,
    obo: Option<&'a str>,
    sid: Option<&'a str>,
    approval: Option<ApprovalRule<'a>>,
    budgets: Option<ListSpan>,
    unknown: bool,
}

fn missing(base: usize) -> Malformed {
    Malformed::new(base, MalformedKind::MissingClaim)
}

impl<'a> Claims<'a> {
    /// Decodes and checks a claims set that starts at byte `base` of the envelope.
    ///
    /// Every structural problem is `malformed`; only when the whole set is well formed is an
    /// unknown key or grant version reported as `unsupported` (the contract's order).
    pub(crate) fn decode(payload: &'a [u8], base: usize) -> Result<Claims<'a>, Denial> {
        Self::decode_with_holder(payload, base, &NoKnownKeys)
    }

    /// [`Claims::decode`] for bytes that already passed it, whose holder key (`cnf`) was
    /// checked then: a `cnf` holding exactly `known`'s bytes takes `known` without checking
    /// the key again (the torsion check costs a scalar multiplication). Any other `cnf` is
    /// checked in full.
    pub(crate) fn decode_with_holder(
        payload: &'a [u8],
        base: usize,
        known: &dyn KnownKeys,
    ) -> Result<Claims<'a>, Denial> {
        Self::decode_in(payload, base, known, Pass::First)
    }

    /// [`Claims::decode_with_holder`] for the very bytes a cache kept after they passed it:
    /// the structure is read again, but the tool patterns and the args (`docs/spec.md` §16),
    /// whose checks grow with the grant, are not checked a second time.
    #[cfg(feature = "std")]
    pub(crate) fn decode_again(
        payload: &'a [u8],
        base: usize,
        known: &dyn KnownKeys,
    ) -> Result<Claims<'a>, Denial> {
        Self::decode_in(payload, base, known, Pass::Again)
    }

    fn decode_in(
        payload: &'a [u8],
        base: usize,
        known: &dyn KnownKeys,
        pass: Pass,
    ) -> Result<Claims<'a>, Denial> {
        let mut r = Reader::new(payload, base);
        let pairs = r.map()?;
        let mut prev = None;
        let (mut iss, mut sub, mut aud, mut exp, mut nbf, mut iat, mut cti) =
            (None, None, None, None, None, None, None);
        let mut holder = None;
        let mut grant = None;
        let mut parent = None;
        let mut unknown = false;
        for _ in 0..pairs {
            match r.key(&mut prev, 1)? {
                Key::Uint(key::ISS) => iss = Some(r.text()?),
                Key::Uint(key::SUB) => sub = Some(r.text()?),
                Key::Uint(key::AUD) => aud = Some(decode_aud(&mut r)?),
                Key::Uint(key::EXP) => exp = Some(r.uint()?),
                Key::Uint(key::NBF) => nbf = Some(r.uint()?),
                Key::Uint(key::IAT) => iat = Some(r.uint()?),
                Key::Uint(key::CTI) => cti = Some(r.bytes_exact::<16>()?),
                Key::Uint(key::CNF) => holder = Some(decode_cnf(&mut r, known)?),
                Key::Nint(key::GRANT_NEG) => grant = Some(decode_grant(&mut r, pass)?),
                Key::Nint(key::PARENT_NEG) => parent = Some(r.bytes_exact::<32>()?),
                _ => {
                    r.skip(1)?;
                    unknown = true;
                }
            }
        }
        r.finish()?;

        let end = r.offset();
        let sub = sub.ok_or(missing(end))?;
        let aud = aud.ok_or(missing(end))?;
        let exp = exp.ok_or(missing(end))?;
        let nbf = nbf.ok_or(missing(end))?;
        let cti = cti.ok_or(missing(end))?;
        let grant = grant.ok_or(missing(end))?;
        if exp <= nbf {
            return Err(Malformed::new(base, MalformedKind::ExpNotAfterNbf).into());
        }
        let version = grant.version.ok_or(missing(end))?;
        if version != GRANT_VERSION {
            // The rest of a future grant version is not ours to interpret.
            return Err(Denial::Unsupported);
        }
        let tools = grant.tools.ok_or(missing(end))?;
        let classes = grant.classes.ok_or(missing(end))?;
        let max_uses = grant.max_uses.ok_or(missing(end))?;
        if unknown || grant.unknown {
            return Err(Denial::Unsupported);
        }
        Ok(Claims {
            payload,
            base,
            iss,
            sub,
            aud,
            exp,
            nbf,
            iat,
            cti,
            holder,
            version,
            tools,
            classes,
            max_uses,
            obo: grant.obo,
            sid: grant.sid,
            approval: grant.approval,
            budgets: grant.budgets.unwrap_or_default(),
            parent,
        })
    }

    /// Issuer name (informational).
    pub const fn iss(&self) -> Option<&'a str> {
        self.iss
    }

    /// Agent identity.
    pub const fn sub(&self) -> &'a str {
        self.sub
    }

    /// The audiences, in wire order.
    pub fn aud(&self) -> AudIter<'a> {
        match self.aud {
            Aud::One(single) => AudIter {
                single: Some(single),
                list: None,
            },
            Aud::List(span) => AudIter {
                single: None,
                list: Some(self.list(span)),
            },
        }
    }

    /// Whether `aud` was a list on the wire (rather than a single text).
    pub const fn aud_is_list(&self) -> bool {
        matches!(self.aud, Aud::List(_))
    }

    /// Expiry, seconds since the Unix epoch.
    pub const fn exp(&self) -> u64 {
        self.exp
    }

    /// Not before, seconds since the Unix epoch.
    pub const fn nbf(&self) -> u64 {
        self.nbf
    }

    /// Issued at, if present.
    pub const fn iat(&self) -> Option<u64> {
        self.iat
    }

    /// Envelope id: the key of use counting and revocation.
    pub const fn cti(&self) -> &[u8; 16] {
        &self.cti
    }

    /// The holder's key (`cnf`): the envelope is holder-bound, and every call under it needs
    /// an invocation signed with this key. `None` for a bearer envelope.
    pub const fn holder(&self) -> Option<&TrustedKey> {
        self.holder.as_ref()
    }

    /// Grant version (always 1 in a decoded claims set).
    pub const fn version(&self) -> u64 {
        self.version
    }

    /// The tool grants, in wire order, with their classes resolved.
    pub fn tools(&self) -> ToolIter<'a> {
        ToolIter {
            list: self.list(self.tools),
            classes: self.classes,
        }
    }

    /// Classes for bare-pattern tool grants.
    pub const fn classes(&self) -> Classes {
        self.classes
    }

    /// How many distinct messages this envelope may authorise.
    pub const fn max_uses(&self) -> u64 {
        self.max_uses
    }

    /// The principal the agent acts on behalf of.
    pub const fn obo(&self) -> Option<&'a str> {
        self.obo
    }

    /// The session or task the envelope is bound to.
    pub const fn sid(&self) -> Option<&'a str> {
        self.sid
    }

    /// The approval rule: which classes need how many of which approvers (`docs/spec.md`
    /// §12). `None` when no class needs approval.
    pub const fn approval(&self) -> Option<&ApprovalRule<'a>> {
        self.approval.as_ref()
    }

    /// The budgets: caps on the sum of a numeric argument over every call the envelope
    /// authorises (`docs/spec.md` §17), in wire order; none when the grant has no key 7.
    pub fn budgets(&self) -> BudgetIter<'a> {
        BudgetIter {
            list: self.list(self.budgets),
            index: 0,
        }
    }

    /// SHA-256 of the parent envelope: the envelope is delegated, and is valid only as the
    /// child of that parent in a chain (`docs/spec.md` §13). `None` for a root.
    pub const fn parent(&self) -> Option<&[u8; 32]> {
        self.parent.as_ref()
    }

    fn list(&self, span: ListSpan) -> ListReader<'a> {
        let bytes = self.payload.get(span.start..span.end).unwrap_or(&[]);
        ListReader {
            reader: Reader::new(bytes, self.base + span.start),
            remaining: span.len,
        }
    }
}

/// Decodes `aud`: a text, or a non-empty array of texts.
fn decode_aud<'a>(r: &mut Reader<'a>) -> Result<Aud<'a>, Malformed> {
    let probe_at = r.pos();
    let mut probe = r.clone();
    if let Ok(single) = probe.text() {
        *r = probe;
        return Ok(Aud::One(single));
    }
    let len = r
        .array()
        .map_err(|_| r.error_at(probe_at, MalformedKind::UnexpectedType))?;
    if len == 0 {
        return Err(r.error_at(probe_at, MalformedKind::EmptyList));
    }
    let start = r.pos();
    for _ in 0..len {
        r.text()?;
    }
    Ok(Aud::List(ListSpan {
        start,
        end: r.pos(),
        len,
    }))
}

/// Decodes `cnf = {1: {1: 1, -1: 6, -2: bstr .size 32}}` (RFC 8747, a COSE_Key: kty OKP,
/// crv Ed25519, x), exactly these keys, and checks the key as a trusted key is checked.
fn decode_cnf(r: &mut Reader<'_>, known: &dyn KnownKeys) -> Result<TrustedKey, Malformed> {
    use crate::wire::{cnf, nint_arg};
    let at = r.pos();
    let bad = |r: &Reader<'_>| r.error_at(at, MalformedKind::HolderKey);
    if r.map().map_err(|_| bad(r))? != 1
        || r.head()? != ciborium_ll::Header::Positive(cnf::COSE_KEY as u64)
    {
        return Err(bad(r));
    }
    if r.map().map_err(|_| bad(r))? != 3 {
        return Err(bad(r));
    }
    let expect = [
        (
            ciborium_ll::Header::Positive(cnf::KTY as u64),
            ciborium_ll::Header::Positive(cnf::KTY_OKP as u64),
        ),
        (
            ciborium_ll::Header::Negative(nint_arg(cnf::CRV)),
            ciborium_ll::Header::Positive(cnf::CRV_ED25519 as u64),
        ),
    ];
    for (label, value) in expect {
        if r.head()? != label || r.head()? != value {
            return Err(bad(r));
        }
    }
    if r.head()? != ciborium_ll::Header::Negative(nint_arg(cnf::X)) {
        return Err(bad(r));
    }
    let x = r.bytes_exact::<32>().map_err(|_| bad(r))?;
    match known.get(&x) {
        // Only ever the same 32 bytes, already checked: the invariant of `TrustedKey`.
        Some(key) if key.as_bytes() == &x => Ok(key),
        _ => TrustedKey::from_bytes(&x).map_err(|_| bad(r)),
    }
}

/// Decodes the grant map. A version other than 1 stops interpretation: its remaining
/// fields are only checked to be deterministic CBOR.
fn decode_grant<'a>(r: &mut Reader<'a>, pass: Pass) -> Result<Grant<'a>, Malformed> {
    let pairs = r.map()?;
    let mut prev = None;
    let mut grant = Grant::default();
    for _ in 0..pairs {
        let key = r.key(&mut prev, 2)?;
        if grant.version.is_some_and(|v| v != GRANT_VERSION) {
            r.skip(2)?;
            continue;
        }
        match key {
            Key::Uint(key::V) => grant.version = Some(r.uint()?),
            Key::Uint(key::TOOLS) => grant.tools = Some(decode_tools(r, pass)?),
            Key::Uint(key::CLASSES) => grant.classes = Some(decode_classes(r)?),
            Key::Uint(key::MAX_USES) => {
                let at = r.pos();
                let n = r.uint()?;
                if n == 0 {
                    return Err(r.error_at(at, MalformedKind::MaxUses));
                }
                grant.max_uses = Some(n);
            }
            Key::Uint(key::OBO) => grant.obo = Some(r.text()?),
            Key::Uint(key::SID) => grant.sid = Some(r.text()?),
            Key::Uint(key::APPROVAL) => {
                grant.approval = Some(ApprovalRule::decode(r, pass == Pass::First)?);
            }
            Key::Uint(key::BUDGETS) => grant.budgets = Some(decode_budgets(r)?),
            _ => {
                r.skip(2)?;
                grant.unknown = true;
            }
        }
    }
    Ok(grant)
}

fn decode_classes(r: &mut Reader<'_>) -> Result<Classes, Malformed> {
    let at = r.pos();
    let bits = r.uint()?;
    Classes::from_bits(bits).ok_or(r.error_at(at, MalformedKind::Classes))
}

/// Decodes `[+ tool_grant]`, `tool_grant = tstr / [tstr, classes] / [tstr, classes, args]`,
/// checking every pattern and every args map.
fn decode_tools(r: &mut Reader<'_>, pass: Pass) -> Result<ListSpan, Malformed> {
    let at = r.pos();
    let len = r.array()?;
    if len == 0 {
        return Err(r.error_at(at, MalformedKind::EmptyList));
    }
    let start = r.pos();
    for _ in 0..len {
        read_tool_grant(r, None, pass == Pass::First)?;
    }
    Ok(ListSpan {
        start,
        end: r.pos(),
        len,
    })
}

/// Reads one tool grant; `default` resolves a bare pattern's classes (when known). The
/// grammar is checked when decoding (`check_grammar`); iteration re-reads checked bytes.
fn read_tool_grant<'a>(
    r: &mut Reader<'a>,
    default: Option<Classes>,
    check_grammar: bool,
) -> Result<ToolGrant<'a>, Malformed> {
    let at = r.pos();
    let mut probe = r.clone();
    let (pattern, classes, own_classes, args) = match probe.text() {
        Ok(pattern) => {
            *r = probe;
            (pattern, default.unwrap_or(Classes::ALL), false, None)
        }
        Err(_) => {
            let len = r.array()?;
            if len != 2 && len != 3 {
                return Err(r.error_at(at, MalformedKind::UnexpectedType));
            }
            let pattern = r.text()?;
            let classes = decode_classes(r)?;
            // The args map sits at the top of its grant: no level encloses it.
            let args = match (len, check_grammar) {
                (3, true) => Some(Args::decode(r, 0)?),
                // Iterating a decoded claims set: the args passed `Args::decode` then.
                (3, false) => Some(Args::view(r)?),
                _ => None,
            };
            (pattern, classes, true, args)
        }
    };
    if check_grammar && !is_tool_pattern(pattern) {
        return Err(r.error_at(at, MalformedKind::ToolPattern));
    }
    Ok(ToolGrant {
        pattern: ToolPattern::checked(pattern),
        classes,
        own_classes,
        args,
    })
}

/// Decodes `[1*8 budget]`, `budget = [tstr, tstr, uint]`: a pattern in grammar, a member
/// name, a limit from 1 to 2^53-1; no two with the same pattern and member.
fn decode_budgets(r: &mut Reader<'_>) -> Result<ListSpan, Malformed> {
    use crate::wire::budget::{MAX_AMOUNT, MAX_BUDGETS};
    let at = r.pos();
    let len = r.array()?;
    if len == 0 || len > MAX_BUDGETS {
        return Err(r.error_at(at, MalformedKind::Budgets));
    }
    let start = r.pos();
    let mut seen: [(&str, &str); MAX_BUDGETS] = [("", ""); MAX_BUDGETS];
    for n in 0..len {
        let budget_at = r.pos();
        let bad = |r: &Reader<'_>| r.error_at(budget_at, MalformedKind::Budgets);
        if r.array()? != 3 {
            return Err(bad(r));
        }
        let pattern = r.text()?;
        if !is_tool_pattern(pattern) {
            return Err(r.error_at(budget_at, MalformedKind::ToolPattern));
        }
        let member = r.text()?;
        let limit = r.uint()?;
        if limit == 0 || limit > MAX_AMOUNT {
            return Err(bad(r));
        }
        if seen.iter().take(n).any(|s| *s == (pattern, member)) {
            return Err(bad(r));
        }
        if let Some(slot) = seen.get_mut(n) {
            *slot = (pattern, member);
        }
    }
    Ok(ListSpan {
        start,
        end: r.pos(),
        len,
    })
}

/// Walks a list already checked by [`Claims::decode`].
#[derive(Debug, Clone)]
struct ListReader<'a> {
    reader: Reader<'a>,
    remaining: usize,
}

/// The audiences of an envelope.
#[derive(Debug, Clone)]
pub struct AudIter<'a> {
    single: Option<&'a str>,
    list: Option<ListReader<'a>>,
}

impl<'a> Iterator for AudIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if let Some(single) = self.single.take() {
            return Some(single);
        }
        let list = self.list.as_mut()?;
        if list.remaining == 0 {
            return None;
        }
        list.remaining -= 1;
        list.reader.text().ok()
    }
}

/// One budget of a grant (`docs/spec.md` §17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget<'a> {
    /// Its place in the grant's list: with the envelope, what names its sum in a ledger.
    pub index: u8,
    /// The calls it applies to.
    pub pattern: ToolPattern<'a>,
    /// The top-level member of the body whose value is a call's amount.
    pub member: &'a str,
    /// The sum of amounts may reach it, never pass it (1 to 2^53-1).
    pub limit: u64,
}

/// The budgets of an envelope.
#[derive(Debug, Clone)]
pub struct BudgetIter<'a> {
    list: ListReader<'a>,
    index: u8,
}

impl<'a> Iterator for BudgetIter<'a> {
    type Item = Budget<'a>;

    fn next(&mut self) -> Option<Budget<'a>> {
        if self.list.remaining == 0 {
            return None;
        }
        self.list.remaining -= 1;
        let r = &mut self.list.reader;
        // Bytes that passed `decode_budgets`.
        r.array().ok()?;
        let pattern = ToolPattern::checked(r.text().ok()?);
        let member = r.text().ok()?;
        let limit = r.uint().ok()?;
        let index = self.index;
        self.index += 1;
        Some(Budget {
            index,
            pattern,
            member,
            limit,
        })
    }
}

/// The tool grants of an envelope.
#[derive(Debug, Clone)]
pub struct ToolIter<'a> {
    list: ListReader<'a>,
    classes: Classes,
}

impl<'a> Iterator for ToolIter<'a> {
    type Item = ToolGrant<'a>;

    fn next(&mut self) -> Option<ToolGrant<'a>> {
        if self.list.remaining == 0 {
            return None;
        }
        self.list.remaining -= 1;
        read_tool_grant(&mut self.list.reader, Some(self.classes), false).ok()
    }
}
