//! `laissez consume`: a worker sidecar for any language (`docs/spec.md` §10).
//!
//! It consumes a queue through the [`Middleware`], prints one JSON line per decision on
//! stdout, and hands each authorised message to the worker ([`HandOff`]): either it runs a
//! command once per message, the body on its stdin, the decision in `LAISSEZ_*` environment
//! variables (`LAISSEZ_APPROVED_BY`: the approvers that counted, a JSON array of hex kids),
//! exit 0 acking and any other exit (or a command that cannot start) dead-lettering; or it
//! POSTs the message to a long-lived HTTP handler ([`HttpHandOff`]), a 2xx answer acking.
//! Without either it decides, acks what is allowed, and logs. The process around it (the runtime, signals, where the command's stdout goes, the
//! metrics recorder and its HTTP listener) is the caller's: the `laissez` CLI. Its readiness
//! is reported to [`Health`] ([`SidecarConfig::health`]).

use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use laissez_ledger::{AnyLedger, RedisOptions, RedisTls};
use laissez_verify::owned::OwnedCatalogue;
use laissez_verify::{Classes, Policy, TrustedKey};
use tokio::io::AsyncWriteExt as _;

use crate::config::ConsumerConfig;
use crate::connect::{connect, connect_with_tls};
use crate::consumer::Middleware;
use crate::dead_letters::check_dead_letters;
use crate::decision::Decision;
use crate::error::AmqpError;
use crate::handler::{Disposition, HandlerError, Message};
use crate::revocations::{DEFAULT_REVOCATION_STREAM, RevocationFollower};
use crate::shared::Stats;
use crate::tls::TlsConfig;

mod health;
mod http;

pub use health::{Health, LEDGER_PROBE_TIMEOUT};
pub use http::{DEFAULT_HTTP_TIMEOUT, HttpHandOff, HttpUrlError, http_headers};
/// Where the sidecar spends uses ([`SidecarConfig::ledger`]): `laissez-ledger`'s one reading
/// of a ledger's path or URL, whose `Debug` and `Display` never show a password.
pub use laissez_ledger::LedgerLocation;

/// Environment variables the command never inherits: they may hold the worker's broker and
/// ledger credentials (the CLI reads `--amqp` and `--redis` from them) or name their TLS
/// client keys and trust (`--amqp-ca`, `--amqp-cert`, `--amqp-key`, `--redis-ca`, `--redis-cert`,
/// `--redis-key`).
pub const SECRET_ENV: [&str; 8] = [
    "LAISSEZ_AMQP_URL",
    "LAISSEZ_REDIS_URL",
    "LAISSEZ_AMQP_CA",
    "LAISSEZ_AMQP_CERT",
    "LAISSEZ_AMQP_KEY",
    "LAISSEZ_REDIS_CA",
    "LAISSEZ_REDIS_CERT",
    "LAISSEZ_REDIS_KEY",
];

/// The ledger file used when neither a path nor Redis is given: in the working directory.
pub const DEFAULT_LEDGER_PATH: &str = "laissez-ledger.redb";

/// How long the sidecar tries to reach the broker at start, by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The least time the sidecar gives the revocation stream to catch up at start.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// What the sidecar does with each authorised message (`consume --exec` or `consume --http`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum HandOff {
    /// Nothing: decide, ack what is allowed, and log.
    #[default]
    DecideOnly,
    /// Run this command and its arguments once per message (never empty: an empty one is
    /// [`HandOff::DecideOnly`]).
    Exec(Vec<String>),
    /// POST each message to a long-lived HTTP handler.
    Http(HttpHandOff),
}

impl HandOff {
    /// A command and its arguments; [`HandOff::DecideOnly`] when `command` is empty.
    pub fn exec(command: Vec<String>) -> Self {
        if command.is_empty() {
            HandOff::DecideOnly
        } else {
            HandOff::Exec(command)
        }
    }
}

