//! Human approval (`docs/spec.md` §12): the grant's approval rule (which classes need how
//! many of which approvers) and the approval, a person's signature over one exact call, a
//! COSE_Sign1 of at most 1024 bytes signed with the external_aad `laissez/v1/approval`, so
//! it never verifies as an envelope, an invocation or a revocation record, nor they as it.

use core::fmt;

use crate::args::Args;
use crate::call::Call;
use crate::cbor::{Key, Reader};
use crate::keys::{Kid, TrustedKey};
use crate::malformed::{Malformed, MalformedKind};
use crate::sign1::Sign1;
use crate::signed_call::{self, Signer};
use crate::tools::{ActionClass, Classes, ToolPattern};
use crate::wire::{APPROVAL_AAD, MAX_APPROVAL_LEN, MAX_APPROVERS, approval, header};

/// The encoding of one approver kid in the rule's list: a one-byte head (`bstr .size 8`)
/// and the eight bytes.
const KID_ITEM_LEN: usize = 1 + header::KID_LEN;
/// The head of an 8-byte byte string.
const KID_HEAD: u8 = 0x40 | header::KID_LEN as u8;

/// A grant's approval rule: calls of `classes` need `m` distinct approvals from the listed
/// approvers. Borrowed from the claims; the kids are read in place.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ApprovalRule<'a> {
    classes: Classes,
    m: u8,
    /// The approvers' kid items, each [`KID_ITEM_LEN`] bytes, as received: distinct and in
    /// ascending order (checked when decoded), 1 to 16 of them.
    kids: &'a [u8],
    /// The waivers (`unless`, `docs/spec.md` §12, §16), when the rule has them.
    unless: Option<Waivers<'a>>,
}

/// A rule's waivers: 1 to 8 (tool pattern, args) entries, read in place.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Waivers<'a> {
    items: &'a [u8],
    base: usize,
    len: usize,
}

impl<'a> Waivers<'a> {
    /// How many waivers.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Never true: a rule with `unless` has at least one waiver.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The waivers in wire order: the calls they match and the args (read open) that must
    /// hold for the rule not to apply.
    pub fn iter(&self) -> impl Iterator<Item = (ToolPattern<'a>, Args<'a>)> + 'a {
        let mut r = Reader::new(self.items, self.base);
        (0..self.len).map_while(move |_| read_waiver(&mut r, false).ok())
    }
}

impl fmt::Debug for Waivers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Reads `[tstr, args]`, the pattern in grammar and the args checked (`check`), or a waiver
/// the rule's decoder checked before.
fn read_waiver<'a>(
    r: &mut Reader<'a>,
    check: bool,
) -> Result<(ToolPattern<'a>, Args<'a>), Malformed> {
    let at = r.pos();
    if r.array()? != 2 {
        return Err(r.error_at(at, MalformedKind::ApprovalRule));
    }
    let pattern = r.text()?;
    let pattern =
        ToolPattern::new(pattern).map_err(|_| r.error_at(at, MalformedKind::ToolPattern))?;
    // A waiver's args sit at the top of their entry: no level encloses them.
    let args = if check {
        Args::decode(r, 0)?
    } else {
        Args::view(r)?
    };
    Ok((pattern, args))
}

impl fmt::Debug for ApprovalRule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApprovalRule")
            .field("classes", &self.classes)
            .field("m", &self.m)
            .field("approvers", &self.approvers().len())
            .finish()
    }
}

