//! No object repeats a member name (`docs/spec.md` §16), checked without allocating.
//!
//! Why this shape. A 1 MiB body can hold one object of ~150 000 members (`"ab":0,` is seven
//! bytes). Comparing every name with every other is ~10^10 comparisons: an agent could stall
//! a worker with one message. Remembering every name needs memory proportional to the body,
//! which the verifier does not allocate. So the check works in blocks over the object's own
//! bytes, re-read in place:
//!
//! - An object of at most `SMALL` members (nearly every real one) is checked as the validator
//!   reads it: each name is compared with the object's earlier ones, kept in a small pool on
//!   the stack (`POOL` names for all open objects), by a cheap fingerprint first and exactly on
//!   a match. At most 496 comparisons per object, nothing re-read. An object whose names do
//!   not fit in the pool (other open objects hold it) is re-read when it closes and its names
//!   compared pairwise the same way.
//! - A larger object is read in blocks of `BLOCK` members. The names of one block go into an
//!   open-addressing table of `SLOTS` entries on the stack (a name's offset and 12 bits of
//!   its hash in one `u32`: 12 KiB), which also finds repeats inside the block; then every later member of
//!   the object is hashed and looked up in it. Each block costs one pass over the rest of the
//!   object, so n members cost about n²/(2·BLOCK) look-ups instead of n²/2 comparisons; the
//!   worst case (one object filling 1 MiB) is measured by the `worst_case_duplicate_check`
//!   test. Names are compared exactly (unescaped bytes) only when the stored hash matches.
//! - The table is only as good as its hash: with a fixed hash function, names chosen to land
//!   in one slot turn every look-up into a walk over the whole block, quadratic again. So the
//!   hash is SipHash-1-3 keyed by SHA-256 of the whole body, computed once per body and only
//!   when an object needs the table. Choosing names that collide needs the key, and the key
//!   changes with every name chosen; a small body with small objects never pays for it.
//!
//! Stack: the pool (2 KiB) lives for the whole parse; the table (12 KiB) and the small
//! path's 32 names (384 bytes) only while an object that outgrew the pool or `SMALL` is
//! re-read: under 15 KiB at the deepest.
//!
//! An object that is not checked as it is read is checked when it closes, so its nested
//! values are valid and skipping them needs no checks; a nested object is re-read by each
//! such enclosing object, at most `MAX_BODY_DEPTH` times in all.

use sha2::{Digest, Sha256};

use super::scan::{Member, next_member};
use super::view::Unescaped;
use super::{JsonError, JsonErrorKind, MAX_BODY_DEPTH};

/// Objects with at most this many members compare every pair of names directly.
const SMALL: usize = 32;
/// Slots of the hash table: 12 KiB of `u32`.
const SLOTS: usize = 3072;
/// Names per block: the table stays at most five-eighths full, so look-ups stay short.
const BLOCK: usize = SLOTS / 8 * 5;
/// A slot packs a name's offset (below 2^20: bodies are at most 1 MiB) with 12 bits of its
/// hash, so the table needs no second array; 0 is an empty slot (no name starts at 0).
const OFFSET_BITS: u32 = 20;
const OFFSET_MASK: u32 = (1 << OFFSET_BITS) - 1;
const _: () = assert!(super::MAX_BODY_LEN <= 1 << OFFSET_BITS);

/// Names of the open objects kept while the validator reads them (8 bytes each).
const POOL: usize = 256;

/// The duplicate check of one body: the names of the open objects seen so far (`pool`,
/// each object's from `base[level]`), and the hash key once it is needed.
pub(super) struct Dedup<'b> {
    body: &'b [u8],
    key: Option<(u64, u64)>,
    /// A name's offset (below 2^20), bit 31 set when it holds an escape, and above them its
    /// fingerprint.
    pool: [u64; POOL],
    top: usize,
    base: [u16; MAX_BODY_DEPTH],
    /// Bit `level` set while the object at that level is checked as its names arrive; clear
    /// once it outgrew `SMALL` or the pool, and then it is re-read when it closes.
    inline: u32,
}

impl<'b> Dedup<'b> {
    pub(super) fn new(body: &'b [u8]) -> Self {
        Dedup {
            body,
            key: None,
            pool: [0; POOL],
            top: 0,
            base: [0; MAX_BODY_DEPTH],
            inline: 0,
        }
    }

    /// An object opens at `level`.
    #[inline]
    pub(super) fn open_object(&mut self, level: usize) {
        self.base[level] = self.top as u16;
        self.inline |= 1 << level;
    }

