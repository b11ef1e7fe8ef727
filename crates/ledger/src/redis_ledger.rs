//! The Redis ledger: one atomic Lua script per operation.
//!
//! Layout: one hash per envelope, keyed by its path of ctis from the chain's root down to it
//! (`docs/spec.md` §8): `<prefix>{<cti hex>}` for a root (or an envelope that is not
//! delegated), `<prefix>{<root cti hex>}:<cti hex>[:<cti hex>…]` for a delegated one, every cti
//! below the root in order. The braces are a Redis Cluster hash tag, so everything about one
//! chain lives in one slot and each script touches keys of that one slot.
//! Field `n` holds how many distinct messages were granted; field `m:<message id>` holds the
//! message's entry,
//! `<state>:<use number>:<lease until, unix ms>:<holder token hex>:<class>:<tool>:<take-overs>`,
//! with state `F` (in flight), `R` (released), `C` (completed) or `A` (abandoned), class
//! `read`, `write` or `destructive` and tool the 32 hex digits of `state::tool_digest`, both as
//! first granted. An ancestor's field `c:<hex of the leaf's ctis below the root, joined>:<message
//! id>` marks a descendant's message charged to it (32 hex digits per cti, then `:`, so the
//! path ends where it must). Field `b:<index>` holds the sum spent under the envelope's budget
//! of that index (`docs/spec.md` §17). An entry of the earlier four-part form (no class, no tool) is refused as
//! [`LedgerError::Corrupt`]. The hash expires [`crate::RETENTION_GRACE_SECS`] after the latest
//! `expires_at` asked for, which is the garbage collection.
//!
//! Time is the server's `TIME`, read inside the script, so that workers on many machines agree
//! on when a lease expires. Every failure to reach Redis or to read its answer is
//! [`LedgerError::Unavailable`]: the caller requeues, and nothing is ever granted on an error
//! (fail closed), and so is a write Redis refuses (`NOREPLICAS` under `min-replicas-to-write`,
//! `READONLY` on a replica). Durability needs `appendonly yes` and `appendfsync always`; a
//! failover may still lose the last acknowledged writes (see `docs/ledger.md`).

use std::time::Duration;

mod connect;
mod ping;
mod revocations;
mod url;

pub use connect::RedisTls;
use redis::{RedisError, Script};
pub use url::RedisUrl;

use crate::path::ChainPath;
use crate::state::{duration_ms, tool_digest};
use crate::{
    ActionClass, Begin, Cti, LeaseToken, LedgerError, MessageUse, Outcome, Usage, UseLedger,
    UseState,
};

/// The begin script. KEYS[1]: the envelope's hash (its path's key); KEYS[2..]: its ancestors'
/// hashes, root first.
/// ARGV: message id, max_uses, expires_at (unix s), lease (ms), class name, tool digest (hex),
/// fresh token (hex), retention grace (s), [`crate::MAX_TAKEOVERS`], the hex of the leaf's
/// ctis below the root (the leaf's key in its ancestors' charge fields), then each
/// ancestor's max_uses and expires_at, then each envelope's charges, root first and the leaf
/// last: how many, then index, limit and amount of each (`budget_args`). Transcribes
/// `state::decide_begin` and `state::decide_chain`, rule for rule; each key is kept `grace`
/// seconds past the latest `expires_at` it was asked under. Every key of a chain carries its
/// root's hash tag, so the script touches one slot. A budget's sum is field `b:<index>` of
/// its envelope's hash, so it lives and expires with the count.
const BEGIN_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local field = 'm:' .. ARGV[1]
local max_uses = tonumber(ARGV[2])
local expires_at = tonumber(ARGV[3])
local lease_ms = tonumber(ARGV[4])
local class = ARGV[5]
local tool = ARGV[6]
local token = ARGV[7]
local keep = expires_at + tonumber(ARGV[8])
local max_takeovers = tonumber(ARGV[9])
local t = redis.call('TIME')
local now_s = tonumber(t[1])
local now = now_s * 1000 + math.floor(tonumber(t[2]) / 1000)
local function fmt(x) return string.format('%.0f', x) end
if expires_at * 1000 <= now then return {'expired', 0} end
local function keep_key_until(k, until_s)
  local ttl = redis.call('TTL', k)
  if ttl < 0 or now_s + ttl < until_s then redis.call('EXPIREAT', k, fmt(until_s)) end
