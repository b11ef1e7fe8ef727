//! The embedded ledger: one redb file, shared by every process on the host that opens it.
//!
//! Multi-process: the file is opened in redb's `ConcurrencyMode::MultiWriter`, so any number of
//! processes keep it open at once and their write transactions take turns under a byte-range
//! lock; each transaction starts from the latest commit of any process, so counts are exact
//! across processes. A process killed mid-transaction loses its lock with its file descriptor
//! and its uncommitted transaction with it.
//!
//! Group commit: every operation of this process goes through one writer thread, which takes
//! all the operations waiting on its channel, applies them in one write transaction and commits
//! it with `Durability::Immediate` (one fsync), then answers each. While one batch is being
//! synced the next one gathers, so concurrent begins share an fsync.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Builder, ConcurrencyMode, Database, DatabaseError, TableDefinition};

mod batch;
mod keys;
mod revocations;

use batch::run_batch;

use crate::clock::Clock;
use crate::path::ChainPath;
use crate::{Begin, Cti, LeaseToken, LedgerError, Outcome, Usage, UseLedger};

/// path -> (granted, expires_at). A path is the ctis from the chain's root down to the
/// envelope (`keys::path_key`; a root's is its cti, as in every earlier version).
const COUNTERS: TableDefinition<'_, &[u8], (u64, u64)> = TableDefinition::new("counters");
/// path ++ message_id -> encoded `state::Entry` (62 bytes; an entry of the previous 41-byte
/// format, which had no tool or class, reads as [`LedgerError::Corrupt`]).
const ENTRIES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("entries");
/// ancestor path ++ count ++ the leaf's ctis below it ++ message_id -> expires_at: the
/// descendants' messages charged to an ancestor (`docs/spec.md` §13); the ancestor's count is
/// its `COUNTERS` entry.
const CHARGES: TableDefinition<'_, &[u8], u64> = TableDefinition::new("charges");
/// path ++ budget index (one byte, 0 to 7) -> (sum spent, expires_at): an envelope's budget
/// sums (`docs/spec.md` §17), kept as long as its count (`keys::budget_key`).
const BUDGETS: TableDefinition<'_, &[u8], (u64, u64)> = TableDefinition::new("budgets");
/// expires_at (8 bytes, big-endian) ++ kind ++ the record's key -> () (`keys::expiry_key`).
/// Ordered by expiry, so that collection reads only what has expired.
const EXPIRY_BY_KIND: TableDefinition<'_, &[u8], ()> = TableDefinition::new("expiry_by_kind");
/// The expiry index of versions that keyed by cti alone: expires_at ++ cti ++ message_id (an
/// empty one for the cti's counter; `0xff` ++ descendant cti ++ message_id for a charge). No
/// longer written; collection drains it.
const EXPIRY: TableDefinition<'_, &[u8], ()> = TableDefinition::new("expiry");

/// How a [`RedbLedger`] opens its file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedbOptions {
    /// How long `open` keeps retrying while another process holds the file exclusively (an
    /// older redb, or a repair in progress) before it answers [`LedgerError::Unavailable`].
    pub open_timeout: Duration,
    /// redb's page cache, in bytes.
    pub cache_bytes: usize,
    /// The most operations one group commit takes.
    pub max_batch: usize,
}

impl Default for RedbOptions {
    fn default() -> Self {
        Self {
            open_timeout: Duration::from_secs(10),
            cache_bytes: 16 << 20,
            max_batch: 1024,
        }
    }
}

