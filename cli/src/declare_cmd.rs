//! `laissez declare`: declares a work queue's standard topology (`docs/spec.md` §9, the
//! topology): the queue, its dead-letter exchange and queue, and its retry queue, as
//! `laissez_amqp::Topology` does. Declaring is idempotent on the broker; what existed before
//! is said, so a second run shows that it changed nothing.

use std::time::Duration;

use clap::Args;
use laissez_amqp::lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use laissez_amqp::lapin::types::FieldTable;
use laissez_amqp::lapin::{Connection, ConnectionProperties, ErrorKind, ExchangeKind};
use laissez_amqp::{AmqpError, ArgumentValue, Declaration, QueueKind, TlsConfig, Topology};
use laissez_ledger::redact::redact_password;

use crate::failure::Failure;
use crate::output::write_stdout;

pub(crate) const DECLARE_HELP: &str = "\
Declares, durable: the dead-letter exchange Q.dlx (fanout), the queue Q.dlq bound to it (where
denials, failures and calls parked for approval land), the queue Q with
x-dead-letter-exchange=Q.dlx, and the retry queue Q.retry (x-dead-letter-exchange=\"\",
x-dead-letter-routing-key=Q; nothing consumes it). --quorum makes them quorum queues, Q with
x-delivery-limit (--delivery-limit, default 20) and Q.retry with at-least-once dead-lettering
(x-dead-letter-strategy=at-least-once, x-overflow=reject-publish).

Running it again changes nothing. An existing queue or exchange of these names declared with
other arguments is left as it is: exit 3, with the broker's words naming the argument that
differs (delete it, or move its messages, before declaring it again); the objects declared
before it (in the order above) stay declared. Prints each object, and
whether it was created or already there. --amqp may come from LAISSEZ_AMQP_URL (which keeps a
password out of the process list); amqps:// URLs take --amqp-ca, --amqp-cert and --amqp-key as
consume does.

Exit 0 done, 2 usage error, 3 broker error or conflicting topology.

Examples:
  laissez declare --amqp amqp://guest:guest@127.0.0.1:5672/%2f --queue billing
  LAISSEZ_AMQP_URL=amqps://admin:secret@rabbit:5671/%2f laissez declare --queue billing --quorum";

/// How long `declare` tries to reach the broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The delivery limit of a quorum queue when none is given (RabbitMQ 4's own default).
const DEFAULT_DELIVERY_LIMIT: u32 = 20;

/// Arguments of `declare`.
#[derive(Debug, Args)]
pub(crate) struct DeclareArgs {
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
    /// The work queue.
    #[arg(long, value_name = "Q", value_parser = crate::name_arg)]
    queue: String,
    /// Quorum queues (replicated) instead of classic ones.
    #[arg(long)]
    quorum: bool,
    /// With --quorum: after this many returns to the queue the broker dead-letters a message
    /// (x-delivery-limit) [default: 20].
    #[arg(long, value_name = "N", requires = "quorum",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(Topology::MAX_DELIVERY_LIMIT)))]
    delivery_limit: Option<u32>,
}

/// One object of the topology, in the order they are declared.
struct Object {
    kind: &'static str,
    name: String,
    what: String,
}

pub(crate) fn declare(args: &DeclareArgs) -> Result<(), Failure> {
    let tls = args.tls.load(&args.amqp)?;
    let mut topology = Topology::new(args.queue.as_str());
    if args.quorum {
        topology = topology.quorum(args.delivery_limit.unwrap_or(DEFAULT_DELIVERY_LIMIT));
    }
    let objects = objects(&topology);
    let redact = |text: String| redact_password(&args.amqp, &text);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io(format!("cannot start the runtime: {e}")))?;
    let existed = runtime
        .block_on(run(&args.amqp, tls.as_ref(), &topology, &objects))
        .map_err(|e| Failure::io(redact(describe(&e, &topology))))?;
    let mut out = String::new();
    for (object, existed) in objects.iter().zip(existed) {
        let state = if existed { "already there" } else { "created" };
        out.push_str(&format!(
            "{:<8} {:<name$}  {state}: {}\n",
            object.kind,
            object.name,
            object.what,
            name = objects.iter().map(|o| o.name.len()).max().unwrap_or(0)
        ));
    }
    write_stdout(out.as_bytes())
}

