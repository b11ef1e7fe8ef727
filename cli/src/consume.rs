//! `laissez consume`: the worker sidecar of `docs/spec.md` §10. The library
//! (`laissez_amqp::sidecar::run`) consumes, decides and runs the command; this module is the
//! process around it: the arguments, the tool catalogue file, the Tokio runtime, the stop
//! signals, where the command's stdout goes, and logs that never show a URL's password.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use laissez_amqp::AmqpError;
use laissez_amqp::sidecar::{
    self, DEFAULT_HTTP_TIMEOUT, DEFAULT_LEDGER_PATH, HandOff, HttpHandOff, LedgerLocation,
    SidecarConfig,
};
use laissez_ledger::redact::redact_password;
use laissez_sign::keyfile::{read_trust_file, read_trust_files};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::failure::Failure;
use crate::log_format::{JsonLines, LogFormat, json_line};
use crate::metrics_endpoint::MetricsEndpoint;
use crate::tools_file;

pub(crate) const CONSUME_HELP: &str = "\
Each message needs the headers laissez-envelope and laissez-tool and a message_id. The class of a
call is this worker's: --tools FILE lists the tools it runs, each with its class, in TOML:

  [tools]
  \"crm.ticket.read\" = \"read\"
  \"crm.ticket.delete\" = \"destructive\"

