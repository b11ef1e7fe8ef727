//! `laissez approve`: a person's side of human approval (`docs/spec.md` §12), in two forms.
//! Given the call on the command line, it shows what is approved on stderr and prints the
//! approval; given `--from QUEUE` (a dead-letter queue), it goes through the messages parked
//! there `approval_required` and offers those the worker would run once approved (the gate
//! with the worker's revocation records, then its ledger), shows each, and approves it (puts
//! it back in the queue it came from with the approval added), rejects it (to the reject
//! queue) or skips it (`queue`, `decide`); `--list` only shows them (`listing`).

mod ctx;
mod decide;
mod listing;
mod page;
mod queue;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use laissez_sign::keyfile::read_secret_key_file;
use laissez_sign::{Approval, ApprovalError, SecretKey};
use laissez_verify::ActionClass;
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::invocation::Call;
use laissez_verify::policy::DEFAULT_MAX_LIFETIME;
use laissez_verify::wire::MAX_MESSAGE_ID_LEN;

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

Queue form (--from): goes through the messages parked in QUEUE (a dead-letter queue) that
the worker denied approval_required, one at a time, and offers each that the worker would run
once approved: its whole decision (--trust, --aud, --tools, --approvers, --require-approval),
with the revocation records of --revocations-stream (read to its end first, as the worker
does) and the use ledger (--ledger or --redis, read, never written): a call from a revoked
session is reported `revoked`, one whose uses are spent `uses_exhausted`, one that already ran
`replayed`, and is left parked. For each call offered it shows the call and asks: y approves,
r rejects, s (or nothing) skips. --yes approves every call offered without asking; without a
terminal, without --yes and without --stdin-answers it refuses (exit 2) and leaves every
message parked. Approving adds your approval to its laissez-approvals header and republishes
it to the work queue --to QUEUE (default: the --from name without its .dlq suffix), mandatory
and confirmed, and only then acks the parked copy. Rejecting moves it unchanged to
--reject-to QUEUE (default: the work queue's name with .rejected, declared when absent; a
queue you name must exist), mandatory and confirmed, then acks it. Each approval and
rejection is an audit event (target laissez::audit) on stderr. With --message-id, only that
message is offered. A message whose x-death does not say it was rejected from exactly the
work queue (a publisher can write x-death itself) is left parked and reported, never
republished.

--serve ADDR serves the same as a local web page until Ctrl-C, for the person holding the key:
GET / lists the parked calls awaiting approval (what --list shows, and the exact call that
will be signed: audience, message id, tool, class, the body's and the envelope's SHA-256),
each with Approve and Reject buttons. Approving re-examines the call at that moment as the
sitting does, signs, republishes and acks; rejecting moves it as --reject-to says; both are
audit events. The key stays in this process; the page never shows it. It listens only on
ADDR, which must be a loopback address (127.0.0.1:8417, [::1]:8417; port 0 picks a free
port, printed on stderr) unless --serve-any-host is given; it answers only requests whose
Host is ADDR (no DNS rebinding), takes actions only as POST with the page's per-process
random token and a same-origin Origin (or Referer), and every text a publisher chose is
HTML-escaped. One request is served at a time.

--list shows the parked calls awaiting approval without taking any, on stdout: message id,
agent (and the delegation chain), obo, session, tool and class, the envelope's expiry and
the time left, the approvals counted so far (k of m) and the body, indented when it is JSON.

You are shown the whole call: the delegation chain root > ... > leaf, the obo and session
with the envelope that named them, and the whole body. A body over 64 KiB is not shown
whole: approving it needs --approve-unshown (the first 64 KiB are shown). Every text chosen
by the issuer, the agent or the publisher is escaped: controls, format characters (bidi,
zero-width), invisible spaces and unassigned code points as \\u{HEX}, a backslash as \\\\.
An approval of yours already counting is not added twice. --amqp may come from
LAISSEZ_AMQP_URL; an amqps:// URL connects over TLS, trusting the system's CA bundle or only
--amqp-ca FILE, with --amqp-cert and --amqp-key for a broker that requires a client
certificate (LAISSEZ_AMQP_CA, _CERT, _KEY).