end
local function keep_until() keep_key_until(key, keep) end
-- class and tool are the request's: for an existing entry, equal to its own once checked below.
local function put(state, use, until_ms, holder, takeovers)
  redis.call('HSET', key, field, state .. ':' .. use .. ':' .. until_ms .. ':' .. holder .. ':' ..
    class .. ':' .. tool .. ':' .. takeovers)
  keep_until()
end
local cur = redis.call('HGET', key, field)
if not cur then
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  if n >= max_uses then return {'exhausted', 0} end
  -- A new use: charge every ancestor not yet charged for this (leaf path, message id), all or none.
  local charge = 'c:' .. ARGV[10] .. ':' .. ARGV[1]
  local charges = {}
  -- The envelopes whose budgets this use spends, root first, the leaf last: {key, link}.
  local spending = {}
  for i = 2, #KEYS do
    local a = KEYS[i]
    if redis.call('HEXISTS', a, charge) == 0 then
      local an = tonumber(redis.call('HGET', a, 'n') or '0')
      if an >= tonumber(ARGV[7 + 2 * i]) then return {'exhausted', 0} end
      charges[#charges + 1] = {a, an + 1, tonumber(ARGV[8 + 2 * i])}
      spending[i - 1] = a
    end
  end
  spending[#KEYS] = key
  -- Every budget of those envelopes, after every use (the contract's order): the sum plus the
  -- amount may reach the limit, never pass it. Compared as amount > limit - sum, exact in a
  -- double where sum + amount (up to 2^54 - 2) would not be.
  local sums = {}
  local at = 11 + 2 * (#KEYS - 1)
  for link = 1, #KEYS do
    local count = tonumber(ARGV[at])
    at = at + 1
    for _ = 1, count do
      local index, limit, amount = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
      at = at + 3
      local k = spending[link]
      if k then
        local spent = tonumber(redis.call('HGET', k, 'b:' .. index) or '0')
        if amount > limit - spent then
          return {'budget_exhausted', (link - 1) * 256 + tonumber(index)}
        end
        sums[#sums + 1] = {k, 'b:' .. index, spent + amount}
      end
    end
  end
  for _, c in ipairs(charges) do
    redis.call('HSET', c[1], 'n', fmt(c[2]), charge, '1')
    keep_key_until(c[1], c[3] + tonumber(ARGV[8]))
  end
  -- Each sum's hash was kept just above (an ancestor) or is kept by put (the leaf).
  for _, s in ipairs(sums) do redis.call('HSET', s[1], s[2], fmt(s[3])) end
  n = n + 1
  redis.call('HSET', key, 'n', fmt(n))
  put('F', fmt(n), fmt(now + lease_ms), token, '0')
  return {'granted', n}
end
local state, use, until_ms, holder, first_class, first_tool, takeovers =
  string.match(cur, '^([FRCA]):(%d+):(%d+):(%x+):(%l+):(%x+):(%d+)$')
if not state then
  return redis.error_reply('LAISSEZ_CORRUPT ledger entry (not state:use:until:holder:class:tool:' ..
    'takeovers; an earlier laissez-ledger wrote entries without class and tool)')
end
-- Bound to the call of the first grant: never spent on another.
if first_tool ~= tool or first_class ~= class then return {'other_call', 0} end
if state == 'C' then return {'replayed', 0} end
if state == 'A' then return {'abandoned', 0} end
if state == 'F' and now < tonumber(until_ms) then return {'in_flight', 0} end
local capped = tonumber(takeovers) >= max_takeovers
-- A lapsed lease: at most once by the first grant's class, or re-run enough. The lapsed holder
-- keeps its token, so that it may still complete.
if state == 'F' and (first_class == 'destructive' or capped) then
  put('A', use, until_ms, holder, takeovers)
  return {'abandoned', 0}
end
-- Released but re-run enough: held by a token nobody was given.
if state == 'R' and capped then
  put('A', use, until_ms, token, takeovers)
  return {'abandoned', 0}
end
put('F', use, fmt(now + lease_ms), token, fmt(tonumber(takeovers) + 1))
return {'taken_over', tonumber(use)}
";

/// The complete and release script. KEYS[1]: the envelope's hash (its path's key). ARGV: message id, holder token
/// (hex), "complete" or "release". Transcribes `state::decide_complete` and `decide_release`.
const SETTLE_LUA: &str = r"
local key = KEYS[1]
local field = 'm:' .. ARGV[1]
local cur = redis.call('HGET', key, field)
if not cur then return 'not_held' end
local state, rest, holder = string.match(cur, '^([FRCA])(:%d+:%d+:(%x+):%l+:%x+:%d+)$')
if not state then
  return redis.error_reply('LAISSEZ_CORRUPT ledger entry (not state:use:until:holder:class:tool:' ..
    'takeovers; an earlier laissez-ledger wrote entries without class and tool)')
end
if holder ~= ARGV[2] then return 'not_held' end
if ARGV[3] == 'complete' then
  if state == 'C' then return 'ok' end
  if state == 'F' or state == 'A' then redis.call('HSET', key, field, 'C' .. rest) return 'ok' end
  return 'not_held'
end
if state == 'R' then return 'ok' end
if state == 'F' then redis.call('HSET', key, field, 'R' .. rest) return 'ok' end
return 'not_held'
";

/// How a [`RedisLedger`] talks to Redis.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// How long one operation may wait for its answer before it is
    /// [`LedgerError::Unavailable`].
    pub response_timeout: Duration,
    /// How long one connection attempt may take.
    pub connection_timeout: Duration,
    /// Put before every key; the cti's hash tag follows it, so it may hold no `{` nor `}`.
    pub key_prefix: String,
    /// TLS options, for a `rediss://` or `rediss+cluster://` URL only.
    pub tls: RedisTls,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(5),
            key_prefix: "laissez:uses:".into(),
            tls: RedisTls::default(),
        }
    }
}

/// A [`UseLedger`] in Redis, one server or a Cluster, shared by workers on many machines.
/// Cloning shares the connection.
#[derive(Clone)]
pub struct RedisLedger {
    conn: connect::Connection,
    begin: Script,
    settle: Script,
    prefix: String,
}

impl std::fmt::Debug for RedisLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLedger")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The error code the scripts answer with for data they cannot read.
const CORRUPT_CODE: &str = "LAISSEZ_CORRUPT";

fn redis_error(e: &RedisError) -> LedgerError {
    // Matched by the reply's error code: the client puts the code in quotes when it formats
    // the whole error, so the formatted text is no stable thing to search.
    if e.code() == Some(CORRUPT_CODE) {
        LedgerError::Corrupt(e.detail().unwrap_or("unreadable ledger entry").to_owned())
    } else {
        LedgerError::unavailable("redis", e)
    }
}

impl RedisLedger {
    /// Connects to `url` with default options. Must be called inside a Tokio runtime.
    ///
    /// `url` names one server, `redis://[user:password@]host:port[/db]` (`rediss://` for TLS),
    /// or a Redis Cluster by one or more of its nodes,
    /// `redis+cluster://[user:password@]host:port[,host:port…]` (`rediss+cluster://` for TLS).
    /// Fails with [`LedgerError::Unavailable`] when Redis cannot be reached, and with
    /// [`LedgerError::Config`] for a URL or options that cannot work.
    pub async fn connect(url: &str) -> Result<Self, LedgerError> {
        Self::connect_with(url, RedisOptions::default()).await
    }

    /// Connects to `url` with `options`.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Self, LedgerError> {
        Self::connect_to(&url.parse()?, options).await
    }

    /// Connects to `url`, already read, with `options`.
    pub async fn connect_to(url: &RedisUrl, options: RedisOptions) -> Result<Self, LedgerError> {
        let conn = connect::connect(url, &options).await?;
        Ok(Self {
            conn,
            begin: Script::new(BEGIN_LUA),
            settle: Script::new(SETTLE_LUA),
            prefix: options.key_prefix,
        })
    }

    /// Whether this ledger is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, connect::Connection::Cluster(_))
    }

    /// The Redis key that holds everything about `cti`, for an envelope that is not delegated
    /// (or a chain's root).
    pub fn key_for(&self, cti: &Cti) -> String {
        format!("{}{{{}}}", self.prefix, hex::encode(cti))
    }

    /// The Redis key of `cti` under `ancestors` (their ctis, root first): its path,
    /// `<prefix>{<root hex>}:<hex>[:<hex>…]`, under the root's hash tag, so that every key of
    /// a chain is in one slot (a root's own key is [`RedisLedger::key_for`]).
    pub fn key_in(&self, ancestors: &[Cti], cti: &Cti) -> String {
        self.key_of(&ChainPath::new(ancestors.iter().copied(), cti))
    }

    fn key_of(&self, path: &ChainPath) -> String {
        let mut key = self.key_for(path.root_cti());
        for cti in path.below_root() {
            key.push(':');
            key.push_str(&hex::encode(cti));
        }
        key
    }

    /// What the ledger holds for the envelope `cti` that is not delegated (or is a chain's
    /// root).
    pub async fn usage(&self, cti: &Cti) -> Result<Usage, LedgerError> {
        self.usage_in(&[], cti).await
    }

    /// What the ledger holds for `cti` under `ancestors` (their ctis, root first).
    pub async fn usage_in(&self, ancestors: &[Cti], cti: &Cti) -> Result<Usage, LedgerError> {
        let mut conn = self.conn.clone();
        let fields: Vec<(Vec<u8>, String)> = redis::cmd("HGETALL")
            .arg(self.key_in(ancestors, cti))
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error(&e))?;
        let mut usage = Usage::default();
        for (field, value) in fields {
            if field == b"n" {
                usage.granted = value
                    .parse()
                    .map_err(|_| LedgerError::Corrupt(format!("granted count {value:?}")))?;
            } else if let Some(id) = field.strip_prefix(b"m:") {
                let message_id = String::from_utf8(id.to_vec())
                    .map_err(|_| LedgerError::Corrupt("message id is not UTF-8".into()))?;
                let (state, use_number) = parse_entry(&value)?;
                usage.messages.push(MessageUse {
                    message_id,
                    use_number,
                    state,
                });
            }
        }
        usage.messages.sort_by_key(|m| m.use_number);
        Ok(usage)
    }

    async fn settle(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
        op: &str,
    ) -> Result<(), LedgerError> {
        crate::validate_message_id(message_id)?;
        let mut conn = self.conn.clone();
        let answer: String = self
            .settle
            .key(self.key_of(&ChainPath::of_lease(cti, lease)))
            .arg(message_id)
            .arg(lease.to_hex())
            .arg(op)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error(&e))?;
        match answer.as_str() {
            "ok" => Ok(()),
            "not_held" => Err(LedgerError::LeaseNotHeld),
            other => Err(LedgerError::Corrupt(format!("script answered {other:?}"))),
        }
    }
}

