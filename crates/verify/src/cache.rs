//! A cache of authenticated envelopes, so that an envelope reused across many messages has
//! its signature checked once.
//!
//! Entries are keyed by SHA-256 of the exact envelope bytes, and a hit also compares the
//! bytes. A hit skips only what depends on the bytes alone (decode, signature): the key must
//! still be trusted by the verifier asking, and time, lifetime, audience, agent, request and
//! revocation are checked on every hit. Memory is bounded by `capacity` entries of at most
//! [`crate::wire::MAX_ENVELOPE_LEN`] bytes; an entry is dropped once its envelope has expired.

use std::boxed::Box;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::claims::{Claims, KnownKeys};
use crate::envelope::UntrustedEnvelope;
use crate::error::Denial;
use crate::keys::{Kid, TrustedKey};
use crate::policy::MAX_LEEWAY;
use crate::verified::VerifiedEnvelope;
use crate::verifier::{LinkCache, Verifier};

type Digest32 = [u8; 32];

#[derive(Debug)]
struct Entry {
    bytes: Box<[u8]>,
    /// The whole key the signature held under: a hit is honoured only by a verifier that
    /// trusts these 32 bytes, never by one that merely has a key with the same 64-bit kid.
    key: [u8; 32],
    kid: Kid,
    /// The holder key (`cnf`) as checked when the entry was made, so a hit does not repeat
    /// the key checks (a scalar multiplication) for the same bytes.
    holder: Option<TrustedKey>,
    /// Unix seconds after which no verifier can accept the envelope.
    dead_at: u64,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Digest32, Entry>,
    /// Holder keys (`cnf`) checked as §3 requires, by their bytes: an envelope seen for the
    /// first time whose holder is a known agent skips the key checks. At most `capacity`.
    holders: HashMap<[u8; 32], TrustedKey>,
    /// Insertion order, for eviction when full.
    order: VecDeque<Digest32>,
}

/// A bounded, thread-safe cache of authenticated envelopes.
#[derive(Debug)]
pub struct EnvelopeCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl KnownKeys for EnvelopeCache {
    fn get(&self, x: &[u8; 32]) -> Option<TrustedKey> {
        self.lock().holders.get(x).copied()
    }
}

// `with_cache` is defined with the cache, not in the verifier's module: the verifier holds
// the cache as a `ChainCache` and so names no cache type.
impl<'k> Verifier<'k> {
    /// Authenticates through `cache` in [`Verifier::decide`]: a chain's links verified before
    /// (under this verifier's exact keys, or the same parent) are not verified again. Only
    /// the signatures are cached, never a row that depends on the moment or the call.
    #[must_use]
    pub const fn with_cache(mut self, cache: &'k EnvelopeCache) -> Self {
        self.cache = Some(cache);
        self
    }
}

impl LinkCache for EnvelopeCache {
    fn root<'a>(
        &self,
        verifier: &Verifier<'_>,
        bytes: &'a [u8],
        now: u64,
    ) -> Result<VerifiedEnvelope<'a>, Denial> {
        let digest: Digest32 = Sha256::digest(bytes).into();
        if let Some(hit) = self.lookup(verifier, &digest, bytes, now) {
            return Ok(hit);
        }
        let verified = verifier.authenticate_with(bytes, self)?;
        self.insert(digest, &verified, now);
        Ok(verified)
    }

    fn child<'a>(
        &self,
        verifier: &Verifier<'_>,
        parent: &VerifiedEnvelope<'_>,
        bytes: &'a [u8],
        now: u64,
    ) -> Result<VerifiedEnvelope<'a>, Denial> {
        let digest: Digest32 = Sha256::digest(bytes).into();
        if let Some(hit) = self.lookup_child(parent, &digest, bytes, now) {
            return Ok(hit);
        }
        let child = verifier.authenticate_child(parent, bytes, self)?;
        self.insert(digest, &child, now);
        Ok(child)
    }
}

/// Cache counters, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Entries held.
    pub len: usize,
}

