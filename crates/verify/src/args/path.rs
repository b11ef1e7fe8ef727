//! Where in a call's body something failed: the detail of `arguments_not_granted` and of a
//! delegation whose args widen (`docs/spec.md` §16). A fixed buffer: no allocation.

use core::fmt;

/// Bytes a path keeps; a longer one is cut, and shows that it was. Small enough that a
/// denial carrying a path stays a small value (it is returned by every check).
const CAPACITY: usize = 64;

/// A member path such as `items[2].sku`, or the body itself (`body`).
///
/// Names come from the body or the grant and are the publisher's or the issuer's text: the
/// path keeps them as they are, and [`fmt::Display`] escapes every control character, so
/// that a detail never forges a log line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ArgPath {
    buf: [u8; CAPACITY],
    /// At most [`CAPACITY`].
    len: u8,
    cut: bool,
}

/// A point to return to after a member's check: the length and whether it was cut then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark(u8, bool);

impl ArgPath {
    /// The body itself.
    pub const fn body() -> Self {
        ArgPath {
            buf: [0; CAPACITY],
            len: 0,
            cut: false,
        }
    }

    /// Whether this names the body itself rather than a member.
    pub const fn is_body(&self) -> bool {
        self.len == 0 && !self.cut
    }

    /// The path's text (as much as fits): member names joined by `.`, array indices in
    /// brackets. Empty for the body.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..usize::from(self.len)).unwrap_or(&[]);
        match core::str::from_utf8(bytes) {
            Ok(text) => text,
            // A name cut inside a character: keep the whole characters before it.
            Err(e) => core::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or(&[]))
                .unwrap_or_default(),
        }
    }

    /// Whether the path was longer than this buffer keeps.
    pub const fn is_cut(&self) -> bool {
        self.cut
    }

    pub(crate) const fn mark(&self) -> Mark {
        Mark(self.len, self.cut)
    }

    pub(crate) fn reset(&mut self, mark: Mark) {
        self.len = mark.0;
        self.cut = mark.1;
    }

    /// Appends a member name: `.name`, or `name` first.
    pub(crate) fn push_member(&mut self, name: impl IntoIterator<Item = u8>) {
        if self.len > 0 {
            self.push_byte(b'.');
        }
        for b in name {
            self.push_byte(b);
        }
    }

    /// Appends an array index: `[i]`.
    pub(crate) fn push_index(&mut self, index: usize) {
        self.push_byte(b'[');
        let mut digits = [0u8; 20];
        let mut n = index;
        let mut at = digits.len();
        loop {
            at -= 1;
            // n % 10 < 10: one ASCII digit.
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for b in digits.into_iter().skip(at) {
            self.push_byte(b);
        }
        self.push_byte(b']');
    }

    fn push_byte(&mut self, b: u8) {
        if self.cut {
            return;
        }
        match self.buf.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = b;
                // Below CAPACITY (64): fits a u8.
                self.len += 1;
            }
            None => self.cut = true,
        }
    }
}

impl Default for ArgPath {
    fn default() -> Self {
        Self::body()
    }
}

impl fmt::Display for ArgPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_body() {
            return f.write_str("body");
        }
        for c in self.as_str().chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ArgPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArgPath({self})")
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString as _;

    use super::*;

    #[test]
    fn paths_read_like_member_access_and_escape_controls() {
        let mut path = ArgPath::body();
        assert_eq!(path.to_string(), "body");
        path.push_member(*b"items");
        let mark = path.mark();
        path.push_index(12);
        path.push_member(*b"sku");
        assert_eq!(path.to_string(), "items[12].sku");
        path.reset(mark);
        path.push_member(*b"a\nb");
        assert_eq!(path.to_string(), "items.a\\u{a}b");
        let mut long = ArgPath::body();
        long.push_member([b'x'; 200]);
        assert!(core::mem::size_of::<ArgPath>() <= 66);
        assert!(long.is_cut());
        assert!(long.to_string().ends_with('…'));
        let mut cut_char = ArgPath::body();
        cut_char.push_member([b'a'; 63].into_iter().chain("é".bytes()));
        assert_eq!(cut_char.as_str().len(), 63);
    }
}
