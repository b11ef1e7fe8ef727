//! The CLI never prints a secret key: every command, on success and on the failures a secret
//! key file can cause (given where a public key or an envelope is expected, damaged, with
//! loose permissions), is checked on stdout and stderr, with logging at its most verbose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use common::{Dir, SIGN_ARGS, set_mode};

/// Hex and base64 (any alignment) of every 6-byte window of the seed, and the tail of every
/// PEM body line.
fn secret_forms(pem: &str) -> Vec<String> {
    let der = STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    // An Ed25519 PKCS#8 v1 document ends with the 32-byte seed.
    let seed = &der[der.len() - 32..];
    let mut forms = Vec::new();
    for window in seed.windows(6) {
        forms.push(hex::encode(window));
        forms.push(hex::encode_upper(window));
    }
    for skip in 0..3 {
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            let text = engine.encode(&seed[skip..]);
            forms.push(text[..12].to_string());
            forms.push(text[text.len() - 16..text.len() - 4].to_string());
        }
    }
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        forms.push(line[line.len().saturating_sub(16)..].to_string());
    }
    forms
}

#[test]
fn no_command_prints_the_secret_key() {
    let dir = Dir::new();
    dir.keygen("orch.key");
    let pem = std::fs::read_to_string(dir.path("orch.key")).unwrap();
    let forms = secret_forms(&pem);
    let envelope = dir.sign("orch.key", SIGN_ARGS);
    std::fs::write(dir.path("damaged.key"), &pem[..pem.len() / 2]).unwrap();
    set_mode(&dir.path("damaged.key"), 0o600);
    std::fs::copy(dir.path("orch.key"), dir.path("loose.key")).unwrap();
    set_mode(&dir.path("loose.key"), 0o644);

    let mut sign_json = vec!["sign", "--key", "orch.key", "--json"];
    sign_json.extend_from_slice(SIGN_ARGS);
    let mut sign_loose = vec!["sign", "--key", "loose.key"];
    sign_loose.extend_from_slice(SIGN_ARGS);
    let mut sign_damaged = vec!["sign", "--key", "damaged.key"];
    sign_damaged.extend_from_slice(SIGN_ARGS);
    let mut sign_public = vec!["sign", "--key", "orch.key.pub"];
    sign_public.extend_from_slice(SIGN_ARGS);
    let runs: Vec<(Vec<&str>, Option<&str>)> = vec![
        (vec!["keygen", "--out", "other.key"], None),
        (vec!["keygen", "--out", "orch.key"], None),
        (vec!["pubkey", "--key", "orch.key"], None),
        (vec!["pubkey", "--key", "loose.key"], None),
        (vec!["pubkey", "--key", "damaged.key"], None),
        (sign_json, None),
        (sign_loose, None),
        (sign_damaged, None),
        (sign_public, None),
        // A secret key given as the trust file.
        (
            vec![
                "verify",
                "--trust",
                "orch.key",
                "--aud",
                "billing-queue",
                &envelope,
            ],
            None,
        ),
        (
            vec![
                "verify",
                "--trust",
                "orch.key.pub",
                "--aud",
                "billing-queue",
                "--json",
                &envelope,
            ],
            None,
        ),
        // The secret key's PEM given as the envelope.
        (
            vec![
                "verify",
                "--trust",
                "orch.key.pub",
                "--aud",
                "billing-queue",
                "--json",
                "-",
            ],
            Some(pem.as_str()),
        ),
        (vec!["inspect", "-"], Some(pem.as_str())),
        (vec!["inspect", "--json", "-"], Some(pem.as_str())),
        (vec!["inspect", "--json", &envelope], None),
    ];
    for (args, stdin) in runs {
        let mut cmd = dir.laissez(&args);
        cmd.env("RUST_LOG", "trace").env("RUST_BACKTRACE", "1");
        if let Some(input) = stdin {
            cmd.write_stdin(input.as_bytes().to_vec());
        }
        let out = cmd.output().unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for form in &forms {
            assert!(
                !printed.contains(form.as_str()),
                "`laissez {}` printed secret material ({form}):\n{printed}",
                args.join(" ")
            );
        }
    }
    // The check can fail: the key file itself is caught.
    assert!(forms.iter().any(|f| pem.contains(f.as_str())));
}
