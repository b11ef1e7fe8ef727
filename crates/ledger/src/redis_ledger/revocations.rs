//! Revocation records in Redis, shared by every worker on the ledger: a hash
//! `<prefix>{revocations}:records` (record digest in hex -> record bytes), a sorted set
//! `<prefix>{revocations}:until` (digest -> until) for expiry, and one string per stream
//! `<prefix>{revocations}:mark:<stream>` (the follower's [`StreamMark`], `"offset proof"`). One hash tag: one Cluster slot, so each script
//! touches keys of one slot.

use redis::Script;

use super::{RedisLedger, redis_error};
use crate::LedgerError;
use crate::revocations::{
    Kept, MAX_KEPT_RECORDS, RECORD_GRACE_SECS, RevocationStore, StreamMark, is_live,
};

/// KEYS: records hash, until zset. ARGV: digest hex, record, until, now, grace, limit.
/// Drops what expired, then keeps the record unless held or full.
const KEEP_LUA: &str = r"
local records, untils = KEYS[1], KEYS[2]
local digest, record = ARGV[1], ARGV[2]
local keep_until, now, grace, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]),
  tonumber(ARGV[6])
local bound = '(' .. string.format('%.0f', now - grace + 1)
local dead = redis.call('ZRANGEBYSCORE', untils, '-inf', bound)
for _, d in ipairs(dead) do redis.call('HDEL', records, d) end
redis.call('ZREMRANGEBYSCORE', untils, '-inf', bound)
if redis.call('HEXISTS', records, digest) == 1 then return 'held' end
if redis.call('ZCARD', untils) >= limit then return 'full' end
redis.call('HSET', records, digest, record)
redis.call('ZADD', untils, string.format('%.0f', keep_until), digest)
return 'kept'
";

/// KEYS: records hash, until zset. ARGV: the oldest live until. Every live record.
const LIVE_LUA: &str = r"
local live = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf')
local out = {}
for i, d in ipairs(live) do out[i] = redis.call('HGET', KEYS[1], d) end
return out
";

impl RedisLedger {
    fn revocation_key(&self, what: &str) -> String {
        format!("{}{{revocations}}:{what}", self.prefix)
    }
}

impl RevocationStore for RedisLedger {
    async fn keep_record(&self, record: &[u8], until: u64, now: u64) -> Result<Kept, LedgerError> {
        if !is_live(until, now) {
            return Ok(Kept::Expired);
        }
        let digest = hex::encode(crate::revocations::record_digest(record));
        let mut conn = self.conn.clone();
        let answer: String = Script::new(KEEP_LUA)
            .key(self.revocation_key("records"))
            .key(self.revocation_key("until"))
            .arg(digest)
            .arg(record)
            .arg(until)
            .arg(now)
            .arg(RECORD_GRACE_SECS)
            .arg(MAX_KEPT_RECORDS)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error(&e))?;
        match answer.as_str() {
            "kept" => Ok(Kept::New),
            "held" => Ok(Kept::AlreadyKept),
            "full" => Err(LedgerError::RevocationsFull {
                limit: MAX_KEPT_RECORDS,
            }),
            other => Err(LedgerError::Corrupt(format!("script answered {other:?}"))),
        }
    }

    async fn kept_records(&self, now: u64) -> Result<Vec<Vec<u8>>, LedgerError> {
        let mut conn = self.conn.clone();
        // Live when now < until + grace, i.e. until > now - grace.
        let oldest = now.saturating_sub(RECORD_GRACE_SECS) + 1;
        let records: Vec<Option<Vec<u8>>> = Script::new(LIVE_LUA)
            .key(self.revocation_key("records"))
            .key(self.revocation_key("until"))
            .arg(oldest)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error(&e))?;
        Ok(records.into_iter().flatten().collect())
    }

    async fn save_mark(&self, stream: &str, mark: &StreamMark) -> Result<(), LedgerError> {
        let mut conn = self.conn.clone();
        let () = redis::cmd("SET")
            .arg(self.revocation_key(&format!("mark:{stream}")))
            .arg(mark.encode()?)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error(&e))?;
        Ok(())
    }

    async fn saved_mark(&self, stream: &str) -> Result<Option<StreamMark>, LedgerError> {
        let mut conn = self.conn.clone();
        let value: Option<String> = redis::cmd("GET")
            .arg(self.revocation_key(&format!("mark:{stream}")))
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error(&e))?;
        value.map(|v| StreamMark::decode(&v)).transpose()
    }
}
