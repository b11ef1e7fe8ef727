//! Revocation records in the redb file: each record by its digest with its until, and the
//! follower's mark by stream name. One write transaction per record (records are rare),
//! durable before the follower goes on.

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use super::{RedbLedger, storage_error};
use crate::LedgerError;
use crate::revocations::{
    Kept, MAX_KEPT_RECORDS, RevocationStore, StreamMark, is_live, record_digest,
};

/// digest -> (until, record bytes).
const RECORDS: TableDefinition<'_, &[u8], (u64, &[u8])> =
    TableDefinition::new("revocation_records");
/// stream name -> the follower's mark (`"offset proof"`).
const MARKS: TableDefinition<'_, &str, &str> = TableDefinition::new("revocation_marks");

pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), LedgerError> {
    txn.open_table(RECORDS).map_err(storage_error)?;
    txn.open_table(MARKS).map_err(storage_error)?;
    Ok(())
}

fn keep(db: &Database, record: &[u8], until: u64, now: u64) -> Result<Kept, LedgerError> {
    if !is_live(until, now) {
        return Ok(Kept::Expired);
    }
    let digest = record_digest(record);
    let txn = db.begin_write().map_err(storage_error)?;
    let kept = {
        let mut table = txn.open_table(RECORDS).map_err(storage_error)?;
        // Expired records are dropped when the table is full (and skipped when read).
        let mut held = table.len().map_err(storage_error)?;
        if held >= MAX_KEPT_RECORDS as u64 {
            let mut dead = Vec::new();
            for row in table.iter().map_err(storage_error)? {
                let (key, value) = row.map_err(storage_error)?;
                if !is_live(value.value().0, now) {
                    dead.push(key.value().to_vec());
                }
            }
            for key in &dead {
                table.remove(key.as_slice()).map_err(storage_error)?;
            }
            held -= dead.len() as u64;
        }
        if table
            .get(digest.as_slice())
            .map_err(storage_error)?
            .is_some()
        {
            Kept::AlreadyKept
        } else if held >= MAX_KEPT_RECORDS as u64 {
            return Err(LedgerError::RevocationsFull {
                limit: MAX_KEPT_RECORDS,
            });
        } else {
            table
                .insert(digest.as_slice(), (until, record))
                .map_err(storage_error)?;
            Kept::New
        }
    };
    txn.commit().map_err(storage_error)?;
    Ok(kept)
}

fn live(db: &Database, now: u64) -> Result<Vec<Vec<u8>>, LedgerError> {
    let txn = db.begin_read().map_err(storage_error)?;
    let table = txn.open_table(RECORDS).map_err(storage_error)?;
    let mut out = Vec::new();
    for row in table.iter().map_err(storage_error)? {
        let (_, value) = row.map_err(storage_error)?;
        let (until, bytes) = value.value();
        if is_live(until, now) {
            out.push(bytes.to_vec());
        }
    }
    Ok(out)
}

fn save_mark(db: &Database, stream: &str, mark: &StreamMark) -> Result<(), LedgerError> {
    let text = mark.encode()?;
    let txn = db.begin_write().map_err(storage_error)?;
    {
        let mut table = txn.open_table(MARKS).map_err(storage_error)?;
        table.insert(stream, text.as_str()).map_err(storage_error)?;
    }
    txn.commit().map_err(storage_error)
}

fn mark(db: &Database, stream: &str) -> Result<Option<StreamMark>, LedgerError> {
    let txn = db.begin_read().map_err(storage_error)?;
    let table = txn.open_table(MARKS).map_err(storage_error)?;
    let text = table.get(stream).map_err(storage_error)?;
    text.map(|v| StreamMark::decode(v.value())).transpose()
}

/// The redb calls block on the file (and its fsync); records are rare, so they run inline.
impl RevocationStore for RedbLedger {
    async fn keep_record(&self, record: &[u8], until: u64, now: u64) -> Result<Kept, LedgerError> {
        keep(&self.db, record, until, now)
    }

    async fn kept_records(&self, now: u64) -> Result<Vec<Vec<u8>>, LedgerError> {
        live(&self.db, now)
    }

    async fn save_mark(&self, stream: &str, mark: &StreamMark) -> Result<(), LedgerError> {
        save_mark(&self.db, stream, mark)
    }

    async fn saved_mark(&self, stream: &str) -> Result<Option<StreamMark>, LedgerError> {
        self::mark(&self.db, stream)
    }
}
