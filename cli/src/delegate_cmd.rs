//! `laissez delegate`: an agent holding a holder-bound envelope signs a narrower child for
//! another agent with its own (holder) key, and prints the chain (`docs/spec.md` §10, §13).

use std::path::PathBuf;

use clap::Args;
use laissez_sign::keyfile::{read_public_key_file, read_secret_key_file};
use laissez_sign::{DEFAULT_MAX_USES, DEFAULT_TTL, DelegateError, EnvelopeBuilder, ToolSpec};
use laissez_verify::envelope::UntrustedEnvelope;
use laissez_verify::{ActionClass, Classes};
use serde_json::json;

use crate::failure::Failure;
use crate::grant_flags;
use crate::input::read_chain;
use crate::output::{json_line, write_stdout};

pub(crate) const DELEGATE_HELP: &str = "\
--parent ENV is the envelope (or chain, in its text form) the delegator holds: it must be
bound (cnf) to the --key given here. The child is signed with that key, names its parent by
its SHA-256, and is bound to the delegatee's --holder key (required: a delegated envelope is
never a bearer token). It prints the chain's text form, root first, the child last: the
delegatee sends the leaf in `laissez-envelope` and its ancestors in `laissez-chain`, and
signs its invocations with `laissez invoke --envelope CHAIN`.

The child may only narrow its parent. Defaults: the parent's --aud, --obo and --session;
--classes read, --max-uses 1, --ttl 5m, --nbf now, then nbf and exp are clamped into the
parent's. A child that still grants more than its parent (an audience, tool or class it does
not grant, more uses, another obo or session, args or budgets wider than the parent's) is
refused (exit 2), naming the field. --args, --budget and --approval-unless are sign's.