impl<'a> ApprovalRule<'a> {
    /// Decodes `{1: classes, 2: m, 3: [+ bstr .size 8], ? 4: [1*8 [tstr, args]]}`: exactly
    /// these keys, classes 1 to 7, 1 ≤ m ≤ n ≤ 16, the kids distinct and in ascending byte
    /// order, the waivers' patterns in grammar and their args as §16 says.
    /// `check` is false only for bytes a first decode accepted (a cache's): the waivers'
    /// args are then not checked again.
    pub(crate) fn decode(r: &mut Reader<'a>, check: bool) -> Result<Self, Malformed> {
        let at = r.pos();
        let bad = |r: &Reader<'_>| r.error_at(at, MalformedKind::ApprovalRule);
        let pairs = r.map()?;
        if pairs != 3 && pairs != 4 {
            return Err(bad(r));
        }
        let mut prev = None;
        if r.key(&mut prev, 3)? != Key::Uint(approval::CLASSES as u64) {
            return Err(bad(r));
        }
        let classes = Classes::from_bits(r.uint()?).ok_or_else(|| bad(r))?;
        if r.key(&mut prev, 3)? != Key::Uint(approval::M as u64) {
            return Err(bad(r));
        }
        let m = r.uint()?;
        if r.key(&mut prev, 3)? != Key::Uint(approval::APPROVERS as u64) {
            return Err(bad(r));
        }
        let n = r.array()?;
        if n == 0 || n > MAX_APPROVERS || m == 0 || m > n as u64 {
            return Err(bad(r));
        }
        let start = r.pos();
        let mut last: Option<[u8; 8]> = None;
        for _ in 0..n {
            let kid = r.bytes_exact::<8>()?;
            // Ascending and distinct in one comparison.
            if last.is_some_and(|last| last >= kid) {
                return Err(bad(r));
            }
            last = Some(kid);
        }
        let kids = r.slice(start, r.pos());
        let unless = if pairs == 4 {
            if r.key(&mut prev, 3)? != Key::Uint(approval::UNLESS as u64) {
                return Err(bad(r));
            }
            let list_at = r.pos();
            let len = r.array()?;
            if len == 0 || len > approval::MAX_WAIVERS {
                return Err(r.error_at(list_at, MalformedKind::ApprovalRule));
            }
            let items_start = r.pos();
            let base = r.offset();
            for _ in 0..len {
                read_waiver(r, check)?;
            }
            Some(Waivers {
                items: r.slice(items_start, r.pos()),
                base,
                len,
            })
        } else {
            None
        };
        Ok(ApprovalRule {
            classes,
            // m ≤ n ≤ 16.
            m: m as u8,
            kids,
            unless,
        })
    }

    /// The waivers (`unless`): calls this rule does not apply to, when the body holds one of
    /// them (`docs/spec.md` §12). `None` when the rule has none.
    pub const fn waivers(&self) -> Option<&Waivers<'a>> {
        self.unless.as_ref()
    }

    /// The classes that need approval.
    pub const fn classes(&self) -> Classes {
        self.classes
    }

    /// How many distinct approvals a call of these classes needs.
    pub const fn m(&self) -> u8 {
        self.m
    }

    /// The approvers' kids, in ascending order.
    pub fn approvers(&self) -> Approvers<'a> {
        Approvers {
            items: self.kids.chunks_exact(KID_ITEM_LEN),
        }
    }

    /// Whether a call of `class` needs approval under this rule.
    pub const fn covers(&self, class: ActionClass) -> bool {
        self.classes.contains(class)
    }

    /// The position of `kid` in the approvers' list.
    fn position(&self, kid: &Kid) -> Option<usize> {
        self.approvers().position(|k| k == *kid)
    }
}

/// The approvers' kids of a rule.
#[derive(Debug, Clone)]
pub struct Approvers<'a> {
    items: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for Approvers<'_> {
    type Item = Kid;

    fn next(&mut self) -> Option<Kid> {
        let item = self.items.next()?;
        debug_assert_eq!(item.first(), Some(&KID_HEAD));
        let kid: [u8; 8] = item.get(1..)?.try_into().ok()?;
        Some(Kid::from_bytes(kid))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

impl ExactSizeIterator for Approvers<'_> {}

/// An approval whose structure has been checked but whose signature has not.
#[derive(Debug, Clone, Copy)]
pub struct UntrustedApproval<'a> {
    sign1: Sign1<'a>,
    call: Call<'a>,
    iat: u64,
    exp: u64,
    by: Option<&'a str>,
}