A tool the file does not list is denied unknown_tool; a laissez-class header (optional) that
disagrees with the file is denied malformed. A holder-bound envelope (sign --holder) needs the
agent's invocation over exactly this call in the header laissez-invocation (raw bytes or
base64url; see laissez invoke): none is invocation_required, one signed for another message
id, queue or body invocation_mismatch. --require-holder refuses bearer envelopes too
(invocation_required). A class the envelope's approval rule covers (sign --approval) needs m
approvals from listed approvers in the header laissez-approvals; only keys of --approvers
count, and a key of --trust is refused there (exit 3). Short of m it is approval_required:
parked in the dead-letter queue with its headers intact, for laissez approve.
--require-approval CLASSES requires approval for those classes whatever the envelope says.
A delegated envelope (laissez delegate) comes with its ancestors, root first, in the header
laissez-chain: the root must be signed by a --trust key and each child by its parent's holder
(bad_delegation), no child wider than its parent (not_attenuated); a use spends one use of
every envelope of the chain. Denied messages are rejected to the queue's dead-letter exchange and
never run. Before taking a message, consume confirms that Q dead-letters to an exchange that
exists (the queue's x-dead-letter-exchange argument, learnt by declaring Q again as it is): if
not, exit 3 naming `laissez declare`, which declares Q with Q.dlx, Q.dlq and Q.retry;
--no-dead-letter-check skips this when dead letters are routed another way (e.g. a policy).
CMD gets the body on stdin and LAISSEZ_AGENT, LAISSEZ_TOOL, LAISSEZ_CLASS,
LAISSEZ_OBO, LAISSEZ_SESSION, LAISSEZ_CTI, LAISSEZ_USE, LAISSEZ_MESSAGE_ID, LAISSEZ_CHAIN (a
JSON array of the chain's agents, root first; one when not delegated),
LAISSEZ_APPROVED_BY (a JSON array of the hex kids of the approvers that counted) (never
LAISSEZ_AMQP_URL, LAISSEZ_REDIS_URL nor the TLS variables LAISSEZ_AMQP_CA/CERT/KEY and
LAISSEZ_REDIS_CA/CERT/KEY); exit 0 acks, any other exit dead-letters. CMD's stdout
goes to stderr. --http URL (instead of --exec) hands each message to a long-lived handler: an
HTTP/1.1 POST to URL (http:// only: the handler runs beside the worker) with the body as the
body, the message's content-type, and the same values as headers laissez-agent, laissez-tool,
laissez-class, laissez-obo, laissez-session, laissez-cti, laissez-use, laissez-message-id,
laissez-chain, laissez-approved-by; a 2xx answer acks, any other answer, a connection that
fails or no answer within --http-timeout (default 30s) dead-letters. Up to --prefetch requests
run at once, on kept-alive connections. A message id, agent, obo or session holding a control
character (C0 or DEL) is denied malformed before its use is spent, whatever the hand-off.
stdout has one JSON decision per message:
{\"message_id\",\"allowed\",\"reason\",\"cti\",\"agent\",\"tool\",\"class\",\"use\"}
(a call parked for approval adds \"outcome\":\"parked\"), then once CMD exited a line with the
same keys, \"outcome\" (handled or handler_failed, then \"error\"), \"exit_status\" and \"signal\"
(with --http: \"http_status\", null when no answer came).
--log-format json writes every log line on stderr as one JSON object; on stopping, the counts
by outcome are one JSON line on stderr (target laissez::summary).
--metrics ADDR serves Prometheus text at http://ADDR/metrics (decisions by outcome and reason,
decision latency, messages in flight, requeues, ledger errors, revocation lag; docs/amqp.md) and
readiness at /healthz: 200 once connected to the broker, caught up on the revocation stream and
the ledger answers, else 503 saying what is not ready. SIGTERM or --exit-when-idle stop
gracefully. The default ledger is ./laissez-ledger.redb (a warning says so). --amqp and --redis may come from LAISSEZ_AMQP_URL and LAISSEZ_REDIS_URL, which
keeps their passwords out of the process list; a URL's password is never printed.
An amqps:// URL connects over TLS (for every connection, the revocation stream's included):
the broker's certificate must chain to the system's CA bundle, or only to --amqp-ca FILE when
given, and name the URL's host; --amqp-cert and --amqp-key (PEM) send a client certificate.
A refused certificate stops at once, exit 3, naming the cause (never retried for
--exit-when-idle's sake nor as if the broker were down).
--redis names one server (redis://, rediss:// for TLS) or a Redis Cluster by one or more of its
nodes (redis+cluster://HOST:PORT,HOST:PORT..., rediss+cluster:// for TLS). Over TLS, --redis-ca FILE
is the only CA trusted (not the system's), --redis-cert and --redis-key (PKCS#8) give a client
certificate; a refused certificate exits 3.

Example:
  LAISSEZ_AMQP_URL=amqp://worker:secret@127.0.0.1:5672/%2f laissez consume --queue billing \\
      --trust orchestrator.pub --aud billing-queue --tools billing-tools.toml \\
      --exec python3 worker.py";

/// Arguments of `consume`.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// The broker URL, e.g. amqp://guest:guest@127.0.0.1:5672/%2f.
    #[arg(
        long,
        value_name = "URL",
        env = "LAISSEZ_AMQP_URL",
        hide_env_values = true
    )]
    amqp: String,
    #[command(flatten)]
    tls: crate::amqp_tls::AmqpTlsArgs,
    /// The queue to consume (as it exists: nothing is declared; see laissez declare).
    #[arg(long, value_name = "Q")]
    queue: String,
    /// Start without confirming that the queue dead-letters to an exchange that exists (dead
    /// letters routed another way, e.g. by a policy).
    #[arg(long)]
    no_dead_letter_check: bool,
    /// Trust file: one or more SPKI PEM public keys (repeatable).
    #[arg(long = "trust", value_name = "FILE", required = true)]
    trust: Vec<PathBuf>,
    /// This worker's audience (queue or pool name).
    #[arg(long, value_name = "NAME")]
    aud: String,
    /// The worker's tool catalogue: TOML, [tools] then "tool.name" = "read|write|destructive".
    #[arg(long, value_name = "FILE")]
    tools: PathBuf,
    /// Embedded use ledger file [default: ./laissez-ledger.redb].
    #[arg(long, value_name = "PATH", conflicts_with = "redis")]
    ledger: Option<PathBuf>,
    /// Share the use ledger in Redis instead: one server, e.g. redis://127.0.0.1:6379/
    /// (rediss:// for TLS), or a Redis Cluster by its nodes,
    /// redis+cluster://10.0.0.1:6379,10.0.0.2:6379 (rediss+cluster:// for TLS).
    #[arg(
        long,
        value_name = "URL",
        env = "LAISSEZ_REDIS_URL",
        hide_env_values = true
    )]
    redis: Option<String>,
    /// CA certificates (PEM) a rediss:// Redis must chain to; they replace the system's roots.
    #[arg(
        long,
        value_name = "FILE",
        env = "LAISSEZ_REDIS_CA",
        hide_env_values = true,
        requires = "redis",
        value_parser = crate::path_arg
    )]
    redis_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS with Redis; needs --redis-key.
    #[arg(
        long,
        value_name = "FILE",
        env = "LAISSEZ_REDIS_CERT",
        hide_env_values = true,
        requires_all = ["redis", "redis_key"],
        value_parser = crate::path_arg
    )]
    redis_cert: Option<PathBuf>,
    /// The client certificate's private key (PKCS#8 PEM); needs --redis-cert.
    #[arg(
        long,
        value_name = "FILE",
        env = "LAISSEZ_REDIS_KEY",
        hide_env_values = true,
        requires_all = ["redis", "redis_cert"],
        value_parser = crate::path_arg
    )]
    redis_key: Option<PathBuf>,
    /// Messages fetched ahead and run at once.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    prefetch: u16,
    /// Stop once no message has come for this long and none is running.
    #[arg(long, value_name = "DUR", value_parser = crate::parse_duration_arg)]
    exit_when_idle: Option<u64>,
    /// Refuse bearer envelopes: only holder-bound ones, with their holder's invocation, run.
    #[arg(long)]
    require_holder: bool,
    /// The revocation stream: declared when absent (a queue that is not a stream is exit 3),
    /// read from its first offset (or its proven mark) before any message is taken, then
    /// followed; no message is decided while it is lost (docs/spec.md §14).
    #[arg(long, value_name = "NAME", default_value = laissez_amqp::DEFAULT_REVOCATION_STREAM,
          value_parser = crate::name_arg)]
    revocations_stream: String,
    /// Approvers' keys: SPKI PEM files, one or more keys each (repeatable). Approvals signed
    /// with them count; never a key of --trust.
    #[arg(long = "approvers", value_name = "FILE", value_parser = crate::path_arg)]
    approvers: Vec<PathBuf>,
    /// Classes that need approval whatever the envelope says, joined by + or , (e.g.
    /// destructive): without an approval rule for the class, approval_required.
    #[arg(long, value_name = "CLASSES", value_parser = crate::parse_classes_arg)]
    require_approval: Option<laissez_verify::Classes>,
    /// Serve Prometheus metrics at http://ADDR/metrics and readiness at /healthz (200 once
    /// connected, caught up on revocations and the ledger answers; else 503). ADDR is
    /// IP:PORT; port 0 picks a free one (the address is printed on stderr).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// How log lines on stderr are written: text, or json (one JSON object per line, the audit
    /// event's object embedded as an object).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Run CMD with ARGs once per authorised message (must come last).
    #[arg(long, value_name = "CMD ARG", num_args = 1.., allow_hyphen_values = true)]
    exec: Vec<String>,
    /// POST each authorised message to a long-lived handler at this http:// URL instead of
    /// running a command: the body as the body, the values CMD gets as laissez-* headers; a
    /// 2xx answer acks, anything else dead-letters.
    #[arg(long, value_name = "URL", conflicts_with = "exec")]
    http: Option<String>,
    /// How long the --http handler has to answer each message [default: 30s]; no answer in
    /// time is a handler failure.
    #[arg(long, value_name = "DUR", requires = "http", conflicts_with = "exec",
          value_parser = crate::parse_duration_arg)]
    http_timeout: Option<u64>,
}

