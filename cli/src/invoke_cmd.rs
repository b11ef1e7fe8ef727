//! `laissez invoke`: the agent's side of holder binding (`docs/spec.md` §11). Signs one call
//! under a holder-bound envelope with the agent's key and prints the invocation.

use std::path::PathBuf;

use clap::Args;
use laissez_sign::keyfile::read_secret_key_file;
use laissez_sign::{Invocation, InvocationError};
use laissez_verify::ActionClass;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::invocation::Call;
use laissez_verify::policy::DEFAULT_LEEWAY;
use laissez_verify::wire::MAX_MESSAGE_ID_LEN;

use crate::failure::Failure;
use crate::input::{one_stdin, read_body, read_leaf};
use crate::output::write_stdout;

pub(crate) const INVOKE_HELP: &str = "\
Signs exactly one call: the envelope (by its SHA-256), the worker's audience, the message
id, the tool, its class and the body (by its SHA-256; empty without --body), with the time
it was made (iat). The worker gets the invocation with the message (header
laissez-invocation) and checks it against the call it actually received.

It refuses to sign a call the envelope does not grant: exit 1 with `denied: REASON`
(malformed, unsupported, wrong_audience, tool_not_granted, class_not_granted, not_yet_valid,
expired). A key that is not the envelope's holder is exit 3; an envelope that is not
holder-bound, exit 2. The envelope's signature is not checked: the agent need not hold the
issuer's key.

iat is --now, or the system clock; a clock up to 5 s behind the envelope's nbf signs at nbf.

Example:
  laissez invoke --key agent.key --envelope \"$ENVELOPE\" --aud billing-queue \\
      --message-id msg-42 --tool crm.ticket.close --class write --body ticket.json";

/// Arguments of `invoke`.
#[derive(Debug, Args)]
pub(crate) struct InvokeArgs {
    /// The agent's secret key file (PKCS#8 PEM): the envelope's holder key.
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    key: PathBuf,
    /// The holder-bound envelope as base64url text, or - to read it (text or raw) from stdin.
    #[arg(long, value_name = "ENV", allow_hyphen_values = true)]
    envelope: String,
    /// The audience of the worker that will run the call (one of the envelope's aud).
    #[arg(long, value_name = "NAME", value_parser = crate::name_arg)]
    aud: String,
    /// The message id of the call (1 to 256 bytes).
    #[arg(long, value_name = "ID")]
    message_id: String,
    /// The tool the message asks for (a name, not a pattern).
    #[arg(long, value_name = "T")]
    tool: String,
    /// Its action class: read, write or destructive.
    #[arg(long, value_name = "C", value_parser = crate::parse_class_arg)]
    class: ActionClass,
    /// The message body, exactly as it will be sent: a file, or - for stdin [default: empty].
    #[arg(long, value_name = "FILE|-", allow_hyphen_values = true)]
    body: Option<String>,
    /// The time the invocation is made (iat), Unix seconds [default: the system clock].
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
}

pub(crate) fn invoke(args: &InvokeArgs) -> Result<(), Failure> {
    if args.message_id.is_empty() || args.message_id.len() > MAX_MESSAGE_ID_LEN {
        return Err(Failure::usage(format!(
            "--message-id must be 1 to {MAX_MESSAGE_ID_LEN} bytes"
        )));
    }
    one_stdin(&[
        ("--envelope", Some(args.envelope.as_str())),
        ("--body", args.body.as_deref()),
    ])?;
    // A chain's text form: the call is made under its leaf.
    let envelope = read_leaf(&args.envelope)?;
    let body = read_body(args.body.as_deref())?;
    let call = Call::new(
        &envelope,
        &args.aud,
        &args.message_id,
        &args.tool,
        args.class,
        &body,
    )
    .map_err(|e| Failure::usage(format!("--tool {:?}: {e}", args.tool)))?;
    let iat = iat(&envelope, args.now.unwrap_or_else(laissez_sign::unix_now));
    let key = read_secret_key_file(&args.key)?;
    let invocation =
        Invocation::sign(&key, &envelope, &call, iat).map_err(|e| failure(args, &e))?;
    write_stdout(format!("{}\n", invocation.to_text()).as_bytes())
}

/// The invocation's iat: `now`, raised to the envelope's nbf when `now` is at most the
/// default leeway before it. A verifier accepts an iat down to nbf − leeway, but the signer
/// signs only inside nbf..exp; an agent whose clock runs a few seconds behind the issuer's
/// would otherwise be refused an envelope it was just handed.
fn iat(envelope: &[u8], now: u64) -> u64 {
    let nbf = UntrustedEnvelope::decode(envelope)
        .ok()
        .and_then(|e| e.claims_unverified().ok())
        .map(|c| c.nbf());
    match nbf {
        Some(nbf) if now < nbf && nbf - now <= DEFAULT_LEEWAY => nbf,
        _ => now,
    }
}

/// A refusal of the signer as the command line reports it (`docs/spec.md` §10).
fn failure(args: &InvokeArgs, e: &InvocationError) -> Failure {
    match e {
        // The envelope does not grant the call: a decision, in the verifier's words.
        InvocationError::Envelope(_)
        | InvocationError::WrongAudience(_)
        | InvocationError::ToolNotGranted(_)
        | InvocationError::ClassNotGranted { .. }
        | InvocationError::NotYetValid { .. }
        | InvocationError::Expired { .. } => Failure::Denied {
            reason: e.code(),
            detail: e.to_string(),
        },
        // Nothing to sign: a bearer envelope is sent without an invocation.
        InvocationError::NotHolderBound => Failure::usage(e),
        // The arguments are too long together for the format.
        InvocationError::TooLarge(_) => Failure::usage(e),
        // The wrong key for this envelope: a key error.
        InvocationError::NotTheHolder { .. } => {
            Failure::io(format!("--key {}: {e}", args.key.display()))
        }
        _ => Failure::io(format!("internal error: {e}")),
    }
}
