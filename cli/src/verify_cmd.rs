//! `laissez verify`: the decision of `docs/spec.md` §2, optionally spending a use in the embedded
//! ledger.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use laissez_ledger::{MAX_MESSAGE_ID_LEN, NotGranted, RedbLedger, UseRequest};
use laissez_sign::keyfile::read_trust_files;
use laissez_verify::invocation::Unreadable;
use laissez_verify::policy::{DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME};
use laissez_verify::{
    ActionClass, Allowed, Claims, Denial, Kid, Policy, Presented, Request, Verifier,
};
use serde_json::json;

use crate::failure::Failure;
use crate::input::{one_stdin, read_body, read_chain, read_object};
use crate::output::{escape_text, json_line, write_stdout};

pub(crate) const VERIFY_HELP: &str = "\
Without --tool/--class it checks everything but the request. With --message-id it checks the
whole call (--tool and --class then required): the body (--body, empty when not given) and,
for a holder-bound envelope, the holder's --invocation over exactly this call. Without
--message-id a holder-bound envelope is `invocation_required`: it is never usable without a
call. With --ledger it also spends a use of the envelope for --message-id in the embedded
ledger file (created if absent): the first time a message id is seen it is granted the next
use number; the same id again is `replayed`; more distinct ids than max_uses are
`uses_exhausted`; an amount that would take a budget past its limit is `budget_exhausted`.
--body is the call's arguments as JSON: a grant with args holds only for a body that satisfies
them (`arguments_not_granted`, \"detail\" names the member, e.g. items[2].sku, or `body`), a
budget needs its member, and an approval rule's waiver reads it; without --message-id the body
is read for these only. --revocations FILE holds the revocation records of FILE (base64url
lines, as `laissez revoke` prints them); a line that is not a record of a trusted key is reported on
stderr and ignored.

Exit 0 allowed, 1 denied (`denied: REASON` on stderr), 2 usage error, 3 I/O or key error.
--json prints {\"allowed\": BOOL, \"reason\": STRING|null, \"kid\": HEX|null,
\"claims\": {...}|null} (claims once the signature holds; kid null when the envelope cannot be
decoded; with --ledger also \"use\": N|null). A denial for the invocation adds \"detail\": the
field that differs (invocation_mismatch), why it is bad (bad_invocation), or holder_bound /
require_holder (invocation_required); approval_required adds \"K of M\" (approvals that
counted of those needed).

ENVELOPE may be a delegation chain's text form (base64url envelopes joined by `.`, root
first): its root must be signed by a --trust key, each child by its parent's holder key, and
no child may grant more than its parent (`bad_delegation`, `not_attenuated`: \"detail\" names
the fault or the field). The call runs under the leaf: its audience, agent, tools and holder.
--json then adds \"chain\": every envelope's claims, root first; \"claims\" is the leaf's and
\"kid\" the root's.

--approval APV (repeatable) gives the approvals that came with the call; only those signed by an
--approvers key listed in the envelope's rule, over exactly this call and in time, count.

Examples:
  laissez verify --trust orchestrator.key.pub --aud billing-queue \\
      --tool crm.ticket.read --class read \"$ENVELOPE\"
  laissez sign ... --raw | laissez verify --trust orchestrator.key.pub --aud billing-queue -
  laissez verify --trust orchestrator.key.pub --aud billing-queue --tool crm.ticket.close \\
      --class write --ledger uses.redb --message-id msg-42 \"$ENVELOPE\"
  laissez verify --trust orchestrator.key.pub --aud billing-queue --tool crm.ticket.close \\
      --class write --message-id msg-42 --body ticket.json --invocation \"$INVOCATION\" \\
      \"$ENVELOPE\"";

