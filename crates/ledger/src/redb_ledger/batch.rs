//! One group commit: a batch of operations applied in one redb write transaction.

use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};

use super::{Answer, COUNTERS, ENTRIES, EXPIRY, Op, Reply, storage_error};
use crate::state::{self, Entry};
use crate::{Begin, Cti, LeaseToken, LedgerError, MessageUse, Usage};

/// How many expired records one batch collects at most, so that collection never makes a
/// begin wait long.
const COLLECT_PER_BATCH: usize = 64;

/// The tables of one write transaction.
struct Tables<'t> {
    counters: Table<'t, &'static [u8], (u64, u64)>,
    entries: Table<'t, &'static [u8], &'static [u8]>,
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
    let mut key = Vec::with_capacity(24 + message_id.len());
    key.extend_from_slice(&expires_at.to_be_bytes());
    key.extend_from_slice(cti);
    key.extend_from_slice(message_id.as_bytes());
    key
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
        } => {
            let key = entry_key(cti, message_id);
            let existing = match read_entry(t, &key)? {
                Ok(e) => e,
                Err(e) => return Ok((Err(e), false)),
            };
            let counter = t
                .counters
                .get(&cti[..])
                .map_err(storage_error)?
                .map(|v| v.value());
            let (granted, counter_exp) = counter.unwrap_or((0, 0));
            let req = Begin {
                cti,
                message_id,
                max_uses: *max_uses,
                expires_at: *expires_at,
                lease: *lease,
                tool,
                class: *class,
            };
            let decision = match state::decide_begin(&req, existing, granted, now_ms, *fresh) {
                Ok(d) => d,
                Err(e) => return Ok((Err(e), false)),
            };
            let mut wrote = false;
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
                let exp = counter_exp.max(*expires_at);
                t.counters
                    .insert(&cti[..], (granted, exp))
                    .map_err(storage_error)?;
                if exp != counter_exp {
                    let ek = expiry_key(exp, cti, "");
                    t.expiry.insert(&ek[..], ()).map_err(storage_error)?;
                }
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
        if rest.len() == 16 {
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
