//! The grant flags `sign` and `delegate` share beyond the tool list (`docs/spec.md` §10, §12,
//! §16, §17): `--args`, `--budget`, and the approval rule with its `--approval-unless`
//! waivers.

use std::path::Path;

use laissez_sign::args::{Args, Budget, Waiver};
use laissez_sign::keyfile::read_trust_files;
use laissez_sign::{ApprovalSpec, EnvelopeBuilder};
use laissez_verify::Classes;

use crate::failure::Failure;

/// One `PATTERN=JSON` value: a tool pattern and args in their JSON form, already checked.
#[derive(Debug, Clone)]
pub(crate) struct PatternArgs {
    pub(crate) pattern: String,
    pub(crate) args: Args,
}

/// Gives each `--args` to the tool grants of its pattern and adds each `--budget`. The
/// builder's `validate` then refuses a pattern no `--tool` names, a second `--args` for one
/// pattern and a second `--budget` for one pattern and member (exit 2).
pub(crate) fn with_args_and_budgets(
    mut builder: EnvelopeBuilder,
    args: &[PatternArgs],
    budgets: &[Budget],
) -> EnvelopeBuilder {
    for a in args {
        builder = builder.tool_args(a.pattern.clone(), a.args.clone());
    }
    for b in budgets {
        builder = builder.budget(b.clone());
    }
    builder
}

/// The approval rule of `--approval CLASSES --approvals M --approver PUBFILE...` and its
/// `--approval-unless` waivers, in the order given. An approver file that cannot be read is
/// exit 3; a rule that cannot be stated is exit 2.
pub(crate) fn approval_rule(
    classes: Classes,
    m: usize,
    approvers: &[impl AsRef<Path>],
    unless: &[PatternArgs],
) -> Result<ApprovalSpec, Failure> {
    let approvers = read_trust_files(approvers)?;
    let rule = ApprovalSpec::new(classes, m, &approvers)
        .map_err(|e| Failure::usage(format!("--approval: {e}")))?;
    if unless.is_empty() {
        return Ok(rule);
    }
    let waivers = unless
        .iter()
        .map(|w| Waiver::new(w.pattern.clone(), w.args.clone()));
    rule.unless(waivers)
        .map_err(|e| Failure::usage(format!("--approval-unless: {e}")))
}
