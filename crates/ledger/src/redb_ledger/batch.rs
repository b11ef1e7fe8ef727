//! One group commit: a batch of operations applied in one redb write transaction.

use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};

use super::keys::{
    KIND_BUDGET, KIND_CHARGE, KIND_COUNTER, KIND_ENTRY, budget_key, charge_key, entry_key,
    expiry_key, path_key,
};
use super::{
    Answer, BUDGETS, CHARGES, COUNTERS, ENTRIES, EXPIRY, EXPIRY_BY_KIND, Op, OwnedCharge, Reply,
    storage_error,
};
use crate::clock::Clock;
use crate::inline::Inline;
use crate::path::ChainPath;
use crate::state::{self, AncestorView, BudgetView, Entry};
use crate::{Begin, Charge, LeaseToken, LedgerError, MAX_ANCESTORS, MessageUse, Usage};

/// Marks a charge in a key of the earlier expiry index, where an entry's message id would start.
const LEGACY_CHARGE_MARK: u8 = 0xff;

/// How many expired records one batch collects at most, so that collection never makes a
/// begin wait long.
const COLLECT_PER_BATCH: usize = 64;

/// The tables of one write transaction.
struct Tables<'t> {
    counters: Table<'t, &'static [u8], (u64, u64)>,
    entries: Table<'t, &'static [u8], &'static [u8]>,
    charges: Table<'t, &'static [u8], u64>,
    budgets: Table<'t, &'static [u8], (u64, u64)>,
    expiry: Table<'t, &'static [u8], ()>,
    legacy_expiry: Table<'t, &'static [u8], ()>,
}

/// Applies a batch in one write transaction, reading the time from `clock` (the system clock
/// outside tests). The outer error fails the whole batch (nothing of it is committed); inner
/// errors are per operation.
pub(super) fn run_batch(
    db: &Database,
    ops: &[&Op],
    clock: &Clock,
) -> Result<Vec<Reply>, LedgerError> {
    let mut txn: WriteTransaction = db.begin_write().map_err(storage_error)?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| LedgerError::unavailable("redb", e))?;
    let mut replies = Vec::with_capacity(ops.len());
    let mut dirty = false;
    {
        let mut t = Tables {
            counters: txn.open_table(COUNTERS).map_err(storage_error)?,
            entries: txn.open_table(ENTRIES).map_err(storage_error)?,
            charges: txn.open_table(CHARGES).map_err(storage_error)?,
            budgets: txn.open_table(BUDGETS).map_err(storage_error)?,
            expiry: txn.open_table(EXPIRY_BY_KIND).map_err(storage_error)?,
            legacy_expiry: txn.open_table(EXPIRY).map_err(storage_error)?,
        };
        for op in ops {
            let now_ms = clock.now_ms();
            let (reply, wrote) = apply(&mut t, op, now_ms)?;
            dirty |= wrote;
            replies.push(reply);
        }
        // Collect a little on every commit that is paid for anyway.
        if dirty {
            collect(&mut t, clock.now_ms() / 1000, COLLECT_PER_BATCH)?;
        }
    }
    if dirty {
        // One fsync for the whole batch; nobody hears an answer before it returns.
        txn.commit().map_err(storage_error)?;
    } else {
        txn.abort().map_err(storage_error)?;
    }
    Ok(replies)
}

/// An envelope's count and the latest expiry it was asked under; `(0, 0)` when unknown.
fn read_counter(t: &Tables<'_>, key: &[u8]) -> Result<(u64, u64), LedgerError> {
    Ok(t.counters
        .get(key)
        .map_err(storage_error)?
        .map_or((0, 0), |v| v.value()))
}

/// Writes an envelope's count, keeping the latest expiry and indexing it for collection.
fn write_counter(
    t: &mut Tables<'_>,
    key: &[u8],
    granted: u64,
    expires_at: u64,
) -> Result<(), LedgerError> {
    let (_, old_exp) = read_counter(t, key)?;
    let exp = old_exp.max(expires_at);
    t.counters
        .insert(key, (granted, exp))
        .map_err(storage_error)?;
    if exp != old_exp {
        let ek = expiry_key(exp, KIND_COUNTER, key);
        t.expiry.insert(&ek[..], ()).map_err(storage_error)?;
    }
    Ok(())
}

