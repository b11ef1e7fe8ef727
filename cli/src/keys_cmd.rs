//! `laissez keygen` and `laissez pubkey`.

use std::path::PathBuf;

use clap::Args;
use laissez_sign::SecretKey;
use laissez_sign::keyfile::{read_secret_key_file, write_key_files};

use crate::failure::Failure;
use crate::output::{write_stderr_line, write_stdout};

/// Arguments of `keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Secret key file to create (mode 0600); the public key goes to FILE.pub.
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    out: PathBuf,
    /// Replace FILE and FILE.pub if they exist (atomically).
    #[arg(long)]
    force: bool,
}

/// Arguments of `pubkey`.
#[derive(Debug, Args)]
pub(crate) struct PubkeyArgs {
    /// Secret key file (PKCS#8 PEM, not accessible by group or others).
    #[arg(long, value_name = "FILE", value_parser = crate::path_arg)]
    key: PathBuf,
}

pub(crate) fn keygen(args: &KeygenArgs) -> Result<(), Failure> {
    let key = SecretKey::generate().map_err(Failure::io)?;
    let pub_path = write_key_files(&args.out, &key, args.force)?;
    write_stderr_line(&format!(
        "wrote {} (secret, mode 0600) and {} (public)",
        args.out.display(),
        pub_path.display()
    ));
    // The files stay when the kid cannot be printed: they are complete, and `pubkey` shows it.
    write_stdout(format!("{}\n", key.kid()).as_bytes())
}

pub(crate) fn pubkey(args: &PubkeyArgs) -> Result<(), Failure> {
    let key = read_secret_key_file(&args.key)?;
    let pem = key
        .public_key_pem()
        .map_err(|e| Failure::io(format!("{}: {e}", args.key.display())))?;
    write_stdout(pem.as_bytes())
}
