//! The one pass that decides whether a body is valid: RFC 8259's grammar, the escape and
//! surrogate rules, the depth limit, and (as each object closes) the duplicate-name check.
//!
//! The input is already known to be valid UTF-8 (so bytes at or above 0x80 inside strings
//! need no look) and at most `MAX_BODY_LEN` bytes (so every offset fits in a `u32`). The
//! nesting is an explicit stack of at most `MAX_BODY_DEPTH` entries, never recursion.

use super::dedup::Dedup;
use super::scan::{is_ws, plain_run};
use super::{JsonError, JsonErrorKind, MAX_BODY_DEPTH};

type Res<T> = Result<T, JsonError>;

#[inline(always)]
fn err<T>(kind: JsonErrorKind, at: usize) -> Res<T> {
    Err(JsonError::new(kind, at))
}

#[inline(always)]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// Checks the whole body; on success, the offset of the top-level object's `{`.
pub(super) fn validate(b: &[u8]) -> Res<usize> {
    let first = skip_ws(b, 0);
    if first == b.len() {
        return err(JsonErrorKind::Empty, first);
    }
    // Open containers: bit d of `objects` is set when level d is an object; `starts[d]` is
    // where that container's opening bracket is (for the duplicate check at its close).
    let mut depth = 0usize;
    let mut objects = 0u32;
    let mut starts = [0u32; MAX_BODY_DEPTH];
    let mut dedup = Dedup::new(b);
    let mut i = first;
    'value: loop {
        // A value is expected at `i`.
        i = skip_ws(b, i);
        let Some(&c) = b.get(i) else {
            return err(JsonErrorKind::Syntax, i);
        };
        match c {
            b'{' | b'[' => {
                if depth == MAX_BODY_DEPTH {
                    return err(JsonErrorKind::TooDeep, i);
                }
                starts[depth] = i as u32;
                let object = c == b'{';
                if object {
                    objects |= 1 << depth;
                    dedup.open_object(depth);
                } else {
                    objects &= !(1 << depth);
                }
                depth += 1;
                let j = skip_ws(b, i + 1);
                let close = if object { b'}' } else { b']' };
                if b.get(j) == Some(&close) {
                    // Empty: nothing to check for duplicates.
                    depth -= 1;
                    i = j + 1;
                } else if object {
                    i = member_name(b, j, &mut dedup, depth - 1)?;
                    continue 'value;
                } else {
                    i = j;
                    continue 'value;
                }
            }
            b'"' => i = string(b, i)?.0,
            b'-' | b'0'..=b'9' => i = number(b, i)?,
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            _ => return err(JsonErrorKind::Syntax, i),
        }
        // A value ended just before `i`: close containers until one continues.
        loop {
            i = skip_ws(b, i);
            if depth == 0 {
                break 'value;
            }
            let top = depth - 1;
            let object = objects & (1 << top) != 0;
            match b.get(i) {
                Some(b',') if object => {
                    i = member_name(b, skip_ws(b, i + 1), &mut dedup, top)?;
                    continue 'value;
                }
                Some(b',') => {
                    i += 1;
                    continue 'value;
                }
                Some(b'}') if object => {
                    dedup.close_object(top, starts[top] as usize)?;
                    depth = top;
                    i += 1;
                }
                Some(b']') if !object => {
                    depth = top;
                    i += 1;
                }
                _ => return err(JsonErrorKind::Syntax, i),
            }
        }
    }
    if i != b.len() {
        return err(JsonErrorKind::TrailingBytes, i);
    }
    if b[first] != b'{' {
        return err(JsonErrorKind::NotAnObject, first);
    }
    Ok(first)
}

/// A member name at `i` of the object at `level`, then `:`: the offset just past the colon.
#[inline]
fn member_name(b: &[u8], i: usize, dedup: &mut Dedup<'_>, level: usize) -> Res<usize> {
    if b.get(i) != Some(&b'"') {
        return err(JsonErrorKind::Syntax, i);
    }
    let (end, escaped) = string(b, i)?;
    dedup.name(level, i, end - 1, escaped)?;
    let j = skip_ws(b, end);
    if b.get(j) != Some(&b':') {
        return err(JsonErrorKind::Syntax, j);
    }
    Ok(j + 1)
}

/// The string whose `"` is at `i`: the offset just past its closing quote, and whether it
/// holds an escape.
#[inline]
fn string(b: &[u8], i: usize) -> Res<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        // The common case, plain bytes, a word at a time.
        j = plain_run(b, j, true);
        let Some(&c) = b.get(j) else {
            return err(JsonErrorKind::Syntax, j);
        };
        match c {
            b'"' => return Ok((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j = escape(b, j)?;
            }
            _ => return err(JsonErrorKind::ControlCharacter, j),
        }
    }
}

/// The escape whose `\` is at `i`: the offset just past it (a surrogate pair is one escape).
#[inline]
fn escape(b: &[u8], i: usize) -> Res<usize> {
    match b.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        Some(b'u') => {
            let Some(unit) = hex4(b, i + 2) else {
                return err(JsonErrorKind::InvalidEscape, i);
            };
            match unit {
                0xd800..=0xdbff => {
                    // A high surrogate counts only with a low one escaped right after it.
                    let low = if b.get(i + 6) == Some(&b'\\') && b.get(i + 7) == Some(&b'u') {
                        hex4(b, i + 8)
                    } else {
                        None
                    };
                    match low {
                        Some(0xdc00..=0xdfff) => Ok(i + 12),
                        _ => err(JsonErrorKind::LoneSurrogate, i),
                    }
                }
                0xdc00..=0xdfff => err(JsonErrorKind::LoneSurrogate, i),
                _ => Ok(i + 6),
            }
        }
        _ => err(JsonErrorKind::InvalidEscape, i),
    }
}

/// The four hex digits at `i` as a UTF-16 code unit.
#[inline]
pub(super) fn hex4(b: &[u8], i: usize) -> Option<u16> {
    let digits = b.get(i..i + 4)?;
    let mut unit = 0u16;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        unit = (unit << 4) | u16::from(v);
    }
    Some(unit)
}

/// The number starting at `i` (RFC 8259 §6): the offset just past it.
#[inline]
fn number(b: &[u8], i: usize) -> Res<usize> {
    let digit = |j: usize| matches!(b.get(j), Some(b'0'..=b'9'));
    let mut j = i;
    if b[j] == b'-' {
        j += 1;
    }
    match b.get(j) {
        // A leading zero stands alone: `01` and `-00` are refused here, not read as `0`
        // followed by stray bytes.
        Some(b'0') => {
            j += 1;
            if digit(j) {
                return err(JsonErrorKind::InvalidNumber, j);
            }
        }
        Some(b'1'..=b'9') => {
            while digit(j) {
                j += 1;
            }
        }
        _ => return err(JsonErrorKind::InvalidNumber, j),
    }
    if b.get(j) == Some(&b'.') {
        j += 1;
        if !digit(j) {
            return err(JsonErrorKind::InvalidNumber, j);
        }
        while digit(j) {
            j += 1;
        }
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if !digit(j) {
            return err(JsonErrorKind::InvalidNumber, j);
        }
        while digit(j) {
            j += 1;
        }
    }
    Ok(j)
}

/// The literal `word` at `i`: the offset just past it.
#[inline]
fn literal(b: &[u8], i: usize, word: &[u8]) -> Res<usize> {
    if b[i..].starts_with(word) {
        Ok(i + word.len())
    } else {
        err(JsonErrorKind::Syntax, i)
    }
}
