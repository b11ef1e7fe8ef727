//! `laissez sign`: flags (and an optional profile) to a signed envelope.

use std::path::PathBuf;

use clap::Args;
use laissez_sign::keyfile::{read_public_key_file, read_secret_key_file, write_private_file};
use laissez_sign::{DEFAULT_MAX_USES, DEFAULT_TTL, EnvelopeBuilder, ToolSpec};
use laissez_verify::{ActionClass, Classes};
use serde_json::json;

use crate::failure::Failure;
use crate::grant_flags;
use crate::output::{json_line, write_stdout};
use crate::profile::{self, Profile};

pub(crate) const SIGN_HELP: &str = "\
Flags override the profile's fields; --aud and --tool given on the command line replace the
profile's lists. Defaults: --classes read, --max-uses 1, --ttl 5m, --nbf now; TTL at most 24h.

--json prints {\"envelope\": BASE64URL, \"kid\": HEX, \"cti\": HEX, \"claims\": {...}}, claims
named as in the contract (cti as hex, classes as lists of names).

--holder PUBFILE binds the envelope to the agent's public key (cnf): every call under it then
needs an invocation the agent signs with `laissez invoke`, so a copy taken from a queue is
worthless without the agent's secret key.

--approval CLASSES --approvals M --approver PUBFILE... adds the grant's approval rule: a call of
those classes then runs only with M distinct approvals (`laissez approve`) by those approvers. The
signing key may not be one of them: an issuer never approves.

--args PATTERN=JSON gives the tool grants whose pattern is PATTERN constraints on the call's
JSON body (docs/spec.md §16); a bare --tool given args takes --classes. Members the args do not
name are refused unless they name \"*\". --budget PATTERN:MEMBER=LIMIT caps the sum of the
body's MEMBER over every call under PATTERN (docs/spec.md §17). --approval-unless PATTERN=JSON
waives the approval rule for calls of PATTERN whose body satisfies the args (read open). JSON
that is not the args' JSON form is exit 2, naming what is wrong and where.

--out FILE is created with mode 0600 and never over an existing file or link; --force replaces
it atomically.

Examples:
  laissez sign --key orchestrator.key --agent spiffe://acme.example/agent/support-bot \\
      --aud billing-queue --tool 'crm.ticket.*' --tool crm.ticket.close=write --ttl 15m

  # Refunds of at most 500 in EUR or USD, at most 2000 in all; 2 of 3 approvals above 100.
  laissez sign --key orchestrator.key --agent spiffe://acme.example/agent/billing-bot \\
      --aud billing-queue --tool billing.refund=write --max-uses 10 \\
      --args 'billing.refund={\"amount\": {\"range\": [1, 500]}, \"currency\": {\"one_of\": [\"EUR\", \"USD\"]}}' \\
      --budget billing.refund:amount=2000 \\
      --approval write --approvals 2 --approver a.pub --approver b.pub --approver c.pub \\
      --approval-unless 'billing.refund={\"amount\": {\"range\": [null, 100]}}'";

/// Arguments of `sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// Secret key file (PKCS#8 PEM, not accessible by group or others).
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    key: PathBuf,
    /// Signing profile (TOML with the same fields as the flags: agent, aud, tool, classes,
    /// max_uses, ttl, obo, session, iss).
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    profile: Option<PathBuf>,
    /// Agent identity (sub), e.g. spiffe://acme.example/agent/support-bot.
    #[arg(long, value_name = "ID", value_parser = crate::name_arg)]
    agent: Option<String>,
    /// Queue or worker pool that may act on it (repeatable).
    #[arg(long, value_name = "NAME", value_parser = crate::name_arg)]
    aud: Vec<String>,
    /// Tool pattern, alone or with its own classes: crm.ticket.read, crm.*=read+write, * (repeatable).
    #[arg(long, value_name = "PATTERN[=CLASSES]", value_parser = crate::parse_tool_arg)]
    tool: Vec<ToolSpec>,
    /// Classes for bare tool patterns: read, write, destructive joined by + or , [default: read].
    #[arg(long, value_name = "LIST", value_parser = crate::parse_classes_arg)]
    classes: Option<Classes>,
    /// How many distinct messages it may authorise [default: 1].
    #[arg(long, value_name = "N")]
    max_uses: Option<u64>,
    /// Lifetime, like 30s, 15m, 1h, 2h30m; at most 24h [default: 5m].
    #[arg(long, value_name = "DUR", value_parser = crate::parse_duration_arg)]
    ttl: Option<u64>,
    /// Not before, Unix seconds [default: now].
    #[arg(long, value_name = "UNIX")]
    nbf: Option<u64>,
    /// Principal the agent acts on behalf of.
    #[arg(long, value_name = "P", value_parser = crate::name_arg)]
    obo: Option<String>,
    /// Session or task id the envelope is bound to.
    #[arg(long, value_name = "S", value_parser = crate::name_arg)]
    session: Option<String>,
    /// Issuer (orchestrator) name, informational.
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
    /// Bind the envelope to this agent public key (SPKI PEM): it adds cnf, and every call
    /// then needs the agent's invocation.
    #[arg(long, value_name = "PUBFILE", value_parser = crate::path_arg)]
    holder: Option<PathBuf>,
    /// Classes that need human approval (names joined by + or ,); needs --approvals and
    /// --approver.
    #[arg(long, value_name = "CLASSES", value_parser = crate::parse_classes_arg,
          requires_all = ["approvals", "approver"])]
    approval: Option<Classes>,
    /// How many distinct approvers must approve such a call (1 to the number of approvers).
    #[arg(long, value_name = "M", requires = "approval")]
    approvals: Option<usize>,
    /// An approver's public key (SPKI PEM; repeatable, 1 to 16 keys).
    #[arg(long, value_name = "PUBFILE", requires = "approval", value_parser = crate::path_arg)]
    approver: Vec<PathBuf>,
    /// A waiver of the approval rule: calls of PATTERN whose body satisfies the args (JSON
    /// form) need no approval, e.g. 'billing.refund={"amount": {"range": [null, 500]}}'
    /// (repeatable, 1 to 8; needs --approval).
    #[arg(long, value_name = "PATTERN=JSON", requires = "approval",
          value_parser = crate::parse_pattern_args_arg)]
    approval_unless: Vec<crate::grant_flags::PatternArgs>,
    /// Write the envelope to FILE (created with mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    out: Option<PathBuf>,
    /// Replace the --out FILE if it exists (atomically).
    #[arg(long, requires = "out")]
    force: bool,
    /// Output the raw CBOR bytes instead of base64url.
    #[arg(long, conflicts_with = "json")]
    raw: bool,
    /// Print a JSON object: envelope, kid, cti and claims.
    #[arg(long)]
    json: bool,
}