    /// The object at `level` has a member named by the string `name..=end` (its quotes).
    /// While the object is small, the name is compared with its earlier names right away,
    /// which saves re-reading the object when it closes.
    #[inline]
    pub(super) fn name(
        &mut self,
        level: usize,
        name: usize,
        end: usize,
        escaped: bool,
    ) -> Result<(), JsonError> {
        if self.inline & (1 << level) == 0 {
            return Ok(());
        }
        let base = usize::from(self.base[level]);
        if self.top - base == SMALL || self.top == POOL {
            self.inline &= !(1 << level);
            return Ok(());
        }
        let b = self.body;
        let print = fingerprint(b, name, end, escaped);
        for &entry in &self.pool[base..self.top] {
            if (entry >> 32) as u32 == print {
                let off = (entry as u32 & OFFSET_MASK) as usize;
                let esc = entry & (1 << 31) != 0;
                let (off_end, _) = super::scan::string_end(b, off);
                if same_name(b, (off, off_end, esc), (name, end, escaped)) {
                    return Err(JsonError::new(JsonErrorKind::DuplicateMember, name));
                }
            }
        }
        self.pool[self.top] = u64::from(print) << 32 | u64::from(escaped) << 31 | name as u64;
        self.top += 1;
        Ok(())
    }

    /// The object at `level`, whose `{` is at `start`, closes.
    #[inline]
    pub(super) fn close_object(&mut self, level: usize, start: usize) -> Result<(), JsonError> {
        self.top = usize::from(self.base[level]);
        if self.inline & (1 << level) != 0 {
            return Ok(());
        }
        self.check_object(start)
    }

    /// Checks the object whose `{` is at `start` (already validated up to its `}`) by
    /// re-reading it.
    #[inline(never)]
    fn check_object(&mut self, start: usize) -> Result<(), JsonError> {
        let b = self.body;
        // Small objects: the names in an array, every pair compared.
        let mut names = [(0u32, 0u32, false); SMALL];
        let mut n = 0;
        let mut at = start + 1;
        while let Some((m, next)) = next_member(b, at) {
            if n == SMALL {
                return self.check_large(start);
            }
            for &(s, e, esc) in &names[..n] {
                if same_name(
                    b,
                    (s as usize, e as usize, esc),
                    (m.name, m.name_end, m.escaped),
                ) {
                    return Err(JsonError::new(JsonErrorKind::DuplicateMember, m.name));
                }
            }
            names[n] = (m.name as u32, m.name_end as u32, m.escaped);
            n += 1;
            at = next;
        }
        Ok(())
    }

    /// Checks an object of more than `SMALL` members in blocks (see the module comment).
    #[inline(never)]
    fn check_large(&mut self, start: usize) -> Result<(), JsonError> {
        let b = self.body;
        let key = *self.key.get_or_insert_with(|| body_key(b));
        let mut slots = [0u32; SLOTS];
        let mut block_at = start + 1;
        loop {
            slots.fill(0);
            let mut at = block_at;
            let mut filled = 0;
            while filled < BLOCK {
                let Some((m, next)) = next_member(b, at) else {
                    // The last block: every later member was already looked up in every
                    // earlier block, and this one found no repeat within itself.
                    return Ok(());
                };
                let h = name_hash(b, &m, key);
                let slot = find(b, &slots, &m, h)?;
                slots[slot] = m.name as u32 | tag(h);
                filled += 1;
                at = next;
            }
            let block_end = at;
            while let Some((m, next)) = next_member(b, at) {
                find(b, &slots, &m, name_hash(b, &m, key))?;
                at = next;
            }
            block_at = block_end;
        }
    }
}

/// The bits of a hash kept in a slot, above the offset.
#[inline(always)]
fn tag(h: u64) -> u32 {
    (h as u32) & !OFFSET_MASK
}

/// Looks `m` up: a duplicate is an error; otherwise the empty slot where it would go.
#[inline]
fn find(b: &[u8], slots: &[u32; SLOTS], m: &Member, h: u64) -> Result<usize, JsonError> {
    // The slot from the high half of the hash (multiply-shift: SLOTS need not be a power of
    // two), the tag from the low half: independent bits.
    let mut slot = (((h >> 32) * SLOTS as u64) >> 32) as usize;
    let want = tag(h);
    loop {
        let entry = slots[slot];
        if entry == 0 {
            return Ok(slot);
        }
        if entry & !OFFSET_MASK == want {
            let off = (entry & OFFSET_MASK) as usize;
            let (end, esc) = super::scan::string_end(b, off);
            if same_name(b, (off, end, esc), (m.name, m.name_end, m.escaped)) {
                return Err(JsonError::new(JsonErrorKind::DuplicateMember, m.name));
            }
        }
        slot += 1;
        if slot == SLOTS {
            slot = 0;
        }
    }
}

