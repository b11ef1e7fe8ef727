//! The CLI never prints a secret key: every command, on success and on the failures a secret
//! key file can cause (given where a public key or an envelope is expected, damaged, with
//! loose permissions), is checked on stdout and stderr, with logging at its most verbose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Dir, SIGN_ARGS, set_mode};

/// Every form of the key file's seed a leak could take (hex, byte lists plain and pretty,
/// base64 at any alignment, the PEM's lines): the one list the signer's tests use too.
fn secret_forms(pem: &str) -> Vec<String> {
    let seed = laissez_test_support::seed_of_pkcs8_pem(pem).expect("a PKCS#8 key file");
    laissez_test_support::secret_forms(&seed, pem)
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
        laissez_test_support::assert_no_secret(
            &format!("`laissez {}`", args.join(" ")),
            &printed,
            &forms,
        );
    }
    // The check can fail: each way a seed could be printed is caught (not only the PEM text,
    // which contains the forms by construction).
    let seed = laissez_test_support::seed_of_pkcs8_pem(&pem).unwrap();
    for leak in [
        hex::encode(seed),
        format!("{seed:?}"),
        format!("{seed:#?}"),
        format!("{seed:x?}"),
        URL_SAFE_NO_PAD.encode(&seed[1..]),
        STANDARD.encode(&seed[2..]),
    ] {
        assert!(
            laissez_test_support::leaked_form(&leak, &forms).is_some(),
            "the check misses {leak}"
        );
    }
}