impl EnvelopeCache {
    /// A cache holding at most `capacity` envelopes (at least one).
    pub fn new(capacity: usize) -> Self {
        EnvelopeCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Entries held now.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            len: self.lock().map.len(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent with safety:
        // at worst an entry is missing, which only costs a signature check.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key, kid and holder an entry for exactly `bytes` recorded, unless it is dead (then
    /// dropped) or absent.
    fn live_entry(
        &self,
        digest: &Digest32,
        bytes: &[u8],
        now: u64,
    ) -> Option<([u8; 32], Kid, Option<TrustedKey>)> {
        let mut inner = self.lock();
        let entry = inner.map.get(digest)?;
        if now >= entry.dead_at {
            inner.map.remove(digest);
            return None;
        }
        if *entry.bytes != *bytes {
            return None;
        }
        Some((entry.key, entry.kid, entry.holder))
    }

    fn lookup<'a>(
        &self,
        verifier: &Verifier<'_>,
        digest: &Digest32,
        bytes: &'a [u8],
        now: u64,
    ) -> Option<VerifiedEnvelope<'a>> {
        let (key, kid, holder) = self.live_entry(digest, bytes, now)?;
        // The exact key must be trusted by this verifier, not only by the one that filled the
        // entry (and not merely a key that shares its kid).
        if !verifier.trusts(&key) {
            return None;
        }
        let claims = Self::claims_of(bytes, holder.as_ref())?;
        // A child cached as a link of a chain is never a root (`docs/spec.md` §13): missing
        // here, `Verifier::authenticate` says `bad_delegation`.
        if claims.parent().is_some() {
            return None;
        }
        Some(VerifiedEnvelope::from_cache(bytes, key, kid, claims))
    }

    /// The entry of `bytes` as a child of `parent`: honoured only when it was verified under
    /// `parent`'s holder key (the whole 32 bytes) and names `parent`'s digest, so a cached
    /// link is never reused under another parent.
    fn lookup_child<'a>(
        &self,
        parent: &VerifiedEnvelope<'_>,
        digest: &Digest32,
        bytes: &'a [u8],
        now: u64,
    ) -> Option<VerifiedEnvelope<'a>> {
        let (key, kid, holder) = self.live_entry(digest, bytes, now)?;
        if parent.claims().holder().map(TrustedKey::as_bytes) != Some(&key) {
            return None;
        }
        let claims = Self::claims_of(bytes, holder.as_ref())?;
        if claims.parent() != Some(&parent.digest()) {
            return None;
        }
        Some(VerifiedEnvelope::from_cache(bytes, key, kid, claims))
    }

    fn claims_of<'a>(bytes: &'a [u8], holder: Option<&TrustedKey>) -> Option<Claims<'a>> {
        let envelope = UntrustedEnvelope::decode(bytes).ok()?;
        let (payload, base) = envelope.payload();
        // These bytes passed a full decode when they were cached (the lookup compared them).
        Claims::decode_again(payload, base, &holder).ok()
    }

    fn insert(&self, digest: Digest32, verified: &VerifiedEnvelope<'_>, now: u64) {
        let dead_at = verified.claims().exp().saturating_add(MAX_LEEWAY);
        if now >= dead_at {
            return;
        }
        let mut inner = self.lock();
        if inner.map.len() >= self.capacity {
            inner.map.retain(|_, e| now < e.dead_at);
        }
        while inner.map.len() >= self.capacity {
            match inner.order.pop_front() {
                Some(oldest) => {
                    inner.map.remove(&oldest);
                }
                None => break,
            }
        }
        if let Some(holder) = verified.claims().holder() {
            if inner.holders.len() >= self.capacity {
                // Any one will do: a forgotten key only costs its checks once more.
                let evict = inner.holders.keys().next().copied();
                if let Some(evict) = evict {
                    inner.holders.remove(&evict);
                }
            }
            inner.holders.insert(*holder.as_bytes(), *holder);
        }
        let entry = Entry {
            bytes: verified.as_bytes().into(),
            key: *verified.key(),
            kid: verified.kid(),
            holder: verified.claims().holder().copied(),
            dead_at,
        };
        if inner.map.insert(digest, entry).is_none() {
            inner.order.push_back(digest);
        }
        // Keep the order queue from growing past the live entries it describes.
        if inner.order.len() > 2 * self.capacity {
            let Inner { map, order, .. } = &mut *inner;
            order.retain(|d| map.contains_key(d));
        }
    }
}