/// How long this process holds a message's lease: it completes at once, so any short time.
const CLI_LEASE: Duration = Duration::from_secs(30);

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Trust file: one or more SPKI PEM public keys (repeatable).
    #[arg(long = "trust", value_name = "FILE", required = true, value_parser = crate::path_arg)]
    trust: Vec<PathBuf>,
    /// This worker's audience (queue or pool name).
    #[arg(long, value_name = "NAME", value_parser = crate::name_arg)]
    aud: String,
    /// The tool about to be called (a name, not a pattern).
    #[arg(long, value_name = "T", requires = "class")]
    tool: Option<String>,
    /// Its action class: read, write or destructive.
    #[arg(long, value_name = "C", requires = "tool", value_parser = crate::parse_class_arg)]
    class: Option<ActionClass>,
    /// Require this agent identity (sub).
    #[arg(long, value_name = "ID", value_parser = crate::name_arg)]
    agent: Option<String>,
    /// The time to check against, Unix seconds [default: the system clock].
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
    /// Clock leeway, at most 60s [default: 5s].
    #[arg(long, value_name = "DUR", value_parser = crate::parse_duration_arg)]
    leeway: Option<u64>,
    /// Longest accepted exp - nbf [default: 1h].
    #[arg(long, value_name = "DUR", value_parser = crate::parse_duration_arg)]
    max_lifetime: Option<u64>,
    /// Embedded use ledger file: spend a use for --message-id.
    #[arg(long, value_name = "PATH", requires = "message_id", value_parser = crate::path_arg)]
    ledger: Option<PathBuf>,
    /// The message id of the call: check the whole call (needs --tool and --class).
    #[arg(long, value_name = "ID", requires = "tool")]
    message_id: Option<String>,
    /// The message body, exactly as delivered: a file, or - for stdin [default: empty]. Without
    /// --message-id it is read for the grant's args, budgets and waivers only (docs/spec.md §16).
    #[arg(long, value_name = "FILE|-", allow_hyphen_values = true)]
    body: Option<String>,
    /// The holder's invocation as base64url text, or - to read it from stdin.
    #[arg(
        long,
        value_name = "INV",
        requires = "message_id",
        allow_hyphen_values = true
    )]
    invocation: Option<String>,
    /// Revocation records the worker holds: a file of base64url lines (repeatable). A line
    /// that is not a record signed by a trusted key is reported and ignored.
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    revocations: Vec<PathBuf>,
    /// Refuse an envelope that is not holder-bound (`invocation_required`).
    #[arg(long)]
    require_holder: bool,
    /// An approval of the call as base64url text (repeatable, at most 16).
    #[arg(long, value_name = "APV", requires = "message_id")]
    approval: Vec<String>,
    /// Approver public keys (SPKI PEM trust file; repeatable): the approvals that count. A key
    /// that is also in --trust is refused (exit 3).
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    approvers: Vec<PathBuf>,
    /// Classes that need approval whatever the envelope says (names joined by + or ,).
    #[arg(long, value_name = "CLASSES", value_parser = crate::parse_classes_arg)]
    require_approval: Option<laissez_verify::Classes>,
    /// Print the decision as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// The envelope as base64url text, or - to read it (text or raw bytes) from stdin.
    #[arg(value_name = "ENVELOPE|-", allow_hyphen_values = true)]
    envelope: String,
}

/// A refusal: the reason code, an explanation for people, and for JSON what the contract's
/// `"detail"` says (only for the invocation's reasons).
struct Refusal {
    reason: &'static str,
    text: String,
    detail: Option<String>,
}

impl Refusal {
    fn new(reason: &'static str, text: impl Into<String>) -> Self {
        Refusal {
            reason,
            text: text.into(),
            detail: None,
        }
    }
}
/// An allowance: with a ledger, the use number spent and the envelope's max_uses.
type Uses = Option<(u64, u64)>;

/// What was decided, with what is known about the envelope.
struct Decision<'a> {
    /// The root's kid.
    kid: Option<Kid>,
    /// The leaf's claims.
    claims: Option<Claims<'a>>,
    /// Every envelope's claims, root first, when a chain of more than one was given and it
    /// authenticated; `None` (JSON null) when it did not.
    chain: Option<Vec<Claims<'a>>>,
    /// Whether a chain of more than one envelope was given.
    delegated: bool,
    /// `Ok(use number when a ledger was used)` or `Err(refusal)`.
    result: Result<Uses, Refusal>,
}

/// A denial: its reason, its Display for people, and its detail (`docs/spec.md` §15) for
/// JSON. The words are the gate's; only the hint of `invocation_required` is the command
/// line's (which flags to pass).
fn denial(d: &Denial, has_call: bool) -> Refusal {
    let text = match d {
        Denial::InvocationRequired if has_call => {
            "the envelope is holder-bound and no --invocation came with the call".to_owned()
        }
        Denial::InvocationRequired => "the envelope is holder-bound: it is usable only for a \
             call (--message-id, --tool, --class) with the holder's --invocation"
            .to_owned(),
        other => other.to_string(),
    };
    let detail = d.detail();
    Refusal {
        reason: d.code(),
        text,
        detail: (!detail.is_empty()).then(|| detail.to_string()),
    }
}