/// The builder for the merged flags and profile: a usage error names what is missing.
fn builder(args: &SignArgs, profile: Profile) -> Result<EnvelopeBuilder, Failure> {
    let agent = args
        .agent
        .clone()
        .or(profile.agent)
        .ok_or_else(|| Failure::usage("--agent is required (or `agent` in the profile)"))?;
    let aud = if args.aud.is_empty() {
        profile.aud.unwrap_or_default()
    } else {
        args.aud.clone()
    };
    if aud.is_empty() {
        return Err(Failure::usage(
            "at least one --aud is required (or `aud` in the profile)",
        ));
    }
    let tools = if args.tool.is_empty() {
        profile.tool.unwrap_or_default()
    } else {
        args.tool.clone()
    };
    if tools.is_empty() {
        return Err(Failure::usage(
            "at least one --tool is required (or `tool` in the profile)",
        ));
    }
    let mut b = EnvelopeBuilder::new(agent)
        .classes(
            args.classes
                .or(profile.classes)
                .unwrap_or(Classes::only(ActionClass::Read)),
        )
        .max_uses(
            args.max_uses
                .or(profile.max_uses)
                .unwrap_or(DEFAULT_MAX_USES),
        )
        .ttl_secs(args.ttl.or(profile.ttl).unwrap_or(DEFAULT_TTL));
    for a in aud {
        b = b.audience(a);
    }
    for t in tools {
        b = b.tool_spec(t);
    }
    if let Some(nbf) = args.nbf {
        b = b.not_before(nbf);
    }
    if let Some(obo) = args.obo.clone().or(profile.obo) {
        b = b.on_behalf_of(obo);
    }
    if let Some(session) = args.session.clone().or(profile.session) {
        b = b.session(session);
    }
    if let Some(iss) = args.iss.clone().or(profile.iss) {
        b = b.issuer(iss);
    }
    Ok(grant_flags::with_args_and_budgets(
        b,
        &args.tool_args,
        &args.budget,
    ))
}

pub(crate) fn sign(args: &SignArgs) -> Result<(), Failure> {
    let profile = match &args.profile {
        Some(path) => profile::load(path)?,
        None => Profile::default(),
    };
    let builder = builder(args, profile)?;
    // Bad claims are a usage error before the key file is even opened.
    builder.validate().map_err(Failure::usage)?;
    // A holder key that fails the key checks is a key error (exit 3), as a trust file's is.
    let builder = match &args.holder {
        Some(path) => builder.holder(read_public_key_file(path)?),
        None => builder,
    };
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
    let envelope = builder.sign(&key).map_err(|e| match e {
        laissez_sign::BuildError::Rng | laissez_sign::BuildError::SelfCheck(_) => Failure::io(e),
        other => Failure::usage(other),
    })?;

    let text = envelope.to_text();
    let mut encoded = if args.raw {
        envelope.as_bytes().to_vec()
    } else {
        format!("{text}\n").into_bytes()
    };
    let json_line = if args.json {
        let claims = envelope
            .claims()
            .map_err(|d| Failure::io(format!("internal error: {d}")))?;
        let value = json!({
            "envelope": text,
            "kid": envelope.kid().to_string(),
            "cti": envelope.cti_hex(),
            "claims": claims,
        });
        Some(json_line(&value))
    } else {
        None
    };

    if let Some(path) = &args.out {
        // A bearer token: only its owner may read it, and an existing file (or a link planted
        // at the path) is never written through (docs/spec.md §10).
        write_private_file(path, &encoded, args.force)?;
        encoded.clear();
    }
    match json_line {
        Some(line) => write_stdout(line.as_bytes()),
        None => write_stdout(&encoded),
    }
}
