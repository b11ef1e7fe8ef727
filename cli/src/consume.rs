//! `laissez consume`: the worker sidecar of CONTRACT §4, a thin layer over
//! `laissez_amqp::sidecar`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use laissez_amqp::sidecar::{self, DEFAULT_LEDGER_PATH, LedgerChoice, SidecarConfig};
use laissez_sign::keyfile::read_trust_file;

use crate::failure::Failure;

pub(crate) const CONSUME_HELP: &str = "\
Each message needs the headers laissez-envelope, laissez-tool, laissez-class and a message_id.
Denied messages are rejected to the queue's dead-letter exchange and never run. CMD gets the body
on stdin and LAISSEZ_AGENT, LAISSEZ_TOOL, LAISSEZ_CLASS, LAISSEZ_OBO, LAISSEZ_SESSION,
LAISSEZ_CTI, LAISSEZ_USE, LAISSEZ_MESSAGE_ID; exit 0 acks, any other exit dead-letters. CMD's
stdout goes to stderr: stdout has one JSON decision per message:
{\"message_id\",\"allowed\",\"reason\",\"cti\",\"agent\",\"tool\",\"class\",\"use\"}.
SIGTERM or --exit-when-idle stop gracefully. The default ledger is ./laissez-ledger.redb.

Example:
  laissez consume --amqp amqp://guest:guest@127.0.0.1:5672/%2f --queue billing \\
      --trust orchestrator.pub --aud billing-queue --exec python3 worker.py";

/// Arguments of `consume`.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// The broker URL, e.g. amqp://guest:guest@127.0.0.1:5672/%2f.
    #[arg(long, value_name = "URL")]
    amqp: String,
    /// The queue to consume (as it exists: nothing is declared).
    #[arg(long, value_name = "Q")]
    queue: String,
    /// Trust file: one or more SPKI PEM public keys (repeatable).
    #[arg(long = "trust", value_name = "FILE", required = true)]
    trust: Vec<PathBuf>,
    /// This worker's audience (queue or pool name).
    #[arg(long, value_name = "NAME")]
    aud: String,
    /// Embedded use ledger file [default: ./laissez-ledger.redb].
    #[arg(long, value_name = "PATH", conflicts_with = "redis")]
    ledger: Option<PathBuf>,
    /// Share the use ledger in Redis instead, e.g. redis://127.0.0.1:6379/.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Messages fetched ahead and run at once.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    prefetch: u16,
    /// Stop once no message has come for this long and none is running.
    #[arg(long, value_name = "DUR", value_parser = crate::parse_duration_arg)]
    exit_when_idle: Option<u64>,
    /// Run CMD with ARGs once per authorised message (must come last).
    #[arg(long, value_name = "CMD ARG", num_args = 1.., allow_hyphen_values = true)]
    exec: Vec<String>,
}

pub(crate) fn consume(args: &ConsumeArgs) -> Result<(), Failure> {
    let mut keys = Vec::new();
    for path in &args.trust {
        keys.extend(read_trust_file(path)?);
    }
    if args.queue.is_empty() || args.aud.is_empty() {
        return Err(Failure::usage("--queue and --aud must not be empty"));
    }
    let mut config = SidecarConfig::new(&args.amqp, &args.queue, &args.aud, keys);
    config.ledger = match (&args.redis, &args.ledger) {
        (Some(url), _) => LedgerChoice::Redis(url.clone()),
        (None, Some(path)) => LedgerChoice::Redb(path.clone()),
        (None, None) => LedgerChoice::Redb(PathBuf::from(DEFAULT_LEDGER_PATH)),
    };
    config.prefetch = args.prefetch;
    config.exit_when_idle = args.exit_when_idle.map(Duration::from_secs);
    config.exec.clone_from(&args.exec);
    // Decisions go to stdout as JSON; the audit events and diagnostics to stderr.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    sidecar::run_blocking(config).map_err(|e| Failure::io(e.to_string()))?;
    Ok(())
}
