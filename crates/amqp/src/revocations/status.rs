//! What a follower has read ([`FollowerStats`]), and whether it is ready: caught up on its
//! stream, following it live, and holding every record it read. Shared with the middleware (which decides no message while not
//! ready) and with readiness checks (`laissez consume --metrics`, `/healthz`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// What the follower knows about itself.
#[derive(Debug, Clone, Default)]
struct State {
    /// Why it is not following the stream live now (`None`: it is).
    lost: Option<String>,
    /// Whether a record it read could not be held (a signer's quota full).
    incomplete: bool,
    /// Since when it is not ready.
    since: Option<Instant>,
}

impl State {
    fn ready(&self) -> bool {
        self.lost.is_none() && !self.incomplete
    }
}

/// A follower's readiness. The default (a set without a follower) is ready.
#[derive(Debug, Clone)]
pub struct FollowerStatus(Arc<watch::Sender<State>>);

impl Default for FollowerStatus {
    fn default() -> Self {
        FollowerStatus(Arc::new(watch::Sender::new(State::default())))
    }
}

impl FollowerStatus {
    /// `None` while ready; else how long it has not been: the follower's lag (metric
    /// `laissez_revocation_lag_seconds`).
    pub fn lost_for(&self) -> Option<Duration> {
        self.0.borrow().since.map(|since| since.elapsed())
    }

    /// Whether it is ready: caught up, following live, every record held.
    pub fn is_ready(&self) -> bool {
        self.0.borrow().ready()
    }

    /// `None` while ready; else why not, in a short text (no URL, no secret).
    pub fn not_ready(&self) -> Option<String> {
        let state = self.0.borrow();
        let secs = state.since.map_or(0, |s| s.elapsed().as_secs());
        match (&state.lost, state.incomplete) {
            (None, false) => None,
            (Some(why), _) => Some(format!("revocation stream lost {secs} s ago: {why}")),
            (None, true) => Some(format!(
                "a revocation record could not be held for {secs} s (a signer's quota is full)"
            )),
        }
    }

    /// Waits until ready; false when `stop` turns true first.
    pub(crate) async fn wait_ready(&self, stop: &mut watch::Receiver<bool>) -> bool {
        let mut ready = self.0.subscribe();
        tokio::select! {
            waited = ready.wait_for(State::ready) => waited.is_ok(),
            _ = stop.wait_for(|stopping| *stopping) => false,
        }
    }

    pub(super) fn set_lost(&self, why: String) {
        self.update(|state| state.lost = Some(why));
    }

    pub(super) fn set_live(&self) {
        self.update(|state| state.lost = None);
    }

    pub(super) fn set_incomplete(&self, incomplete: bool) {
        self.update(|state| state.incomplete = incomplete);
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        self.0.send_modify(|state| {
            change(state);
            if state.ready() {
                state.since = None;
            } else if state.since.is_none() {
                state.since = Some(Instant::now());
            }
        });
    }
}

/// What a follower has read, for tests and operators.
#[derive(Debug, Clone, Default)]
pub struct FollowerStats(pub(super) Arc<Counts>);

#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) read: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) catch_ups: AtomicU64,
    pub(super) resumed: AtomicU64,
}

impl FollowerStats {
    /// Messages read from the stream (barriers included).
    pub fn read(&self) -> u64 {
        self.0.read.load(Ordering::Relaxed)
    }

    /// Messages skipped as not a record of a trusted key.
    pub fn rejected(&self) -> u64 {
        self.0.rejected.load(Ordering::Relaxed)
    }

    /// Catch-ups completed (the one at start included).
    pub fn catch_ups(&self) -> u64 {
        self.0.catch_ups.load(Ordering::Relaxed)
    }

    /// Catch-ups that resumed from a proven mark rather than the first offset.
    pub fn resumed(&self) -> u64 {
        self.0.resumed.load(Ordering::Relaxed)
    }
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