--json prints {\"chain\": TEXT, \"envelope\": the child's BASE64URL, \"kid\": HEX, \"cti\": HEX,
\"claims\": {...}} (the child's).

Example:
  laissez delegate --key planner.key --parent \"$PLANNER_ENV\" \\
      --agent spiffe://acme.example/agent/sub-agent --holder sub-agent.key.pub \\
      --tool crm.ticket.read --max-uses 2 --ttl 5m

  # Narrower args and a smaller budget than the parent's.
  laissez delegate --key planner.key --parent \"$PLANNER_ENV\" \\
      --agent spiffe://acme.example/agent/refunder --holder refunder.key.pub \\
      --tool billing.refund=write --args 'billing.refund={\"amount\": {\"range\": [1, 50]}}' \\
      --budget billing.refund:amount=200";

/// Arguments of `delegate`.
#[derive(Debug, Args)]
pub(crate) struct DelegateArgs {
    /// The delegator's secret key file: the holder key (cnf) of the parent envelope.
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    key: PathBuf,
    /// The parent: an envelope or a chain's text form (base64url joined by `.`), or - for
    /// stdin.
    #[arg(long, value_name = "ENV|-", allow_hyphen_values = true)]
    parent: String,
    /// The delegatee's agent identity (sub).
    #[arg(long, value_name = "ID", value_parser = crate::name_arg)]
    agent: String,
    /// The delegatee's public key (SPKI PEM): the child's cnf. Required.
    #[arg(long, value_name = "PUBFILE", value_parser = crate::path_arg)]
    holder: Option<PathBuf>,
    /// Queue or worker pool (repeatable) [default: the parent's].
    #[arg(long, value_name = "NAME", value_parser = crate::name_arg)]
    aud: Vec<String>,
    /// Tool pattern, alone or with its own classes (repeatable, at least one).
    #[arg(long, value_name = "PATTERN[=CLASSES]", value_parser = crate::parse_tool_arg)]
    tool: Vec<ToolSpec>,
    /// Classes for bare tool patterns [default: read].
    #[arg(long, value_name = "LIST", value_parser = crate::parse_classes_arg)]
    classes: Option<Classes>,
    /// How many distinct messages it may authorise; at most the parent's [default: 1].
    #[arg(long, value_name = "N")]
    max_uses: Option<u64>,
    /// Lifetime; exp is then clamped to the parent's [default: 5m].
    #[arg(long, value_name = "DUR", value_parser = crate::parse_duration_arg)]
    ttl: Option<u64>,
    /// Not before, Unix seconds; raised to the parent's nbf [default: now].
    #[arg(long, value_name = "UNIX")]
    nbf: Option<u64>,
    /// Principal [default: the parent's; when the parent has one, only that one].
    #[arg(long, value_name = "P", value_parser = crate::name_arg)]
    obo: Option<String>,
    /// Session [default: the parent's; when the parent has one, only that one].
    #[arg(long, value_name = "S", value_parser = crate::name_arg)]
    session: Option<String>,
    /// Issuer name, informational.
    #[arg(long, value_name = "I", value_parser = crate::name_arg)]
    iss: Option<String>,
    /// Args for the tool grants whose pattern is PATTERN, in their JSON form (docs/spec.md
    /// §16): a call's JSON body must satisfy them, e.g.
    /// 'billing.refund={"amount": {"range": [1, 500]}}' (repeatable, once per pattern).
    #[arg(long = "args", value_name = "PATTERN=JSON", value_parser = crate::parse_pattern_args_arg)]
    tool_args: Vec<crate::grant_flags::PatternArgs>,
    /// A cap on the sum of a body member over every call under PATTERN, e.g.
    /// billing.refund:amount=100000 (limit 1 to 2^53-1; repeatable, once per pattern and member).
    #[arg(long, value_name = "PATTERN:MEMBER=LIMIT", value_parser = crate::parse_budget_arg)]
    budget: Vec<laissez_sign::args::Budget>,
    /// Classes that need human approval; needs --approvals and --approver. Every rule of
    /// every envelope of the chain holds: the parent's cannot be lifted.
    #[arg(long, value_name = "CLASSES", value_parser = crate::parse_classes_arg,
          requires_all = ["approvals", "approver"])]
    approval: Option<Classes>,
    /// How many distinct approvers must approve such a call.
    #[arg(long, value_name = "M", requires = "approval")]
    approvals: Option<usize>,
    /// An approver's public key (SPKI PEM; repeatable).
    #[arg(long, value_name = "PUBFILE", requires = "approval", value_parser = crate::path_arg)]
    approver: Vec<PathBuf>,
    /// A waiver of the approval rule: calls of PATTERN whose body satisfies the args (JSON
    /// form) need no approval, e.g. 'billing.refund={"amount": {"range": [null, 500]}}'
    /// (repeatable, 1 to 8; needs --approval).
    #[arg(long, value_name = "PATTERN=JSON", requires = "approval",
          value_parser = crate::parse_pattern_args_arg)]
    approval_unless: Vec<crate::grant_flags::PatternArgs>,
    /// Print a JSON object: chain, envelope, kid, cti and claims.
    #[arg(long)]
    json: bool,
}

/// What the child inherits from its parent: its audiences, and its nbf and exp to clamp
/// into. `None` when the parent does not decode: [`laissez_sign::delegate`] says why.
struct ParentBounds {
    aud: Vec<String>,
    nbf: u64,
    exp: u64,
}

fn parent_bounds(parent: &[u8]) -> Option<ParentBounds> {
    let claims = UntrustedEnvelope::decode(parent)
        .ok()?
        .claims_unverified()
        .ok()?;
    Some(ParentBounds {
        aud: claims.aud().map(str::to_owned).collect(),
        nbf: claims.nbf(),
        exp: claims.exp(),
    })
}

