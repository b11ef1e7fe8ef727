//! The per-key state machine, shared by the memory and redb backends (the Redis script is a
//! transcription of it). Pure functions: the backends supply the stored entry, the counter, the
//! clock and a fresh token, and write back what these return, all inside one atomic step.

// The byte encoding of an entry is redb's storage format; without redb nothing stores bytes.
#![cfg_attr(not(feature = "redb"), allow(dead_code))]

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Begin, LeaseToken, LedgerError, Outcome, UseState};

/// The largest integer a Lua (double) number holds exactly: 2^53 - 1.
pub(crate) const MAX_EXACT: u64 = (1 << 53) - 1;

/// What the ledger stores for one `(cti, message_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) state: UseState,
    pub(crate) use_number: u64,
    /// Unix milliseconds after which an in-flight lease has expired.
    pub(crate) lease_until_ms: u64,
    /// The current (or last) holder.
    pub(crate) token: LeaseToken,
    /// Unix seconds after which the entry may be dropped.
    pub(crate) expires_at: u64,
}

/// The encoded length of an [`Entry`].
pub(crate) const ENTRY_LEN: usize = 1 + 8 + 8 + 16 + 8;

impl Entry {
    pub(crate) fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[0] = state_byte(self.state);
        out[1..9].copy_from_slice(&self.use_number.to_be_bytes());
        out[9..17].copy_from_slice(&self.lease_until_ms.to_be_bytes());
        out[17..33].copy_from_slice(&self.token.0);
        out[33..41].copy_from_slice(&self.expires_at.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, LedgerError> {
        let bytes: &[u8; ENTRY_LEN] = bytes
            .try_into()
            .map_err(|_| LedgerError::Corrupt(format!("entry of {} bytes", bytes.len())))?;
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut token = [0u8; 16];
        token.copy_from_slice(&bytes[17..33]);
        Ok(Entry {
            state: byte_state(bytes[0])?,
            use_number: u64_at(1),
            lease_until_ms: u64_at(9),
            token: LeaseToken(token),
            expires_at: u64_at(33),
        })
    }
}

fn state_byte(state: UseState) -> u8 {
    match state {
        UseState::InFlight => 1,
        UseState::Released => 2,
        UseState::Completed => 3,
        UseState::Abandoned => 4,
    }
}

fn byte_state(byte: u8) -> Result<UseState, LedgerError> {
    Ok(match byte {
        1 => UseState::InFlight,
        2 => UseState::Released,
        3 => UseState::Completed,
        4 => UseState::Abandoned,
        other => return Err(LedgerError::Corrupt(format!("entry state {other}"))),
    })
}

/// What a begin decided: the answer, and what to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BeginDecision {
    pub(crate) outcome: Outcome,
    /// The entry to store, if it changed.
    pub(crate) write: Option<Entry>,
    /// The cti's new granted count, if it changed.
    pub(crate) granted: Option<u64>,
}

/// Decides a begin. `granted` is how many distinct messages this cti has been granted.
pub(crate) fn decide_begin(
    req: &Begin<'_>,
    existing: Option<Entry>,
    granted: u64,
    now_ms: u64,
    fresh: LeaseToken,
) -> Result<BeginDecision, LedgerError> {
    if req.expires_at.saturating_mul(1000) <= now_ms {
        return Err(LedgerError::Expired);
    }
    let lease_until_ms = now_ms.saturating_add(duration_ms(req.lease));
    let answer = |outcome| BeginDecision {
        outcome,
        write: None,
        granted: None,
    };
    let Some(mut entry) = existing else {
        if granted >= req.max_uses {
            return Ok(answer(Outcome::Exhausted));
        }
        let use_number = granted + 1;
        return Ok(BeginDecision {
            outcome: Outcome::Granted {
                use_number,
                lease: fresh,
                taken_over: false,
            },
            write: Some(Entry {
                state: UseState::InFlight,
                use_number,
                lease_until_ms,
                token: fresh,
                expires_at: req.expires_at,
            }),
            granted: Some(use_number),
        });
    };
    // An entry outlives at least the latest envelope expiry it was asked under.
    entry.expires_at = entry.expires_at.max(req.expires_at);
    let take_over = |mut entry: Entry| {
        entry.state = UseState::InFlight;
        entry.token = fresh;
        entry.lease_until_ms = lease_until_ms;
        BeginDecision {
            outcome: Outcome::Granted {
                use_number: entry.use_number,
                lease: fresh,
                taken_over: true,
            },
            write: Some(entry),
            granted: None,
        }
    };
    Ok(match entry.state {
        UseState::Completed => answer(Outcome::Replayed),
        UseState::Abandoned => answer(Outcome::Abandoned),
        // The holder said it did not finish: safe to run again even when at most once.
        UseState::Released => take_over(entry),
        UseState::InFlight if now_ms < entry.lease_until_ms => answer(Outcome::InFlight),
        UseState::InFlight if req.at_most_once => {
            // The holder may have run part of it: record that this message is dead-lettered,
            // so that every later delivery is refused too.
            entry.state = UseState::Abandoned;
            BeginDecision {
                outcome: Outcome::Abandoned,
                write: Some(entry),
                granted: None,
            }
        }
        UseState::InFlight => take_over(entry),
    })
}