/// A durable [`UseLedger`] in one redb file, safe for several processes on one host.
///
/// Open one per file per process and share it (it is `Sync`; wrap it in an `Arc`): its writer
/// thread is what batches this process's operations into shared fsyncs.
#[derive(Debug)]
pub struct RedbLedger {
    /// The database, for the revocation records (rare writes of their own, outside the
    /// writer thread's batches).
    db: Arc<Database>,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

#[derive(Debug)]
enum Op {
    Begin {
        path: ChainPath,
        message_id: String,
        max_uses: u64,
        expires_at: u64,
        lease: Duration,
        tool: String,
        class: laissez_verify::ActionClass,
        fresh: LeaseToken,
        /// max_uses, expires_at of each ancestor, root first (their paths are `path`'s).
        ancestors: Vec<(u64, u64)>,
        /// Every envelope's charges, root first, each link's in its order.
        charges: Vec<OwnedCharge>,
    },
    Complete {
        path: ChainPath,
        message_id: String,
        lease: LeaseToken,
    },
    Release {
        path: ChainPath,
        message_id: String,
        lease: LeaseToken,
    },
    Usage {
        path: ChainPath,
    },
    Collect {
        now_secs: u64,
    },
}

/// A charge of a begin, owned to cross to the writer thread.
#[derive(Debug)]
struct OwnedCharge {
    /// The envelope's place in the chain: root 0, the leaf last.
    link: usize,
    index: u8,
    pattern: String,
    member: String,
    limit: u64,
    amount: u64,
}

#[derive(Debug)]
enum Answer {
    Outcome(Outcome),
    Done,
    Usage(Usage),
    Collected(usize),
}

type Reply = Result<Answer, LedgerError>;

#[derive(Debug)]
enum ReplyTo {
    Blocking(mpsc::SyncSender<Reply>),
    Async(tokio::sync::oneshot::Sender<Reply>),
}

#[derive(Debug)]
struct Job {
    op: Op,
    reply: ReplyTo,
}

impl ReplyTo {
    fn send(self, reply: Reply) {
        // The asker may have gone (a dropped future): the operation stands regardless, as any
        // lease it was granted expires and is taken over.
        match self {
            ReplyTo::Blocking(tx) => drop(tx.send(reply)),
            ReplyTo::Async(tx) => drop(tx.send(reply)),
        }
    }
}

fn storage_error(e: impl Into<redb::Error>) -> LedgerError {
    match e.into() {
        redb::Error::Corrupted(why) => LedgerError::Corrupt(why),
        other => LedgerError::unavailable("redb", other),
    }
}

fn writer_gone() -> LedgerError {
    LedgerError::unavailable("redb", "the ledger's writer thread has stopped")
}

impl RedbLedger {
    /// Opens (creating if needed) the ledger file at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        Self::open_with(path, RedbOptions::default())
    }

