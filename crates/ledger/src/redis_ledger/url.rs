//! A Redis ledger's URL, read once: one server (`redis://`, `rediss://`) or a Cluster
//! (`redis+cluster://`, `rediss+cluster://`). Shown only without its password.

use std::fmt;
use std::str::FromStr;

use crate::LedgerError;
use crate::redact::without_password;

/// The scheme of a Redis Cluster over plain TCP: `redis+cluster://host:port[,host:port…]/`.
const CLUSTER_SCHEME: &str = "redis+cluster";
/// The scheme of a Redis Cluster over TLS.
const CLUSTER_TLS_SCHEME: &str = "rediss+cluster";

/// The URL of a Redis ledger: one server, `redis://[user:password@]host:port[/db]`
/// (`rediss://` for TLS), or a Redis Cluster by one or more of its nodes,
/// `redis+cluster://[user:password@]host:port[,host:port…]` (`rediss+cluster://` for TLS).
///
/// Read with [`str::parse`]; a Cluster URL that names a database or options, or lists an empty
/// node, is refused then ([`LedgerError::Config`]), a server URL the Redis client cannot use
/// when connecting. `Debug` and `Display` never show the password (`redis://:***@host/`).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// The URL as given: it may hold a password, so it is never shown as is.
    url: String,
    target: Target,
}

/// Where a ledger URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// One server: the URL as given.
    Server(String),
    /// A Cluster: a `redis://` or `rediss://` URL per seed node.
    Cluster(Vec<String>),
}

impl RedisUrl {
    /// Whether it is over TLS (`rediss://`, `rediss+cluster://`).
    pub fn is_tls(&self) -> bool {
        let tls = |url: &str| url.starts_with("rediss://") || url.starts_with("valkeys://");
        match &self.target {
            Target::Server(url) => tls(url),
            Target::Cluster(nodes) => nodes.iter().all(|n| tls(n)),
        }
    }

    /// Whether it names a Redis Cluster (`redis+cluster://`, `rediss+cluster://`).
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    pub(super) fn target(&self) -> &Target {
        &self.target
    }
}

impl FromStr for RedisUrl {
    type Err = LedgerError;

    /// A Cluster is `redis+cluster://[user[:password]@]host:port[,host:port…][/]` (or
    /// `rediss+cluster://` for TLS): the seed nodes share the credentials; the client learns
    /// the rest of the cluster from any one of them. Errors never quote the URL.
    fn from_str(url: &str) -> Result<Self, LedgerError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(LedgerError::Config(
                "a Redis URL starts with redis://, rediss://, redis+cluster:// or rediss+cluster://"
                    .into(),
            ));
        };
        let node_scheme = match scheme {
            CLUSTER_SCHEME => "redis",
            CLUSTER_TLS_SCHEME => "rediss",
            _ => {
                return Ok(RedisUrl {
                    url: url.to_owned(),
                    target: Target::Server(url.to_owned()),
                });
            }
        };
        let (userinfo, hosts_and_path) = match rest.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, rest),
        };
        let (hosts, path) = match hosts_and_path.split_once('/') {
            Some((hosts, path)) => (hosts, path),
            None => (hosts_and_path, ""),
        };
        if !path.is_empty() || hosts.contains(['?', '#']) {
            return Err(LedgerError::Config(format!(
                "a {scheme}:// URL names no database nor options (a Cluster has only database 0): \
                 end it after the last host:port"
            )));
        }
        if hosts.split(',').any(str::is_empty) {
            return Err(LedgerError::Config(format!(
                "a {scheme}:// URL lists its seed nodes as host:port, separated by commas"
            )));
        }
        let nodes = hosts
            .split(',')
            .map(|host| match userinfo {
                Some(userinfo) => format!("{node_scheme}://{userinfo}@{host}/"),
                None => format!("{node_scheme}://{host}/"),
            })
            .collect();
        Ok(RedisUrl {
            url: url.to_owned(),
            target: Target::Cluster(nodes),
        })
    }
}

impl fmt::Display for RedisUrl {
    /// The URL with its password, if any, as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&without_password(&self.url))
    }
}

impl fmt::Debug for RedisUrl {
    /// `RedisUrl("redis://:***@host:6379/")`: never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisUrl")
            .field(&without_password(&self.url))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Option<Target> {
        url.parse::<RedisUrl>().ok().map(|u| u.target)
    }

    #[test]
    fn a_cluster_url_names_its_seed_nodes_with_shared_credentials() {
        assert_eq!(
            target("redis+cluster://127.0.0.1:7001,127.0.0.1:7002/"),
            Some(Target::Cluster(vec![
                "redis://127.0.0.1:7001/".into(),
                "redis://127.0.0.1:7002/".into()
            ]))
        );
        assert_eq!(
            target("rediss+cluster://u:p%40w@a:1,b:2"),
            Some(Target::Cluster(vec![
                "rediss://u:p%40w@a:1/".into(),
                "rediss://u:p%40w@b:2/".into()
            ]))
        );
        assert_eq!(
            target("redis://127.0.0.1:6379/3"),
            Some(Target::Server("redis://127.0.0.1:6379/3".into()))
        );
    }

    #[test]
    fn a_cluster_url_with_a_database_or_an_empty_node_is_refused() {
        for (url, says) in [
            ("redis+cluster://a:1/2", "names no database"),
            ("redis+cluster://a:1,,b:2/", "separated by commas"),
            ("redis+cluster://a:1?db=2", "names no database"),
            ("redis+cluster:///", "separated by commas"),
            ("127.0.0.1:6379", "starts with redis://"),
        ] {
            match url.parse::<RedisUrl>() {
                Err(LedgerError::Config(why)) => assert!(why.contains(says), "{url}: {why}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn tls_and_cluster_are_read_from_the_scheme() {
        let url = |s: &str| s.parse::<RedisUrl>().unwrap();
        assert!(url("rediss://h:1/").is_tls() && !url("rediss://h:1/").is_cluster());
        assert!(!url("redis://h:1/").is_tls());
        assert!(url("rediss+cluster://a:1,b:2").is_tls());
        assert!(url("rediss+cluster://a:1,b:2").is_cluster());
        assert!(!url("redis+cluster://a:1").is_tls());
    }

    #[test]
    fn debug_and_display_never_show_the_password() {
        for (text, password) in [
            ("redis://:hunter2@h:6379/", "hunter2"),
            ("rediss://user:p%40ss%3Aw0rd@h:6380/1", "p%40ss%3Aw0rd"),
            ("redis+cluster://u:s@cr@t:x@a:1,b:2", "s@cr@t:x"),
        ] {
            let url: RedisUrl = text.parse().unwrap();
            for shown in [format!("{url}"), format!("{url:?}"), format!("{url:#?}")] {
                assert!(!shown.contains(password), "{shown}");
                assert!(shown.contains("***"), "{shown}");
            }
        }
        let url: RedisUrl = "redis://:hunter2@h:6379/0".parse().unwrap();
        assert_eq!(url.to_string(), "redis://:***@h:6379/0");
        assert_eq!(format!("{url:?}"), "RedisUrl(\"redis://:***@h:6379/0\")");
    }
}
