//! Where a ledger is: the one reading of what `laissez consume --ledger`/`--redis`, the
//! sidecar's configuration and Python's `Ledger(...)` accept.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::{AnyLedger, LedgerError, RedbLedger, RedisLedger, RedisOptions, RedisUrl};

/// The URL schemes read as Redis; any other `scheme://` is refused rather than taken for a
/// file's path.
const REDIS_SCHEMES: [&str; 4] = ["redis", "rediss", "redis+cluster", "rediss+cluster"];

/// Where a use ledger is: an embedded redb file or a Redis (one server or a Cluster).
/// Available with both the `redb` and the `redis` features.
///
/// [`str::parse`] reads a `redis://`, `rediss://`, `redis+cluster://` or `rediss+cluster://`
/// URL ([`RedisUrl`]) as Redis and anything else as a redb file's path; an empty text or
/// another URL scheme is refused. `Debug` and `Display` never show a URL's password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedgerLocation {
    /// An embedded redb file (created if absent): shared by the processes of one host.
    Redb(PathBuf),
    /// A Redis shared by workers on many machines.
    Redis(RedisUrl),
}

impl LedgerLocation {
    /// Whether the ledger is reached over TLS (a `rediss://` or `rediss+cluster://` URL).
    pub fn is_tls(&self) -> bool {
        matches!(self, LedgerLocation::Redis(url) if url.is_tls())
    }

    /// Opens the redb file, or connects to Redis with `options`. Must be called inside a
    /// Tokio runtime. TLS options ([`RedisOptions::tls`]) with a file are
    /// [`LedgerError::Config`]: they are never silently ignored.
    pub async fn open(&self, options: RedisOptions) -> Result<AnyLedger, LedgerError> {
        match self {
            LedgerLocation::Redb(path) => {
                if options.tls.is_set() {
                    return Err(LedgerError::Config(
                        "Redis TLS options (CA, client certificate, key) are for a rediss:// or \
                         rediss+cluster:// ledger, not a file"
                            .into(),
                    ));
                }
                RedbLedger::open(path).map(AnyLedger::Redb)
            }
            LedgerLocation::Redis(url) => RedisLedger::connect_to(url, options)
                .await
                .map(AnyLedger::Redis),
        }
    }
}

/// The scheme of `text` when it starts `scheme://` (RFC 3986: a letter, then letters,
/// digits, `+`, `-` or `.`).
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

impl FromStr for LedgerLocation {
    type Err = LedgerError;

    fn from_str(text: &str) -> Result<Self, LedgerError> {
        if text.is_empty() {
            return Err(LedgerError::Config(
                "the ledger location is empty: give a redb file's path or a redis://, rediss://, \
                 redis+cluster:// or rediss+cluster:// URL"
                    .into(),
            ));
        }
        match url_scheme(text) {
            Some(scheme) if REDIS_SCHEMES.contains(&scheme) => {
                text.parse().map(LedgerLocation::Redis)
            }
            // Only the scheme is quoted: the rest may hold a password.
            Some(scheme) => Err(LedgerError::Config(format!(
                "a ledger URL is redis://, rediss://, redis+cluster:// or rediss+cluster://, not \
                 {scheme:?}:// (a redb file is given by its path)"
            ))),
            None => Ok(LedgerLocation::Redb(PathBuf::from(text))),
        }
    }
}

impl From<PathBuf> for LedgerLocation {
    fn from(path: PathBuf) -> Self {
        LedgerLocation::Redb(path)
    }
}

impl From<RedisUrl> for LedgerLocation {
    fn from(url: RedisUrl) -> Self {
        LedgerLocation::Redis(url)
    }
}

impl fmt::Display for LedgerLocation {
    /// The file's path, or the URL with its password, if any, as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerLocation::Redb(path) => write!(f, "{}", path.display()),
            LedgerLocation::Redis(url) => write!(f, "{url}"),
        }
    }
}