impl<'a> UntrustedApproval<'a> {
    /// Decodes an approval: the COSE_Sign1 shape, at most 1024 bytes, and a payload of the
    /// call's six keys, `7: iat`, `8: exp` and optionally `9: by`, deterministic.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Malformed> {
        let sign1 = Sign1::decode(bytes, MAX_APPROVAL_LEN)?;
        let signed = signed_call::decode(sign1.payload, sign1.payload_offset, Signer::Approver)?;
        let at = sign1.payload_offset;
        Ok(UntrustedApproval {
            sign1,
            call: signed.call,
            iat: signed.iat,
            exp: signed
                .exp
                .ok_or(Malformed::new(at, MalformedKind::MissingClaim))?,
            by: signed.by,
        })
    }

    /// The kid of the key that claims to have signed it.
    pub const fn kid(&self) -> Kid {
        self.sign1.kid
    }

    /// The call it approves (unauthenticated until the signature holds).
    pub const fn call(&self) -> Call<'a> {
        self.call
    }

    /// When it was made.
    pub const fn iat(&self) -> u64 {
        self.iat
    }

    /// When it stops counting.
    pub const fn exp(&self) -> u64 {
        self.exp
    }

    /// The approver's name, for the record.
    pub const fn by(&self) -> Option<&'a str> {
        self.by
    }

    /// Whether `approver` signed it: its kid and its signature under the approval aad.
    pub fn signed_by(&self, approver: &TrustedKey) -> bool {
        self.kid() == approver.kid() && self.sign1.signature_holds(approver, APPROVAL_AAD)
    }
}

/// The inputs an approval is counted against.
pub(crate) struct Counting<'c> {
    pub(crate) rule: &'c ApprovalRule<'c>,
    pub(crate) approver_keys: &'c [TrustedKey],
    pub(crate) call: &'c Call<'c>,
    pub(crate) now: u64,
    pub(crate) leeway: u64,
    pub(crate) max_lifetime: u64,
}

/// The approvers whose approvals counted for one call: each once, at most 16.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CountedApprovers {
    kids: [Kid; MAX_APPROVERS],
    len: u8,
}

impl fmt::Debug for CountedApprovers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Default for CountedApprovers {
    fn default() -> Self {
        CountedApprovers {
            kids: [Kid::from_bytes([0; 8]); MAX_APPROVERS],
            len: 0,
        }
    }
}

impl CountedApprovers {
    /// The kids of the approvers that counted, in the rule's (ascending) order.
    pub fn as_slice(&self) -> &[Kid] {
        &self.kids[..usize::from(self.len)]
    }

    /// How many counted.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether none counted.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds the approvers of `other` not yet here (several rules of a chain may count the
    /// same person). At most 16 approvals come with a call, so at most 16 kids.
    pub(crate) fn merge(&mut self, other: &CountedApprovers) {
        for kid in other.as_slice() {
            if !self.as_slice().contains(kid) && usize::from(self.len) < MAX_APPROVERS {
                self.kids[usize::from(self.len)] = *kid;
                self.len += 1;
            }
        }
    }
}

impl Counting<'_> {
    /// Counts the approvals among `approvals` that count (`docs/spec.md` §12); the others are
    /// ignored, never errors. Each listed approver counts once, whatever it sent.
    pub(crate) fn count(&self, approvals: &[&[u8]]) -> CountedApprovers {
        // Bit i: the rule's i-th approver counted. n ≤ 16.
        let mut seen: u16 = 0;
        for bytes in approvals {
            if let Some(i) = self.counting_position(bytes) {
                seen |= 1 << i;
            }
        }
        let mut counted = CountedApprovers::default();
        for (i, kid) in self.rule.approvers().enumerate() {
            if seen & (1 << i) != 0 {
                counted.kids[usize::from(counted.len)] = kid;
                counted.len += 1;
            }
        }
        counted
    }

    /// The position in the rule of the approver whose approval `bytes` counts, if it does.
    fn counting_position(&self, bytes: &[u8]) -> Option<usize> {
        let approval = UntrustedApproval::decode(bytes).ok()?;
        let kid = approval.kid();
        let position = self.rule.position(&kid)?;
        // The cheap checks first: a signature check is the cost of a count.
        if signed_call::first_difference(&approval.call, self.call).is_some() {
            return None;
        }
        let (iat, exp) = (approval.iat, approval.exp);
        let in_time = iat <= self.now.saturating_add(self.leeway)
            && self.now < exp.saturating_add(self.leeway)
            && iat < exp
            && exp - iat <= self.max_lifetime;
        if !in_time {
            return None;
        }
        // The whole key, not only its kid, must be one the worker holds as an approver.
        let held = self
            .approver_keys
            .iter()
            .any(|key| key.kid() == kid && approval.signed_by(key));
        held.then_some(position)
    }
}