/// Decides a complete: the entry to write, or why not.
pub(crate) fn decide_complete(
    existing: Option<Entry>,
    lease: &LeaseToken,
) -> Result<Option<Entry>, LedgerError> {
    let Some(mut entry) = existing else {
        return Err(LedgerError::LeaseNotHeld);
    };
    if entry.token != *lease {
        return Err(LedgerError::LeaseNotHeld);
    }
    match entry.state {
        UseState::Completed => Ok(None),
        // A holder whose lease expired may still finish, as long as nobody took over (the
        // token still matches); an abandoned message that did finish is done, not lost.
        UseState::InFlight | UseState::Abandoned => {
            entry.state = UseState::Completed;
            Ok(Some(entry))
        }
        // It gave the message back: it may not claim it now.
        UseState::Released => Err(LedgerError::LeaseNotHeld),
    }
}

/// Decides a release: the entry to write, or why not.
pub(crate) fn decide_release(
    existing: Option<Entry>,
    lease: &LeaseToken,
) -> Result<Option<Entry>, LedgerError> {
    let Some(mut entry) = existing else {
        return Err(LedgerError::LeaseNotHeld);
    };
    if entry.token != *lease {
        return Err(LedgerError::LeaseNotHeld);
    }
    match entry.state {
        UseState::Released => Ok(None),
        UseState::InFlight => {
            entry.state = UseState::Released;
            Ok(Some(entry))
        }
        // Completed cannot be undone; abandoned was already dead-lettered.
        UseState::Completed | UseState::Abandoned => Err(LedgerError::LeaseNotHeld),
    }
}