Exit codes: 0 approved, rejected or listed (or already approved by you), 1 nothing to
approve (no such message; with --message-id, its decision is not approval_required: `denied:
REASON`, it was not rejected from --to, or you skipped it), 2 usage (no terminal and no --yes;
a body over 64 KiB without --approve-unshown), 3 I/O or key error (your key is not an approver
of the envelope, or is an issuer key; the revocation stream or the ledger cannot be read; the
broker refused or could not route the copy: the message stays parked).

Examples:
  laissez approve --key alice.key --envelope \"$ENVELOPE\" --aud billing-queue \\
      --message-id msg-42 --tool crm.ticket.delete --class destructive --body ticket.json
  laissez approve --key alice.key --amqp amqp://127.0.0.1:5672/%2f --from billing.dlq \\
      --trust orchestrator.pub --aud billing-queue --tools billing-tools.toml \\
      --approvers approvers.pub --message-id msg-42
  laissez approve --key alice.key --from billing.dlq --trust orchestrator.pub \\
      --aud billing-queue --tools billing-tools.toml --approvers approvers.pub \\
      --ledger /var/lib/laissez/billing.redb --list
  laissez approve --key alice.key --from billing.dlq --trust orchestrator.pub \\
      --aud billing-queue --tools billing-tools.toml --approvers approvers.pub \\
      --ledger /var/lib/laissez/billing.redb --serve 127.0.0.1:8417";

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
    /// The work queue approved calls go back to (queue form) [default: the --from name
    /// without its .dlq suffix]. Only messages rejected from exactly this queue are offered.
    #[arg(long, value_name = "QUEUE", requires = "from")]
    pub(crate) to: Option<String>,
    /// Approve a body larger than what is shown (64 KiB): the bytes past it are approved
    /// unseen. Without it such a call is refused (exit 2) and stays parked.
    #[arg(long)]
    pub(crate) approve_unshown: bool,
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
    /// Show the parked calls awaiting approval without taking any (queue form): agent, obo,
    /// tool, class, body, expiry, approvals so far, message id; on stdout.
    #[arg(long, requires = "from", conflicts_with_all = ["yes", "stdin_answers"])]
    pub(crate) list: bool,
    /// Where rejected messages go (queue form) [default: the work queue's name with
    /// .rejected, declared when absent].
    #[arg(long, value_name = "QUEUE", requires = "from")]
    pub(crate) reject_to: Option<String>,
    /// Read the answers (y, r or s, one a line) from stdin even when it is not a terminal
    /// (queue form): for a script that decides message by message.
    #[arg(long, requires = "from", conflicts_with = "yes")]
    pub(crate) stdin_answers: bool,
    /// Serve a local web page at ADDR (host:port, port 0 picks one) listing the parked calls
    /// with Approve and Reject buttons, until Ctrl-C (queue form). Only a loopback address
    /// unless --serve-any-host.
    #[arg(long, value_name = "ADDR", requires = "from",
          conflicts_with_all = ["yes", "list", "stdin_answers", "message_id"])]
    pub(crate) serve: Option<SocketAddr>,
    /// Let --serve listen on an address that is not loopback (reachable from other hosts:
    /// anyone who can reach it and get the page can approve with your key).
    #[arg(long, requires = "serve")]
    pub(crate) serve_any_host: bool,
    /// The revocation stream the worker reads (queue form): read to its end before anything
    /// is offered.
    #[arg(long, value_name = "NAME", default_value = laissez_amqp::DEFAULT_REVOCATION_STREAM)]
    pub(crate) revocations_stream: String,
    /// The worker's embedded use ledger (queue form; read, never written) [default:
    /// ./laissez-ledger.redb when it exists].
    #[arg(long, value_name = "PATH", conflicts_with = "redis", requires = "from")]
    pub(crate) ledger: Option<PathBuf>,
    /// The worker's Redis use ledger (queue form; read, never written).
    #[arg(
        long,
        value_name = "URL",
        env = "LAISSEZ_REDIS_URL",
        hide_env_values = true
    )]
    pub(crate) redis: Option<String>,
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
        return queue::approve_parked(args);
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
    // Decoded without verifying, as said: an undecodable link is shown as `?`.
    let claims: Vec<_> = links
        .iter()
        .map(|l| {
            UntrustedEnvelope::decode(l)
                .ok()
                .and_then(|e| e.claims_unverified().ok())
        })
        .collect();
    let shown = Shown {
        links: claims
            .iter()
            .map(|c| Link {
                agent: c.as_ref().map_or("?", |c| c.sub()),
                obo: c.as_ref().and_then(|c| c.obo()),
                session: c.as_ref().and_then(|c| c.sid()),
            })
            .collect(),
        tool,
        class,
        queue: &args.aud,
        message_id,
        body: &body,
    };
    write_stderr_line("approving (the envelope's signature is not checked here):");
    shown.write(args.approve_unshown)?;
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

