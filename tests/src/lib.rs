//! Helpers shared by laissez's test suites, so each suite does not carry its own copy (the
//! services' URLs, the forms a leaked key or envelope takes, a cuttable proxy), and the
//! repository-level checks in `tests/` (every test a document cites exists).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod proxy;
mod redis_servers;
mod tls;

pub use redis_servers::{
    ThrowawayRedis, redis_cluster_node_urls, redis_cluster_url, redis_tls_cluster_url,
};
pub use tls::{TlsListeners, tls_listeners};

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};

pub use proxy::CuttableProxy;

/// Why [`force_child`] could not re-sign an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForceError(String);

impl std::fmt::Display for ForceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ForceError {}

/// A delegated envelope made without `delegate`'s checks (what a careless or hostile
/// delegator could send): `envelope` (a root-form envelope, signed by any key) with the claim
/// -65538 `parent` = SHA-256 of `parent` appended, re-signed with the Ed25519 `seed` (the
/// parent's holder key, whose kid `envelope` must already carry: sign it with that key).
/// For tests of `not_attenuated` and `bad_delegation` at a worker.
pub fn force_child(parent: &[u8], envelope: &[u8], seed: &[u8; 32]) -> Result<Vec<u8>, ForceError> {
    force_child_with(parent, envelope, seed, &Forced::default())
}

/// Claims [`force_child_with`] replaces in the envelope before re-signing it.
#[derive(Debug, Clone, Default)]
pub struct Forced {
    /// The cti (claim 7): e.g. a stranger's, which `delegate` never picks.
    pub cti: Option<[u8; 16]>,
    /// The iat (claim 6): e.g. far in the future.
    pub iat: Option<u64>,
}

