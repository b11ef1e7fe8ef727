//! A strict reader of core-deterministic CBOR (RFC 8949 §4.2.1) over borrowed bytes.
//!
//! ciborium-ll parses each head; this module adds what determinism demands on top: the
//! shortest head for every argument, definite lengths only, no floats, no tags, only the four
//! common simple values, UTF-8 text, sorted unique map keys and bounded nesting. Byte and
//! text strings are returned as slices of the input: nothing is copied and a declared length
//! is checked against the bytes that remain before it is used, so a length never allocates.

use ciborium_ll::{Decoder, Header};

use crate::malformed::{Malformed, MalformedKind};

/// The deepest nesting of arrays and maps accepted anywhere in the claims (the schema itself
/// needs four: claims, grant, tools, tool grant).
pub(crate) const MAX_DEPTH: usize = 16;

/// A map key as the schema sees it: an integer, or anything else (always unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// A major type 0 key.
    Uint(u64),
    /// A major type 1 key; the value is `-1 - n`.
    Nint(u64),
    /// A key of any other type.
    Other,
}

/// Reads items from `data`; offsets in errors are absolute (`base` is where `data` starts in
/// the envelope).
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

/// Number of bytes of the shortest head carrying `arg`.
const fn shortest_head_len(arg: u64) -> usize {
    if arg < 24 {
        1
    } else if arg <= 0xff {
        2
    } else if arg <= 0xffff {
        3
    } else if arg <= 0xffff_ffff {
        5
    } else {
        9
    }
}