/// What one envelope of the chain names.
pub(crate) struct Link<'a> {
    pub(crate) agent: &'a str,
    pub(crate) obo: Option<&'a str>,
    pub(crate) session: Option<&'a str>,
}

/// What a person is shown about a call, every text escaped (it was chosen by the envelope's
/// issuer, a delegating agent or the publisher).
pub(crate) struct Shown<'a> {
    /// The chain, root first, the leaf (the agent making the call) last; one when not
    /// delegated.
    pub(crate) links: Vec<Link<'a>>,
    pub(crate) tool: &'a str,
    pub(crate) class: ActionClass,
    pub(crate) queue: &'a str,
    pub(crate) message_id: &'a str,
    pub(crate) body: &'a [u8],
}

/// The most body bytes shown: a larger body is approved only with `--approve-unshown`.
pub(crate) const MAX_SHOWN_BODY: usize = 64 * 1024;

impl<'a> Shown<'a> {
    /// Writes it on stderr. A body over [`MAX_SHOWN_BODY`] is a usage error unless
    /// `approve_unshown`: no one approves bytes they were not shown without saying so.
    pub(crate) fn write(&self, approve_unshown: bool) -> Result<(), Failure> {
        let leaf = self.links.last();
        write_stderr_line(&format!(
            "  agent:      {}",
            leaf.map_or_else(|| "-".to_owned(), |l| escape_text(l.agent).into_owned())
        ));
        if self.links.len() > 1 {
            let agents: Vec<String> = self
                .links
                .iter()
                .map(|l| escape_text(l.agent).into_owned())
                .collect();
            write_stderr_line(&format!(
                "  delegated:  {} (root > ... > leaf, {} envelopes)",
                agents.join(" > "),
                self.links.len()
            ));
        }
        write_stderr_line(&format!("  obo:        {}", self.named(|l| l.obo)));
        write_stderr_line(&format!("  session:    {}", self.named(|l| l.session)));
        write_stderr_line(&format!(
            "  tool:       {} ({})",
            escape_text(self.tool),
            self.class
        ));
        write_stderr_line(&format!("  queue:      {}", escape_text(self.queue)));
        write_stderr_line(&format!("  message id: {}", escape_text(self.message_id)));
        let len = self.body.len();
        if len > MAX_SHOWN_BODY {
            write_stderr_line(&format!(
                "  body:       {len} bytes, the first {MAX_SHOWN_BODY} shown: {}",
                body_text(&self.body[..MAX_SHOWN_BODY])
            ));
            write_stderr_line(&format!(
                "  NOT SHOWN:  the last {} bytes of the body",
                len - MAX_SHOWN_BODY
            ));
            if !approve_unshown {
                return Err(Failure::usage(format!(
                    "the body is {len} bytes and only {MAX_SHOWN_BODY} were shown: pass \
                     --approve-unshown to approve bytes you have not seen (nothing was approved)"
                )));
            }
        } else {
            write_stderr_line(&format!(
                "  body:       {len} bytes: {}",
                body_text(self.body)
            ));
        }
        Ok(())
    }

