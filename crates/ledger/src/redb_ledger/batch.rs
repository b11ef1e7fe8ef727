//! One group commit: a batch of operations applied in one redb write transaction.

use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};

use super::{Answer, CHARGES, COUNTERS, ENTRIES, EXPIRY, Op, Reply, storage_error};
use crate::state::{self, AncestorView, Entry};
use crate::{Begin, Cti, LeaseToken, LedgerError, MessageUse, Usage};

/// Marks a charge in an expiry key, where an entry's message id would start.
const CHARGE_MARK: u8 = 0xff;

/// How many expired records one batch collects at most, so that collection never makes a
/// begin wait long.
const COLLECT_PER_BATCH: usize = 64;

/// The tables of one write transaction.
struct Tables<'t> {
    counters: Table<'t, &'static [u8], (u64, u64)>,
    entries: Table<'t, &'static [u8], &'static [u8]>,
    charges: Table<'t, &'static [u8], u64>,
    expiry: Table<'t, &'static [u8], ()>,
}

/// Applies a batch in one write transaction. The outer error fails the whole batch (nothing
/// of it is committed); inner errors are per operation.
pub(super) fn run_batch(db: &Database, ops: &[&Op]) -> Result<Vec<Reply>, LedgerError> {
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
            expiry: txn.open_table(EXPIRY).map_err(storage_error)?,
        };
        for op in ops {
            let now_ms = state::now_ms();
            let (reply, wrote) = apply(&mut t, op, now_ms)?;
            dirty |= wrote;
            replies.push(reply);
        }
        // Collect a little on every commit that is paid for anyway.
        if dirty {
            collect(&mut t, state::now_ms() / 1000, COLLECT_PER_BATCH)?;
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

fn entry_key(cti: &Cti, message_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + message_id.len());
    key.extend_from_slice(cti);
    key.extend_from_slice(message_id.as_bytes());
    key
}

fn expiry_key(expires_at: u64, cti: &Cti, message_id: &str) -> Vec<u8> {
    expiry_key_raw(expires_at, cti, message_id.as_bytes())
}

fn expiry_key_raw(expires_at: u64, cti: &Cti, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(24 + rest.len());
    key.extend_from_slice(&expires_at.to_be_bytes());
    key.extend_from_slice(cti);
    key.extend_from_slice(rest);
    key
}

/// ancestor cti ++ descendant cti ++ message id.
fn charge_key(ancestor: &Cti, cti: &Cti, message_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(32 + message_id.len());
    key.extend_from_slice(ancestor);
    key.extend_from_slice(cti);
    key.extend_from_slice(message_id.as_bytes());
    key
}

/// A cti's count and the latest expiry it was asked under; `(0, 0)` when unknown.
fn read_counter(t: &Tables<'_>, cti: &Cti) -> Result<(u64, u64), LedgerError> {
    Ok(t.counters
        .get(&cti[..])
        .map_err(storage_error)?
        .map_or((0, 0), |v| v.value()))
}

/// Writes a cti's count, keeping the latest expiry and indexing it for collection.
fn write_counter(
    t: &mut Tables<'_>,
    cti: &Cti,
    granted: u64,
    expires_at: u64,
) -> Result<(), LedgerError> {
    let (_, old_exp) = read_counter(t, cti)?;
    let exp = old_exp.max(expires_at);
    t.counters
        .insert(&cti[..], (granted, exp))
        .map_err(storage_error)?;
    if exp != old_exp {
        let ek = expiry_key(exp, cti, "");
        t.expiry.insert(&ek[..], ()).map_err(storage_error)?;
    }
    Ok(())
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
            cti,
            message_id,
            max_uses,
            expires_at,
            lease,
            tool,
            class,
            fresh,
            ancestors,
        } => {
            let key = entry_key(cti, message_id);
            let existing = match read_entry(t, &key)? {
                Ok(e) => e,
                Err(e) => return Ok((Err(e), false)),
            };
            let (granted, counter_exp) = read_counter(t, cti)?;
            let req = Begin {
                cti,
                message_id,
                max_uses: *max_uses,
                expires_at: *expires_at,
                lease: *lease,
                tool,
                class: *class,
                ancestors: &[],
            };
            let leaf = match state::decide_begin(&req, existing, granted, now_ms, *fresh) {
                Ok(d) => d,
                Err(e) => return Ok((Err(e), false)),
            };
            let mut views = Vec::with_capacity(ancestors.len());
            for (ancestor, max, _) in ancestors {
                let charge = charge_key(ancestor, cti, message_id);
                views.push(AncestorView {
                    max_uses: *max,
                    granted: read_counter(t, ancestor)?.0,
                    charged: t.charges.get(&charge[..]).map_err(storage_error)?.is_some(),
                });
            }
            let decision = state::decide_chain(leaf, &views);
            let mut wrote = false;
            for ((ancestor, _, exp), charge) in ancestors.iter().zip(&decision.charges) {
                if let Some(granted) = charge {
                    write_counter(t, ancestor, *granted, *exp)?;
                    let ck = charge_key(ancestor, cti, message_id);
                    t.charges.insert(&ck[..], *exp).map_err(storage_error)?;
                    let mut mark = vec![CHARGE_MARK];
                    mark.extend_from_slice(&ck[16..]);
                    let ek = expiry_key_raw(*exp, ancestor, &mark);
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
                    let ek = expiry_key(entry.expires_at, cti, message_id);
                    t.expiry.insert(&ek[..], ()).map_err(storage_error)?;
                }
                wrote = true;
            }
            if let Some(granted) = decision.granted {
                write_counter(t, cti, granted, counter_exp.max(*expires_at))?;
                wrote = true;
            }
            Ok((Ok(Answer::Outcome(decision.outcome)), wrote))
        }
        Op::Complete {
            cti,
            message_id,
            lease,
        } => settle(t, cti, message_id, lease, state::decide_complete),
        Op::Release {
            cti,
            message_id,
            lease,
        } => settle(t, cti, message_id, lease, state::decide_release),
        Op::Usage { cti } => Ok((usage(t, cti), false)),
        Op::Collect { now_secs } => {
            let n = collect(t, *now_secs, usize::MAX)?;
            Ok((Ok(Answer::Collected(n)), n > 0))
        }
    }
}

