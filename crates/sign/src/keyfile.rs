//! Key files on disk (`docs/spec.md` §3): a secret key is created with mode 0600 and never over an
//! existing file unless asked; a secret key file readable by group or others, or owned by
//! another user, is refused; `FILE.pub` next to it holds the public key; a trust file holds
//! public keys only.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use laissez_verify::TrustedKey;
use zeroize::Zeroizing;

use crate::error::{KeyError, KeyFileError};
use crate::keys::{SecretKey, parse_trust_pem};

/// Mode of a secret key file.
const SECRET_MODE: u32 = 0o600;
/// Mode of a public key file.
const PUBLIC_MODE: u32 = 0o644;
/// Permission bits that must be clear on a secret key file: any access by group or others.
const LOOSE_BITS: u32 = 0o077;
/// Key files are small; a larger file is not a key (and is not read into memory).
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The public key file that goes with a secret key file: `FILE.pub`.
pub fn public_key_path(secret_path: &Path) -> PathBuf {
    let mut name = OsString::from(secret_path.as_os_str());
    name.push(".pub");
    PathBuf::from(name)
}

/// Reads an open file of at most 64 KiB into a string that is wiped when dropped.
fn read_small(path: &Path, file: File) -> Result<Zeroizing<String>, KeyFileError> {
    // Allocated once at full size: a growing String would leave copies of secret bytes in
    // freed memory that Zeroizing cannot reach.
    let mut text = Zeroizing::new(String::with_capacity(MAX_KEY_FILE_LEN as usize + 1));
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_string(&mut text)
        .map_err(io_error(path))?;
    if text.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyFileError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "file is too large to be a key",
            ),
        });
    }
    Ok(text)
}

/// Reads a PKCS#8 PEM secret key file (`docs/spec.md` §3).
///
/// The file is opened first and the checks look at the open file (`fstat`), so they hold for
/// the very bytes that are read: nothing can swap the file between a check and the open.
/// Refused: anything but a regular file, a file that group or others may access, and a file
/// owned by another user than the effective one.
///
/// Symbolic links are followed (no `O_NOFOLLOW`): Kubernetes mounts secrets as links, and
/// since the checks are made on the opened file, a link only ever reaches a file that passes
/// them.
pub fn read_secret_key_file(path: &Path) -> Result<SecretKey, KeyFileError> {
    let file = File::open(path).map_err(io_error(path))?;
    let metadata = file.metadata().map_err(io_error(path))?;
    check_secret_file(path, &metadata)?;
    let pem = read_small(path, file)?;
    SecretKey::from_pkcs8_pem(&pem).map_err(|source| KeyFileError::Key {
        path: path.to_owned(),
        source,
    })
}

/// The checks on an open secret key file, with this process's effective uid.
#[cfg(unix)]
fn check_secret_file(path: &Path, metadata: &fs::Metadata) -> Result<(), KeyFileError> {
    use std::os::unix::fs::MetadataExt;
    check_secret_facts(
        path,
        metadata.is_file(),
        metadata.mode() & 0o777,
        metadata.uid(),
        rustix::process::geteuid().as_raw(),
    )
}

/// Without Unix modes and owners, only the file type is checked.
#[cfg(not(unix))]
fn check_secret_file(path: &Path, metadata: &fs::Metadata) -> Result<(), KeyFileError> {
    check_secret_facts(path, metadata.is_file(), 0, 0, 0)
}