/// A budget's sum and the latest expiry it was kept for; `(0, 0)` when unknown.
fn read_budget(t: &Tables<'_>, key: &[u8]) -> Result<(u64, u64), LedgerError> {
    Ok(t.budgets
        .get(key)
        .map_err(storage_error)?
        .map_or((0, 0), |v| v.value()))
}

/// Writes a budget's sum, kept like a count: to the latest expiry, indexed for collection.
fn write_budget(
    t: &mut Tables<'_>,
    key: &[u8],
    sum: u64,
    expires_at: u64,
) -> Result<(), LedgerError> {
    let (_, old_exp) = read_budget(t, key)?;
    let exp = old_exp.max(expires_at);
    t.budgets.insert(key, (sum, exp)).map_err(storage_error)?;
    if exp != old_exp {
        let ek = expiry_key(exp, KIND_BUDGET, key);
        t.expiry.insert(&ek[..], ()).map_err(storage_error)?;
    }
    Ok(())
}

/// The charge as the state machine reads it, borrowing the owned strings.
fn charge_of(c: &OwnedCharge) -> Charge<'_> {
    Charge {
        index: c.index,
        pattern: &c.pattern,
        member: &c.member,
        limit: c.limit,
        amount: c.amount,
    }
}

fn read_entry(
    t: &Tables<'_>,
    key: &[u8],
) -> Result<Result<Option<Entry>, LedgerError>, LedgerError> {
    let Some(raw) = t.entries.get(key).map_err(storage_error)? else {
        return Ok(Ok(None));
    };
    Ok(Entry::decode(raw.value()).map(Some))
}

/// Applies one operation: its reply, and whether it wrote.
fn apply(t: &mut Tables<'_>, op: &Op, now_ms: u64) -> Result<(Reply, bool), LedgerError> {
    match op {
        Op::Begin {
            path,
            message_id,
            max_uses,
            expires_at,
            lease,
            tool,
            class,
            fresh,
            ancestors,
            charges,
        } => {
            let key = entry_key(path, message_id);
            let counter = path_key(path);
            let existing = match read_entry(t, &key)? {
                Ok(e) => e,
                Err(e) => return Ok((Err(e), false)),
            };
            let (granted, counter_exp) = read_counter(t, &counter)?;
            let req = Begin {
                cti: &path.ctis()[path.depth() - 1],
                message_id,
                max_uses: *max_uses,
                expires_at: *expires_at,
                lease: *lease,
                tool,
                class: *class,
                ancestors: &[],
                charges: &[],
            };
            let leaf = match state::decide_begin(&req, existing, granted, now_ms, *fresh) {
                Ok(d) => d,
                Err(e) => return Ok((Err(e), false)),
            };
            // Inline, as the memory backend's: a budgeted use allocates nothing more here.
            // A storage error fails the batch (`?`); a request past the chain's bounds (which
            // `normalize` rules out) fails only this operation.
            let mut views: Inline<AncestorView, MAX_ANCESTORS> = Inline::new();
            for (i, (max, _)) in ancestors.iter().enumerate() {
                let charge = charge_key(path, i + 1, message_id);
                let view = AncestorView {
                    max_uses: *max,
                    granted: read_counter(t, &path_key(&path.prefix(i + 1)))?.0,
                    charged: t.charges.get(&charge[..]).map_err(storage_error)?.is_some(),
                };
                if let Err(e) = views.push(view) {
                    return Ok((Err(e), false));
                }
            }
            let mut budgets: state::BudgetViews<'_> = Inline::new();
            for c in charges {
                let key = budget_key(&path.prefix(c.link + 1), c.index);
                let view = BudgetView {
                    link: c.link,
                    charge: charge_of(c),
                    spent: read_budget(t, &key)?.0,
                };
                if let Err(e) = budgets.push(view) {
                    return Ok((Err(e), false));
                }
            }
            let decision = match state::decide_chain(leaf, &views, &budgets) {
                Ok(d) => d,
                Err(e) => return Ok((Err(e), false)),
            };
            let mut wrote = false;
            for (view, sum) in budgets.iter().zip(decision.sums.iter()) {
                if let Some(sum) = sum {
                    // Kept as long as the envelope's count: its own expiry, as asked.
                    let exp = ancestors.get(view.link).map_or(*expires_at, |(_, e)| *e);
                    let key = budget_key(&path.prefix(view.link + 1), view.charge.index);
                    write_budget(t, &key, *sum, exp)?;
                    wrote = true;
                }
            }
            for (i, ((_, exp), charge)) in ancestors.iter().zip(decision.charges.iter()).enumerate()
            {
                if let Some(granted) = charge {
                    write_counter(t, &path_key(&path.prefix(i + 1)), *granted, *exp)?;
                    let ck = charge_key(path, i + 1, message_id);
                    t.charges.insert(&ck[..], *exp).map_err(storage_error)?;
                    let ek = expiry_key(*exp, KIND_CHARGE, &ck);
                    t.expiry.insert(&ek[..], ()).map_err(storage_error)?;
                    wrote = true;
                }
            }
            let decision = decision.leaf;
            if let Some(entry) = decision.write {
                t.entries
                    .insert(&key[..], &entry.encode()[..])
                    .map_err(storage_error)?;
                if existing.is_none_or(|old| old.expires_at != entry.expires_at) {
                    let ek = expiry_key(entry.expires_at, KIND_ENTRY, &key);
                    t.expiry.insert(&ek[..], ()).map_err(storage_error)?;
                }
                wrote = true;
            }
            if let Some(granted) = decision.granted {
                write_counter(t, &counter, granted, counter_exp.max(*expires_at))?;
                wrote = true;
            }
            Ok((Ok(Answer::Outcome(decision.outcome)), wrote))
        }
        Op::Complete {
            path,
            message_id,
            lease,
        } => settle(t, path, message_id, lease, state::decide_complete),
        Op::Release {
            path,
            message_id,
            lease,
        } => settle(t, path, message_id, lease, state::decide_release),
        Op::Usage { path } => Ok((usage(t, path), false)),
        Op::Collect { now_secs } => {
            let n = collect(t, *now_secs, usize::MAX)?;
            Ok((Ok(Answer::Collected(n)), n > 0))
        }
    }
}

