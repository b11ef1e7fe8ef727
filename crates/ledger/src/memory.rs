//! The in-process ledger: a map behind a mutex. For tests and single-process use; nothing
//! survives the process, so it is not safe where a restart may redeliver messages.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use laissez_verify::wire::MAX_CHAIN_LEN;

use crate::clock::Clock;
use crate::inline::Inline;
use crate::path::ChainPath;
use crate::revocations::{Kept, KeptRecords, RevocationStore, StreamMark};
use crate::state::{self, AncestorView, Entry};
use crate::{
    Begin, Cti, LeaseToken, LedgerError, MAX_ANCESTORS, MAX_BUDGETS, MessageUse, Outcome, Usage,
    UseLedger,
};

/// How many begins between sweeps of expired ctis.
const SWEEP_EVERY: u64 = 1024;

/// An in-memory [`UseLedger`].
#[derive(Debug, Default)]
pub struct MemoryLedger {
    inner: Mutex<Inner>,
    revocations: Mutex<KeptRecords>,
    /// The system clock, except under `MemoryLedger::with_test_clock`.
    clock: Clock,
}

#[derive(Debug, Default)]
struct Inner {
    /// Keyed by path (`docs/spec.md` §8), never by cti alone.
    ctis: HashMap<ChainPath, CtiRecord>,
    begins: u64,
}

