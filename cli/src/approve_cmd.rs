//! `laissez approve`: a person's side of human approval (`docs/spec.md` §12), in two forms.
//! Given the call on the command line, it shows what is approved on stderr and prints the
//! approval; given `--from QUEUE` (a dead-letter queue), it takes a message parked there
//! `approval_required`, shows it, signs it on confirmation, and puts it back in the queue it
//! came from with the approval added (`approve_queue`).

use std::path::PathBuf;

use clap::Args;
use laissez_sign::keyfile::read_secret_key_file;
use laissez_sign::{Approval, ApprovalError, SecretKey};
use laissez_verify::wire::MAX_MESSAGE_ID_LEN;
use laissez_verify::{ActionClass, Call, DEFAULT_MAX_LIFETIME, UntrustedEnvelope};

use crate::failure::Failure;
use crate::input::{one_stdin, read_body, read_links};
use crate::output::{escape_text, write_stderr_line, write_stdout};

pub(crate) const APPROVE_HELP: &str = "\
An approval is your signature over exactly one call: the envelope (by its SHA-256), the
worker's queue (audience), the message id, the tool, its class and the body (by its SHA-256),
valid for --ttl (default 15m). A worker counts it when your public key is among its
--approvers and the envelope's approval rule lists it; each approver counts once.

Print form: the call is given on the command line; what is approved is shown on stderr and the
approval is printed (base64url) on stdout, for the publisher's laissez-approvals header.

Queue form (--from): takes a message parked in QUEUE (a dead-letter queue) that the worker
denied approval_required, re-verifies it as the worker would (--trust, --aud, --tools,
--approvers, --require-approval), shows it, asks for confirmation (--yes for scripts;
without a terminal and without --yes it refuses, exit 2, and leaves every message parked),
adds your approval to its laissez-approvals header, republishes it to the queue it was
dead-lettered from (x-death), mandatory and confirmed, and only then acks the parked copy.
Messages awaiting something else are left parked and listed. An approval of yours already
counting is not added twice. --amqp may come from LAISSEZ_AMQP_URL; an amqps:// URL connects
over TLS, trusting the system's CA bundle or only --amqp-ca FILE, with --amqp-cert and
--amqp-key for a broker that requires a client certificate (LAISSEZ_AMQP_CA, _CERT, _KEY).

Exit codes: 0 approved (or already approved by you), 1 nothing to approve (no such message,
or its decision is not approval_required: `denied: REASON`), 2 usage (no terminal and no
--yes), 3 I/O or key error (your key is not an approver of the envelope, or is an issuer key;
the broker refused or could not route the copy: the message stays parked).

Examples:
  laissez approve --key alice.key --envelope \"$ENVELOPE\" --aud billing-queue \\
      --message-id msg-42 --tool crm.ticket.delete --class destructive --body ticket.json
  laissez approve --key alice.key --amqp amqp://127.0.0.1:5672/%2f --from billing.dlq \\
      --trust orchestrator.pub --aud billing-queue --tools billing-tools.toml \\
      --approvers approvers.pub --message-id msg-42";