fn settle(
    t: &mut Tables<'_>,
    path: &ChainPath,
    message_id: &str,
    lease: &LeaseToken,
    decide: fn(Option<Entry>, &LeaseToken) -> Result<Option<Entry>, LedgerError>,
) -> Result<(Reply, bool), LedgerError> {
    let key = entry_key(path, message_id);
    let existing = match read_entry(t, &key)? {
        Ok(e) => e,
        Err(e) => return Ok((Err(e), false)),
    };
    match decide(existing, lease) {
        Ok(Some(entry)) => {
            t.entries
                .insert(&key[..], &entry.encode()[..])
                .map_err(storage_error)?;
            Ok((Ok(Answer::Done), true))
        }
        Ok(None) => Ok((Ok(Answer::Done), false)),
        Err(e) => Ok((Err(e), false)),
    }
}

fn usage(t: &Tables<'_>, path: &ChainPath) -> Reply {
    let lower = path_key(path);
    let granted = read_counter(t, &lower)?.0;
    let mut messages = Vec::new();
    let mut upper = lower.clone();
    upper.push(0xff);
    // Message ids are UTF-8, which never contains 0xff: every entry of this path sorts below,
    // and its children's paths (the path, 0xff, …) sort above.
    for item in t
        .entries
        .range(&lower[..]..&upper[..])
        .map_err(storage_error)?
    {
        let (k, v) = item.map_err(storage_error)?;
        let entry = Entry::decode(v.value())?;
        let message_id = std::str::from_utf8(&k.value()[lower.len()..])
            .map_err(|_| LedgerError::Corrupt("message id is not UTF-8".into()))?
            .to_owned();
        messages.push(MessageUse {
            message_id,
            use_number: entry.use_number,
            state: entry.state,
        });
    }
    messages.sort_by_key(|m| m.use_number);
    Ok(Answer::Usage(Usage { granted, messages }))
}