/// The child's builder: the flags, the parent's defaults, and its times clamped into the
/// parent's.
fn builder(
    args: &DelegateArgs,
    bounds: Option<&ParentBounds>,
    now: u64,
) -> Result<EnvelopeBuilder, Failure> {
    if args.tool.is_empty() {
        return Err(Failure::usage(
            "at least one --tool is required: the child names what it may call",
        ));
    }
    let mut nbf = args.nbf.unwrap_or(now);
    let mut ttl = args.ttl.unwrap_or(DEFAULT_TTL);
    let mut aud = args.aud.clone();
    if let Some(bounds) = bounds {
        nbf = nbf.max(bounds.nbf);
        if nbf >= bounds.exp {
            return Err(Failure::usage(format!(
                "the parent expires at {} (Unix seconds), not after the child's nbf {nbf}: \
                 there is no time left to delegate",
                bounds.exp
            )));
        }
        ttl = ttl.min(bounds.exp - nbf);
        if aud.is_empty() {
            aud.clone_from(&bounds.aud);
        }
    }
    let mut b = EnvelopeBuilder::new(args.agent.clone())
        .classes(args.classes.unwrap_or(Classes::only(ActionClass::Read)))
        .max_uses(args.max_uses.unwrap_or(DEFAULT_MAX_USES))
        .ttl_secs(ttl)
        .not_before(nbf);
    for a in aud {
        b = b.audience(a);
    }
    for t in &args.tool {
        b = b.tool_spec(t.clone());
    }
    if let Some(obo) = &args.obo {
        b = b.on_behalf_of(obo.clone());
    }
    if let Some(session) = &args.session {
        b = b.session(session.clone());
    }
    if let Some(iss) = &args.iss {
        b = b.issuer(iss.clone());
    }
    let b = grant_flags::with_args_and_budgets(b, &args.tool_args, &args.budget);
    b.validate().map_err(Failure::usage)?;
    Ok(b)
}

/// A refusal of the delegation as the command line reports it: the parent chain's text
/// decodes but an envelope of it does not (a decision: `malformed`...), the wrong key (exit
/// 3), anything else the arguments' fault (exit 2), naming the field that widens.
fn failure(args: &DelegateArgs, e: DelegateError) -> Failure {
    match e {
        DelegateError::Parent(..) => Failure::Denied {
            reason: e.code(),
            detail: format!("--parent: {e}"),
        },
        DelegateError::NotTheHolder { .. } => {
            Failure::io(format!("--key {}: {e}", args.key.display()))
        }
        DelegateError::Build(
            laissez_sign::BuildError::Rng | laissez_sign::BuildError::SelfCheck(_),
        ) => Failure::io(e),
        DelegateError::NotAttenuated(field) => Failure::usage(format!(
            "refused to sign a child that grants more than its parent ({}): {field}",
            field.code()
        )),
        other => Failure::usage(other),
    }
}

pub(crate) fn delegate(args: &DelegateArgs) -> Result<(), Failure> {
    let Some(holder_path) = &args.holder else {
        return Err(Failure::usage(
            "--holder PUBFILE is required: a delegated envelope is always bound to the \
             delegatee's public key (cnf), never a bearer token",
        ));
    };
    let links = read_chain(&args.parent)?.map_err(|e| Failure::Denied {
        reason: "malformed",
        detail: format!("--parent: malformed envelope: {e}"),
    })?;
    let bounds = links.last().and_then(|leaf| parent_bounds(leaf));
    let builder = builder(args, bounds.as_ref(), laissez_sign::unix_now())?;
    let builder = builder.holder(read_public_key_file(holder_path)?);
    let builder = match (args.approval, args.approvals) {
        (Some(classes), Some(m)) => builder.approval(grant_flags::approval_rule(
            classes,
            m,
            &args.approver,
            &args.approval_unless,
        )?),
        _ => builder,
    };
    let key = read_secret_key_file(&args.key)?;
    let parent: Vec<&[u8]> = links.iter().map(Vec::as_slice).collect();
    let chain = laissez_sign::delegate(&key, &parent, builder).map_err(|e| failure(args, e))?;
    let text = chain.to_text();
    if !args.json {
        return write_stdout(format!("{text}\n").as_bytes());
    }
    let leaf = UntrustedEnvelope::decode(chain.leaf())
        .map_err(|e| Failure::io(format!("internal error: {e}")))?;
    let claims = leaf
        .claims_unverified()
        .map_err(|e| Failure::io(format!("internal error: {e}")))?;
    let cti: String = claims.cti().iter().map(|b| format!("{b:02x}")).collect();
    write_stdout(
        json_line(&json!({
            "chain": text,
            "envelope": laissez_sign::encode_text(chain.leaf()),
            "kid": leaf.kid().to_string(),
            "cti": cti,
            "claims": claims,
        }))
        .as_bytes(),
    )
}