    /// Opens (creating if needed) the ledger file at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: RedbOptions) -> Result<Self, LedgerError> {
        Self::open_with_clock(path.as_ref(), &options, Clock::System)
    }

    /// Opens the ledger file at `path` like [`RedbLedger::open_with`], its batches reading
    /// `clock` instead of the system clock, for tests (feature `test-clock`, which only this
    /// crate's own tests enable: see `src/clock.rs`). Another process's ledger on the same
    /// file keeps its own clock.
    #[cfg(feature = "test-clock")]
    pub fn open_with_test_clock(
        path: impl AsRef<Path>,
        options: RedbOptions,
        clock: &crate::TestClock,
    ) -> Result<Self, LedgerError> {
        Self::open_with_clock(path.as_ref(), &options, Clock::Test(clock.clone()))
    }

    fn open_with_clock(
        path: &Path,
        options: &RedbOptions,
        clock: Clock,
    ) -> Result<Self, LedgerError> {
        let db = Arc::new(open_database(path, options)?);
        let (jobs, rx) = mpsc::channel();
        let max_batch = options.max_batch.max(1);
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("laissez-ledger-redb".into())
            .spawn(move || run_writer(&writer_db, &rx, max_batch, &clock))
            .map_err(|e| LedgerError::unavailable("redb", e))?;
        Ok(Self {
            db,
            jobs: Some(jobs),
            writer: Some(writer),
        })
    }

    fn submit(&self, op: Op, reply: ReplyTo) -> Result<(), LedgerError> {
        let jobs = self.jobs.as_ref().ok_or_else(writer_gone)?;
        jobs.send(Job { op, reply }).map_err(|_| writer_gone())
    }

    fn call_blocking(&self, op: Op) -> Reply {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(op, ReplyTo::Blocking(tx))?;
        rx.recv().map_err(|_| writer_gone())?
    }

    async fn call(&self, op: Op) -> Reply {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(op, ReplyTo::Async(tx))?;
        rx.await.map_err(|_| writer_gone())?
    }

    /// [`UseLedger::begin`], without a runtime (for the CLI).
    pub fn begin_blocking(&self, req: &Begin<'_>) -> Result<Outcome, LedgerError> {
        match self.call_blocking(begin_op(req)?)? {
            Answer::Outcome(o) => Ok(o),
            other => Err(unexpected(&other)),
        }
    }

    /// [`UseLedger::complete`], without a runtime.
    pub fn complete_blocking(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        crate::validate_message_id(message_id)?;
        done(self.call_blocking(Op::Complete {
            path: ChainPath::of_lease(cti, lease),
            message_id: message_id.to_owned(),
            lease: *lease,
        })?)
    }

    /// [`UseLedger::release`], without a runtime.
    pub fn release_blocking(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        crate::validate_message_id(message_id)?;
        done(self.call_blocking(Op::Release {
            path: ChainPath::of_lease(cti, lease),
            message_id: message_id.to_owned(),
            lease: *lease,
        })?)
    }

    /// What the ledger holds for the envelope `cti` that is not delegated (or is a chain's
    /// root), as of the latest commit of any process.
    pub fn usage_blocking(&self, cti: &Cti) -> Result<Usage, LedgerError> {
        self.usage_in_blocking(&[], cti)
    }

    /// What the ledger holds for `cti` under `ancestors` (their ctis, root first).
    pub fn usage_in_blocking(&self, ancestors: &[Cti], cti: &Cti) -> Result<Usage, LedgerError> {
        let path = ChainPath::new(ancestors.iter().copied(), cti);
        match self.call_blocking(Op::Usage { path })? {
            Answer::Usage(u) => Ok(u),
            other => Err(unexpected(&other)),
        }
    }

    /// [`RedbLedger::usage_in_blocking`] without blocking the runtime: what the ledger holds
    /// for `cti` under `ancestors` (their ctis, root first). Spends nothing.
    pub async fn usage_in(&self, ancestors: &[Cti], cti: &Cti) -> Result<Usage, LedgerError> {
        let path = ChainPath::new(ancestors.iter().copied(), cti);
        match self.call(Op::Usage { path }).await? {
            Answer::Usage(u) => Ok(u),
            other => Err(unexpected(&other)),
        }
    }

    /// Drops every record whose latest `expires_at` plus [`crate::RETENTION_GRACE_SECS`] is
    /// before `now_secs` (unix seconds); returns how many. Committed batches also collect a
    /// few each, so calling it is optional.
    pub fn collect_expired_blocking(&self, now_secs: u64) -> Result<usize, LedgerError> {
        match self.call_blocking(Op::Collect { now_secs })? {
            Answer::Collected(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }
}

impl RedbLedger {
    /// Whether the ledger answers now: one read through the writer thread, the path every
    /// `begin` takes (its batch commits like theirs). For readiness probes; spends nothing.
    pub async fn ping(&self) -> Result<(), LedgerError> {
        let path = ChainPath::root(&[0; 16]);
        match self.call(Op::Usage { path }).await? {
            Answer::Usage(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

impl Drop for RedbLedger {
    fn drop(&mut self) {
        // Closing the channel ends the writer after the jobs already queued.
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("laissez-ledger redb writer thread panicked");
        }
    }
}

impl UseLedger for RedbLedger {
    async fn begin(&self, req: &Begin<'_>) -> Result<Outcome, LedgerError> {
        let op = begin_op(req)?;
        match self.call(op).await? {
            Answer::Outcome(o) => Ok(o),
            other => Err(unexpected(&other)),
        }
    }

    async fn complete(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        crate::validate_message_id(message_id)?;
        let op = Op::Complete {
            path: ChainPath::of_lease(cti, lease),
            message_id: message_id.to_owned(),
            lease: *lease,
        };
        done(self.call(op).await?)
    }

    async fn release(
        &self,
        cti: &Cti,
        message_id: &str,
        lease: &LeaseToken,
    ) -> Result<(), LedgerError> {
        crate::validate_message_id(message_id)?;
        let op = Op::Release {
            path: ChainPath::of_lease(cti, lease),
            message_id: message_id.to_owned(),
            lease: *lease,
        };
        done(self.call(op).await?)
    }
}

fn begin_op(req: &Begin<'_>) -> Result<Op, LedgerError> {
    let req = crate::normalize(req)?;
    Ok(Op::Begin {
        path: ChainPath::of_begin(&req),
        message_id: req.message_id.to_owned(),
        max_uses: req.max_uses,
        expires_at: req.expires_at,
        lease: req.lease,
        tool: req.tool.to_owned(),
        class: req.class,
        fresh: LeaseToken::random()?.with_ancestors(req.ancestors),
        ancestors: req
            .ancestors
            .iter()
            .map(|a| (a.max_uses, a.expires_at))
            .collect(),
        charges: req
            .ancestors
            .iter()
            .map(|a| a.charges)
            .chain(std::iter::once(req.charges))
            .enumerate()
            .flat_map(|(link, charges)| {
                charges.iter().map(move |c| OwnedCharge {
                    link,
                    index: c.index,
                    pattern: c.pattern.to_owned(),
                    member: c.member.to_owned(),
                    limit: c.limit,
                    amount: c.amount,
                })
            })
            .collect(),
    })
}

fn done(answer: Answer) -> Result<(), LedgerError> {
    match answer {
        Answer::Done => Ok(()),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(answer: &Answer) -> LedgerError {
    LedgerError::Corrupt(format!("writer answered {answer:?}"))
}

fn open_database(path: &Path, options: &RedbOptions) -> Result<Database, LedgerError> {
    let deadline = Instant::now() + options.open_timeout;
    let mut pause = Duration::from_millis(5);
    let db = loop {
        let mut builder = Builder::new();
        builder
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .set_cache_size(options.cache_bytes);
        match builder.create(path) {
            Ok(db) => break db,
            // Held exclusively by someone else for now: wait, boundedly, then say so clearly.
            Err(DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(LedgerError::unavailable(
                    "redb",
                    format!(
                        "{} is held exclusively by another process (waited {:?})",
                        path.display(),
                        options.open_timeout
                    ),
                ));
            }
            Err(e) => return Err(storage_error(e)),
        }
    };
    // Create the tables once, so that every later transaction finds them.
    let txn = db.begin_write().map_err(storage_error)?;
    {
        txn.open_table(COUNTERS).map_err(storage_error)?;
        txn.open_table(ENTRIES).map_err(storage_error)?;
        txn.open_table(CHARGES).map_err(storage_error)?;
        txn.open_table(BUDGETS).map_err(storage_error)?;
        txn.open_table(EXPIRY).map_err(storage_error)?;
        txn.open_table(EXPIRY_BY_KIND).map_err(storage_error)?;
        revocations::create_tables(&txn)?;
    }
    txn.commit().map_err(storage_error)?;
    Ok(db)
}

fn run_writer(db: &Database, jobs: &mpsc::Receiver<Job>, max_batch: usize, clock: &Clock) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let ops: Vec<&Op> = batch.iter().map(|j| &j.op).collect();
        match run_batch(db, &ops, clock) {
            Ok(replies) => {
                for (job, reply) in batch.into_iter().zip(replies) {
                    job.reply.send(reply);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = batch.len(), "ledger batch failed");
                for job in batch {
                    job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}