/// The secret key rules on what `fstat` said, apart from the system calls so that every
/// branch can be tested without root.
fn check_secret_facts(
    path: &Path,
    regular: bool,
    mode: u32,
    owner: u32,
    euid: u32,
) -> Result<(), KeyFileError> {
    if !regular {
        return Err(KeyFileError::NotRegularFile {
            path: path.to_owned(),
        });
    }
    if mode & LOOSE_BITS != 0 {
        return Err(KeyFileError::LoosePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    // Another user's key is one they may chmod or rewrite at will, and signing with it
    // (root reading someone's key included) is using a key that is not ours.
    if owner != euid {
        return Err(KeyFileError::WrongOwner {
            path: path.to_owned(),
            owner,
            euid,
        });
    }
    Ok(())
}

/// Reads a trust file: one or more SubjectPublicKeyInfo PEM blocks, each checked as
/// `docs/spec.md` §3 requires.
pub fn read_trust_file(path: &Path) -> Result<Vec<TrustedKey>, KeyFileError> {
    let file = File::open(path).map_err(io_error(path))?;
    let text = read_small(path, file)?;
    parse_trust_pem(&text).map_err(|source| KeyFileError::Key {
        path: path.to_owned(),
        source,
    })
}

/// Reads several trust files ([`read_trust_file`]) and returns their keys, file by file in
/// the order given. The first file that cannot be read or holds a bad key is the error (it
/// names the file).
pub fn read_trust_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<TrustedKey>, KeyFileError> {
    let mut keys = Vec::new();
    for path in paths {
        keys.extend(read_trust_file(path.as_ref())?);
    }
    Ok(keys)
}

/// Reads a file holding exactly one SubjectPublicKeyInfo PEM public key (a holder's,
/// `docs/spec.md` §11), checked as `docs/spec.md` §3 requires. Text outside the block is ignored,
/// as in a trust file; several keys are refused, since one of them would be chosen silently.
pub fn read_public_key_file(path: &Path) -> Result<TrustedKey, KeyFileError> {
    let keys = read_trust_file(path)?;
    match keys.as_slice() {
        [key] => Ok(*key),
        many => Err(KeyFileError::Key {
            path: path.to_owned(),
            source: KeyError::SeveralPublicKeys(many.len()),
        }),
    }
}

/// Writes `key` to `path` (PKCS#8 PEM, mode 0600) and its public key to `path.pub`
/// (SPKI PEM, mode 0644). Returns the public key's path.
///
/// Without `force`, neither file may exist (`create_new`, so a file appearing meanwhile is
/// not overwritten either), and a failure leaves neither behind. With `force`, each file is
/// replaced atomically: written to a temporary file in the same directory, then renamed.
pub fn write_key_files(path: &Path, key: &SecretKey, force: bool) -> Result<PathBuf, KeyFileError> {
    let pub_path = public_key_path(path);
    let secret_pem = key.to_pkcs8_pem().map_err(|source| KeyFileError::Key {
        path: path.to_owned(),
        source,
    })?;
    let public_pem = key.public_key_pem().map_err(|source| KeyFileError::Key {
        path: pub_path.clone(),
        source,
    })?;
    if force {
        replace_file(path, secret_pem.as_bytes(), SECRET_MODE)?;
        replace_file(&pub_path, public_pem.as_bytes(), PUBLIC_MODE)?;
        return Ok(pub_path);
    }
    for existing in [path, pub_path.as_path()] {
        if fs::symlink_metadata(existing).is_ok() {
            return Err(KeyFileError::Exists {
                path: existing.to_owned(),
            });
        }
    }
    create_file(path, secret_pem.as_bytes(), SECRET_MODE)?;
    if let Err(e) = create_file(&pub_path, public_pem.as_bytes(), PUBLIC_MODE) {
        // Leave nothing half-done: the secret key without its public key is removed.
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(pub_path)
}

/// Writes `content` to a new file at `path` that only its owner may read (mode 0600), for
/// outputs that are as good as a secret to whoever holds them (an envelope is a bearer
/// token until it expires).
///
/// Without `force` the file is created exclusively (`O_CREAT | O_EXCL`): it fails with
/// [`KeyFileError::Exists`] when anything is at `path`, a symbolic link included, which is
/// therefore never followed. With `force`, a temporary file in the same directory is written
/// with mode 0600 and renamed over `path`: readers see the old file or the new one, and a
/// link at `path` is replaced, not followed.
pub fn write_private_file(path: &Path, content: &[u8], force: bool) -> Result<(), KeyFileError> {
    if force {
        replace_file(path, content, SECRET_MODE)
    } else {
        create_file(path, content, SECRET_MODE)
    }
}

/// Creates `path` exclusively with `mode` and writes `content`; removes it if writing fails.
fn create_file(path: &Path, content: &[u8], mode: u32) -> Result<(), KeyFileError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists {
                path: path.to_owned(),
            }
        } else {
            KeyFileError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    let written = file.write_all(content).and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(KeyFileError::Io {
            path: path.to_owned(),
            source,
        });
    }
    Ok(())
}

/// Replaces `path` atomically: a fresh temporary file with `mode`, then a rename.
fn replace_file(path: &Path, content: &[u8], mode: u32) -> Result<(), KeyFileError> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| KeyFileError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".tmp-{}", u64::from_le_bytes(suffix)));
    let tmp = path.with_file_name(tmp_name);
    create_file(&tmp, content, mode)?;
    if let Err(source) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(KeyFileError::Io {
            path: path.to_owned(),
            source,
        });
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_0600_secret_and_public_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = SecretKey::from_seed(&[5u8; 32]).unwrap();
        let pub_path = write_key_files(&path, &key, false).unwrap();
        assert_eq!(pub_path, dir.path().join("k.pub"));
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&pub_path), 0o644);
        assert_eq!(read_secret_key_file(&path).unwrap().kid(), key.kid());
        assert_eq!(read_trust_file(&pub_path).unwrap(), vec![key.public_key()]);
    }

    #[test]
    fn a_public_key_file_holds_exactly_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_seed(&[5u8; 32]).unwrap();
        let pub_path = write_key_files(&dir.path().join("k"), &key, false).unwrap();
        assert_eq!(read_public_key_file(&pub_path).unwrap(), key.public_key());
        let other = SecretKey::from_seed(&[6u8; 32]).unwrap();
        let two = dir.path().join("two.pub");
        let text = format!(
            "{}{}",
            key.public_key_pem().unwrap(),
            other.public_key_pem().unwrap()
        );
        fs::write(&two, text).unwrap();
        let err = read_public_key_file(&two).unwrap_err();
        assert_eq!(err.code(), "several_public_keys", "{err}");
        assert!(err.to_string().contains("two.pub"), "{err}");
    }

    #[test]
    fn trust_files_are_read_in_order_and_the_bad_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::from_seed(&[5u8; 32]).unwrap();
        let b = SecretKey::from_seed(&[6u8; 32]).unwrap();
        let a_pub = write_key_files(&dir.path().join("a"), &a, false).unwrap();
        let b_pub = write_key_files(&dir.path().join("b"), &b, false).unwrap();
        assert_eq!(
            read_trust_files(&[&b_pub, &a_pub]).unwrap(),
            vec![b.public_key(), a.public_key()]
        );
        assert_eq!(read_trust_files::<PathBuf>(&[]).unwrap(), vec![]);
        let missing = dir.path().join("missing.pub");
        let err = read_trust_files(&[a_pub, missing]).unwrap_err();
        assert!(err.to_string().contains("missing.pub"), "{err}");
    }

    #[test]
    fn refuses_to_overwrite_without_force_and_replaces_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = SecretKey::from_seed(&[5u8; 32]).unwrap();
        let second = SecretKey::from_seed(&[6u8; 32]).unwrap();
        write_key_files(&path, &first, false).unwrap();
        let err = write_key_files(&path, &second, false).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err}");
        assert_eq!(read_secret_key_file(&path).unwrap().kid(), first.kid());

        write_key_files(&path, &second, true).unwrap();
        assert_eq!(read_secret_key_file(&path).unwrap().kid(), second.kid());
        assert_eq!(mode(&path), 0o600);
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn existing_pub_file_blocks_the_secret_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(public_key_path(&path), "keep me").unwrap();
        let key = SecretKey::from_seed(&[5u8; 32]).unwrap();
        assert!(matches!(
            write_key_files(&path, &key, false),
            Err(KeyFileError::Exists { .. })
        ));
        assert!(!path.exists(), "nothing is written on failure");
    }

    #[test]
    fn loose_permissions_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_key_files(&path, &SecretKey::from_seed(&[5u8; 32]).unwrap(), false).unwrap();
        for loose in [0o640, 0o604, 0o644, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(loose)).unwrap();
            let err = read_secret_key_file(&path).unwrap_err();
            assert!(
                matches!(err, KeyFileError::LoosePermissions { .. }),
                "{loose:o}"
            );
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_secret_key_file(&path).is_ok());
    }

    #[test]
    fn private_files_are_0600_exclusive_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env.txt");
        write_private_file(&path, b"one", false).unwrap();
        assert_eq!(mode(&path), 0o600);
        let err = write_private_file(&path, b"two", false).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_private_file(&path, b"two", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn each_secret_file_rule_names_the_file_and_the_problem() {
        let path = Path::new("keys/orch.key");
        assert!(check_secret_facts(path, true, 0o600, 1000, 1000).is_ok());
        assert!(check_secret_facts(path, true, 0o400, 0, 0).is_ok());
        let err = check_secret_facts(path, true, 0o600, 1000, 0).unwrap_err();
        assert!(
            matches!(
                err,
                KeyFileError::WrongOwner {
                    owner: 1000,
                    euid: 0,
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with("keys/orch.key: ") && text.contains("uid 1000"),
            "{text}"
        );
        let err = check_secret_facts(path, false, 0o600, 0, 0).unwrap_err();
        assert!(matches!(err, KeyFileError::NotRegularFile { .. }), "{err}");
        assert!(err.to_string().starts_with("keys/orch.key: "), "{err}");
        let err = check_secret_facts(path, true, 0o640, 0, 0).unwrap_err();
        assert!(
            matches!(err, KeyFileError::LoosePermissions { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_directory_is_not_a_secret_key() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let err = read_secret_key_file(dir.path()).unwrap_err();
        assert!(matches!(err, KeyFileError::NotRegularFile { .. }), "{err}");
    }

    #[test]
    fn a_link_is_followed_and_the_checks_apply_to_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = SecretKey::from_seed(&[5u8; 32]).unwrap();
        write_key_files(&path, &key, false).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(read_secret_key_file(&link).unwrap().kid(), key.kid());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read_secret_key_file(&link),
            Err(KeyFileError::LoosePermissions { .. })
        ));
    }

    /// Needs root to give the file away; without root the rule is covered by
    /// `each_secret_file_rule_names_the_file_and_the_problem` alone.
    #[test]
    fn a_key_owned_by_another_user_is_refused() {
        if rustix::process::geteuid().as_raw() != 0 {
            eprintln!("not root: cannot chown, skipping the on-disk owner check");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_key_files(&path, &SecretKey::from_seed(&[5u8; 32]).unwrap(), false).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let err = read_secret_key_file(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::WrongOwner { owner: 65534, .. }),
            "{err}"
        );
    }
}
