//! Reading an envelope argument: its text, or `-` for stdin (text or raw bytes).

use std::io::Read;

use laissez_verify::MAX_ENVELOPE_LEN;

use crate::failure::Failure;

/// The envelope bytes named by the ENVELOPE argument, or why the input is not one.
///
/// `Ok(Err(_))` is input that was read but is not base64url (a `malformed` envelope);
/// `Err(_)` is input that could not be read at all.
pub(crate) fn read_envelope(
    arg: &str,
) -> Result<Result<Vec<u8>, laissez_sign::TextError>, Failure> {
    if arg == "-" {
        let mut input = Vec::new();
        // Whitespace-padded text of the largest envelope is well under 4 times its size.
        std::io::stdin()
            .lock()
            .take(4 * MAX_ENVELOPE_LEN as u64 + 1)
            .read_to_end(&mut input)
            .map_err(|e| Failure::io(format!("reading the envelope from stdin: {e}")))?;
        Ok(laissez_sign::decode_input(&input))
    } else {
        Ok(laissez_sign::decode_text(arg))
    }
}