    /// The leaf's `obo` or `sid`, escaped, and for a delegated call which envelope named it:
    /// the root's value, or the first delegate's that differs from its parent's (a child
    /// asserting what its root never named is shown as such, never as fact).
    fn named(&self, field: impl Fn(&Link<'a>) -> Option<&'a str>) -> String {
        let Some(leaf) = self.links.last() else {
            return "-".to_owned();
        };
        let text = |v: Option<&str>| v.map_or_else(|| "-".to_owned(), |v| escape_text(v).into());
        let value = text(field(leaf));
        if self.links.len() < 2 {
            return value;
        }
        let root = &self.links[0];
        let changed = self
            .links
            .windows(2)
            .find(|pair| field(&pair[0]) != field(&pair[1]));
        match changed {
            None => format!(
                "{value} (delegated: named by the root, {})",
                escape_text(root.agent)
            ),
            Some(pair) => format!(
                "{value} (delegated: NOT the root's: {} names {}, its delegate {} named {})",
                escape_text(pair[0].agent),
                text(field(&pair[0])),
                escape_text(pair[1].agent),
                text(field(&pair[1]))
            ),
        }
    }
}

/// A body, safe for a terminal, whole: UTF-8 text escaped as claims are, anything else with
/// every byte outside printable ASCII as `\xNN` (and a backslash as `\\`).
pub(crate) fn body_text(body: &[u8]) -> String {
    // A cut inside a character (at the shown limit): the text up to it stays text.
    let text = match std::str::from_utf8(body) {
        Ok(text) => Some(text),
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&body[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    match text {
        Some(text) => escape_text(text).into_owned(),
        None => body
            .iter()
            .map(|&b| match b {
                b'\\' => "\\\\".to_owned(),
                0x20..=0x7e => char::from(b).to_string(),
                _ => format!("\\x{b:02x}"),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_shown_whole_and_safe_for_a_terminal() {
        assert_eq!(body_text(b"{\"ticket\": 42}"), "{\"ticket\": 42}");
        let hostile = body_text("a\x1b[2J\nb\u{202e}c\u{200b}".as_bytes());
        assert!(
            !hostile.contains('\x1b') && !hostile.contains('\n'),
            "{hostile}"
        );
        assert!(!hostile.contains('\u{202e}') && !hostile.contains('\u{200b}'));
        assert_eq!(body_text(&[0xff, b'a', b'\\']), "\\xffa\\\\");
        // Issue 23: the end of a 262-byte body is shown, not cut at 200 bytes.
        let long = format!(
            "{}\"scope\":\"ALL_TICKETS\",\"hard_delete\":true}}",
            "x".repeat(220)
        );
        assert!(body_text(long.as_bytes()).ends_with("\"hard_delete\":true}"));
        let cut = "é".repeat(10);
        assert_eq!(body_text(&cut.as_bytes()[..5]), "éé");
    }

    #[test]
    fn a_delegated_obo_or_session_says_which_envelope_named_it() {
        let link = |agent, obo, session| Link {
            agent,
            obo,
            session,
        };
        let shown = |links| Shown {
            links,
            tool: "crm.drop",
            class: ActionClass::Destructive,
            queue: "q",
            message_id: "m",
            body: b"",
        };
        let alone = shown(vec![link("A", Some("alice"), None)]);
        assert_eq!(alone.named(|l| l.obo), "alice");
        assert_eq!(alone.named(|l| l.session), "-");
        let same = shown(vec![
            link("A", Some("alice"), Some("s1")),
            link("B\u{200b}", Some("alice"), Some("s1")),
        ]);
        assert_eq!(
            same.named(|l| l.obo),
            "alice (delegated: named by the root, A)"
        );
        // Issue 23: a delegate asserting an obo its root never named is never shown as fact.
        let asserted = shown(vec![
            link("A", Some("alice"), None),
            link("B", Some("alice"), None),
            link("C\u{200b}", Some("ceo@acme.example"), Some("s9")),
        ]);
        assert_eq!(
            asserted.named(|l| l.obo),
            "ceo@acme.example (delegated: NOT the root's: B names alice, its delegate \
             C\\u{200b} named ceo@acme.example)"
        );
        assert_eq!(
            asserted.named(|l| l.session),
            "s9 (delegated: NOT the root's: B names -, its delegate C\\u{200b} named s9)"
        );
    }
}
