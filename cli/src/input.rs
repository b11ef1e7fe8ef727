//! Reading the command line's inputs: an envelope or invocation argument (its text, or `-`
//! for stdin, text or raw bytes) and a message body (a file, or `-` for stdin).

use std::io::Read;
use std::path::Path;

use laissez_sign::chain_text::{decode_chain, decode_chain_input};
use laissez_verify::wire::{MAX_CHAIN_LEN, MAX_TEXT_LEN};

use crate::failure::Failure;

/// The leaf of an ENV argument (the envelope itself when it is not a chain): the envelope
/// a call is made under (`docs/spec.md` §13). Text that is not an envelope's or a chain's is
/// `malformed`.
pub(crate) fn read_leaf(arg: &str) -> Result<Vec<u8>, Failure> {
    read_links(arg)?.pop().ok_or_else(|| Failure::Denied {
        reason: "malformed",
        detail: "malformed envelope: no envelope".to_owned(),
    })
}

/// [`read_chain`], with text that is not an envelope's or a chain's as `malformed`.
pub(crate) fn read_links(arg: &str) -> Result<Vec<Vec<u8>>, Failure> {
    read_chain(arg)?.map_err(|detail| Failure::Denied {
        reason: "malformed",
        detail: format!("malformed envelope: {detail}"),
    })
}

/// An ENV argument read as a chain (`docs/spec.md` §13): its envelopes, root first; one
/// envelope when it is not delegated. The one place every command reads an ENV: text is the
/// chain's text form ([`laissez_sign::chain_text`]: each envelope's base64url, joined by `.`,
/// root first; one envelope has no `.`), `-` reads stdin, where raw bytes (first byte 0xd2)
/// are always one envelope.
///
/// `Ok(Err(_))` is input that was read but is not that text (a `malformed` envelope, with
/// what is wrong); `Err(_)` is input that could not be read at all.
pub(crate) fn read_chain(arg: &str) -> Result<Result<Vec<Vec<u8>>, String>, Failure> {
    let read = if arg == "-" {
        let mut input = Vec::new();
        // One more envelope than a chain may hold, so that a too long chain is refused as one
        // (bad_delegation), not cut.
        std::io::stdin()
            .lock()
            .take((MAX_CHAIN_LEN as u64 + 1) * MAX_TEXT_LEN as u64 + 1)
            .read_to_end(&mut input)
            .map_err(|e| Failure::io(format!("reading the envelope from stdin: {e}")))?;
        decode_chain_input(&input)
    } else {
        decode_chain(arg)
    };
    Ok(read.map_err(|e| e.to_string()))
}

/// An envelope or invocation (`what`) given as text, or `-` for stdin: the one text reader
/// of `docs/spec.md` §4, so raw bytes (first byte 0xd2) are taken as they are.
pub(crate) fn read_object(
    arg: &str,
    what: &str,
) -> Result<Result<Vec<u8>, laissez_sign::TextError>, Failure> {
    if arg == "-" {
        let mut input = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_TEXT_LEN as u64 + 1)
            .read_to_end(&mut input)
            .map_err(|e| Failure::io(format!("reading the {what} from stdin: {e}")))?;
        Ok(laissez_sign::decode_input(&input))
    } else {
        Ok(laissez_sign::decode_text(arg))
    }
}

/// The message body: the bytes of FILE, all of stdin for `-`, or empty when not given. The
/// bytes are taken exactly as they are: the call names them by their SHA-256.
pub(crate) fn read_body(arg: Option<&str>) -> Result<Vec<u8>, Failure> {
    match arg {
        None => Ok(Vec::new()),
        Some("-") => {
            let mut body = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut body)
                .map_err(|e| Failure::io(format!("reading the body from stdin: {e}")))?;
            Ok(body)
        }
        Some(path) => {
            std::fs::read(Path::new(path)).map_err(|e| Failure::io(format!("--body {path}: {e}")))
        }
    }
}

/// Stdin can be read once: at most one of `args` (flag name, value) may be `-`.
pub(crate) fn one_stdin(args: &[(&str, Option<&str>)]) -> Result<(), Failure> {
    let dashes: Vec<&str> = args
        .iter()
        .filter(|(_, value)| *value == Some("-"))
        .map(|(name, _)| *name)
        .collect();
    if dashes.len() > 1 {
        return Err(Failure::usage(format!(
            "only one input can be read from stdin, but {} each say -",
            dashes.join(" and ")
        )));
    }
    Ok(())
}
