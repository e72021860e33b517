//! The Redis [`Store`](crate::store::Store): every piece of state in one Redis (or Redis Cluster) shared by all
//! gateway nodes, each entry with a native TTL, so any node serves any request and a restarted
//! node loses nothing (Redis persistence, AOF, keeps it across a Redis restart).
//!
//! Layout: `keys` (the key layout: which key holds what), `codec` (records as hash fields and
//! strings), `conn` (connections, single or cluster, and the timeout on every operation), `lua`
//! (the scripts that make operations atomic), `reserve` (reservation windows over a group's
//! numbers), `ops` (the [`Store`](crate::store::Store) implementation) and `callbacks` (the
//! callback records' [`CallbackStore`](crate::store::callback::CallbackStore), with its own keys
//! and scripts).
//!
//! # Round trips
//!
//! Single Redis: `create_service` is one script call (reserve + service + data), with or
//! without a reservation. Redis Cluster: the reservation script runs in the group's slot, then
//! the service and its data (two other slots) are written concurrently: two round trips.
//! Reads are one command; `touch_service` is two commands sent together (one round trip).

mod callbacks;
mod codec;
mod conn;
mod keys;
mod lua;
mod ops;
mod reserve;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::cluster::ClusterClient;
use tokio::sync::OnceCell;

use conn::{Conn, Target};
use keys::{GroupKeys, NumberKeys};
use lua::Scripts;

/// The Redis-backed [`Store`](crate::store::Store).
pub struct RedisStore {
    target: Target,
    conn: OnceCell<Conn>,
    prefix: String,
    timeout: Duration,
    scripts: Scripts,
    groups: HashMap<String, GroupKeys>,
    /// Access number -> the keys that matching and releasing it touch.
    number_keys: HashMap<String, NumberKeys>,
}

/// Why a Redis store cannot be built from its configuration; the message starts with the key
/// path.
#[derive(Debug)]
pub enum RedisConfigError {
    /// `gms.storage.url` is not a Redis URL.
    Url(redis::RedisError),
    /// `gms.storage.cluster` does not make a cluster client.
    Cluster(redis::RedisError),
    /// `gms.storage.prefix` holds `{` or `}`.
    Prefix(String),
    /// A `gms.resources` group name holds `{` or `}`.
    GroupName(String),
    /// An access number of a group holds a NUL character.
    NulInNumber {
        /// The group.
        group: String,
        /// The number.
        number: String,
    },
}

impl fmt::Display for RedisConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisConfigError::Url(e) => write!(f, "gms.storage.url: {e}"),
            RedisConfigError::Cluster(e) => write!(f, "gms.storage.cluster: {e}"),
            RedisConfigError::Prefix(prefix) => {
                write!(f, "gms.storage.prefix: '{prefix}' may not contain {{ or }}")
            }
            RedisConfigError::GroupName(group) => write!(
                f,
                "gms.resources.{group}: with the Redis store a group name may not contain {{ or }}"
            ),
            RedisConfigError::NulInNumber { group, number } => write!(
                f,
                "gms.resources.{group}: '{}' contains a NUL character",
                number.escape_debug()
            ),
        }
    }
}

impl std::error::Error for RedisConfigError {}

impl RedisStore {
    /// A store on one Redis server (`redis://[user:password@]host:port/db`, or `rediss://` for
    /// TLS verified against the system's trust store). `resources` are the configured
    /// access-number pools: a call is matched in the group its number belongs to. Nothing
    /// connects until first use.
    pub fn single(
        url: &str,
        prefix: &str,
        timeout: Duration,
        resources: &HashMap<String, Arc<[String]>>,
    ) -> Result<RedisStore, RedisConfigError> {
        let client = redis::Client::open(url).map_err(RedisConfigError::Url)?;
        RedisStore::new(Target::Single(client), prefix, timeout, resources)
    }

    /// A store on a Redis Cluster, given some of its nodes' URLs.
    pub fn cluster(
        nodes: &[String],
        prefix: &str,
        timeout: Duration,
        resources: &HashMap<String, Arc<[String]>>,
    ) -> Result<RedisStore, RedisConfigError> {
        let client = ClusterClient::builder(nodes.iter().map(String::as_str))
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(2)
            .min_retry_wait(20)
            .max_retry_wait(200)
            .build()
            .map_err(RedisConfigError::Cluster)?;
        RedisStore::new(Target::Cluster(client), prefix, timeout, resources)
    }

    fn new(
        target: Target,
        prefix: &str,
        timeout: Duration,
        resources: &HashMap<String, Arc<[String]>>,
    ) -> Result<RedisStore, RedisConfigError> {
        if prefix.contains(['{', '}']) {
            // The prefix would become every key's hash tag (or split the tags of keys that
            // one script changes together).
            return Err(RedisConfigError::Prefix(prefix.to_string()));
        }
        let mut groups = HashMap::new();
        let mut number_keys = HashMap::new();
        for (group, numbers) in resources {
            if group.contains(['{', '}']) {
                return Err(RedisConfigError::GroupName(group.clone()));
            }
            if let Some(n) = numbers.iter().find(|n| n.contains('\0')) {
                return Err(RedisConfigError::NulInNumber {
                    group: group.clone(),
                    number: n.clone(),
                });
            }
            let keys = GroupKeys::new(prefix, group, numbers.clone());
            for (n, k) in numbers.iter().zip(keys.per_number(prefix, group)) {
                number_keys.insert(n.clone(), k);
            }
            groups.insert(group.clone(), keys);
        }
        Ok(RedisStore {
            target,
            conn: OnceCell::new(),
            prefix: prefix.to_string(),
            timeout,
            scripts: Scripts::new(),
            groups,
            number_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_with_braces_are_refused() {
        let err = RedisStore::single(
            "redis://127.0.0.1:1",
            "a{b}:",
            Duration::from_secs(1),
            &HashMap::new(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().starts_with("gms.storage.prefix"), "{err}");
    }

    #[test]
    fn group_names_with_braces_are_refused() {
        let mut res = HashMap::new();
        res.insert("a{b".to_string(), Arc::from(vec!["1".to_string()]));
        assert!(
            RedisStore::single("redis://127.0.0.1:1", "gms:", Duration::from_secs(1), &res)
                .is_err()
        );
    }
}