/// Arguments of `approve`.
#[derive(Debug, Args)]
pub(crate) struct ApproveArgs {
    /// The approver's secret key file (PKCS#8 PEM).
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    pub(crate) key: PathBuf,
    /// The envelope as base64url text, or - for stdin (print form).
    #[arg(
        long,
        value_name = "ENV",
        allow_hyphen_values = true,
        required_unless_present = "from",
        conflicts_with = "from"
    )]
    pub(crate) envelope: Option<String>,
    /// The worker's audience (queue or pool name).
    #[arg(long, value_name = "NAME", value_parser = crate::name_arg)]
    pub(crate) aud: String,
    /// The message id of the call (print form); with --from, approve only this message.
    #[arg(long, value_name = "ID", required_unless_present = "from")]
    pub(crate) message_id: Option<String>,
    /// The tool (print form).
    #[arg(
        long,
        value_name = "T",
        required_unless_present = "from",
        conflicts_with = "from"
    )]
    pub(crate) tool: Option<String>,
    /// Its class: read, write or destructive (print form).
    #[arg(long, value_name = "C", value_parser = crate::parse_class_arg,
          required_unless_present = "from", conflicts_with = "from")]
    pub(crate) class: Option<ActionClass>,
    /// The message body exactly as sent: a file, or - for stdin [default: empty] (print form).
    #[arg(
        long,
        value_name = "FILE|-",
        allow_hyphen_values = true,
        conflicts_with = "from"
    )]
    pub(crate) body: Option<String>,
    /// How long the approval counts.
    #[arg(long, value_name = "DUR", default_value = "15m", value_parser = crate::parse_duration_arg)]
    pub(crate) ttl: u64,
    /// Your name, for the record (in the approval).
    #[arg(long, value_name = "NAME", value_parser = crate::name_arg)]
    pub(crate) by: Option<String>,
    /// The broker URL (queue form), e.g. amqp://guest:guest@127.0.0.1:5672/%2f.
    #[arg(
        long,
        value_name = "URL",
        env = "LAISSEZ_AMQP_URL",
        hide_env_values = true
    )]
    pub(crate) amqp: Option<String>,
    #[command(flatten)]
    pub(crate) tls: crate::amqp_tls::AmqpTlsArgs,
    /// The dead-letter queue holding parked messages: selects the queue form.
    #[arg(long, value_name = "QUEUE", requires_all = ["amqp", "trust", "tools"])]
    pub(crate) from: Option<String>,
    /// Trust file of the worker's issuers (queue form; repeatable).
    #[arg(long = "trust", value_name = "FILE", value_parser = crate::path_arg)]
    pub(crate) trust: Vec<PathBuf>,
    /// The worker's tool catalogue (queue form).
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    pub(crate) tools: Option<PathBuf>,
    /// The worker's approvers' keys, to count the approvals already there (queue form;
    /// repeatable).
    #[arg(long = "approvers", value_name = "FILE", value_parser = crate::path_arg)]
    pub(crate) approvers: Vec<PathBuf>,
    /// The worker's --require-approval, to examine parked messages as it does (queue form).
    #[arg(long, value_name = "CLASSES", value_parser = crate::parse_classes_arg,
          conflicts_with = "envelope")]
    pub(crate) require_approval: Option<laissez_verify::Classes>,
    /// Approve without asking (queue form): for scripts.
    #[arg(long)]
    pub(crate) yes: bool,
}

pub(crate) fn approve(args: &ApproveArgs) -> Result<(), Failure> {
    if args.ttl == 0 {
        return Err(Failure::usage("--ttl must be more than 0s"));
    }
    if let Some(id) = &args.message_id
        && (id.is_empty() || id.len() > MAX_MESSAGE_ID_LEN)
    {
        return Err(Failure::usage(format!(
            "--message-id must be 1 to {MAX_MESSAGE_ID_LEN} bytes"
        )));
    }
    if args.ttl > DEFAULT_MAX_LIFETIME {
        write_stderr_line(&format!(
            "laissez: warning: --ttl {} s is over the workers' default max lifetime ({} s): a \
             worker with the default policy will not count this approval",
            args.ttl, DEFAULT_MAX_LIFETIME
        ));
    }
    if args.from.is_some() {
        return crate::approve_queue::approve_parked(args);
    }
    print_form(args)
}

/// The print form: the call from the command line.
fn print_form(args: &ApproveArgs) -> Result<(), Failure> {
    let (Some(env_arg), Some(message_id), Some(tool), Some(class)) = (
        args.envelope.as_deref(),
        args.message_id.as_deref(),
        args.tool.as_deref(),
        args.class,
    ) else {
        // Unreachable: clap requires them without --from.
        return Err(Failure::usage(
            "--envelope, --message-id, --tool and --class are needed without --from",
        ));
    };
    one_stdin(&[
        ("--envelope", Some(env_arg)),
        ("--body", args.body.as_deref()),
    ])?;
    // A chain's text form: the call is made under its leaf, and the rule of any envelope of
    // the chain may be the one that needs this approval.
    let links = read_links(env_arg)?;
    let Some(envelope) = links.last() else {
        return Err(Failure::Denied {
            reason: "malformed",
            detail: "malformed envelope: no envelope".to_owned(),
        });
    };
    let body = read_body(args.body.as_deref())?;
    let call = Call::new(envelope, &args.aud, message_id, tool, class, &body)
        .map_err(|e| Failure::usage(format!("--tool {tool:?}: {e}")))?;
    let key = read_secret_key_file(&args.key)?;
    let claims = UntrustedEnvelope::decode(envelope)
        .ok()
        .and_then(|e| e.claims_unverified().ok());
    let shown = Shown {
        agent: claims.as_ref().map(|c| c.sub()),
        obo: claims.as_ref().and_then(|c| c.obo()),
        session: claims.as_ref().and_then(|c| c.sid()),
        tool,
        class,
        queue: &args.aud,
        message_id,
        body: &body,
    };
    write_stderr_line("approving (the envelope's signature is not checked here):");
    shown.write();
    if links.len() > 1 {
        let agents: Vec<String> = links
            .iter()
            .filter_map(|l| UntrustedEnvelope::decode(l).ok()?.claims_unverified().ok())
            .map(|c| escape_text(c.sub()).into_owned())
            .collect();
        write_stderr_line(&format!("  delegated:  {}", agents.join(" > ")));
    }
    let chain: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
    let approval = sign(&key, &chain, &call, args)?;
    write_stderr_line(&format!(
        "  approver:   {} (valid {} s)",
        approval.kid(),
        args.ttl
    ));
    write_stdout(format!("{}\n", approval.to_text()).as_bytes())
}