/// Removes up to `limit` records whose expiry plus [`crate::RETENTION_GRACE_SECS`] is before
/// `now_secs`; returns how many. Drains the earlier index first, then the current one.
fn collect(t: &mut Tables<'_>, now_secs: u64, limit: usize) -> Result<usize, LedgerError> {
    // Kept for the grace past the latest expiry: see `RETENTION_GRACE_SECS`.
    let cutoff = now_secs.saturating_sub(crate::RETENTION_GRACE_SECS);
    let legacy = due(&t.legacy_expiry, cutoff, limit)?;
    let current = due(&t.expiry, cutoff, limit.saturating_sub(legacy.len()))?;
    let mut removed = 0;
    for ek in &legacy {
        t.legacy_expiry.remove(&ek[..]).map_err(storage_error)?;
        if let Some((exp, kind, key)) = legacy_record(ek) {
            removed += usize::from(remove_stale(t, exp, kind, &key)?);
        }
    }
    for ek in &current {
        t.expiry.remove(&ek[..]).map_err(storage_error)?;
        if ek.len() > 9 {
            let exp = u64_at(ek);
            removed += usize::from(remove_stale(t, exp, ek[8], &ek[9..])?);
        }
    }
    Ok(removed)
}

/// Up to `limit` keys of `index` whose expiry is before `cutoff`.
fn due(
    index: &Table<'_, &'static [u8], ()>,
    cutoff: u64,
    limit: usize,
) -> Result<Vec<Vec<u8>>, LedgerError> {
    let bound = cutoff.to_be_bytes();
    let mut due = Vec::new();
    // Keys of expiry < cutoff sort below the bare 8-byte `cutoff`.
    for item in index.range(..&bound[..]).map_err(storage_error)? {
        if due.len() >= limit {
            break;
        }
        let (k, _) = item.map_err(storage_error)?;
        due.push(k.value().to_vec());
    }
    Ok(due)
}

/// The first 8 bytes, big-endian (the caller checked there are 8).
fn u64_at(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(b)
}

/// What a key of the earlier index names: expiry ++ cti (a counter), expiry ++ cti ++ message
/// id (an entry), expiry ++ ancestor cti ++ `0xff` ++ descendant cti ++ message id (a charge).
fn legacy_record(ek: &[u8]) -> Option<(u64, u8, Vec<u8>)> {
    if ek.len() < 24 {
        return None;
    }
    let exp = u64_at(ek);
    let rest = &ek[8..];
    Some(if rest.len() == 16 {
        (exp, KIND_COUNTER, rest.to_vec())
    } else if rest.get(16) == Some(&LEGACY_CHARGE_MARK) {
        let mut ck = rest[..16].to_vec();
        ck.extend_from_slice(&rest[17..]);
        (exp, KIND_CHARGE, ck)
    } else {
        (exp, KIND_ENTRY, rest.to_vec())
    })
}

/// Removes the record `key` of `kind` unless a later expiry extended it (that one has its own
/// index key); whether it did.
fn remove_stale(t: &mut Tables<'_>, exp: u64, kind: u8, key: &[u8]) -> Result<bool, LedgerError> {
    match kind {
        KIND_COUNTER => {
            let current = t
                .counters
                .get(key)
                .map_err(storage_error)?
                .map(|v| v.value());
            if current.is_some_and(|(_, e)| e <= exp) {
                t.counters.remove(key).map_err(storage_error)?;
                return Ok(true);
            }
        }
        KIND_CHARGE => {
            let current = t
                .charges
                .get(key)
                .map_err(storage_error)?
                .map(|v| v.value());
            if current.is_some_and(|e| e <= exp) {
                t.charges.remove(key).map_err(storage_error)?;
                return Ok(true);
            }
        }
        KIND_BUDGET => {
            let current = t
                .budgets
                .get(key)
                .map_err(storage_error)?
                .map(|v| v.value());
            if current.is_some_and(|(_, e)| e <= exp) {
                t.budgets.remove(key).map_err(storage_error)?;
                return Ok(true);
            }
        }
        KIND_ENTRY => {
            let current = t
                .entries
                .get(key)
                .map_err(storage_error)?
                .map(|v| v.value().to_vec());
            let stale = match current.as_deref().map(Entry::decode) {
                Some(Ok(e)) => e.expires_at <= exp,
                Some(Err(_)) => true,
                None => false,
            };
            if stale {
                t.entries.remove(key).map_err(storage_error)?;
                return Ok(true);
            }
        }
        _ => {}
    }
    Ok(false)
}