pub(crate) fn consume(args: &ConsumeArgs) -> Result<(), Failure> {
    let secrets = Secrets::of([Some(args.amqp.as_str()), args.redis.as_deref()]);
    if args.queue.is_empty() || args.aud.is_empty() {
        return Err(Failure::usage("--queue and --aud must not be empty"));
    }
    // A handler URL that cannot be used is a usage error before any file is read.
    let hand_off = hand_off(args)?;
    let tools = tools_file::load(&args.tools)?;
    let keys = read_trust_files(&args.trust)?;
    let approvers = read_approvers(&args.approvers, &keys)?;
    let tls = args.tls.load(&args.amqp)?;
    let mut config = SidecarConfig::new(&args.amqp, &args.queue, &args.aud, keys, tools);
    config.amqp_tls = tls;
    config.dead_letter_check = !args.no_dead_letter_check;
    config.approvers = approvers;
    config.require_approval = args.require_approval;
    config.ledger = match (&args.redis, &args.ledger) {
        // A URL that cannot be read fails as it did when the sidecar connected: exit 3.
        (Some(url), _) => {
            LedgerLocation::Redis(url.parse().map_err(|e: laissez_ledger::LedgerError| {
                Failure::io(secrets.redact(&e.to_string()))
            })?)
        }
        (None, Some(path)) => LedgerLocation::Redb(path.clone()),
        (None, None) => LedgerLocation::Redb(PathBuf::from(DEFAULT_LEDGER_PATH)),
    };
    config.redis_tls = redis_tls(args, &config.ledger)?;
    config.prefetch = args.prefetch;
    config.require_holder = args.require_holder;
    config.exit_when_idle = args.exit_when_idle.map(Duration::from_secs);
    config.hand_off = hand_off;
    config
        .revocation_stream
        .clone_from(&args.revocations_stream);
    config.command_stdout = stdout_for_command;
    // Decisions go to stdout as JSON; the audit events and diagnostics to stderr, with any
    // URL password blanked out.
    let writer = secrets.clone();
    let logs = tracing_subscriber::fmt()
        .with_writer(move || writer.stderr())
        .with_max_level(tracing::Level::INFO);
    // lapin's expected channel closes (a passive declare's NOT_FOUND) are not errors.
    let closes = crate::log_filter::ExpectedChannelCloses;
    let _ = match args.log_format {
        LogFormat::Text => logs.finish().with(closes).try_init(),
        LogFormat::Json => logs
            .event_format(JsonLines)
            .finish()
            .with(closes)
            .try_init(),
    };
    if args.redis.is_none() && args.ledger.is_none() {
        tracing::warn!(
            "laissez: the use ledger is {DEFAULT_LEDGER_PATH} in the working directory (no --ledger \
             or --redis): every worker of this audience must share it, so run them all from here \
             or name one ledger"
        );
    }
    // Bound before connecting: /healthz answers (503) while the worker is not ready yet.
    let endpoint = args
        .metrics
        .map(crate::metrics_endpoint::bind)
        .transpose()?;
    let stats = run_blocking(config, endpoint)
        .map_err(|e| Failure::io(secrets.redact(&crate::amqp_tls::describe(&e))))?;
    print_summary(&secrets, &args.queue, &stats);
    Ok(())
}

