//! One ledger type for callers that choose the backend at run time (the sidecar).

use crate::{
    Begin, Cti, LeaseToken, LedgerError, MemoryLedger, Outcome, RedbLedger, RedisLedger, UseLedger,
};

/// A [`UseLedger`] whose backend is chosen at run time. Available with both the `redb` and the
/// `redis` features.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyLedger {
    /// The embedded file ledger.
    Redb(RedbLedger),
    /// The shared Redis ledger.
    Redis(RedisLedger),
    /// In memory: one process, nothing survives it. For tests.
    Memory(MemoryLedger),
}

impl UseLedger for AnyLedger {
    async fn begin(&self, req: &Begin<'_>) -> Result<Outcome, LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.begin(req).await,
            AnyLedger::Redis(l) => l.begin(req).await,
            AnyLedger::Memory(l) => l.begin(req).await,
        }
    }

    async fn complete(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.complete(cti, message_id, lease).await,
            AnyLedger::Redis(l) => l.complete(cti, message_id, lease).await,
            AnyLedger::Memory(l) => l.complete(cti, message_id, lease).await,
        }
    }

    async fn release(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        match self {
            AnyLedger::Redb(l) => l.release(cti, message_id, lease).await,
            AnyLedger::Redis(l) => l.release(cti, message_id, lease).await,
            AnyLedger::Memory(l) => l.release(cti, message_id, lease).await,
        }
    }
}
