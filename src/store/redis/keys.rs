//! The Redis store's key layout.
//!
//! `P` is the configured prefix (`gms:` by default). The part in braces is the Redis Cluster
//! hash tag: keys that one script changes together share it, so they sit in one slot.
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `P s{<service id>}` | hash | service record: `n` name, `d` data id, `u` owner, `st`/`dt` TTLs (ms), `o` ORS session, `r<number>[\0<code>]` one per reservation | `_service_ttl` |
//! | `P t{<service id>}` | string | status entry: stored-at ms (u64 LE), fresh ms (u64 LE), JSON body | service TTL |
//! | `P d{<data id>}` | hash | user data: one field per key, value `t<text>` or `f<u32 LE len><filename><u32 LE len><content type><bytes>`; `\0o` owner; `\0k` the keys in order, each followed by NUL | `_ttl` / storage TTL |
//! | `P n{<group>}<number>` | hash | holds on one access number: `x` exclusive, `c<code>` coded; value `"<expires ms> <service id> <phone>"` (the phone empty when the app gave none) | the latest hold's expiry |
//! | `P r{<group>}` | string | the group's round-robin position | 7 days, renewed by use |
//! | `P f{<group>}<number>` | string | failed matches on the number in its current window (`gms.limits.max_failed_matches`) | the window: the number key's TTL at the first failure |
//! | `P h{<group>}` | hash | per-phone index (only under `gms.limits.reservations_per_phone`): field phone, value its reservations, each `<expires ms>\0<service id>\0<number>\0<hold field>\0` | the latest entry's expiry |
//!
//! Custom storage ids are data ids chosen by the client; ownership (`gms_user`) is the `u` /
//! `\0o` field, checked inside the scripts. Reservations keep their expiry inside the hold
//! (Redis 7.0 has no per-field TTL): scripts purge expired holds as they go, and the number's
//! key expires with its last hold. A number's failure count shares its group's hash tag, so
//! the match script updates it in the same slot, atomically with the match.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use uuid::Uuid;

use super::RedisStore;

/// The keys a match or a release of one access number touches (one slot: its group's tag).
pub(super) struct NumberKeys {
    /// `P n{group}<number>`: its holds.
    pub(super) holds: String,
    /// `P f{group}<number>`: its failed matches.
    pub(super) fails: String,
    /// `P h{group}`: its group's per-phone index.
    pub(super) phones: Arc<str>,
}

/// The keys of one resource group.
pub(super) struct GroupKeys {
    /// The configured numbers (to recognise a request built from the same configuration).
    pub(super) numbers: Arc<[String]>,
    /// `P r{group}`
    pub(super) rr: String,
    /// `P n{group}`: the common start of the number keys.
    pub(super) base: String,
    /// `P n{group}<number>`, in configured order.
    pub(super) number_keys: Vec<String>,
    /// `P h{group}`: the per-phone index.
    pub(super) phones: Arc<str>,
    /// The group's round-robin position after this node's last reservation in it: where the
    /// next round-robin window starts.
    pub(super) rr_next: AtomicUsize,
}

impl GroupKeys {
    /// The keys of each of the group's numbers, in configured order.
    pub(super) fn per_number(&self, prefix: &str, group: &str) -> Vec<NumberKeys> {
        self.numbers
            .iter()
            .zip(&self.number_keys)
            .map(|(n, holds)| NumberKeys {
                holds: holds.clone(),
                fails: format!("{prefix}f{{{group}}}{n}"),
                phones: self.phones.clone(),
            })
            .collect()
    }

    pub(super) fn new(prefix: &str, group: &str, numbers: Arc<[String]>) -> Self {
        let base = number_base(prefix, group);
        GroupKeys {
            rr: format!("{prefix}r{{{group}}}"),
            number_keys: numbers.iter().map(|n| format!("{base}{n}")).collect(),
            numbers,
            base,
            phones: format!("{prefix}h{{{group}}}").into(),
            rr_next: AtomicUsize::new(0),
        }
    }
}

impl RedisStore {
    pub(super) fn service_key(&self, id: Uuid) -> String {
        format!("{}s{{{}}}", self.prefix, id.hyphenated())
    }

    pub(super) fn status_key(&self, id: Uuid) -> String {
        format!("{}t{{{}}}", self.prefix, id.hyphenated())
    }

    pub(super) fn data_key(&self, id: &str) -> String {
        format!("{}d{{{id}}}", self.prefix)
    }
}

/// `P n{group}`: the common start of a group's number keys.
pub(super) fn number_base(prefix: &str, group: &str) -> String {
    format!("{prefix}n{{{group}}}")
}