#[derive(Debug, Default)]
struct CtiRecord {
    /// Distinct `(path, message id)` pairs granted: its own messages and, as an ancestor, its
    /// descendants' (`docs/spec.md` §13).
    granted: u64,
    /// The latest expiry asked for: the record is dropped after it.
    expires_at: u64,
    entries: HashMap<String, Entry>,
    /// As an ancestor: the descendants' `(path, message id)` already charged to it.
    charged: HashSet<(ChainPath, String)>,
    /// The sum spent under each budget, by its index (`docs/spec.md` §17): kept, and dropped,
    /// with the count.
    spent: [u64; MAX_BUDGETS],
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty ledger that reads `clock` instead of the system clock, for tests (feature
    /// `test-clock`, which only this crate's own tests enable: see `src/clock.rs`).
    #[cfg(feature = "test-clock")]
    pub fn with_test_clock(clock: &crate::TestClock) -> Self {
        Self {
            clock: Clock::Test(clock.clone()),
            ..Self::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change is made whole under the lock after all checks, so a panic elsewhere
        // cannot leave a half-applied decision behind: the data is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the ledger answers: an in-memory ledger always does (its lock is taken, so a
    /// probe waits for a begin in progress). The same probe as the other backends' `ping`.
    pub fn ping(&self) -> Result<(), LedgerError> {
        drop(self.lock());
        Ok(())
    }

    /// [`UseLedger::begin`], without a runtime.
    ///
    /// Each envelope of the chain is looked up once to read (its count, whether it was charged
    /// for this message, its sums) and at most once more to write; the leaf's record, read
    /// for its entry, is the one written. Budget views and decisions are inline: a budgeted
    /// use hashes and allocates no more than an unbudgeted one (`docs/benchmarks.md`).
    pub fn begin_blocking(&self, req: &Begin<'_>) -> Result<Outcome, LedgerError> {
        let req = &crate::normalize(req)?;
        let fresh = LeaseToken::random()?.with_ancestors(req.ancestors);
        let path = ChainPath::of_begin(req);
        let now_ms = self.clock.now_ms();
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.begins += 1;
        if inner.begins.is_multiple_of(SWEEP_EVERY) {
            sweep(inner, now_ms / 1000);
        }
        // Only a delegated use is recorded as charged to its ancestors.
        let pair = (!req.ancestors.is_empty()).then(|| (path, req.message_id.to_owned()));
        // Each link's sums, root first and the leaf last, read with its record.
        let mut spent = [[0u64; MAX_BUDGETS]; MAX_CHAIN_LEN];
        let mut views: Inline<AncestorView, MAX_ANCESTORS> = Inline::new();
        for (i, (a, sums)) in req.ancestors.iter().zip(&mut spent).enumerate() {
            let record = inner.ctis.get(&path.prefix(i + 1));
            if let Some(r) = record {
                *sums = r.spent;
            }
            views.push(AncestorView {
                max_uses: a.max_uses,
                granted: record.map_or(0, |r| r.granted),
                charged: record
                    .zip(pair.as_ref())
                    .is_some_and(|(r, pair)| r.charged.contains(pair)),
            })?;
        }
        let leaf_link = req.ancestors.len();
        let record = inner.ctis.get_mut(&path);
        let existing = record
            .as_ref()
            .and_then(|r| r.entries.get(req.message_id).copied());
        let granted = record.as_ref().map_or(0, |r| r.granted);
        if let (Some(r), Some(sums)) = (&record, spent.get_mut(leaf_link)) {
            *sums = r.spent;
        }
        let leaf = state::decide_begin(req, existing, granted, now_ms, fresh)?;
        let budgets = state::budget_views(req, |link, index| {
            spent
                .get(link)
                .and_then(|sums| sums.get(usize::from(index)))
                .copied()
                .ok_or(LedgerError::InvalidRequest("a budget past the chain"))
        })?;
        let decision = state::decide_chain(leaf, &views, &budgets)?;
        // The new sums of the link `link`, by budget index.
        let sums_of = |link: usize| {
            budgets
                .iter()
                .zip(decision.sums.iter())
                .filter(move |(view, _)| view.link == link)
                .filter_map(|(view, sum)| sum.map(|sum| (usize::from(view.charge.index), sum)))
        };
        let leaf_decision = &decision.leaf;
        if leaf_decision.write.is_some()
            || leaf_decision.granted.is_some()
            || sums_of(leaf_link).next().is_some()
        {
            // The record read above when there was one: the path is hashed once more only
            // for an envelope's first use.
            let record = match record {
                Some(record) => record,
                None => inner.ctis.entry(path).or_default(),
            };
            record.expires_at = record.expires_at.max(req.expires_at);
            if let Some(granted) = leaf_decision.granted {
                record.granted = granted;
            }
            if let Some(entry) = leaf_decision.write {
                record.entries.insert(req.message_id.to_owned(), entry);
            }
            for (index, sum) in sums_of(leaf_link) {
                record.spent[index] = sum;
            }
        }
        for (i, (ancestor, charge)) in req
            .ancestors
            .iter()
            .zip(decision.charges.iter())
            .enumerate()
        {
            if charge.is_none() && sums_of(i).next().is_none() {
                continue;
            }
            let record = inner.ctis.entry(path.prefix(i + 1)).or_default();
            for (index, sum) in sums_of(i) {
                record.spent[index] = sum;
            }
            if let Some(granted) = charge {
                record.granted = *granted;
                record.expires_at = record.expires_at.max(ancestor.expires_at);
                if let Some(pair) = &pair {
                    record.charged.insert(pair.clone());
                }
            }
        }
        Ok(decision.leaf.outcome)
    }

    /// [`UseLedger::complete`], without a runtime.
    pub fn complete_blocking(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        self.settle(cti, message_id, lease, state::decide_complete)
    }

    /// [`UseLedger::release`], without a runtime.
    pub fn release_blocking(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        self.settle(cti, message_id, lease, state::decide_release)
    }

    fn settle(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
        decide: fn(Option<Entry>, &LeaseToken) -> Result<Option<Entry>, LedgerError>,
    ) -> Result<(), LedgerError> {
        crate::validate_message_id(message_id)?;
        let mut inner = self.lock();
        let slot = inner
            .ctis
            .get_mut(&ChainPath::of_lease(cti, lease))
            .and_then(|r| r.entries.get_mut(message_id));
        let existing = slot.as_deref().copied();
        if let (Some(entry), Some(slot)) = (decide(existing, lease)?, slot) {
            *slot = entry;
        }
        Ok(())
    }

    /// What the ledger holds for the envelope `cti` that is not delegated (or is a chain's
    /// root).
    pub fn usage(&self, cti: &Cti) -> Usage {
        self.usage_in(&[], cti)
    }

    /// What the ledger holds for `cti` under `ancestors` (their ctis, root first).
    pub fn usage_in(&self, ancestors: &[Cti], cti: &Cti) -> Usage {
        let inner = self.lock();
        let path = ChainPath::new(ancestors.iter().copied(), cti);
        let Some(record) = inner.ctis.get(&path) else {
            return Usage::default();
        };
        let mut messages: Vec<MessageUse> = record
            .entries
            .iter()
            .map(|(id, e)| MessageUse {
                message_id: id.clone(),
                use_number: e.use_number,
                state: e.state,
            })
            .collect();
        messages.sort_by_key(|m| m.use_number);
        Usage {
            granted: record.granted,
            messages,
        }
    }

    /// Drops every envelope's record whose latest `expires_at` plus [`crate::RETENTION_GRACE_SECS`] is before
    /// `now_secs` (unix seconds); returns how many. Begins also do this now and then, so
    /// calling it is optional.
    pub fn collect_expired(&self, now_secs: u64) -> usize {
        sweep(&mut self.lock(), now_secs)
    }
}

fn sweep(inner: &mut Inner, now_secs: u64) -> usize {
    let before = inner.ctis.len();
    // Kept for the grace past the latest expiry: see `RETENTION_GRACE_SECS`.
    let cutoff = now_secs.saturating_sub(crate::RETENTION_GRACE_SECS);
    inner.ctis.retain(|_, r| r.expires_at >= cutoff);
    before - inner.ctis.len()
}

impl UseLedger for MemoryLedger {
    async fn begin(&self, req: &Begin<'_>) -> Result<Outcome, LedgerError> {
        self.begin_blocking(req)
    }

    async fn complete(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        self.complete_blocking(cti, message_id, lease)
    }

    async fn release(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        self.release_blocking(cti, message_id, lease)
    }
}

impl MemoryLedger {
    fn kept(&self) -> MutexGuard<'_, KeptRecords> {
        // Each change is one insert or retain under the lock: consistent after a panic.
        self.revocations.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RevocationStore for MemoryLedger {
    async fn keep_record(&self, record: &[u8], until: u64, now: u64) -> Result<Kept, LedgerError> {
        self.kept().keep(record, until, now)
    }

    async fn kept_records(&self, now: u64) -> Result<Vec<Vec<u8>>, LedgerError> {
        Ok(self.kept().live(now))
    }

    async fn save_mark(&self, stream: &str, mark: &StreamMark) -> Result<(), LedgerError> {
        self.kept().save_mark(stream, mark)
    }

    async fn saved_mark(&self, stream: &str) -> Result<Option<StreamMark>, LedgerError> {
        self.kept().mark(stream)
    }
}