/// What is done with each authorised message: `--http`, `--exec` or nothing. A URL that
/// `--http` cannot use is a usage error (exit 2) naming what is wrong with it.
fn hand_off(args: &ConsumeArgs) -> Result<HandOff, Failure> {
    let Some(url) = &args.http else {
        return Ok(HandOff::exec(args.exec.clone()));
    };
    let timeout = args
        .http_timeout
        .map_or(DEFAULT_HTTP_TIMEOUT, Duration::from_secs);
    HttpHandOff::new(url, timeout)
        .map(HandOff::Http)
        .map_err(|e| Failure::usage(format!("--http: {e}")))
}

/// The shutdown summary: one JSON line on stderr, in either log format (`docs/spec.md` §10),
/// shaped like a `--log-format json` line with the counts by outcome in `summary`.
fn print_summary(secrets: &Secrets, queue: &str, stats: &laissez_amqp::Stats) {
    let mut fields = serde_json::Map::new();
    fields.insert("message".into(), "laissez: consume stopped".into());
    fields.insert("queue".into(), queue.into());
    let counts = serde_json::from_str(&stats.to_json()).unwrap_or_default();
    fields.insert("summary".into(), counts);
    let line = json_line("INFO", "laissez::summary", fields);
    // A closed stderr leaves nobody to tell.
    let _ = writeln!(secrets.stderr(), "{line}");
}