/// Checks of the arguments that need no file: a usage error before anything is read.
fn policy_and_request(args: &VerifyArgs) -> Result<(Policy, Option<Request<'_>>), Failure> {
    let policy = Policy::new(
        args.leeway.unwrap_or(DEFAULT_LEEWAY),
        args.max_lifetime.unwrap_or(DEFAULT_MAX_LIFETIME),
    )
    .map_err(|e| Failure::usage(format!("--leeway/--max-lifetime: {e}")))?
    .with_require_holder(args.require_holder);
    let policy = match args.require_approval {
        Some(classes) => policy.with_require_approval(classes),
        None => policy,
    };
    let request = match (&args.tool, args.class) {
        (Some(tool), Some(class)) => Some(
            Request::new(tool, class)
                .map_err(|e| Failure::usage(format!("--tool {tool:?}: {e}")))?,
        ),
        _ => None,
    };
    if let Some(id) = &args.message_id
        && (id.is_empty() || id.len() > MAX_MESSAGE_ID_LEN)
    {
        return Err(Failure::usage(format!(
            "--message-id must be 1 to {MAX_MESSAGE_ID_LEN} bytes"
        )));
    }
    Ok((policy, request))
}

/// Spends the use in the embedded ledger: begin, then complete at once (the decision is the
/// action here).
fn spend(
    ledger_path: &std::path::Path,
    allowed: &Allowed<'_>,
    args: &VerifyArgs,
    leeway: u64,
) -> Result<Result<(u64, u64), Refusal>, Failure> {
    // --ledger needs --message-id, which needs --tool and --class.
    let (Some(message_id), Some(tool), Some(class)) = (&args.message_id, &args.tool, args.class)
    else {
        return Err(Failure::usage(
            "--ledger needs --message-id, --tool and --class",
        ));
    };
    let ledger = RedbLedger::open(ledger_path)
        .map_err(|e| Failure::io(format!("ledger {}: {e}", ledger_path.display())))?;
    let uses = allowed.uses();
    let request = UseRequest::new(&uses, message_id, tool, class, leeway, CLI_LEASE);
    match futures_lite::future::block_on(request.spend_now(&ledger)) {
        Ok(use_number) => Ok(Ok((use_number, uses.leaf().max_uses()))),
        // The ledger failed: not a decision, an I/O error (exit 3).
        Err(NotGranted::Failed(e)) if e.reason().requeues() => Err(Failure::io(format!(
            "ledger {}: {e}",
            ledger_path.display()
        ))),
        Err(not_granted) => Ok(Err(Refusal {
            reason: not_granted.reason().code(),
            text: not_granted.to_string(),
            detail: match not_granted.detail() {
                "" => None,
                detail => Some(detail.to_owned()),
            },
        })),
    }
}

/// What a call brings besides the envelope (`docs/spec.md` §11): the body, and the
/// invocation as read (text that is not base64url is kept as its error: it is a
/// `bad_invocation` only if the checks reach it).
struct CallInputs {
    body: Vec<u8>,
    invocation: Option<Result<Vec<u8>, Unreadable>>,
    approvals: Vec<Vec<u8>>,
}

pub(crate) fn verify(args: &VerifyArgs) -> Result<(), Failure> {
    let (policy, request) = policy_and_request(args)?;
    one_stdin(&[
        ("ENVELOPE", Some(args.envelope.as_str())),
        ("--body", args.body.as_deref()),
        ("--invocation", args.invocation.as_deref()),
    ])?;
    let keys = read_trust_files(&args.trust)?;
    let approvers = read_trust_files(&args.approvers)?;
    let links = read_chain(&args.envelope)?;
    let inputs = CallInputs {
        body: read_body(args.body.as_deref())?,
        invocation: args
            .invocation
            .as_deref()
            .map(|text| read_object(text, "invocation"))
            .transpose()?
            .map(|read| read.map_err(|e| Unreadable::of_text(&e))),
        // Text that is not base64url is no approval: it never counts (docs/spec.md §12).
        approvals: args
            .approval
            .iter()
            .map(|text| laissez_sign::decode_text(text).unwrap_or_default())
            .collect(),
    };
    let now = args.now.unwrap_or_else(laissez_sign::unix_now);

    let held = crate::records::load(&args.revocations, &keys, now)?;
    let mut verifier = Verifier::new(&keys, &args.aud)
        .with_policy(policy)
        .with_revocations(&held)
        .with_approvers(&approvers)
        .map_err(|e| Failure::io(format!("--approvers: {e}")))?;
    if let Some(agent) = &args.agent {
        verifier = verifier.expect_agent(agent);
    }
    match &links {
        Err(text_error) => report(
            args,
            &Decision {
                kid: None,
                claims: None,
                chain: None,
                delegated: false,
                result: Err(Refusal::new(
                    "malformed",
                    format!("malformed envelope: {text_error}"),
                )),
            },
        ),
        Ok(links) => {
            let links: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
            let approvals: Vec<&[u8]> = inputs.approvals.iter().map(Vec::as_slice).collect();
            let decision = decide(args, &verifier, &links, now, request, &inputs, &approvals)?;
            report(args, &decision)
        }
    }
}