/// [`force_child`], with the claims `forced` names replaced first (each must be present in
/// `envelope`: `laissez sign` and `EnvelopeBuilder` write both).
pub fn force_child_with(
    parent: &[u8],
    envelope: &[u8],
    seed: &[u8; 32],
    forced: &Forced,
) -> Result<Vec<u8>, ForceError> {
    use ciborium::value::Value;
    use ed25519_dalek::Signer as _;
    use sha2::Digest as _;
    let bad = |what: &str| ForceError(format!("not an envelope: {what}"));
    let value: Value =
        ciborium::de::from_reader(envelope).map_err(|e| ForceError(e.to_string()))?;
    let Value::Tag(18, inner) = value else {
        return Err(bad("no tag 18"));
    };
    let Value::Array(items) = *inner else {
        return Err(bad("not an array"));
    };
    let (Some(Value::Bytes(protected)), Some(Value::Bytes(payload))) =
        (items.first(), items.get(2))
    else {
        return Err(bad("no protected header or payload"));
    };
    let claims: Value =
        ciborium::de::from_reader(payload.as_slice()).map_err(|e| ForceError(e.to_string()))?;
    let Value::Map(mut claims) = claims else {
        return Err(bad("claims not a map"));
    };
    // Replaced in place: the map's order (deterministic) is kept.
    let replace = |claims: &mut Vec<(Value, Value)>, key: i64, value: Value| {
        let slot = claims
            .iter_mut()
            .find(|(k, _)| *k == Value::from(key))
            .ok_or_else(|| bad(&format!("no claim {key} to replace")))?;
        slot.1 = value;
        Ok::<(), ForceError>(())
    };
    if let Some(cti) = forced.cti {
        replace(&mut claims, 7, Value::Bytes(cti.to_vec()))?;
    }
    if let Some(iat) = forced.iat {
        replace(&mut claims, 6, Value::from(iat))?;
    }
    // -65538 sorts after every other key: appended, the map stays deterministic.
    claims.push((
        Value::from(-65538),
        Value::Bytes(sha2::Sha256::digest(parent).to_vec()),
    ));
    let write = |value: &Value| -> Result<Vec<u8>, ForceError> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(value, &mut out).map_err(|e| ForceError(e.to_string()))?;
        Ok(out)
    };
    let payload = write(&Value::Map(claims))?;
    let tbs = write(&Value::Array(vec![
        Value::from("Signature1"),
        Value::Bytes(protected.clone()),
        Value::Bytes(b"laissez/v1".to_vec()),
        Value::Bytes(payload.clone()),
    ]))?;
    let signature = ed25519_dalek::SigningKey::from_bytes(seed).sign(&tbs);
    write(&Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(protected.clone()),
            Value::Map(vec![]),
            Value::Bytes(payload),
            Value::Bytes(signature.to_bytes().to_vec()),
        ])),
    ))
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Runs the repository's `scripts/NAME` with `args`, which starts a local service when it is
/// down (every such script is idempotent).
///
/// # Panics
/// When the script cannot run or fails: a service test cannot run without its service.
#[allow(clippy::panic)]
pub fn run_service_script(name: &str, args: &[&str]) {
    let script = repo_root().join("scripts").join(name);
    let output = std::process::Command::new(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if !output.status.success() {
        panic!(
            "{} {} failed: {}",
            script.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The RabbitMQ URL the service tests use: `LAISSEZ_TEST_AMQP_URL`, or the local broker.
pub fn amqp_url() -> String {
    std::env::var("LAISSEZ_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// The Redis URL the service tests use: `LAISSEZ_TEST_REDIS_URL`, or the local server.
pub fn redis_url() -> String {
    std::env::var("LAISSEZ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// Every text form a leak of `bytes` could take in output: for each 6-byte window, hex
/// (either case), the Rust byte list (`{:?}`, `{:x?}`, pretty and alternate forms) with its
/// brackets trimmed, so that a window in the middle of a longer list matches, the escaped byte
/// string (`escape_ascii`, as `b"..."` Debug shows it); and base64 at
/// each of the three alignments in both alphabets (a 12-character run at each end). A text
/// containing none of them holds no recognisable 6-byte run of `bytes` (raw bytes are
/// [`raw_leak`]'s).
pub fn byte_forms(bytes: &[u8]) -> Vec<String> {
    let mut forms = Vec::new();
    for window in bytes.windows(6) {
        forms.push(hex::encode(window));
        forms.push(hex::encode_upper(window));
        forms.push(format!("{window:?}").trim_matches(['[', ']']).to_string());
        forms.push(format!("{window:x?}").trim_matches(['[', ']']).to_string());
        // Pretty Debug puts each byte on a line; [`leaked_form`] also searches the text with
        // its whitespace removed, where these match.
        forms.push(
            format!("{window:?}")
                .trim_matches(['[', ']'])
                .replace(' ', ""),
        );
        forms.push(
            format!("{window:x?}")
                .trim_matches(['[', ']'])
                .replace(' ', ""),
        );
        let alternate: Vec<String> = window.iter().map(|b| format!("{b:#x}")).collect();
        forms.push(alternate.join(","));
        // A byte string's Debug (`b"\x9da..."`); a window of mostly printable bytes would make
        // a run too short to be telling.
        let escaped = window.escape_ascii().to_string();
        if escaped.len() >= 12 {
            forms.push(escaped);
        }
    }
    for skip in 0..3 {
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            let text = engine.encode(&bytes[skip..]);
            forms.push(text[..12].to_string());
            forms.push(text[text.len() - 16..text.len() - 4].to_string());
        }
    }
    forms
}

/// Every form a leaked Ed25519 seed could take in output: [`byte_forms`] of the seed, and the
/// tail of every body line of the PKCS#8 PEM that holds it. A text containing none of them
/// holds no recognisable part of the key.
pub fn secret_forms(seed: &[u8; 32], pem: &str) -> Vec<String> {
    let mut forms = byte_forms(seed);
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        forms.push(line[line.len().saturating_sub(16)..].to_string());
    }
    forms
}

/// The part of an envelope that makes it a credential: its 64-byte signature, the last 64
/// bytes of the COSE_Sign1 (`docs/spec.md` §2). The rest (the cti, the kid, the claims) may be
/// logged; any run of the signature may not.
pub fn envelope_signature(envelope: &[u8]) -> &[u8] {
    &envelope[envelope.len().saturating_sub(64)..]
}

/// Whether `output` holds any 8-byte run of `bytes` as raw bytes.
pub fn raw_leak(output: &[u8], bytes: &[u8]) -> bool {
    bytes
        .windows(8)
        .any(|window| output.windows(8).any(|o| o == window))
}

/// How `output` (any bytes: a log, a command's stdout or stderr) shows `envelope`, if it
/// does: raw bytes, or any of [`byte_forms`] of its signature (hex, base64 or base64url at any
/// alignment, the Debug byte list of the whole envelope or of any part of it).
pub fn envelope_leak(output: &[u8], envelope: &[u8]) -> Option<String> {
    let signature = envelope_signature(envelope);
    if raw_leak(output, signature) {
        return Some("raw bytes".to_owned());
    }
    let text = String::from_utf8_lossy(output);
    leaked_form(&text, &byte_forms(signature)).map(str::to_owned)
}

/// Panics, naming `what` and the form, when `output` shows `envelope` in any encoding.
#[allow(clippy::panic)] // A test assertion.
pub fn assert_no_envelope(what: &str, output: &[u8], envelope: &[u8]) {
    if let Some(form) = envelope_leak(output, envelope) {
        panic!(
            "{what} carries the envelope ({form}): {}",
            String::from_utf8_lossy(output)
        );
    }
}

/// The seed of an Ed25519 PKCS#8 v1 PEM (the document ends with it), for [`secret_forms`].
pub fn seed_of_pkcs8_pem(pem: &str) -> Option<[u8; 32]> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).ok()?;
    der.get(der.len().checked_sub(32)?..)?.try_into().ok()
}

/// The first form of [`secret_forms`] that `text` contains, as it is or with its whitespace
/// removed (so pretty-printed byte lists are caught).
pub fn leaked_form<'f>(text: &str, forms: &'f [String]) -> Option<&'f str> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    forms
        .iter()
        .map(String::as_str)
        .find(|form| text.contains(form) || compact.contains(form))
}

/// Panics, naming `what` and the form, when `text` holds any of `forms`.
#[allow(clippy::panic)] // A test assertion.
pub fn assert_no_secret(what: &str, text: &str, forms: &[String]) {
    if let Some(form) = leaked_form(text, forms) {
        panic!("{what} contains secret material ({form}): {text}");
    }
}

/// The name libtest gives the test `f` of the calling module, given its `module_path!()`:
/// the binary's crate name dropped. A test that runs another test of its own binary in a
/// child process names it so, whether its file is a binary or a module of one.
pub fn test_name(module_path: &str, f: &str) -> String {
    match module_path.split_once("::") {
        Some((_, module)) => format!("{module}::{f}"),
        None => f.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];

    #[test]
    fn every_encoding_of_a_leak_is_found_and_clean_text_is_not() {
        // No PEM lines: only the seed's own forms may catch these.
        let forms = secret_forms(&SEED, "");
        for leak in [
            hex::encode(SEED),
            hex::encode_upper(&SEED[7..20]),
            STANDARD.encode(SEED),
            URL_SAFE_NO_PAD.encode(&SEED[1..]),
            STANDARD_NO_PAD.encode(&SEED[2..]),
            format!("{SEED:?}"),
            format!("{:?}", &SEED[10..20]),
            format!("{:x?}", &SEED[3..12]),
            format!("key: {:#?}", SEED.to_vec()),
            format!("{:#x?}", &SEED[5..15]),
        ] {
            assert!(leaked_form(&leak, &forms).is_some(), "missed: {leak}");
        }
        for clean in ["kid 0123456789abcdef", "[1, 2, 3]", "", "AAAAAAAAAAAAAAAA"] {
            assert_eq!(leaked_form(clean, &forms), None, "{clean}");
        }
    }

    /// A stand-in envelope: 40 bytes of header and claims, then a 64-byte signature.
    fn envelope() -> Vec<u8> {
        // A fixed pseudo-random sequence (an LCG), like a signature's bytes.
        let mut x: u32 = 0x1234_5678;
        (0..104)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                x.to_be_bytes()[0]
            })
            .collect()
    }

    #[test]
    fn every_encoding_of_a_whole_envelope_is_found_and_its_public_parts_are_not() {
        let env = envelope();
        let whole_debug = format!("{env:?}");
        assert!(whole_debug.starts_with('['), "the shape this test is about");
        let mut leaks: Vec<Vec<u8>> = vec![
            env.clone(),
            format!("headers: {whole_debug}").into_bytes(),
            format!("{env:#?}").into_bytes(),
            format!("{env:x?}").into_bytes(),
            format!("{env:#x?}").into_bytes(),
            format!("ByteArray({:?})", &env[30..]).into_bytes(),
            hex::encode(&env).into_bytes(),
            hex::encode_upper(&env).into_bytes(),
            env.escape_ascii().to_string().into_bytes(),
        ];
        for skip in 0..3 {
            for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
                leaks.push(engine.encode(&env[skip..]).into_bytes());
            }
        }
        for leak in &leaks {
            assert!(
                envelope_leak(leak, &env).is_some(),
                "missed: {}",
                String::from_utf8_lossy(leak)
            );
        }
        // What may be logged: the header and claims (cti, kid) in any encoding.
        let public = &env[..40];
        for clean in [
            hex::encode(public),
            format!("{public:?}"),
            URL_SAFE_NO_PAD.encode(public),
            "[1, 2, 3]".to_owned(),
        ] {
            assert_eq!(envelope_leak(clean.as_bytes(), &env), None, "{clean}");
        }
    }
}