/// Everything `laissez consume` takes.
#[derive(Clone)]
#[non_exhaustive]
pub struct SidecarConfig {
    /// The broker, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`. Never logged nor shown by
    /// `Debug`: it may hold a password.
    pub amqp_url: String,
    /// TLS options for an `amqps://` URL: the CA to trust and the client certificate
    /// (`None`: the system's CA bundle, no client certificate). Given with an `amqp://` URL,
    /// [`run`] fails ([`AmqpError::Tls`]) rather than ignore them. Used for every connection
    /// of the sidecar, the revocation follower's included.
    pub amqp_tls: Option<TlsConfig>,
    /// The queue, as it exists (nothing is declared).
    pub queue: String,
    /// Whether to confirm, before taking a message, that the queue dead-letters to an
    /// exchange that exists ([`crate::check_dead_letters`]): without one, denials and calls
    /// parked for approval would be dropped. Default `true`; `false` (`consume
    /// --no-dead-letter-check`) when dead letters are routed another way, e.g. by a policy.
    pub dead_letter_check: bool,
    /// This worker's audience name.
    pub audience: String,
    /// Trusted keys.
    pub trusted_keys: Vec<TrustedKey>,
    /// The worker's tool catalogue: the tools the command runs, each with its class.
    pub tools: OwnedCatalogue,
    /// The use ledger: a redb file or a Redis URL (one server, `redis://`, `rediss://`, or a
    /// Cluster, `redis+cluster://host:port,host:port…`, `rediss+cluster://`); its TLS options
    /// are [`SidecarConfig::redis_tls`]. Default [`DEFAULT_LEDGER_PATH`].
    pub ledger: LedgerLocation,
    /// TLS options of a `rediss://` ledger (CA, client certificate and key). Default none: the
    /// system's roots, no client certificate.
    pub redis_tls: RedisTls,
    /// Prefetch (and concurrency). Default 1: one command at a time.
    pub prefetch: u16,
    /// Stop after this long with no message and none in flight.
    pub exit_when_idle: Option<Duration>,
    /// What is done with each authorised message: nothing (decide only, the default), a
    /// command, or an HTTP handler.
    pub hand_off: HandOff,
    /// The lease of each use: must exceed the handler's longest run. Default 5 minutes.
    pub lease: Duration,
    /// Leeway and maximum lifetime.
    pub policy: Policy,
    /// Refuse bearer envelopes (`--require-holder`): an envelope without `cnf` is
    /// `invocation_required`, so every command that runs was called by its envelope's holder.
    /// Holder-bound envelopes need their holder's invocation (`laissez-invocation`) whatever
    /// this says. Default `false`; also on when `policy` requires it.
    pub require_holder: bool,
    /// The approvers' public keys (`--approvers`): approvals signed with them count
    /// (`docs/spec.md` §12). Never a trusted issuer key: [`run`] refuses one
    /// ([`AmqpError::Config`], exit 3). Default none.
    pub approvers: Vec<TrustedKey>,
    /// Classes that need approval whatever the envelope says (`--require-approval`). Default
    /// none.
    pub require_approval: Option<Classes>,
    /// How long to keep trying to reach the broker at start before giving up with
    /// [`AmqpError::Unreachable`] (the CLI exits 3). Default 30 s. Once connected, a lost
    /// connection is waited out by lapin's recovery instead.
    pub connect_timeout: Duration,
    /// The revocation stream (`docs/spec.md` §14), declared when absent. Default
    /// `laissez.revocations`. No message is taken before the records it held at start are
    /// applied; then it is followed live, and no message is decided while it is lost.
    pub revocation_stream: String,
    /// Where each command's standard output goes, made once per command. Default: discarded,
    /// since stdout carries the decision lines; the CLI sends it to its stderr.
    pub command_stdout: fn() -> Stdio,
    /// Where the run reports its readiness (`laissez consume --metrics`'s `/healthz`): the
    /// broker connection, the revocation follower and the ledger, as each is made. Default:
    /// a fresh one nobody asks.
    pub health: Health,
}

impl std::fmt::Debug for SidecarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarConfig")
            .field("amqp_url", &"..")
            .field("amqp_tls", &self.amqp_tls)
            .field("queue", &self.queue)
            .field("dead_letter_check", &self.dead_letter_check)
            .field("audience", &self.audience)
            .field("trusted_keys", &self.trusted_keys)
            .field("tools", &self.tools)
            .field("ledger", &self.ledger)
            .field("redis_tls", &self.redis_tls)
            .field("prefetch", &self.prefetch)
            .field("exit_when_idle", &self.exit_when_idle)
            .field("hand_off", &self.hand_off)
            .field("lease", &self.lease)
            .field("policy", &self.policy)
            .field("require_holder", &self.require_holder)
            .field("approvers", &self.approvers)
            .field("require_approval", &self.require_approval)
            .field("connect_timeout", &self.connect_timeout)
            .field("revocation_stream", &self.revocation_stream)
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl SidecarConfig {
    /// A configuration with the defaults: the default ledger file, prefetch 1, no command,
    /// bearer envelopes accepted.
    pub fn new(
        amqp_url: impl Into<String>,
        queue: impl Into<String>,
        audience: impl Into<String>,
        trusted_keys: Vec<TrustedKey>,
        tools: OwnedCatalogue,
    ) -> Self {
        SidecarConfig {
            amqp_url: amqp_url.into(),
            amqp_tls: None,
            queue: queue.into(),
            dead_letter_check: true,
            audience: audience.into(),
            trusted_keys,
            tools,
            ledger: LedgerLocation::Redb(PathBuf::from(DEFAULT_LEDGER_PATH)),
            redis_tls: RedisTls::default(),
            prefetch: 1,
            exit_when_idle: None,
            hand_off: HandOff::DecideOnly,
            lease: Duration::from_secs(300),
            policy: Policy::default(),
            require_holder: false,
            approvers: Vec::new(),
            require_approval: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            revocation_stream: DEFAULT_REVOCATION_STREAM.to_owned(),
            command_stdout: Stdio::null,
            health: Health::new(),
        }
    }
}