/// The gate's decision over a chain, root first (one envelope when not delegated), then with
/// --ledger the spend (`docs/spec.md` §2, §13).
fn decide<'a>(
    args: &'a VerifyArgs,
    verifier: &Verifier<'_>,
    links: &'a [&'a [u8]],
    now: u64,
    request: Option<Request<'a>>,
    inputs: &'a CallInputs,
    approvals: &'a [&'a [u8]],
) -> Result<Decision<'a>, Failure> {
    let delegated = links.len() > 1;
    let mut presented = Presented::new(links);
    if let Some(request) = request {
        presented = presented.request(request);
    }
    if let Some(message_id) = &args.message_id {
        presented = presented
            .call(message_id, &inputs.body)
            .approvals(approvals);
        if let Some(invocation) = &inputs.invocation {
            presented = presented.invocation(invocation.as_deref().map_err(|why| *why));
        }
    } else if args.body.is_some() {
        // A body without a call: read for the args, budgets and waivers (docs/spec.md §16).
        presented = presented.body(&inputs.body);
    }
    let (chain, result) = match verifier.decide(&presented, now) {
        Ok(allowed) => {
            let result = match &args.ledger {
                Some(ledger) => {
                    spend(ledger, &allowed, args, verifier.policy().leeway())?.map(Some)
                }
                None => Ok(None),
            };
            (Some(*allowed.chain()), result)
        }
        Err(refused) => (
            refused.chain().copied(),
            Err(denial(refused.denial(), args.message_id.is_some())),
        ),
    };
    Ok(Decision {
        kid: chain
            .map(|c| c.root().kid())
            .or_else(|| presented.claimed_kid()),
        claims: chain.map(|c| *c.leaf().claims()),
        chain: chain
            .filter(|_| delegated)
            .map(|c| c.iter().map(|e| *e.claims()).collect()),
        delegated,
        result,
    })
}

fn report(args: &VerifyArgs, decision: &Decision<'_>) -> Result<(), Failure> {
    if args.json {
        let refusal = decision.result.as_ref().err();
        let mut value = json!({
            "allowed": decision.result.is_ok(),
            "reason": refusal.map(|r| r.reason),
            "kid": decision.kid.map(|k| k.to_string()),
            "claims": decision.claims,
        });
        if decision.delegated {
            value["chain"] = json!(decision.chain);
        }
        if args.ledger.is_some() {
            value["use"] = json!(
                decision
                    .result
                    .as_ref()
                    .ok()
                    .copied()
                    .flatten()
                    .map(|(n, _)| n)
            );
        }
        if let Some(detail) = refusal.and_then(|r| r.detail.as_ref()) {
            value["detail"] = json!(detail);
        }
        // A decision that cannot be delivered is exit 3, even a denial: a reader that went
        // away must not be mistaken for one that read `"allowed": false`.
        write_stdout(json_line(&value).as_bytes())?;
    }
    match &decision.result {
        Ok(use_number) => {
            if args.json {
                Ok(())
            } else {
                let line = allowed_line(args, decision, *use_number);
                write_stdout(format!("{line}\n").as_bytes())
            }
        }
        Err(refusal) => Err(Failure::Denied {
            reason: refusal.reason,
            detail: refusal.text.clone(),
        }),
    }
}

/// `allowed: agent=... tool=... class=... use=1/3`
fn allowed_line(
    args: &VerifyArgs,
    decision: &Decision<'_>,
    use_number: Option<(u64, u64)>,
) -> String {
    let mut line = String::from("allowed:");
    if let Some(claims) = &decision.claims {
        // Signed by a trusted key, but possibly text a user gave the orchestrator.
        line.push_str(&format!(" agent={}", escape_text(claims.sub())));
    }
    if let Some(chain) = &decision.chain {
        let agents: Vec<String> = chain
            .iter()
            .map(|c| escape_text(c.sub()).into_owned())
            .collect();
        line.push_str(&format!(" chain={}", agents.join(">")));
    }
    if let (Some(tool), Some(class)) = (&args.tool, args.class) {
        line.push_str(&format!(" tool={tool} class={class}"));
    }
    if let Some((n, max)) = use_number {
        line.push_str(&format!(" use={n}/{max}"));
    }
    line
}