/// Each ancestor's max_uses and expires_at, in the range Lua counts exactly (as `normalize`
/// does for the leaf's).
fn ancestor_args(ancestors: &[crate::Ancestor<'_>]) -> Vec<u64> {
    ancestors
        .iter()
        .flat_map(|a| {
            [
                a.max_uses.min(crate::state::MAX_EXACT),
                a.expires_at.min(crate::state::MAX_EXACT / 1000),
            ]
        })
        .collect()
}

/// Each envelope's charges, root first and the leaf last: how many, then the index, limit
/// and amount of each (`normalize` checked them: every value is exact in a double).
fn budget_args(req: &Begin<'_>) -> Vec<u64> {
    let links = req
        .ancestors
        .iter()
        .map(|a| a.charges)
        .chain(std::iter::once(req.charges));
    let mut args = Vec::new();
    for charges in links {
        args.push(charges.len() as u64);
        for c in charges {
            args.extend([u64::from(c.index), c.limit, c.amount]);
        }
    }
    args
}

/// The refusal the script named by `link * 256 + index`: the charge of that index at that
/// link of the request, by its pattern and member.
fn budget_refusal(req: &Begin<'_>, named: u64) -> Result<Outcome, LedgerError> {
    let (link, index) = (named / 256, named % 256);
    let links = req
        .ancestors
        .iter()
        .map(|a| a.charges)
        .chain(std::iter::once(req.charges));
    links
        .enumerate()
        .find(|(l, _)| *l as u64 == link)
        .and_then(|(l, charges)| {
            charges
                .iter()
                .find(|c| u64::from(c.index) == index)
                .map(|c| crate::state::budget_exhausted(l, c))
        })
        .ok_or_else(|| LedgerError::Corrupt(format!("script named budget {named}")))
}

/// Reads the state and use number of an entry, checking its whole form as the scripts do.
fn parse_entry(value: &str) -> Result<(UseState, u64), LedgerError> {
    let corrupt = || LedgerError::Corrupt(format!("ledger entry {value:?}"));
    let parts: Vec<&str> = value.split(':').collect();
    let [state, use_number, until, holder, class, tool, takeovers] = parts[..] else {
        return Err(corrupt());
    };
    let state = match state {
        "F" => UseState::InFlight,
        "R" => UseState::Released,
        "C" => UseState::Completed,
        "A" => UseState::Abandoned,
        _ => return Err(corrupt()),
    };
    let hex_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let well_formed = until.parse::<u64>().is_ok()
        && hex_ok(holder)
        && ActionClass::ALL.iter().any(|c| c.name() == class)
        && hex_ok(tool)
        && takeovers.parse::<u32>().is_ok();
    if !well_formed {
        return Err(corrupt());
    }
    let use_number = use_number.parse().map_err(|_| corrupt())?;
    Ok((state, use_number))
}

impl UseLedger for RedisLedger {
    async fn begin(&self, req: &Begin<'_>) -> Result<Outcome, LedgerError> {
        let req = &crate::normalize(req)?;
        let fresh = LeaseToken::random()?.with_ancestors(req.ancestors);
        let path = ChainPath::of_begin(req);
        let mut conn = self.conn.clone();
        let mut invocation = self.begin.key(self.key_of(&path));
        for depth in 1..path.depth() {
            invocation.key(self.key_of(&path.prefix(depth)));
        }
        let (answer, use_number): (String, u64) = invocation
            .arg(req.message_id)
            .arg(req.max_uses)
            .arg(req.expires_at)
            .arg(duration_ms(req.lease))
            .arg(req.class.name())
            .arg(hex::encode(tool_digest(req.tool)))
            .arg(fresh.to_hex())
            .arg(crate::RETENTION_GRACE_SECS)
            .arg(crate::MAX_TAKEOVERS)
            .arg(
                path.below_root()
                    .iter()
                    .map(hex::encode)
                    .collect::<String>(),
            )
            .arg(ancestor_args(req.ancestors))
            .arg(budget_args(req))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error(&e))?;
        let granted = |taken_over| Outcome::Granted {
            use_number,
            lease: fresh,
            taken_over,
        };
        match answer.as_str() {
            "granted" => Ok(granted(false)),
            "taken_over" => Ok(granted(true)),
            "in_flight" => Ok(Outcome::InFlight),
            "replayed" => Ok(Outcome::Replayed),
            "exhausted" => Ok(Outcome::Exhausted),
            "budget_exhausted" => budget_refusal(req, use_number),
            "abandoned" => Ok(Outcome::Abandoned),
            "other_call" => Ok(Outcome::OtherCall),
            "expired" => Err(LedgerError::Expired),
            other => Err(LedgerError::Corrupt(format!("script answered {other:?}"))),
        }
    }

    async fn complete(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        self.settle(cti, message_id, lease, "complete").await
    }

    async fn release(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        self.settle(cti, message_id, lease, "release").await
    }
}