impl<'a> Reader<'a> {
    /// A reader over `data`, which starts at byte `base` of the envelope.
    pub(crate) const fn new(data: &'a [u8], base: usize) -> Self {
        Reader { data, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub(crate) const fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Position of the next byte within `data`.
    pub(crate) const fn pos(&self) -> usize {
        self.pos
    }

    /// The bytes between two positions of this reader.
    pub(crate) fn slice(&self, start: usize, end: usize) -> &'a [u8] {
        self.data.get(start..end).unwrap_or(&[])
    }

    pub(crate) const fn error_at(&self, pos: usize, kind: MalformedKind) -> Malformed {
        Malformed::new(self.base + pos, kind)
    }

    pub(crate) const fn error(&self, kind: MalformedKind) -> Malformed {
        self.error_at(self.pos, kind)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), Malformed> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(self.error(MalformedKind::TrailingBytes))
        }
    }

    /// Reads a tag head (shortest form) and returns the tag number.
    pub(crate) fn tag(&mut self) -> Result<Option<u64>, Malformed> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let mut decoder = Decoder::from(rest);
        match decoder.pull() {
            Ok(Header::Tag(n)) => {
                if decoder.offset() != shortest_head_len(n) {
                    return Err(self.error(MalformedKind::NotShortest));
                }
                self.pos += decoder.offset();
                Ok(Some(n))
            }
            _ => Ok(None),
        }
    }

    /// Reads one head and enforces the deterministic rules that apply to heads. Tags are
    /// refused here.
    pub(crate) fn head(&mut self) -> Result<Header, Malformed> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        if rest.is_empty() {
            return Err(self.error(MalformedKind::Truncated));
        }
        let mut decoder = Decoder::from(rest);
        let header = decoder.pull().map_err(|e| match e {
            ciborium_ll::Error::Io(_) => self.error(MalformedKind::Truncated),
            ciborium_ll::Error::Syntax(_) => self.error(MalformedKind::InvalidHead),
        })?;
        let used = decoder.offset();
        let arg = match header {
            Header::Positive(n) | Header::Negative(n) => n,
            // The one tag of the format is read with `tag`; any other place is an error.
            Header::Tag(_) => return Err(self.error(MalformedKind::Tag)),
            Header::Bytes(Some(n))
            | Header::Text(Some(n))
            | Header::Array(Some(n))
            | Header::Map(Some(n)) => n as u64,
            Header::Bytes(None)
            | Header::Text(None)
            | Header::Array(None)
            | Header::Map(None)
            | Header::Break => return Err(self.error(MalformedKind::Indefinite)),
            Header::Float(_) => return Err(self.error(MalformedKind::Float)),
            // false, true, null, undefined; one-byte form only.
            Header::Simple(v) if used == 1 && (20..=23).contains(&v) => u64::from(v),
            Header::Simple(_) => return Err(self.error(MalformedKind::SimpleValue)),
        };
        // Simple values 20..=23 are their own argument (< 24): one byte is the shortest form.
        if used != shortest_head_len(arg) {
            return Err(self.error(MalformedKind::NotShortest));
        }
        self.pos += used;
        Ok(header)
    }

    /// Takes `len` bytes of string content after a head.
    fn take(&mut self, len: usize, head_pos: usize) -> Result<&'a [u8], Malformed> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.data.len())
            .ok_or_else(|| self.error_at(head_pos, MalformedKind::Truncated))?;
        let bytes = self.slice(self.pos, end);
        self.pos = end;
        Ok(bytes)
    }

    /// Reads an unsigned integer.
    pub(crate) fn uint(&mut self) -> Result<u64, Malformed> {
        let at = self.pos;
        match self.head()? {
            Header::Positive(n) => Ok(n),
            _ => Err(self.error_at(at, MalformedKind::UnexpectedType)),
        }
    }

    /// Reads a byte string.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let at = self.pos;
        match self.head()? {
            Header::Bytes(Some(len)) => self.take(len, at),
            _ => Err(self.error_at(at, MalformedKind::UnexpectedType)),
        }
    }

    /// Reads a byte string of exactly `N` bytes.
    pub(crate) fn bytes_exact<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let at = self.pos;
        <[u8; N]>::try_from(self.bytes()?)
            .map_err(|_| self.error_at(at, MalformedKind::UnexpectedType))
    }

    /// Reads a text string.
    pub(crate) fn text(&mut self) -> Result<&'a str, Malformed> {
        let at = self.pos;
        match self.head()? {
            Header::Text(Some(len)) => self.text_body(len, at),
            _ => Err(self.error_at(at, MalformedKind::UnexpectedType)),
        }
    }

    fn text_body(&mut self, len: usize, at: usize) -> Result<&'a str, Malformed> {
        let bytes = self.take(len, at)?;
        core::str::from_utf8(bytes).map_err(|_| self.error_at(at, MalformedKind::InvalidUtf8))
    }

    /// Reads an array head and returns its length.
    pub(crate) fn array(&mut self) -> Result<usize, Malformed> {
        let at = self.pos;
        match self.head()? {
            Header::Array(Some(len)) => Ok(len),
            _ => Err(self.error_at(at, MalformedKind::UnexpectedType)),
        }
    }

    /// Reads a map head and returns its number of pairs.
    pub(crate) fn map(&mut self) -> Result<usize, Malformed> {
        let at = self.pos;
        match self.head()? {
            Header::Map(Some(len)) => Ok(len),
            _ => Err(self.error_at(at, MalformedKind::UnexpectedType)),
        }
    }

    /// Reads a map key, checking that it sorts strictly after the previous key of the same
    /// map (`prev` holds that key's span and is updated). Keys other than integers are
    /// skipped whole and reported as [`Key::Other`].
    pub(crate) fn key(
        &mut self,
        prev: &mut Option<(usize, usize)>,
        depth: usize,
    ) -> Result<Key, Malformed> {
        let start = self.pos;
        let key = match self.head()? {
            Header::Positive(n) => Key::Uint(n),
            Header::Negative(n) => Key::Nint(n),
            other => {
                self.skip_body(other, start, depth)?;
                Key::Other
            }
        };
        let this = self.slice(start, self.pos);
        if let Some((p_start, p_end)) = *prev {
            match self.slice(p_start, p_end).cmp(this) {
                core::cmp::Ordering::Less => {}
                core::cmp::Ordering::Equal => {
                    return Err(self.error_at(start, MalformedKind::DuplicateKey));
                }
                core::cmp::Ordering::Greater => {
                    return Err(self.error_at(start, MalformedKind::UnsortedKeys));
                }
            }
        }
        *prev = Some((start, self.pos));
        Ok(key)
    }

    /// Skips one whole item of bytes a validating read already accepted: heads only, no
    /// determinism, UTF-8 or depth checks repeated, and no recursion (a count of the items
    /// still to skip). For views that re-read what their decoder checked.
    pub(crate) fn skip_checked(&mut self) -> Result<(), Malformed> {
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            let start = self.pos;
            match self.head()? {
                Header::Array(Some(n)) => pending = pending.saturating_add(n),
                Header::Map(Some(n)) => pending = pending.saturating_add(n.saturating_mul(2)),
                Header::Bytes(Some(n)) | Header::Text(Some(n)) => {
                    self.take(n, start)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Skips one whole item, checking it is deterministic. `depth` counts the containers the
    /// item sits in.
    pub(crate) fn skip(&mut self, depth: usize) -> Result<(), Malformed> {
        let start = self.pos;
        let header = self.head()?;
        self.skip_body(header, start, depth)
    }

    /// Skips what follows an already-read head.
    fn skip_body(&mut self, header: Header, start: usize, depth: usize) -> Result<(), Malformed> {
        match header {
            Header::Positive(_) | Header::Negative(_) | Header::Simple(_) => Ok(()),
            Header::Bytes(Some(len)) => self.take(len, start).map(|_| ()),
            Header::Text(Some(len)) => self.text_body(len, start).map(|_| ()),
            Header::Array(Some(len)) => {
                if depth >= MAX_DEPTH {
                    return Err(self.error_at(start, MalformedKind::TooDeep));
                }
                // Each item takes at least one byte, so this loop ends within the input.
                for _ in 0..len {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            Header::Map(Some(len)) => {
                if depth >= MAX_DEPTH {
                    return Err(self.error_at(start, MalformedKind::TooDeep));
                }
                let mut prev = None;
                for _ in 0..len {
                    self.key(&mut prev, depth + 1)?;
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            // `head` already refused tags, indefinite lengths, breaks and floats.
            _ => Err(self.error_at(start, MalformedKind::Indefinite)),
        }
    }
}
