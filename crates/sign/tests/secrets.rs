//! Secret keys never show up in what the signer prints: Debug (plain and pretty) and Display
//! of the key, of the builder and signed envelope, and of every error a secret key file can
//! cause — in hex, base64 (any alignment) or as a Rust byte list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use laissez_sign::keyfile::{read_secret_key_file, read_trust_file, write_key_files};
use laissez_sign::{EnvelopeBuilder, SecretKey, parse_public_key_pem, parse_trust_pem};

/// A seed whose every 6-byte window is distinctive.
const SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];

/// Every form of the seed (and of the PKCS#8 document holding it) a leak could take.
fn secret_forms(pem: &str) -> Vec<String> {
    laissez_test_support::secret_forms(&SEED, pem)
}

fn assert_clean(what: &str, text: &str, forms: &[String]) {
    laissez_test_support::assert_no_secret(what, text, forms);
}

#[test]
fn the_forms_do_find_a_leak() {
    // The check itself must be able to fail.
    let key = SecretKey::from_seed(&SEED).unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    let forms = secret_forms(&pem);
    for leak in [
        hex::encode(SEED),
        STANDARD.encode(SEED),
        URL_SAFE_NO_PAD.encode(&SEED[1..]),
        format!("{SEED:?}"),
        format!("{SEED:#?}"),
        pem.to_string(),
    ] {
        assert!(
            laissez_test_support::leaked_form(&leak, &forms).is_some(),
            "{leak}"
        );
    }
}

#[test]
fn debug_of_the_key_and_the_signer_holds_no_key_bytes() {
    let key = SecretKey::from_seed(&SEED).unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    let forms = secret_forms(&pem);
    assert_clean("Debug of SecretKey", &format!("{key:?}"), &forms);
    assert_clean("pretty Debug of SecretKey", &format!("{key:#?}"), &forms);
    assert!(format!("{key:?}").contains(&key.kid().to_string()));
    let loaded = SecretKey::from_pkcs8_pem(&pem);
    assert_clean("Debug of Result<SecretKey>", &format!("{loaded:?}"), &forms);

    let builder = EnvelopeBuilder::new("agent")
        .audience("q")
        .tool("crm.read")
        .issuer("orchestrator");
    let signed = builder.sign(&key).unwrap();
    assert_clean("Debug of EnvelopeBuilder", &format!("{builder:#?}"), &forms);
    assert_clean("Debug of SignedEnvelope", &format!("{signed:#?}"), &forms);
    assert_clean("the envelope's text", &signed.to_text(), &forms);
    assert_clean(
        "the envelope's bytes",
        &hex::encode(signed.as_bytes()),
        &forms,
    );

    let public = key.public_key();
    assert_clean("Debug of TrustedKey", &format!("{public:#?}"), &forms);
    assert_clean("public key PEM", &key.public_key_pem().unwrap(), &forms);
}

#[test]
fn errors_about_secret_keys_hold_no_key_bytes() {
    let key = SecretKey::from_seed(&SEED).unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    let forms = secret_forms(&pem);
    let body: Vec<&str> = pem.lines().collect();

    // Damaged secret keys: every error, Debug and Display.
    let truncated = format!("{}\n{}\n", body[0], &body[1][..body[1].len() - 4]);
    let flipped = pem.replacen('A', "B", 1);
    let wrong_label = pem.replace("PRIVATE KEY", "PUBLIC KEY");
    let inputs = [
        truncated.as_str(),
        flipped.as_str(),
        wrong_label.as_str(),
        &pem[..pem.len() / 2],
    ];
    for bad in inputs {
        match SecretKey::from_pkcs8_pem(bad) {
            Err(e) => {
                assert_clean("KeyError Display", &e.to_string(), &forms);
                assert_clean("KeyError Debug", &format!("{e:?}"), &forms);
            }
            // Only a flip inside the seed's base64 can still be a key (another key); the
            // structural damages must be refused.
            Ok(other) => {
                assert!(
                    std::ptr::eq(bad, flipped.as_str()),
                    "damaged key parsed: {bad}"
                );
                assert_ne!(other.kid(), key.kid(), "the flip changed nothing");
                assert_clean("Debug of the other key", &format!("{other:#?}"), &forms);
            }
        }
        // A secret key handed over where public keys are expected.
        for e in [
            parse_public_key_pem(bad).err(),
            parse_trust_pem(bad).err(),
            parse_public_key_pem(&pem).err(),
            parse_trust_pem(&pem).err(),
        ]
        .into_iter()
        .flatten()
        {
            assert_clean("public-key error Display", &e.to_string(), &forms);
            assert_clean("public-key error Debug", &format!("{e:?}"), &forms);
        }
    }

    // Key files: loose permissions, a secret key given as a trust file, and overwriting.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.key");
    write_key_files(&path, &key, false).unwrap();
    let refused = write_key_files(&path, &key, false).unwrap_err();
    assert_clean(
        "overwrite refusal",
        &format!("{refused} {refused:?}"),
        &forms,
    );
    let as_trust = read_trust_file(&path).unwrap_err();
    assert_clean(
        "secret key as trust",
        &format!("{as_trust} {as_trust:?}"),
        &forms,
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let loose = read_secret_key_file(&path).unwrap_err();
    assert_clean("loose permissions", &format!("{loose} {loose:?}"), &forms);
    std::fs::write(&path, &truncated).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let damaged = read_secret_key_file(&path).unwrap_err();
    assert_clean(
        "damaged key file",
        &format!("{damaged} {damaged:?}"),
        &forms,
    );
}