/// The Redis TLS options: only with a `rediss://` or `rediss+cluster://` URL (clap has
/// checked that a certificate comes with its key, and either with `--redis`).
fn redis_tls(
    args: &ConsumeArgs,
    ledger: &LedgerLocation,
) -> Result<laissez_ledger::RedisTls, Failure> {
    let mut tls = laissez_ledger::RedisTls::default();
    tls.ca.clone_from(&args.redis_ca);
    tls.client_cert.clone_from(&args.redis_cert);
    tls.client_key.clone_from(&args.redis_key);
    if tls.is_set() && !ledger.is_tls() {
        return Err(Failure::usage(
            "--redis-ca, --redis-cert and --redis-key need a rediss:// or rediss+cluster:// \
             --redis URL",
        ));
    }
    Ok(tls)
}

/// The approvers' keys of `paths` (trust files). A key that is also one of `issuers` is a key
/// error (exit 3): an issuer never approves its own calls. File by file rather than
/// `read_trust_files`: the error names the file the key is in, and a file after it is not read.
pub(crate) fn read_approvers(
    paths: &[PathBuf],
    issuers: &[laissez_verify::TrustedKey],
) -> Result<Vec<laissez_verify::TrustedKey>, Failure> {
    let mut approvers = Vec::new();
    for path in paths {
        for key in read_trust_file(path)? {
            if issuers.iter().any(|i| i.as_bytes() == key.as_bytes()) {
                return Err(Failure::io(format!(
                    "--approvers {}: the key {} is also a trusted issuer key (--trust); an issuer \
                     never approves its own calls, so approver keys must be other keys",
                    path.display(),
                    key.kid()
                )));
            }
            approvers.push(key);
        }
    }
    Ok(approvers)
}

/// Runs the sidecar on a new Tokio runtime until SIGTERM, SIGINT or the idle timeout.
fn run_blocking(
    config: SidecarConfig,
    endpoint: Option<MetricsEndpoint>,
) -> Result<laissez_amqp::Stats, AmqpError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Installed before connecting: a stop signal while connecting stops at once.
        let shutdown = termination()?;
        if let Some(endpoint) = endpoint {
            endpoint.serve(config.health.clone())?;
        }
        sidecar::run(config, shutdown).await
    })
}

/// A future that completes on SIGTERM or SIGINT. Must be called inside a Tokio runtime.
fn termination() -> Result<impl Future<Output = ()> + Send + 'static, AmqpError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("laissez: SIGTERM"),
                _ = int.recv() => tracing::info!("laissez: SIGINT"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// The command's stdout goes to our stderr: stdout carries only decision lines.
fn stdout_for_command() -> Stdio {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        match std::io::stderr().as_fd().try_clone_to_owned() {
            Ok(fd) => Stdio::from(fd),
            Err(_) => Stdio::null(),
        }
    }
    #[cfg(not(unix))]
    {
        Stdio::inherit()
    }
}

/// The URLs given, whose passwords (as written and percent-decoded) are never printed.
#[derive(Clone, Default)]
struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    fn of<'a>(urls: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        Secrets(urls.into_iter().flatten().map(str::to_owned).collect())
    }

    fn redact(&self, text: &str) -> String {
        self.0
            .iter()
            .fold(text.to_owned(), |text, url| redact_password(url, &text))
    }

    fn stderr(&self) -> RedactingStderr {
        RedactingStderr(self.clone())
    }
}

/// Stderr, with the secrets blanked out. The log formatter writes each event in one call.
struct RedactingStderr(Secrets);

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(self.0.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passwords_of_every_url_are_blanked_out() {
        let secrets = Secrets::of([
            Some("amqp://u:s3cret@h/%2f"),
            Some("redis://:p%40ss@r/"),
            None,
        ]);
        assert_eq!(
            secrets.redact("s3cret and p%40ss and p@ss"),
            "*** and *** and ***"
        );
        assert!(!format!("{secrets:?}").contains("s3cret"));
    }
}
