//! User data in the memory store: records keyed by data id, packed, counted against the byte
//! budget.

use std::time::Duration;

use bytes::Bytes;

use super::sharded::{ms, Entry, Ms, Sharded};
use super::{Budget, Inner};
use crate::store::{may_access, packed, DataRecord, PutMode, StoreResult};
use crate::value::{merge_fields, Fields};

/// A data id: the gateway's own UUIDs as 16 bytes, custom names as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum DataKey {
    Id(u128),
    Name(Box<str>),
}

impl DataKey {
    pub(super) fn of(id: &str) -> DataKey {
        // Only the canonical lowercase form maps to a UUID key, so a custom name that differs
        // from an id only in case stays a different key.
        match crate::ids::parse_id(id) {
            Some(u) if !id.bytes().any(|b| b.is_ascii_uppercase()) => DataKey::Id(u.as_u128()),
            _ => DataKey::Name(id.into()),
        }
    }
}

pub(super) struct StoredData {
    pub(super) owner: Option<Box<str>>,
    pub(super) fields: Bytes,
}

impl StoredData {
    pub(super) fn pack(record: DataRecord) -> Self {
        StoredData {
            owner: record.owner.map(String::into_boxed_str),
            fields: packed::encode(&record.fields),
        }
    }

    pub(super) fn unpack(&self) -> DataRecord {
        DataRecord {
            owner: self.owner.as_deref().map(str::to_string),
            fields: packed::decode(&self.fields).unwrap_or_default(),
        }
    }

    pub(super) fn fields(&self) -> Fields {
        packed::decode(&self.fields).unwrap_or_default()
    }

    /// What the record counts against the byte budget: its values and files (packed, keys
    /// included), its owner and its id when that is a name of the client's.
    pub(super) fn bytes(&self, key: &DataKey) -> u64 {
        let name = match key {
            DataKey::Id(_) => 0,
            DataKey::Name(n) => n.len(),
        };
        (self.fields.len() + self.owner.as_deref().map_or(0, str::len) + name) as u64
    }
}

impl Sharded<DataKey, StoredData> {
    /// Inserts a record whose bytes the caller took from `budget`; gives back those of a
    /// record it replaces.
    pub(super) fn insert(&self, key: DataKey, entry: Entry<StoredData>, budget: &Budget) {
        let replaced = self.shard(&key).insert(key.clone(), entry);
        if let Some(old) = replaced {
            budget.give(old.value.bytes(&key));
        }
    }

    /// Removes a record and gives its bytes back to `budget`.
    pub(super) fn remove(&self, key: &DataKey, budget: &Budget) {
        if let Some(old) = self.shard(key).remove(key) {
            budget.give(old.value.bytes(key));
        }
    }
}

impl Inner {
    pub(super) fn put_data(
        &self,
        id: &str,
        record: DataRecord,
        ttl: Duration,
        mode: PutMode,
    ) -> StoreResult<bool> {
        let now = self.now();
        let key = DataKey::of(id);
        let mut shard = self.data.shard(&key);
        if mode == PutMode::CreateOrReplaceOwn {
            if let Some(e) = shard.get(&key) {
                let same_owner =
                    e.value.owner.is_some() && e.value.owner.as_deref() == record.owner.as_deref();
                if e.expires > now && !same_owner {
                    return Ok(false);
                }
            }
        }
        let value = StoredData::pack(record);
        // What it replaces (live or not yet swept) is still counted: only the difference.
        let old = shard.get(&key).map_or(0, |e| e.value.bytes(&key));
        self.budget.resize(old, value.bytes(&key))?;
        shard.insert(
            key,
            Entry {
                value,
                expires: now + ms(ttl),
            },
        );
        Ok(true)
    }

    pub(super) fn merge_data(
        &self,
        id: &str,
        owner: Option<&str>,
        fields: Fields,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now = self.now();
        let key = DataKey::of(id);
        let mut shard = self.data.shard(&key);
        match shard.get_mut(&key) {
            Some(e) if e.expires > now && may_access(e.value.owner.as_deref(), owner) => {
                let mut all = e.value.fields();
                merge_fields(&mut all, fields);
                let old = e.value.bytes(&key);
                let merged = packed::encode(&all);
                self.budget
                    .resize(old, old - e.value.fields.len() as u64 + merged.len() as u64)?;
                e.value.fields = merged;
                e.expires = now + ms(ttl);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub(super) fn get_data(&self, id: &str) -> StoreResult<Option<DataRecord>> {
        let now = self.now();
        let key = DataKey::of(id);
        let shard = self.data.shard(&key);
        Ok(shard
            .get(&key)
            .filter(|e| e.expires > now)
            .map(|e| e.value.unpack()))
    }

    pub(super) fn delete_data(&self, id: &str, owner: Option<&str>) -> StoreResult<bool> {
        let now = self.now();
        let key = DataKey::of(id);
        let mut shard = self.data.shard(&key);
        match shard.get(&key) {
            Some(e) if e.expires > now && may_access(e.value.owner.as_deref(), owner) => {
                if let Some(e) = shard.remove(&key) {
                    self.budget.give(e.value.bytes(&key));
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub(super) fn delete_data_key(
        &self,
        id: &str,
        owner: Option<&str>,
        key: &str,
    ) -> StoreResult<bool> {
        let now = self.now();
        let data_key = DataKey::of(id);
        let mut shard = self.data.shard(&data_key);
        match shard.get_mut(&data_key) {
            Some(e) if e.expires > now && may_access(e.value.owner.as_deref(), owner) => {
                let mut all = e.value.fields();
                let before = all.len();
                all.retain(|(k, _)| k != key);
                if all.len() == before {
                    return Ok(false);
                }
                let old = e.value.bytes(&data_key);
                let kept = packed::encode(&all);
                let new = old - e.value.fields.len() as u64 + kept.len() as u64;
                // Smaller than before: the budget always has room for it.
                self.budget.resize(old, new)?;
                e.value.fields = kept;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub(super) fn touch_data(&self, key: &DataKey, ttl_ms: u64, now: Ms) {
        if let Some(e) = self.data.shard(key).get_mut(key) {
            if e.expires > now {
                e.expires = now + ttl_ms;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn data_keys_are_compact_only_for_canonical_ids() {
        let id = Uuid::new_v4();
        assert_eq!(DataKey::of(&id.to_string()), DataKey::Id(id.as_u128()));
        assert!(matches!(
            DataKey::of(&id.to_string().to_uppercase()),
            DataKey::Name(_)
        ));
        assert!(matches!(DataKey::of("mine"), DataKey::Name(_)));
    }
}
