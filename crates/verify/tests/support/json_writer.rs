//! Writes a generated JSON value as text in a chosen style (whitespace, optional escaping):
//! the serializer of the differential test (`json_differential.rs`).

use std::fmt::Write as _;

use super::Gen;

/// How a document is written: whitespace between tokens, and how often a character that
/// needs no escape is escaped anyway.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) spaced: bool,
    pub(crate) escape_per_256: u8,
    pub(crate) seed: u64,
}

struct Writer {
    out: String,
    style: Style,
    rng: u64,
}

impl Writer {
    fn new(style: Style) -> Self {
        Writer {
            out: String::new(),
            style,
            rng: style.seed,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64: reproducible from the style's seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn ws(&mut self) {
        if self.style.spaced {
            for _ in 0..self.next() % 3 {
                let c = [' ', '\t', '\n', '\r'][(self.next() % 4) as usize];
                self.out.push(c);
            }
        }
    }

    fn unit(&mut self, u: u16) {
        if self.next().is_multiple_of(2) {
            write!(self.out, "\\u{u:04x}").unwrap();
        } else {
            write!(self.out, "\\u{u:04X}").unwrap();
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            let short = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '/' => Some("\\/"),
                '\u{8}' => Some("\\b"),
                '\u{c}' => Some("\\f"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                _ => None,
            };
            let must = matches!(c, '"' | '\\' | '\0'..='\u{1f}');
            let want = must || (self.next() % 256) < u64::from(self.style.escape_per_256);
            if !want {
                self.out.push(c);
            } else if let (Some(e), true) = (short, self.next().is_multiple_of(2)) {
                self.out.push_str(e);
            } else {
                let mut units = [0u16; 2];
                for &u in c.encode_utf16(&mut units).iter() {
                    self.unit(u);
                }
            }
        }
        self.out.push('"');
    }

    fn value(&mut self, g: &Gen) {
        self.ws();
        match g {
            Gen::Null => self.out.push_str("null"),
            Gen::Bool(b) => write!(self.out, "{b}").unwrap(),
            Gen::Int(i) => write!(self.out, "{i}").unwrap(),
            Gen::Num(n) => self.out.push_str(n),
            Gen::Str(s) => self.string(s),
            Gen::Arr(items) => {
                self.out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.value(x);
                }
                self.ws();
                self.out.push(']');
            }
            Gen::Obj(ms) => {
                self.out.push('{');
                for (i, (k, v)) in ms.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.ws();
                    self.string(k);
                    self.ws();
                    self.out.push(':');
                    self.value(v);
                }
                self.ws();
                self.out.push('}');
            }
        }
        self.ws();
    }
}

pub(crate) fn write(g: &Gen, style: Style) -> String {
    let mut w = Writer::new(style);
    w.value(g);
    w.out
}
