//! The text form of a delegation chain (`docs/spec.md` §13): each envelope's base64url, joined
//! by `.`, root first; one envelope (not delegated) has no `.`. The one encoder and decoder,
//! used by the command line and the Python binding; each link is read by the one text reader
//! ([`crate::text`]), so whitespace around and inside a link's text is ignored and padding
//! tolerated, as for one envelope.

use std::fmt;

use laissez_verify::text::is_raw;

use crate::text::{TextError, decode_text, encode_text};

/// Why text is not a chain's text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainTextError {
    /// Input that is neither raw envelope bytes nor UTF-8 text.
    NotText,
    /// A link that is not an envelope's text.
    Link {
        /// Which link (the root is 0); `None` when the text is one envelope (no `.`).
        at: Option<usize>,
        /// What is wrong with its text ([`TextError::Empty`] for nothing but whitespace).
        error: TextError,
    },
}

impl fmt::Display for ChainTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainTextError::NotText => {
                f.write_str("neither raw envelope bytes (0xd2...) nor base64url text")
            }
            ChainTextError::Link { at, error } => {
                if let Some(at) = at {
                    write!(f, "envelope {at} of the chain (root 0): ")?;
                }
                match error {
                    TextError::Empty => f.write_str("empty text"),
                    other => write!(f, "{other}"),
                }
            }
        }
    }
}

impl std::error::Error for ChainTextError {}

/// The text form of `links` (root first): each envelope's base64url, joined by `.`.
pub fn encode_chain<L: AsRef<[u8]>>(links: &[L]) -> String {
    let texts: Vec<String> = links.iter().map(|l| encode_text(l.as_ref())).collect();
    texts.join(".")
}

/// The envelopes of a chain's text form, root first; one envelope when the text has no `.`.
/// Surrounding whitespace is trimmed; a link that is empty or not base64url is refused with
/// its index. How many links there are is not checked here: a verifier answers a fifth
/// `bad_delegation`.
pub fn decode_chain(text: &str) -> Result<Vec<Vec<u8>>, ChainTextError> {
    let parts: Vec<&str> = text.trim().split('.').collect();
    let one = parts.len() == 1;
    parts
        .iter()
        .enumerate()
        .map(|(at, part)| {
            let at = (!one).then_some(at);
            // Nothing but whitespace (Unicode's, not only ASCII's) is an empty link.
            if part.trim().is_empty() {
                return Err(ChainTextError::Link {
                    at,
                    error: TextError::Empty,
                });
            }
            decode_text(part).map_err(|error| ChainTextError::Link { at, error })
        })
        .collect()
}

/// A chain as received in bytes (a file, stdin): raw envelope bytes (first byte 0xd2) are
/// always one envelope; anything else is the chain's text form ([`decode_chain`]).
pub fn decode_chain_input(input: &[u8]) -> Result<Vec<Vec<u8>>, ChainTextError> {
    if is_raw(input) {
        return Ok(vec![input.to_vec()]);
    }
    match std::str::from_utf8(input) {
        Ok(text) => decode_chain(text),
        Err(_) => Err(ChainTextError::NotText),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: [u8; 5] = [0xd2, 0x84, 0x01, 0xff, 0xfe];
    const LEAF: [u8; 4] = [0xd2, 0x84, 0x40, 0x00];

    #[test]
    fn round_trip_root_first() {
        let text = encode_chain(&[ROOT.to_vec(), LEAF.to_vec()]);
        assert_eq!(
            text,
            format!("{}.{}", encode_text(&ROOT), encode_text(&LEAF))
        );
        assert_eq!(
            decode_chain(&text).unwrap(),
            vec![ROOT.to_vec(), LEAF.to_vec()]
        );
        assert_eq!(
            decode_chain_input(text.as_bytes()).unwrap(),
            vec![ROOT.to_vec(), LEAF.to_vec()]
        );
        // One envelope has no `.`.
        let one = encode_chain(&[&ROOT[..]]);
        assert!(!one.contains('.'));
        assert_eq!(decode_chain(&one).unwrap(), vec![ROOT.to_vec()]);
        // Raw bytes are one envelope, whatever they hold.
        assert_eq!(decode_chain_input(&ROOT).unwrap(), vec![ROOT.to_vec()]);
    }

    #[test]
    fn whitespace_and_padding_are_tolerated_as_for_one_envelope() {
        let (root, leaf) = (encode_text(&ROOT), encode_text(&LEAF));
        let padded = format!("{root}{}", "=".repeat((4 - root.len() % 4) % 4));
        let text = format!("\n  {padded} .\n{}\n{}  \n", &leaf[..2], &leaf[2..]);
        assert_eq!(
            decode_chain(&text).unwrap(),
            vec![ROOT.to_vec(), LEAF.to_vec()]
        );
    }

    #[test]
    fn bad_text_is_refused_with_the_link_it_is_in() {
        let root = encode_text(&ROOT);
        let empty = |at| ChainTextError::Link {
            at,
            error: TextError::Empty,
        };
        assert_eq!(decode_chain(" \n"), Err(empty(None)));
        assert_eq!(decode_chain(&format!("{root}.")), Err(empty(Some(1))));
        assert_eq!(
            decode_chain(&format!("{root}. \u{a0}")),
            Err(empty(Some(1)))
        );
        assert_eq!(
            decode_chain(&format!("{root}.a+b/")),
            Err(ChainTextError::Link {
                at: Some(1),
                error: TextError::InvalidByte(1)
            })
        );
        assert_eq!(
            decode_chain_input(&[0x80, 0xff]),
            Err(ChainTextError::NotText)
        );
        // The texts the command line prints.
        assert_eq!(empty(None).to_string(), "empty text");
        assert_eq!(
            empty(Some(1)).to_string(),
            "envelope 1 of the chain (root 0): empty text"
        );
        let bad = decode_chain("a+b/").unwrap_err();
        assert_eq!(
            bad.to_string(),
            "the input is neither a raw envelope (0xd2 first) nor base64url text: invalid byte at offset 1"
        );
        assert_eq!(
            ChainTextError::NotText.to_string(),
            "neither raw envelope bytes (0xd2...) nor base64url text"
        );
    }
}
