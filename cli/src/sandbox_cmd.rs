//! `laissez sandbox`: runs a command that may read the file system but write only where it is
//! told (`docs/spec.md` §10), for `consume --exec`: the handler must never reach the ledger.
//!
//! The handler runs as the worker's user, so file permissions cannot keep it from the ledger
//! file that the worker writes. A Landlock ruleset can: this process restricts itself (no
//! privilege needed, and no way back), then replaces itself with the command (`execve`: the
//! same process, environment, stdin and stdout), which inherits the restriction and every
//! process it starts does too. The worker's own handle on the ledger was opened before and is
//! not inherited (close-on-exec), and Landlock also forbids the command to trace or read
//! `/proc` of the worker outside its domain (its memory, its file descriptors, its
//! environment). The ruleset handles every file-system access Landlock ABI 3 (Linux 6.2)
//! knows; on a kernel that cannot enforce all of them, nothing runs (exit 3): a sandbox that
//! silently is not one is worse than none.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

use crate::failure::Failure;

pub(crate) const SANDBOX_HELP: &str = "\
The command may read and execute anything the user may, and create, write, truncate, rename
or remove files only beneath each --write PATH (a directory, or a file such as /dev/null).
It keeps its process, environment, stdin and stdout: `laissez consume --exec laissez sandbox
-- HANDLER` runs HANDLER with the decision in its environment as usual. The restriction is
Landlock's (Linux 6.2 or later, ABI 3): where the kernel cannot enforce it, the command is
not run (exit 3).

Example (the systemd unit in examples/systemd):
  laissez consume ... --ledger /var/lib/laissez/billing.redb \\
      --exec /usr/local/bin/laissez sandbox --write /tmp --write /dev/null -- ./handler";

/// Arguments of `sandbox`.
#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    /// A file or directory the command may write beneath (repeatable); nothing else.
    #[arg(long = "write", value_name = "PATH", value_parser = crate::path_arg)]
    pub(crate) write: Vec<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub(crate) command: Vec<OsString>,
}

#[cfg(target_os = "linux")]
pub(crate) fn sandbox(args: &SandboxArgs) -> Result<(), Failure> {
    use std::os::unix::process::CommandExt as _;

    use landlock::{
        ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr,
        path_beneath_rules,
    };

    let Some((program, rest)) = args.command.split_first() else {
        return Err(Failure::usage("no command after --"));
    };
    for path in &args.write {
        if !path.exists() {
            return Err(Failure::io(format!(
                "--write {}: no such file or directory",
                path.display()
            )));
        }
    }
    let abi = ABI::V3;
    let refused = |e: landlock::RulesetError| {
        Failure::io(format!(
            "the kernel cannot enforce the sandbox (Landlock ABI 3, Linux 6.2): {e}; the \
             command was not run"
        ))
    };
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi))))
        .and_then(|r| r.add_rules(path_beneath_rules(&args.write, AccessFs::from_all(abi))))
        .and_then(|r| r.restrict_self())
        .map_err(refused)?;
    // Only returns when the command could not be started.
    let error = std::process::Command::new(program).args(rest).exec();
    Err(Failure::io(format!(
        "cannot run {}: {error}",
        std::path::Path::new(program).display()
    )))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn sandbox(_args: &SandboxArgs) -> Result<(), Failure> {
    Err(Failure::io(
        "laissez sandbox needs Linux (Landlock); the command was not run",
    ))
}
