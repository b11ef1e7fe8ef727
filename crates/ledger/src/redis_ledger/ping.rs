//! A liveness probe of the Redis ledger, for readiness checks.

use super::{RedisLedger, redis_error};
use crate::LedgerError;

impl RedisLedger {
    /// Whether Redis answers now: one `PING` on the ledger's connection. For readiness
    /// probes; spends nothing.
    pub async fn ping(&self) -> Result<(), LedgerError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| redis_error(&e))
    }
}