/// Signs the approval of `call` under `chain` (root first, the call's envelope last; one
/// envelope when not delegated), valid from now for `--ttl`.
pub(crate) fn sign(
    key: &SecretKey,
    chain: &[&[u8]],
    call: &Call<'_>,
    args: &ApproveArgs,
) -> Result<Approval, Failure> {
    let iat = laissez_sign::unix_now();
    let exp = iat.saturating_add(args.ttl);
    Approval::sign_in_chain(key, chain, call, iat, exp, args.by.as_deref())
        .map_err(|e| failure(args, &e))
}

/// A refusal of the signer as the command line reports it (`docs/spec.md` §10).
fn failure(args: &ApproveArgs, e: &ApprovalError) -> Failure {
    match e {
        ApprovalError::Envelope(d) => Failure::Denied {
            reason: d.code(),
            detail: e.to_string(),
        },
        // Nothing needs approving, or the arguments cannot make an approval.
        ApprovalError::NotRequired(_) | ApprovalError::Lifetime | ApprovalError::TooLarge(_) => {
            Failure::usage(e)
        }
        // The wrong key for this envelope's rule: a key error.
        ApprovalError::NotAnApprover(_) => {
            Failure::io(format!("--key {}: {e}", args.key.display()))
        }
        _ => Failure::io(format!("internal error: {e}")),
    }
}

/// What a person is shown about a call, every text escaped (it was chosen by the envelope's
/// issuer or the publisher).
pub(crate) struct Shown<'a> {
    pub(crate) agent: Option<&'a str>,
    pub(crate) obo: Option<&'a str>,
    pub(crate) session: Option<&'a str>,
    pub(crate) tool: &'a str,
    pub(crate) class: ActionClass,
    pub(crate) queue: &'a str,
    pub(crate) message_id: &'a str,
    pub(crate) body: &'a [u8],
}

impl Shown<'_> {
    pub(crate) fn write(&self) {
        let text = |t: Option<&str>| t.map_or_else(|| "-".to_owned(), |t| escape_text(t).into());
        write_stderr_line(&format!("  agent:      {}", text(self.agent)));
        write_stderr_line(&format!("  obo:        {}", text(self.obo)));
        write_stderr_line(&format!("  session:    {}", text(self.session)));
        write_stderr_line(&format!(
            "  tool:       {} ({})",
            escape_text(self.tool),
            self.class
        ));
        write_stderr_line(&format!("  queue:      {}", escape_text(self.queue)));
        write_stderr_line(&format!("  message id: {}", escape_text(self.message_id)));
        write_stderr_line(&format!(
            "  body:       {} bytes: {}",
            self.body.len(),
            preview(self.body)
        ));
    }
}

/// The bytes of a body preview.
const PREVIEW_LEN: usize = 200;

/// The start of a body, safe for a terminal: UTF-8 text escaped as claims are, anything else
/// with every byte outside printable ASCII as `\xNN`; `...` when cut.
pub(crate) fn preview(body: &[u8]) -> String {
    let cut = body.len() > PREVIEW_LEN;
    let head = &body[..body.len().min(PREVIEW_LEN)];
    // Cut inside a character: drop its start, so that text stays text.
    let text = match std::str::from_utf8(head) {
        Ok(text) => Some(text),
        Err(e) if cut && e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    let mut out = match text {
        Some(text) => escape_text(text).into_owned(),
        None => head
            .iter()
            .map(|&b| match b {
                b'\\' => "\\\\".to_owned(),
                0x20..=0x7e => char::from(b).to_string(),
                _ => format!("\\x{b:02x}"),
            })
            .collect(),
    };
    if cut {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_is_safe_for_a_terminal_and_cut() {
        assert_eq!(preview(b"{\"ticket\": 42}"), "{\"ticket\": 42}");
        let hostile = preview("a\x1b[2J\nb\u{202e}c".as_bytes());
        assert!(
            !hostile.contains('\x1b') && !hostile.contains('\n'),
            "{hostile}"
        );
        assert!(!hostile.contains('\u{202e}'), "{hostile}");
        assert_eq!(preview(&[0xff, b'a', b'\\']), "\\xffa\\\\");
        let long = "é".repeat(150);
        let shown = preview(long.as_bytes());
        assert!(
            shown.ends_with("...") && shown.len() <= PREVIEW_LEN + 3,
            "{shown}"
        );
        assert!(shown.starts_with("éé"));
    }
}