fn settle(
    t: &mut Tables<'_>,
    cti: &Cti,
    message_id: &str,
    lease: &LeaseToken,
    decide: fn(Option<Entry>, &LeaseToken) -> Result<Option<Entry>, LedgerError>,
) -> Result<(Reply, bool), LedgerError> {
    let key = entry_key(cti, message_id);
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

fn usage(t: &Tables<'_>, cti: &Cti) -> Reply {
    let granted = t
        .counters
        .get(&cti[..])
        .map_err(storage_error)?
        .map_or(0, |v| v.value().0);
    let mut messages = Vec::new();
    let mut upper = cti.to_vec();
    upper.push(0xff);
    // Message ids are UTF-8, which never contains 0xff: every key of this cti sorts below.
    for item in t
        .entries
        .range(&cti[..]..&upper[..])
        .map_err(storage_error)?
    {
        let (k, v) = item.map_err(storage_error)?;
        let entry = Entry::decode(v.value())?;
        let message_id = std::str::from_utf8(&k.value()[16..])
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
/// `now_secs`; returns how many.
fn collect(t: &mut Tables<'_>, now_secs: u64, limit: usize) -> Result<usize, LedgerError> {
    // Kept for the grace past the latest expiry: see `RETENTION_GRACE_SECS`.
    let cutoff = now_secs.saturating_sub(crate::RETENTION_GRACE_SECS);
    let bound = cutoff.to_be_bytes();
    let mut due = Vec::new();
    // Keys of expiry < cutoff sort below the bare 8-byte `cutoff`.
    for item in t.expiry.range(..&bound[..]).map_err(storage_error)? {
        if due.len() >= limit {
            break;
        }
        let (k, _) = item.map_err(storage_error)?;
        due.push(k.value().to_vec());
    }
    let mut removed = 0;
    for ek in &due {
        t.expiry.remove(&ek[..]).map_err(storage_error)?;
        if ek.len() < 24 {
            continue;
        }
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&ek[..8]);
        let exp = u64::from_be_bytes(exp);
        let rest = &ek[8..];
        if rest.get(16) == Some(&CHARGE_MARK) {
            // A charge: ancestor cti ++ 0xff ++ descendant cti ++ message id.
            let mut ck = rest[..16].to_vec();
            ck.extend_from_slice(&rest[17..]);
            let current = t
                .charges
                .get(&ck[..])
                .map_err(storage_error)?
                .map(|v| v.value());
            if current.is_some_and(|e| e <= exp) {
                t.charges.remove(&ck[..]).map_err(storage_error)?;
                removed += 1;
            }
        } else if rest.len() == 16 {
            // A counter: drop it unless a later expiry extended it (that one has its own key).
            let current = t
                .counters
                .get(rest)
                .map_err(storage_error)?
                .map(|v| v.value());
            if current.is_some_and(|(_, e)| e <= exp) {
                t.counters.remove(rest).map_err(storage_error)?;
                removed += 1;
            }
        } else {
            let current = t
                .entries
                .get(rest)
                .map_err(storage_error)?
                .map(|v| v.value().to_vec());
            let stale = match current.as_deref().map(Entry::decode) {
                Some(Ok(e)) => e.expires_at <= exp,
                Some(Err(_)) => true,
                None => false,
            };
            if stale {
                t.entries.remove(rest).map_err(storage_error)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
