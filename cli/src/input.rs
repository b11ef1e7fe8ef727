//! Reading the command line's inputs: an envelope or invocation argument (its text, or `-`
//! for stdin, text or raw bytes) and a message body (a file, or `-` for stdin).

use std::io::Read;
use std::path::Path;

use laissez_verify::MAX_ENVELOPE_LEN;

use crate::failure::Failure;

/// The envelope bytes named by the ENVELOPE argument, or why the input is not one.
///
/// `Ok(Err(_))` is input that was read but is not base64url (a `malformed` envelope);
/// `Err(_)` is input that could not be read at all.
pub(crate) fn read_envelope(
    arg: &str,
) -> Result<Result<Vec<u8>, laissez_sign::TextError>, Failure> {
    read_object(arg, "envelope")
}

/// An envelope or invocation (`what`) given as text, or `-` for stdin: the one text reader
/// of `docs/spec.md` §4, so raw bytes (first byte 0xd2) are taken as they are.
pub(crate) fn read_object(
    arg: &str,
    what: &str,
) -> Result<Result<Vec<u8>, laissez_sign::TextError>, Failure> {
    if arg == "-" {
        let mut input = Vec::new();
        // Whitespace-padded text of the largest envelope is well under 4 times its size.
        std::io::stdin()
            .lock()
            .take(4 * MAX_ENVELOPE_LEN as u64 + 1)
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