/// Whether two names (opening quote, closing quote, has an escape) are equal once unescaped.
#[inline]
fn same_name(b: &[u8], x: (usize, usize, bool), y: (usize, usize, bool)) -> bool {
    let (xs, ys) = (&b[x.0 + 1..x.1], &b[y.0 + 1..y.1]);
    if !x.2 && !y.2 {
        xs == ys
    } else {
        Unescaped::new(xs).eq(Unescaped::new(ys))
    }
}

/// A cheap unkeyed hash (FNV-1a) of the unescaped name `name..=end` (its quotes), to skip
/// most exact comparisons among the names of a small object. Unkeyed is enough there: names
/// made to collide cost at most `SMALL` comparisons each.
#[inline]
fn fingerprint(b: &[u8], name: usize, end: usize, escaped: bool) -> u32 {
    let raw = &b[name + 1..end];
    let step = |h: u32, byte: u8| (h ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    if escaped {
        Unescaped::new(raw).fold(0x811c_9dc5, step)
    } else {
        raw.iter().fold(0x811c_9dc5, |h, &byte| step(h, byte))
    }
}

/// The per-body key: SHA-256 of the whole body, so that the names cannot be chosen to
/// collide under it (each choice changes it).
fn body_key(b: &[u8]) -> (u64, u64) {
    let d = Sha256::digest(b);
    let mut k0 = [0u8; 8];
    let mut k1 = [0u8; 8];
    k0.copy_from_slice(&d[..8]);
    k1.copy_from_slice(&d[8..16]);
    (u64::from_le_bytes(k0), u64::from_le_bytes(k1))
}

/// The keyed hash of a member's unescaped name.
#[inline]
fn name_hash(b: &[u8], m: &Member, key: (u64, u64)) -> u64 {
    let raw = &b[m.name + 1..m.name_end];
    let mut h = Sip13::new(key);
    if m.escaped {
        for byte in Unescaped::new(raw) {
            h.write_u8(byte);
        }
    } else {
        h.write(raw);
    }
    h.finish()
}

/// SipHash-1-3 (one compression round, three finalisation rounds), streaming: the bytes of
/// an escaped name arrive one at a time, a plain name's as a slice, with the same result.
struct Sip13 {
    v: [u64; 4],
    tail: u64,
    ntail: usize,
    len: usize,
}

impl Sip13 {
    fn new((k0, k1): (u64, u64)) -> Self {
        Sip13 {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            ntail: 0,
            len: 0,
        }
    }

    #[inline(always)]
    fn round(&mut self) {
        let v = &mut self.v;
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }

    #[inline(always)]
    fn compress(&mut self, m: u64) {
        self.v[3] ^= m;
        self.round();
        self.v[0] ^= m;
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.tail |= u64::from(byte) << (8 * self.ntail);
        self.ntail += 1;
        self.len += 1;
        if self.ntail == 8 {
            let m = self.tail;
            self.compress(m);
            self.tail = 0;
            self.ntail = 0;
        }
    }

    /// Only at the start (no tail yet): whole words first, then the rest byte by byte.
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            self.compress(u64::from_le_bytes(word));
            self.len += 8;
        }
        for &byte in words.remainder() {
            self.write_u8(byte);
        }
    }

    #[inline]
    fn finish(mut self) -> u64 {
        let m = self.tail | ((self.len as u64 & 0xff) << 56);
        self.compress(m);
        self.v[2] ^= 0xff;
        self.round();
        self.round();
        self.round();
        self.v[0] ^ self.v[1] ^ self.v[2] ^ self.v[3]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_and_slice_hashes_agree() {
        let key = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        for len in 0..40 {
            let bytes: [u8; 40] = core::array::from_fn(|i| (i as u8).wrapping_mul(7) + 1);
            let mut a = Sip13::new(key);
            a.write(&bytes[..len]);
            let mut c = Sip13::new(key);
            for &x in &bytes[..len] {
                c.write_u8(x);
            }
            assert_eq!(a.finish(), c.finish(), "length {len}");
        }
    }

    #[test]
    fn siphash13_reference_value() {
        // SipHash-1-3 of the empty message under key 00..0f (the reference implementation's
        // vector, as Rust's `std` SipHasher13 computes it).
        let key = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        let h = Sip13::new(key);
        assert_eq!(h.finish(), 0xabac_0158_050f_c4dc);
    }
}