/// Runs the sidecar until `shutdown` completes or the idle timeout passes; then stops
/// gracefully (nothing in flight is lost) and returns the counters.
pub async fn run(
    config: SidecarConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Stats, AmqpError> {
    // The whole consumer configuration first: a key error never waits for the broker.
    let mut consumer = ConsumerConfig::new(
        &config.queue,
        &config.audience,
        config.trusted_keys,
        config.tools,
    )
    .prefetch(config.prefetch)
    .lease(config.lease)
    .policy(config.policy)
    .require_holder(config.require_holder || config.policy.require_holder())
    .idle_timeout(config.exit_when_idle)
    // The command gets the values in its environment, where a NUL cannot go, and the HTTP
    // handler in headers, where no control character can; every worker decides the same, so
    // that a decision never depends on the hand-off.
    .refuse_control_characters(true)
    .approvers(config.approvers)?;
    if let Some(classes) = config.require_approval {
        consumer = consumer.require_approval(classes);
    }
    let mut options = RedisOptions::default();
    options.tls = config.redis_tls.clone();
    let ledger = Arc::new(config.ledger.open(options).await?);
    config.health.set_ledger(ledger.clone());
    // lapin's recovery retries a refused first connection for minutes; at start a worker should
    // rather fail fast (exit 3) and leave restarts to its supervisor, and a stop signal must
    // not wait for the broker.
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::info!(
        timeout_s = config.connect_timeout.as_secs_f64(),
        "laissez: connecting to the AMQP broker"
    );
    let connecting = tokio::time::timeout(
        config.connect_timeout,
        connect_to(&config.amqp_url, config.amqp_tls.as_ref()),
    );
    let connection = tokio::select! {
        connected = connecting => match connected {
            Ok(connection) => connection?,
            Err(_elapsed) => {
                return Err(AmqpError::Unreachable {
                    what: "the AMQP broker",
                    after: config.connect_timeout,
                });
            }
        },
        () = shutdown.as_mut() => {
            tracing::info!("laissez: stopped before the broker was reached");
            return Ok(Stats::default());
        }
    };
    if config.dead_letter_check {
        let exchange = check_dead_letters(&connection, &config.queue).await?;
        tracing::info!(queue = ?config.queue, dead_letter_exchange = ?exchange,
            "laissez: refused and parked messages go to the dead-letter exchange");
    }
    config.health.set_broker(connection.status().clone());
    // Every record the stream holds now is applied before the first work message is taken.
    let follower = tokio::select! {
        started = start_follower(
            &config.amqp_url,
            config.amqp_tls.as_ref(),
            &config.revocation_stream,
            consumer.trusted_keys.clone(),
            ledger.clone(),
            config.connect_timeout.max(CATCH_UP_TIMEOUT),
        ) => started?,
        () = shutdown.as_mut() => {
            tracing::info!("laissez: stopped before the revocations were caught up");
            return Ok(Stats::default());
        }
    };
    config.health.set_revocations(follower.status());
    let channel = connection.create_channel().await?;
    let consumer = consumer.revocations(follower.revocations());
    let print = |decision: &Decision| print_line(&decision.to_json_line());
    let stats = match config.hand_off {
        HandOff::DecideOnly => {
            // Nothing runs: no outcome line (the decision line says all there is).
            let handler = |_message: Message| async { Ok::<_, HandlerError>(Disposition::Ack) };
            Middleware::new(consumer, ledger, handler)
                .on_decision(print)
                .run(&channel, shutdown.as_mut())
                .await
        }
        HandOff::Exec(command) => {
            let command = Arc::new(command);
            let stdout = config.command_stdout;
            let handler = move |message: Message| {
                let command = command.clone();
                async move { exec(&command, stdout(), message).await }
            };
            Middleware::new(consumer, ledger, handler)
                .on_decision(print)
                .on_outcome(|outcome| print_line(&outcome_line(outcome)))
                .run(&channel, shutdown.as_mut())
                .await
        }
        HandOff::Http(hand_off) => {
            let client = Arc::new(http::HttpHandler::new(hand_off, config.prefetch));
            let answered = client.clone();
            let handler = move |message: Message| {
                let client = client.clone();
                async move { client.handle(message).await }
            };
            Middleware::new(consumer, ledger, handler)
                .on_decision(print)
                .on_outcome(move |outcome| print_line(&answered.outcome_line(outcome)))
                .run(&channel, shutdown.as_mut())
                .await
        }
    };
    follower.stop();
    if let Err(error) = connection
        .close(200, "laissez consume stopping".into())
        .await
    {
        tracing::debug!(%error, "laissez: closing the connection");
    }
    stats
}

/// One line on stdout. A closed stdout must not stop the worker: the decision is also in the
/// log.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The line of a command's outcome (`docs/spec.md` §10): the decision's keys, `outcome`,
/// `error` when it failed, then `exit_status` (the command's exit code: 0 when handled,
/// `null` when it was killed by a signal or could not start) and `signal` (the signal that
/// killed it, else `null`).
fn outcome_line(outcome: &crate::HandlerOutcome<'_>) -> String {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        #[serde(flatten)]
        decision: &'a Decision,
        exit_status: Option<i32>,
        signal: Option<i32>,
    }
    let failed = outcome
        .error
        .and_then(|e| e.downcast_ref::<CommandFailed>());
    let (exit_status, signal) = match (outcome.error, failed) {
        (None, _) => (Some(0), None),
        (Some(_), Some(failed)) => (failed.code, failed.signal),
        (Some(_), None) => (None, None),
    };
    let line = Line {
        decision: outcome.decision,
        exit_status,
        signal,
    };
    // Strings, numbers and options only: serialising cannot fail.
    let json = serde_json::to_string(&line).unwrap_or_else(|_| String::from("{}"));
    crate::terminal::json_safe(&json)
}