/// The system clock in unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A lease in whole milliseconds, at least 1.
pub(crate) fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const CTI: [u8; 16] = [7; 16];

    fn req(msg: &str, at_most_once: bool) -> Begin<'_> {
        Begin {
            cti: &CTI,
            message_id: msg,
            max_uses: 2,
            expires_at: 2_000_000,
            lease: Duration::from_millis(100),
            at_most_once,
        }
    }

    #[test]
    fn entry_round_trips_and_rejects_garbage() {
        let entry = Entry {
            state: UseState::Abandoned,
            use_number: 3,
            lease_until_ms: 99,
            token: LeaseToken([5; 16]),
            expires_at: 77,
        };
        assert_eq!(Entry::decode(&entry.encode()).unwrap(), entry);
        assert!(matches!(
            Entry::decode(&[0; 3]),
            Err(LedgerError::Corrupt(_))
        ));
        let mut bad = entry.encode();
        bad[0] = 9;
        assert!(matches!(Entry::decode(&bad), Err(LedgerError::Corrupt(_))));
    }

    #[test]
    fn expired_in_flight_lease_is_taken_over_or_abandoned() {
        let t1 = LeaseToken([1; 16]);
        let t2 = LeaseToken([2; 16]);
        let first = decide_begin(&req("m", false), None, 0, 1000, t1).unwrap();
        let entry = first.write.unwrap();
        assert_eq!(first.granted, Some(1));
        // Within the lease: refused.
        let held = decide_begin(&req("m", false), Some(entry), 1, 1099, t2).unwrap();
        assert_eq!(held.outcome, Outcome::InFlight);
        assert_eq!(held.write, None);
        // After it: taken over, same number, new holder.
        let over = decide_begin(&req("m", false), Some(entry), 1, 1100, t2).unwrap();
        assert_eq!(
            over.outcome,
            Outcome::Granted {
                use_number: 1,
                lease: t2,
                taken_over: true
            }
        );
        assert_eq!(over.granted, None);
        // At most once: abandoned, and recorded as such.
        let gone = decide_begin(&req("m", true), Some(entry), 1, 1100, t2).unwrap();
        assert_eq!(gone.outcome, Outcome::Abandoned);
        assert_eq!(gone.write.unwrap().state, UseState::Abandoned);
    }

    #[test]
    fn expired_envelope_is_refused() {
        let r = req("m", false);
        assert_eq!(
            decide_begin(&r, None, 0, r.expires_at * 1000, LeaseToken([1; 16])),
            Err(LedgerError::Expired)
        );
    }

    mod model {
        //! Random operation sequences against the state machine, with a clock that the test
        //! moves: the invariants must hold after every step.
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap;

        #[derive(Debug, Clone)]
        enum Op {
            Begin { msg: u8, at_most_once: bool },
            Complete { msg: u8, stale: bool },
            Release { msg: u8, stale: bool },
            Wait { ms: u64 },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0u8..8, any::<bool>()).prop_map(|(msg, at_most_once)| Op::Begin { msg, at_most_once }),
                2 => (0u8..8, any::<bool>()).prop_map(|(msg, stale)| Op::Complete { msg, stale }),
                1 => (0u8..8, any::<bool>()).prop_map(|(msg, stale)| Op::Release { msg, stale }),
                2 => (0u64..300).prop_map(|ms| Op::Wait { ms }),
            ]
        }

        proptest! {
            #[test]
            fn invariants_hold(max_uses in 1u64..5, ops in proptest::collection::vec(op(), 1..80)) {
                let cti = [3u8; 16];
                let mut now = 1_000_000u64;
                let mut store: HashMap<u8, Entry> = HashMap::new();
                let mut granted = 0u64;
                // Tokens ever handed out per message, newest last.
                let mut tokens: HashMap<u8, Vec<LeaseToken>> = HashMap::new();
                let mut completed_before: HashMap<u8, bool> = HashMap::new();
                let mut serial = 0u8;
                for op in ops {
                    match op {
                        Op::Wait { ms } => now += ms,
                        Op::Begin { msg, at_most_once } => {
                            serial = serial.wrapping_add(1);
                            let fresh = LeaseToken([serial; 16]);
                            let id = msg.to_string();
                            let r = Begin { cti: &cti, message_id: &id, max_uses, expires_at: 10_000,
                                lease: Duration::from_millis(100), at_most_once };
                            let before = store.get(&msg).copied();
                            let d = decide_begin(&r, before, granted, now, fresh).unwrap();
                            match (&d.outcome, before) {
                                (Outcome::Granted { use_number, taken_over: false, .. }, None) => {
                                    prop_assert_eq!(*use_number, granted + 1);
                                }
                                (Outcome::Granted { use_number, taken_over: true, .. }, Some(b)) => {
                                    prop_assert_eq!(*use_number, b.use_number);
                                    prop_assert!(b.state == UseState::Released
                                        || (b.state == UseState::InFlight && now >= b.lease_until_ms && !at_most_once));
                                }
                                (Outcome::Replayed, Some(b)) => prop_assert_eq!(b.state, UseState::Completed),
                                (Outcome::Exhausted, None) => prop_assert!(granted >= max_uses),
                                (Outcome::InFlight, Some(b)) => prop_assert!(b.state == UseState::InFlight && now < b.lease_until_ms),
                                (Outcome::Abandoned, Some(b)) => prop_assert!(b.state == UseState::Abandoned
                                    || (b.state == UseState::InFlight && at_most_once)),
                                (o, b) => prop_assert!(false, "{:?} from {:?}", o, b),
                            }
                            if let Outcome::Granted { lease, .. } = d.outcome {
                                tokens.entry(msg).or_default().push(lease);
                            }
                            if let Some(e) = d.write { store.insert(msg, e); }
                            if let Some(g) = d.granted { granted = g; }
                        }
                        Op::Complete { msg, stale } | Op::Release { msg, stale } => {
                            let is_complete = matches!(op, Op::Complete { .. });
                            let held = tokens.get(&msg).and_then(|t| if stale && t.len() > 1 { t.first() } else { t.last() }).copied();
                            let token = held.unwrap_or(LeaseToken([0xee; 16]));
                            let before = store.get(&msg).copied();
                            let result = if is_complete { decide_complete(before, &token) } else { decide_release(before, &token) };
                            if before.is_none_or(|b| b.token != token) {
                                prop_assert_eq!(result.clone(), Err(LedgerError::LeaseNotHeld));
                            }
                            if let Ok(Some(e)) = result {
                                prop_assert_eq!(Some(e.use_number), before.map(|b| b.use_number));
                                store.insert(msg, e);
                            }
                        }
                    }
                    // Never more than max_uses distinct messages; numbers dense and unique;
                    // completed is final.
                    prop_assert!(granted <= max_uses);
                    prop_assert_eq!(store.len() as u64, granted);
                    let mut numbers: Vec<u64> = store.values().map(|e| e.use_number).collect();
                    numbers.sort_unstable();
                    prop_assert_eq!(numbers, (1..=granted).collect::<Vec<_>>());
                    for (msg, e) in &store {
                        let was = completed_before.entry(*msg).or_insert(false);
                        prop_assert!(!*was || e.state == UseState::Completed);
                        *was = e.state == UseState::Completed;
                    }
                }
            }
        }
    }
}
