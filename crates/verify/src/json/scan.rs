//! Moving over bytes that `validate` has accepted. Every function here assumes a valid JSON
//! text: it never reports an error, and indexing past the end cannot happen on one (a
//! container always closes, a string always ends with `"`).

/// Whether `b` is insignificant whitespace (RFC 8259 §2: space, tab, LF, CR; nothing else).
#[inline(always)]
pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The first offset at or after `i` that is not whitespace (or the length).
#[inline(always)]
pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// For the string whose opening `"` is at `i`: the offset of its closing `"` and whether it
/// holds an escape. A `\` is always followed by at least one byte that is not the closing
/// quote, so skipping the byte after it is enough (the hex digits of `\u` are no quotes).
#[inline]
pub(super) fn string_end(b: &[u8], i: usize) -> (usize, bool) {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        j = plain_run(b, j, false);
        match b[j] {
            b'"' => return (j, escaped),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
}

/// The offset just past the value that starts at `i`. Containers are skipped with a depth
/// counter, not recursion; strings inside them are skipped whole so that their brackets do
/// not count.
pub(super) fn value_end(b: &[u8], i: usize) -> usize {
    match b[i] {
        b'"' => string_end(b, i).0 + 1,
        b'{' | b'[' => {
            let mut depth = 1usize;
            let mut j = i + 1;
            loop {
                match b[j] {
                    b'"' => j = string_end(b, j).0 + 1,
                    b'{' | b'[' => {
                        depth += 1;
                        j += 1;
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        j += 1;
                        if depth == 0 {
                            return j;
                        }
                    }
                    _ => j += 1,
                }
            }
        }
        b't' | b'n' => i + 4,
        b'f' => i + 5,
        _ => {
            let mut j = i + 1;
            while j < b.len() && matches!(b[j], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                j += 1;
            }
            j
        }
    }
}

/// One member of an object, as offsets into the body.
#[derive(Clone, Copy, Debug)]
pub(super) struct Member {
    /// The name's opening quote.
    pub(super) name: usize,
    /// The name's closing quote.
    pub(super) name_end: usize,
    /// Whether the name holds an escape.
    pub(super) escaped: bool,
    /// Where the value starts.
    pub(super) value: usize,
    /// Just past the value.
    pub(super) value_end: usize,
}

/// The member at or after `i` (just past the `{` or past the previous member), and where the
/// next one is looked for; `None` at the closing `}`.
#[inline]
pub(super) fn next_member(b: &[u8], i: usize) -> Option<(Member, usize)> {
    let mut i = skip_ws(b, i);
    if b[i] == b',' {
        i = skip_ws(b, i + 1);
    }
    if b[i] != b'"' {
        return None;
    }
    let (name_end, escaped) = string_end(b, i);
    // After the name: optional whitespace, the colon, optional whitespace.
    let value = skip_ws(b, skip_ws(b, name_end + 1) + 1);
    let end = value_end(b, value);
    let member = Member {
        name: i,
        name_end,
        escaped,
        value,
        value_end: end,
    };
    Some((member, end))
}

/// The element at or after `i` (just past the `[` or past the previous element) as its start
/// and end, and where the next one is looked for; `None` at the closing `]`.
#[inline]
pub(super) fn next_element(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut i = skip_ws(b, i);
    if b[i] == b',' {
        i = skip_ws(b, i + 1);
    }
    if b[i] == b']' {
        return None;
    }
    let end = value_end(b, i);
    Some((i, end))
}

/// Bytes repeated in each byte of a word.
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// Whether some byte of `w` is below `n` (n ≤ 0x80): exact as a yes or no (borrows only blur
/// which byte), and a yes only sends the caller to the byte loop.
#[inline(always)]
fn any_below(w: u64, n: u8) -> bool {
    w.wrapping_sub(splat(n)) & !w & splat(0x80) != 0
}

/// Whether some byte of `w` is `byte`.
#[inline(always)]
fn any_eq(w: u64, byte: u8) -> bool {
    any_below(w ^ splat(byte), 1)
}

/// The first offset at or after `j` that may end a run of plain string bytes: a `"`, a `\`,
/// or (with `controls`) a byte below 0x20. Whole words are skipped while none of their bytes
/// is one of those, then single bytes; strings are most of a body, so this is where the time
/// goes. The result is at most the length.
#[inline(always)]
pub(super) fn plain_run(b: &[u8], mut j: usize, controls: bool) -> usize {
    while let Some(chunk) = b.get(j..j + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_ne_bytes(word);
        if any_eq(w, b'"') || any_eq(w, b'\\') || (controls && any_below(w, 0x20)) {
            break;
        }
        j += 8;
    }
    while j < b.len() {
        let c = b[j];
        if c == b'"' || c == b'\\' || (controls && c < 0x20) {
            break;
        }
        j += 1;
    }
    j
}