/// A command that ran and exited other than 0: a handler error that keeps its status.
#[derive(Debug)]
struct CommandFailed {
    program: String,
    status: std::process::ExitStatus,
    code: Option<i32>,
    signal: Option<i32>,
}

impl CommandFailed {
    fn new(program: &str, status: std::process::ExitStatus) -> Self {
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        #[cfg(not(unix))]
        let signal = None;
        CommandFailed {
            program: program.to_owned(),
            status,
            code: status.code(),
            signal,
        }
    }
}

impl std::fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} exited with {}", self.program, self.status)
    }
}

impl std::error::Error for CommandFailed {}

/// The sidecar's connection: over TLS with its options when given.
async fn connect_to(url: &str, tls: Option<&TlsConfig>) -> Result<lapin::Connection, AmqpError> {
    match tls {
        Some(tls) => connect_with_tls(url, "laissez consume", tls).await,
        None => connect(url, "laissez consume").await,
    }
}

/// The revocation follower, on the sidecar's broker and TLS options.
async fn start_follower(
    url: &str,
    tls: Option<&TlsConfig>,
    stream: &str,
    keys: Vec<TrustedKey>,
    ledger: Arc<AnyLedger>,
    timeout: Duration,
) -> Result<RevocationFollower, AmqpError> {
    match tls {
        Some(tls) => {
            RevocationFollower::start_with_tls(url, tls, stream, keys, ledger, timeout).await
        }
        None => RevocationFollower::start(url, stream, keys, ledger, timeout).await,
    }
}

/// Runs the command for one authorised message.
async fn exec(
    command: &[String],
    stdout: Stdio,
    message: Message,
) -> Result<Disposition, HandlerError> {
    let Some((program, args)) = command.split_first() else {
        return Err("no command".into());
    };
    let a = &message.authorized;
    let mut child = tokio::process::Command::new(program);
    for name in SECRET_ENV {
        child.env_remove(name);
    }
    // The values `--http` sends as headers, each in the variable its header name stands for
    // (`laissez-message-id`: `LAISSEZ_MESSAGE_ID`): one list for both hand-offs.
    for (header, value) in http_headers(a) {
        child.env(header.to_ascii_uppercase().replace('-', "_"), value);
    }
    let mut child = child
        .args(args)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its stdin closes the pipe early: not an error.
        let written = stdin.write_all(&message.body).await;
        if let Err(e) = written
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            tracing::warn!(error = %e, "laissez: writing the body to the command");
        }
    }
    let status = child.wait().await?;
    if status.success() {
        Ok(Disposition::Ack)
    } else {
        Err(CommandFailed::new(program, status).into())
    }
}
