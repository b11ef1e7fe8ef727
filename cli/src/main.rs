//! `laissez`: keys, signing, verifying, inspecting and consuming laissez envelopes (`docs/spec.md` §10).
//!
//! Exit codes: 0 allowed (or done), 1 denied, 2 usage error, 3 I/O or key error.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod amqp_tls;
mod approve_cmd;
mod consume;
mod declare_cmd;
mod delegate_cmd;
mod failure;
mod grant_flags;
mod input;
mod inspect_cmd;
mod invoke_cmd;
mod keys_cmd;
mod log_filter;
mod log_format;
mod metrics_endpoint;
mod output;
mod profile;
mod records;
mod revoke_cmd;
mod sandbox_cmd;
mod sign_cmd;
mod tools_file;
mod verify_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use laissez_sign::{SpecError, ToolSpec};
use laissez_verify::ActionClass;

use crate::failure::Failure;

/// Pre-signed, bounded capability envelopes for AI agents on queues.
#[derive(Debug, Parser)]
#[command(
    name = "laissez",
    version,
    after_help = "Exit codes: 0 allowed (or done), 1 denied, 2 usage error, 3 I/O or key error.\n\
                  A denial prints `denied: REASON` as the first line on stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a signing key: FILE (PKCS#8 PEM, mode 0600) and FILE.pub (SPKI PEM); prints the kid.
    #[command(after_help = "Example:\n  laissez keygen --out orchestrator.key")]
    Keygen(keys_cmd::KeygenArgs),
    /// Print the public key (SPKI PEM) of a secret key file.
    #[command(after_help = "Example:\n  laissez pubkey --key orchestrator.key > trusted.pub")]
    Pubkey(keys_cmd::PubkeyArgs),
    /// Sign an envelope; prints it as base64url (`--raw`: bytes, `--json`: JSON).
    #[command(after_help = sign_cmd::SIGN_HELP)]
    Sign(Box<sign_cmd::SignArgs>),
    /// Decide whether an envelope allows a request; with --ledger, also spend a use.
    #[command(after_help = verify_cmd::VERIFY_HELP)]
    Verify(Box<verify_cmd::VerifyArgs>),
    /// Decode an envelope or an invocation WITHOUT verifying it, and say so.
    #[command(after_help = inspect_cmd::INSPECT_HELP)]
    Inspect(inspect_cmd::InspectArgs),
    /// Delegate: sign a narrower child of a holder-bound envelope for another agent; prints the chain.
    #[command(after_help = delegate_cmd::DELEGATE_HELP)]
    Delegate(Box<delegate_cmd::DelegateArgs>),
    /// Sign one call under a holder-bound envelope with the agent's key; prints the invocation.
    #[command(after_help = invoke_cmd::INVOKE_HELP)]
    Invoke(Box<invoke_cmd::InvokeArgs>),
    /// Sign a revocation record; print it, or publish it to the revocation stream.
    #[command(after_help = revoke_cmd::REVOKE_HELP)]
    Revoke(Box<revoke_cmd::RevokeArgs>),
    /// Approve one call (a person's signature): print it, or add it to a parked message.
    #[command(after_help = approve_cmd::APPROVE_HELP)]
    Approve(Box<approve_cmd::ApproveArgs>),
    /// Declare a work queue's standard topology: the queue, Q.dlx, Q.dlq and Q.retry.
    #[command(after_help = declare_cmd::DECLARE_HELP)]
    Declare(declare_cmd::DeclareArgs),
    /// Consume a queue as a worker sidecar: verify each message, spend its use, run CMD.
    #[command(after_help = consume::CONSUME_HELP)]
    Consume(Box<consume::ConsumeArgs>),
    /// Run a command that may write only beneath the paths given (Landlock): a handler kept from the ledger.
    #[command(after_help = sandbox_cmd::SANDBOX_HELP)]
    Sandbox(sandbox_cmd::SandboxArgs),
    /// Print shell completions.
    #[command(after_help = "Example:\n  laissez completions bash > /etc/bash_completion.d/laissez")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `--classes` and `--tool ...=CLASSES` values.
fn parse_classes_arg(text: &str) -> Result<laissez_verify::Classes, SpecError> {
    laissez_sign::parse_classes(text)
}

/// `--tool PATTERN[=CLASSES]` values.
fn parse_tool_arg(text: &str) -> Result<ToolSpec, SpecError> {
    text.parse()
}

/// `--args` and `--approval-unless` values: `PATTERN=JSON`.
fn parse_pattern_args_arg(text: &str) -> Result<grant_flags::PatternArgs, SpecError> {
    laissez_sign::parse_pattern_args(text)
        .map(|(pattern, args)| grant_flags::PatternArgs { pattern, args })
}

/// `--budget PATTERN:MEMBER=LIMIT` values.
fn parse_budget_arg(text: &str) -> Result<laissez_sign::args::Budget, SpecError> {
    text.parse()
}

/// DUR values: seconds.
fn parse_duration_arg(text: &str) -> Result<u64, SpecError> {
    laissez_sign::parse_duration(text)
}

/// `--class` values.
fn parse_class_arg(text: &str) -> Result<ActionClass, String> {
    text.parse::<ActionClass>().map_err(|e| e.to_string())
}

/// A file argument. An empty path is a usage error (exit 2), not a file that cannot be opened.
fn path_arg(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        Err("the path must not be empty".to_owned())
    } else {
        Ok(PathBuf::from(text))
    }
}

/// A name argument (`--agent`, `--aud`, `--obo`...). The wire format allows empty text, but an
/// empty agent, queue or session is a mistake: `verify --aud ""` would accept an envelope
/// whose aud lists "" (docs/spec.md §10).
fn name_arg(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Keygen(args) => keys_cmd::keygen(&args),
        Command::Pubkey(args) => keys_cmd::pubkey(&args),
        Command::Sign(args) => sign_cmd::sign(&args),
        Command::Verify(args) => verify_cmd::verify(&args),
        Command::Inspect(args) => inspect_cmd::inspect(&args),
        Command::Delegate(args) => delegate_cmd::delegate(&args),
        Command::Invoke(args) => invoke_cmd::invoke(&args),
        Command::Revoke(args) => revoke_cmd::revoke(&args),
        Command::Approve(args) => approve_cmd::approve(&args),
        Command::Declare(args) => declare_cmd::declare(&args),
        Command::Consume(args) => consume::consume(&args),
        Command::Sandbox(args) => sandbox_cmd::sandbox(&args),
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics when its writer fails.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "laissez", &mut script);
            output::write_stdout(&script)
        }
    }
}

fn main() -> ExitCode {
    // Clap prints usage errors itself and exits with 2, as the contract wants.
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            output::report(&failure);
            failure.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