impl fmt::Debug for LedgerLocation {
    /// `Redb("uses.redb")` or `Redis("redis://:***@host/")`: never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerLocation::Redb(path) => f.debug_tuple("Redb").field(path).finish(),
            LedgerLocation::Redis(url) => f.debug_tuple("Redis").field(&url.to_string()).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> LedgerLocation {
        text.parse()
            .unwrap_or_else(|e| panic!("{text:?} is refused: {e}"))
    }

    #[test]
    fn every_accepted_form_parses() {
        for path in [
            "uses.redb",
            "./laissez-ledger.redb",
            "/var/lib/laissez/b.redb",
            "a:b",
        ] {
            assert_eq!(parse(path), LedgerLocation::Redb(PathBuf::from(path)));
        }
        for (url, tls, cluster) in [
            ("redis://127.0.0.1:6379/", false, false),
            ("redis://:pw@127.0.0.1:6379/3", false, false),
            ("rediss://user:pw@redis.example:6380/", true, false),
            ("redis+cluster://10.0.0.1:6379,10.0.0.2:6379", false, true),
            ("rediss+cluster://u:p@a:1,b:2/", true, true),
        ] {
            let LedgerLocation::Redis(parsed) = parse(url) else {
                panic!("{url} is not Redis");
            };
            assert_eq!(
                (parsed.is_tls(), parsed.is_cluster()),
                (tls, cluster),
                "{url}"
            );
            assert_eq!(parse(url).is_tls(), tls, "{url}");
        }
        assert!(!parse("uses.redb").is_tls());
    }

    #[test]
    fn bad_input_is_refused_saying_what_is_wrong() {
        for (text, says) in [
            ("", "empty"),
            ("http://:pw@h/", "not \"http\"://"),
            ("valkey://h/", "not \"valkey\"://"),
            ("redis+cluster://a:1/2", "names no database"),
            ("rediss+cluster://:pw@a:1,,b:2", "separated by commas"),
        ] {
            match text.parse::<LedgerLocation>() {
                Err(LedgerError::Config(why)) => {
                    assert!(why.contains(says), "{text:?}: {why}");
                    assert!(!why.contains("pw"), "{text:?}: {why}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn debug_and_display_never_show_a_password() {
        for (text, password) in [
            ("redis://:hunter2@127.0.0.1:6379/", "hunter2"),
            // Percent-encoded, with '@' and ':' once decoded.
            ("rediss://us%40er:p%40ss%3Aw0rd@h:6380/", "p%40ss%3Aw0rd"),
            // Written with a bare '@' and ':'.
            ("redis://:p@ss:w0rd@h:6379/", "p@ss:w0rd"),
            ("rediss+cluster://u:cl%40ster@a:1,b:2", "cl%40ster"),
        ] {
            let location = parse(text);
            for shown in [
                location.to_string(),
                format!("{location:?}"),
                format!("{location:#?}"),
            ] {
                assert!(!shown.contains(password), "{shown}");
                assert!(
                    !shown.contains("ss:w0rd") && !shown.contains("ster@"),
                    "{shown}"
                );
                assert!(shown.contains(":***@"), "{shown}");
            }
        }
        let location = parse("redis://:hunter2@127.0.0.1:6379/0");
        assert_eq!(location.to_string(), "redis://:***@127.0.0.1:6379/0");
        assert_eq!(
            format!("{location:?}"),
            "Redis(\"redis://:***@127.0.0.1:6379/0\")"
        );
        assert_eq!(parse("uses.redb").to_string(), "uses.redb");
        assert_eq!(format!("{:?}", parse("uses.redb")), "Redb(\"uses.redb\")");
    }

    #[tokio::test]
    async fn tls_options_with_a_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uses.redb");
        let mut options = RedisOptions::default();
        options.tls.ca = Some("ca.pem".into());
        let opened = LedgerLocation::Redb(path.clone()).open(options).await;
        assert!(matches!(opened, Err(LedgerError::Config(_))), "{opened:?}");
        assert!(!path.exists());
        // Without them the file is opened (and created).
        let opened = LedgerLocation::Redb(path.clone())
            .open(RedisOptions::default())
            .await;
        assert!(matches!(opened, Ok(AnyLedger::Redb(_))), "{opened:?}");
        assert!(path.exists());
    }
}
