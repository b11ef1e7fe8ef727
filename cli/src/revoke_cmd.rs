//! `laissez revoke`: signs a revocation record (`docs/spec.md` §14) and prints it, or
//! publishes it to the revocation stream with publisher confirms.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args};
use laissez_amqp::lapin::ConnectionProperties;
use laissez_amqp::{
    AmqpError, DEFAULT_REVOCATION_STREAM, TlsConfig, declare_stream, publish_record,
};
use laissez_sign::keyfile::read_secret_key_file;
use laissez_sign::{DEFAULT_KEEP, RevocationBuilder, SignedRecord};
use laissez_verify::Kid;

use crate::failure::Failure;
use crate::output::{write_stderr_line, write_stdout};

pub(crate) const REVOKE_HELP: &str = "\
Each entry takes authority away; a record holds 1 to 64 of them:
  --cti HEX      one envelope (32 hex digits, as `inspect` shows it)
  --kid HEX      every envelope signed by that key or bound to it (cnf): a leaked key
  --agent ID     every envelope for that agent issued up to now: a compromised agent
  --session S    every envelope of that session issued up to now: the end of a task
  --obo P        every envelope on behalf of that principal issued up to now: a departed user
Workers keep the record for --keep (default and most 168h): keep it at least as long as
what it revokes may still be valid.

Without --amqp it prints the record as base64url. With --amqp it publishes it to the
revocation stream (--stream, default laissez.revocations; declared as workers declare it
when absent, so workers started later still apply it), mandatory and with publisher
confirms, and prints it too: a record that reaches no stream is exit 3, never a silent
success. Only --amqp on the command line publishes: an environment variable alone never
turns printing into publishing. `--amqp` without a URL takes it from LAISSEZ_AMQP_URL (which
keeps a password out of the process list). An amqps:// URL connects over TLS: the
system's CA bundle is trusted, or only --amqp-ca FILE when given; --amqp-cert and --amqp-key
send a client certificate (from LAISSEZ_AMQP_CA, LAISSEZ_AMQP_CERT, LAISSEZ_AMQP_KEY too).

Exit 0 done, 2 usage error, 3 I/O, key or broker error.

Examples:
  laissez revoke --key orchestrator.key --session task-42 --amqp amqp://127.0.0.1:5672/%2f
  laissez revoke --key orchestrator.key --kid 3f2a9c01d4e5b6a7 > revoked.txt";

/// How long `revoke --amqp` tries to reach the broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `revoke`.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("entries")
        .required(true)
        .multiple(true)
        .args(["cti", "kid", "agent", "session", "obo"])
))]
pub(crate) struct RevokeArgs {
    /// A trusted issuer's secret key file (PKCS#8 PEM).
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    key: PathBuf,
    /// Revoke one envelope by its cti (32 hex digits).
    #[arg(long, value_name = "HEX", value_parser = cti_arg)]
    cti: Vec<[u8; 16]>,
    /// Revoke every envelope signed by or bound to the key with this kid (16 hex digits).
    #[arg(long, value_name = "HEX", value_parser = kid_arg)]
    kid: Vec<Kid>,
    /// Revoke every envelope for this agent issued up to now.
    #[arg(long, value_name = "ID", value_parser = crate::name_arg)]
    agent: Vec<String>,
    /// Revoke every envelope of this session issued up to now.
    #[arg(long, value_name = "S", value_parser = crate::name_arg)]
    session: Vec<String>,
    /// Revoke every envelope on behalf of this principal issued up to now.
    #[arg(long, value_name = "P", value_parser = crate::name_arg)]
    obo: Vec<String>,
    /// How long workers keep the record, at most 168h [default: 168h].
    #[arg(long, value_name = "DUR", value_parser = crate::parse_duration_arg)]
    keep: Option<u64>,
    /// Publish to the revocation stream of this broker; without a URL, the one in
    /// LAISSEZ_AMQP_URL. Without --amqp the record is only printed, whatever the environment
    /// holds.
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        default_missing_value = ""
    )]
    amqp: Option<String>,
    #[command(flatten)]
    tls: crate::amqp_tls::AmqpTlsArgs,
    /// The revocation stream.
    #[arg(long, value_name = "NAME", requires = "amqp", value_parser = crate::name_arg)]
    stream: Option<String>,
}

fn cti_arg(text: &str) -> Result<[u8; 16], String> {
    let bytes = hex_bytes(text).ok_or("a cti is 32 hex digits")?;
    <[u8; 16]>::try_from(bytes).map_err(|_| "a cti is 32 hex digits".to_owned())
}

fn kid_arg(text: &str) -> Result<Kid, String> {
    Kid::from_hex(text).ok_or_else(|| "a kid is 16 hex digits".to_owned())
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(crate) fn revoke(args: &RevokeArgs) -> Result<(), Failure> {
    // Publishing is asked for on the command line only (`docs/spec.md` §14): `--amqp URL`, or
    // `--amqp` alone for the URL in LAISSEZ_AMQP_URL.
    let url = match args.amqp.as_deref() {
        None => None,
        Some("") => Some(
            std::env::var("LAISSEZ_AMQP_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    Failure::usage(
                        "--amqp without a URL takes it from LAISSEZ_AMQP_URL, which is not set",
                    )
                })?,
        ),
        Some(url) => Some(url.to_owned()),
    };
    let keep = args.keep.unwrap_or(DEFAULT_KEEP);
    let mut builder = RevocationBuilder::new().keep_secs(keep);
    for cti in &args.cti {
        builder = builder.cti(*cti);
    }
    for kid in &args.kid {
        builder = builder.kid(*kid);
    }
    for agent in &args.agent {
        builder = builder.agent(agent);
    }
    for session in &args.session {
        builder = builder.session(session);
    }
    for obo in &args.obo {
        builder = builder.obo(obo);
    }
    let key = read_secret_key_file(&args.key)?;
    let record = builder.sign(&key).map_err(|e| match e.code() {
        "encoding" | "self_check" => Failure::io(format!("internal error: {e}")),
        _ => Failure::usage(e),
    })?;
    if let Some(url) = &url {
        let stream = args.stream.as_deref().unwrap_or(DEFAULT_REVOCATION_STREAM);
        let tls = args.tls.load(url)?;
        publish(url, tls.as_ref(), stream, &record).map_err(|e| {
            Failure::io(format!("revoke --amqp: {}", crate::amqp_tls::describe(&e)))
        })?;
        write_stderr_line(&format!(
            "laissez: revocation record published to {stream:?} (until {})",
            record.until()
        ));
    }
    write_stdout(format!("{}\n", record.to_text()).as_bytes())
}

fn publish(
    url: &str,
    tls: Option<&TlsConfig>,
    stream: &str,
    record: &SignedRecord,
) -> Result<(), AmqpError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // No recovery: one command, one connection, a broker that is down fails it.
        let properties =
            ConnectionProperties::default().with_connection_name("laissez revoke".into());
        let connecting = laissez_amqp::connect_with_properties(url, properties, tls);
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| AmqpError::Unreachable {
                what: "the AMQP broker",
                after: CONNECT_TIMEOUT,
            })??;
        declare_stream(&connection, stream).await?;
        let channel = connection.create_channel().await?;
        publish_record(&channel, stream, record.as_bytes()).await?;
        let _ = connection.close(200, "revoked".into()).await;
        Ok(())
    })
}