/// The objects `Topology::declare` makes, with their arguments in words (docs/spec.md §9):
/// read from `Topology::declarations`, so what is said is what is declared.
fn objects(topology: &Topology) -> Vec<Object> {
    let kind = match topology.kind {
        QueueKind::Quorum { .. } => "quorum",
        _ => "classic",
    };
    let mut objects: Vec<Object> = Vec::new();
    for declaration in topology.declarations() {
        match declaration {
            Declaration::Exchange { name } => objects.push(Object {
                kind: "exchange",
                name,
                what: "fanout, durable".to_owned(),
            }),
            Declaration::Queue { name, arguments } => {
                let mut what = format!("{kind}, durable");
                // The queue type is said first, as `kind`.
                for argument in arguments.iter().filter(|a| a.key != "x-queue-type") {
                    let value = match &argument.value {
                        ArgumentValue::Text(text) if text.is_empty() => "\"\"".to_owned(),
                        ArgumentValue::Text(text) => text.clone(),
                        ArgumentValue::Integer(number) => number.to_string(),
                        other => format!("{other:?}"),
                    };
                    what.push_str(&format!(", {}={value}", argument.key));
                }
                objects.push(Object {
                    kind: "queue",
                    name,
                    what,
                });
            }
            Declaration::Binding { queue, exchange } => {
                if let Some(object) = objects.iter_mut().find(|o| o.name == queue) {
                    object.what.push_str(&format!(
                        ", bound to {exchange} (refused and parked messages)"
                    ));
                }
            }
            _ => {}
        }
    }
    objects
}

/// Connects, notes which objects exist, declares the topology; returns what existed before.
async fn run(
    url: &str,
    tls: Option<&TlsConfig>,
    topology: &Topology,
    objects: &[Object],
) -> Result<Vec<bool>, AmqpError> {
    // No recovery: one command, one connection; a broker that is down fails it.
    let properties = ConnectionProperties::default().with_connection_name("laissez declare".into());
    let connection = tokio::time::timeout(
        CONNECT_TIMEOUT,
        laissez_amqp::connect_with_properties(url, properties, tls),
    )
    .await
    .map_err(|_| AmqpError::Unreachable {
        what: "the AMQP broker",
        after: CONNECT_TIMEOUT,
    })??;
    let mut existed = Vec::with_capacity(objects.len());
    for object in objects {
        existed.push(exists(&connection, object).await?);
    }
    topology
        .declare(&connection.create_channel().await?)
        .await?;
    let _ = connection.close(200, "declared".into()).await;
    Ok(existed)
}

/// Whether `object` exists: a passive declaration on a channel of its own (a refusal closes
/// the channel).
async fn exists(connection: &Connection, object: &Object) -> Result<bool, AmqpError> {
    let channel = connection.create_channel().await?;
    let name = object.name.as_str().into();
    let found = if object.kind == "exchange" {
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(name, ExchangeKind::Fanout, passive, FieldTable::default())
            .await
    } else {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(name, passive, FieldTable::default())
            .await
            .map(|_| ())
    };
    match found {
        Ok(()) => {
            let _ = channel.close(200, "checked".into()).await;
            Ok(true)
        }
        Err(e) if matches!(e.kind(), ErrorKind::ProtocolError(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `error` in words; a conflict with what exists says what to do about it.
fn describe(error: &AmqpError, topology: &Topology) -> String {
    let text = crate::amqp_tls::describe(error);
    if text.contains("PRECONDITION_FAILED") {
        format!(
            "the topology of {:?} conflicts with what exists on the broker (nothing that \
             existed was changed): {text} (an existing queue or exchange of these names has \
             other arguments or another kind: delete it, or declare the topology under another \
             queue name)",
            topology.queue
        )
    } else {
        text
    }
}
