//! `laissez consume`: a worker sidecar for any language (CONTRACT §4).
//!
//! It consumes a queue through the [`Middleware`], prints one JSON line per decision on
//! stdout, and runs a command once per authorised message: the body on its stdin, the
//! decision in `LAISSEZ_*` environment variables. Exit 0 acks; any other exit (or a command
//! that cannot start) dead-letters. The command's own stdout goes to the sidecar's stderr, so
//! stdout carries only decisions. Without a command it decides, acks what is allowed, and logs.

use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use laissez_ledger::{AnyLedger, RedbLedger, RedisLedger};
use laissez_verify::{Policy, TrustedKey};
use tokio::io::AsyncWriteExt as _;

use crate::consumer::{ConsumerConfig, Middleware, Stats};
use crate::error::AmqpError;
use crate::handler::{Disposition, HandlerError, Message};
use crate::publish::connect;

/// The ledger file used when neither a path nor Redis is given: in the working directory.
pub const DEFAULT_LEDGER_PATH: &str = "laissez-ledger.redb";

/// How long the sidecar tries to reach the broker at start, by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the sidecar spends uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedgerChoice {
    /// An embedded redb file: shared by the processes of one host.
    Redb(PathBuf),
    /// A Redis URL: shared by workers on many machines.
    Redis(String),
}

impl Default for LedgerChoice {
    fn default() -> Self {
        LedgerChoice::Redb(PathBuf::from(DEFAULT_LEDGER_PATH))
    }
}

/// Everything `laissez consume` takes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SidecarConfig {
    /// The broker, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub amqp_url: String,
    /// The queue, as it exists (nothing is declared).
    pub queue: String,
    /// This worker's audience name.
    pub audience: String,
    /// Trusted keys.
    pub trusted_keys: Vec<TrustedKey>,
    /// The use ledger.
    pub ledger: LedgerChoice,
    /// Prefetch (and concurrency). Default 1: one command at a time.
    pub prefetch: u16,
    /// Stop after this long with no message and none in flight.
    pub exit_when_idle: Option<Duration>,
    /// The command and its arguments; empty: decide only.
    pub exec: Vec<String>,
    /// The lease of each use: must exceed the command's longest run. Default 5 minutes.
    pub lease: Duration,
    /// Leeway and maximum lifetime.
    pub policy: Policy,
    /// How long to keep trying to reach the broker at start before giving up with
    /// [`AmqpError::Unreachable`] (the CLI exits 3). Default 30 s. Once connected, a lost
    /// connection is waited out by lapin's recovery instead.
    pub connect_timeout: Duration,
}

impl SidecarConfig {
    /// A configuration with the defaults: the default ledger file, prefetch 1, no command.
    pub fn new(
        amqp_url: impl Into<String>,
        queue: impl Into<String>,
        audience: impl Into<String>,
        trusted_keys: Vec<TrustedKey>,
    ) -> Self {
        SidecarConfig {
            amqp_url: amqp_url.into(),
            queue: queue.into(),
            audience: audience.into(),
            trusted_keys,
            ledger: LedgerChoice::default(),
            prefetch: 1,
            exit_when_idle: None,
            exec: Vec::new(),
            lease: Duration::from_secs(300),
            policy: Policy::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Runs the sidecar on a new Tokio runtime until SIGTERM, SIGINT or the idle timeout; for
/// callers without a runtime (the CLI).
pub fn run_blocking(config: SidecarConfig) -> Result<Stats, AmqpError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = termination()?;
        run(config, shutdown).await
    })
}

/// A future that completes on SIGTERM or SIGINT. Must be called inside a Tokio runtime.
pub fn termination() -> Result<impl Future<Output = ()> + Send + 'static, AmqpError> {
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

/// Runs the sidecar until `shutdown` completes or the idle timeout passes; then stops
/// gracefully (nothing in flight is lost) and returns the counters.
pub async fn run(
    config: SidecarConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Stats, AmqpError> {
    let ledger = Arc::new(match &config.ledger {
        LedgerChoice::Redb(path) => AnyLedger::Redb(RedbLedger::open(path)?),
        LedgerChoice::Redis(url) => AnyLedger::Redis(RedisLedger::connect(url).await?),
    });
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
        connect(&config.amqp_url, "laissez consume"),
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
    let channel = connection.create_channel().await?;
    let consumer = ConsumerConfig::new(&config.queue, &config.audience, config.trusted_keys)
        .prefetch(config.prefetch)
        .lease(config.lease)
        .policy(config.policy)
        .idle_timeout(config.exit_when_idle);
    let print = |decision: &crate::Decision| {
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the worker: the decision is also in the log.
        let _ = writeln!(out, "{}", decision.to_json_line());
        let _ = out.flush();
    };
    let stats = if config.exec.is_empty() {
        let handler = |_message: Message| async { Ok::<_, HandlerError>(Disposition::Ack) };
        Middleware::new(consumer, ledger, handler)
            .on_decision(print)
            .run(&channel, shutdown.as_mut())
            .await
    } else {
        let command = Arc::new(config.exec);
        let handler = move |message: Message| {
            let command = command.clone();
            async move { exec(&command, message).await }
        };
        Middleware::new(consumer, ledger, handler)
            .on_decision(print)
            .run(&channel, shutdown.as_mut())
            .await
    };
    if let Err(error) = connection
        .close(200, "laissez consume stopping".into())
        .await
    {
        tracing::debug!(%error, "laissez: closing the connection");
    }
    stats
}

/// Runs the command for one authorised message.
async fn exec(command: &[String], message: Message) -> Result<Disposition, HandlerError> {
    let Some((program, args)) = command.split_first() else {
        return Err("no command".into());
    };
    let a = &message.authorized;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env("LAISSEZ_AGENT", &a.agent)
        .env("LAISSEZ_TOOL", &a.tool)
        .env("LAISSEZ_CLASS", a.class.name())
        .env("LAISSEZ_OBO", a.obo.as_deref().unwrap_or(""))
        .env("LAISSEZ_SESSION", a.session.as_deref().unwrap_or(""))
        .env("LAISSEZ_CTI", a.cti_hex())
        .env("LAISSEZ_USE", a.use_number.to_string())
        .env("LAISSEZ_MESSAGE_ID", &a.message_id)
        .stdin(Stdio::piped())
        .stdout(stdout_for_child())
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
        Err(format!("{program} exited with {status}").into())
    }
}

/// The command's stdout goes to our stderr: stdout carries only decision lines.
fn stdout_for_child() -> Stdio {
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
