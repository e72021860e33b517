//! Service records and their status entries in the memory store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::data::{DataKey, StoredData};
use super::sharded::{lock, ms, Entry};
use super::Inner;
use crate::store::pool::{pack_code, unpack_code};
use crate::store::{
    may_access, DataRecord, OrsSession, Reservation, ReservationRef, ReserveRequest, ServiceRecord,
    StatusEntry, StoreResult,
};

/// A service record as kept: its name interned, ids as 16 bytes, TTLs in milliseconds.
pub(super) struct StoredService {
    service: Arc<str>,
    data_id: u128,
    pub(super) owner: Option<Box<str>>,
    service_ttl_ms: u64,
    data_ttl_ms: u64,
    ors: Option<Box<OrsSession>>,
    /// Access number (interned) and packed code (0: none).
    pub(super) reservations: Box<[(Arc<str>, u64)]>,
}

impl StoredService {
    pub(super) fn unpack(&self, id: u128) -> ServiceRecord {
        ServiceRecord {
            id: Uuid::from_u128(id),
            service: self.service.to_string(),
            data_id: Uuid::from_u128(self.data_id),
            owner: self.owner.as_deref().map(str::to_string),
            service_ttl: Duration::from_millis(self.service_ttl_ms),
            data_ttl: Duration::from_millis(self.data_ttl_ms),
            ors: self.ors.as_deref().cloned(),
            reservations: self
                .reservations
                .iter()
                .map(|(n, c)| ReservationRef {
                    number: n.to_string(),
                    code: (*c != 0).then(|| unpack_code(*c)),
                })
                .collect(),
        }
    }
}

impl Inner {
    pub(super) fn create_service(
        &self,
        record: ServiceRecord,
        data: DataRecord,
        reserve: Option<ReserveRequest>,
    ) -> StoreResult<Option<Reservation>> {
        let now = self.now();
        let id = record.id.as_u128();
        let mut reservations: Vec<(Arc<str>, u64)> = record
            .reservations
            .iter()
            .map(|r| {
                let code = r.code.as_deref().and_then(pack_code).unwrap_or(0);
                (self.names.get(&r.number), code)
            })
            .collect();
        let data_key = DataKey::Id(record.data_id.as_u128());
        let stored_data = StoredData::pack(data);
        // The budget first: a refused write reserves no number.
        let size = stored_data.bytes(&data_key);
        self.budget.take(size)?;
        let reservation = match &reserve {
            Some(req) => match lock(&self.pools).reserve(req, record.id, Instant::now()) {
                Ok(r) => {
                    reservations.push(self.packed_ref(&r));
                    Some(r)
                }
                Err(e) => {
                    self.budget.give(size);
                    return Err(e);
                }
            },
            None => None,
        };
        let data_ttl_ms = ms(record.data_ttl);
        let stored_data = Entry {
            value: stored_data,
            expires: now + data_ttl_ms,
        };
        self.data.insert(data_key, stored_data, &self.budget);
        let service_ttl_ms = ms(record.service_ttl);
        let stored = StoredService {
            service: self.names.get(&record.service),
            data_id: record.data_id.as_u128(),
            owner: record.owner.map(String::into_boxed_str),
            service_ttl_ms,
            data_ttl_ms,
            ors: record.ors.map(Box::new),
            reservations: reservations.into_boxed_slice(),
        };
        self.services.shard(&id).insert(
            id,
            Entry {
                value: stored,
                expires: now + service_ttl_ms,
            },
        );
        Ok(reservation)
    }

    pub(super) fn get_service(&self, id: Uuid) -> StoreResult<Option<ServiceRecord>> {
        let key = id.as_u128();
        let now = self.now();
        let shard = self.services.shard(&key);
        Ok(shard
            .get(&key)
            .filter(|e| e.expires > now)
            .map(|e| e.value.unpack(key)))
    }

    pub(super) fn set_ors_session(&self, id: Uuid, session: OrsSession) -> StoreResult<bool> {
        let key = id.as_u128();
        let now = self.now();
        let mut shard = self.services.shard(&key);
        match shard.get_mut(&key) {
            Some(e) if e.expires > now => {
                e.value.ors = Some(Box::new(session));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub(super) fn touch_service(&self, record: &ServiceRecord) -> StoreResult<bool> {
        let now = self.now();
        let key = record.id.as_u128();
        let found = match self.services.shard(&key).get_mut(&key) {
            Some(e) if e.expires > now => {
                e.expires = now + e.value.service_ttl_ms;
                true
            }
            _ => false,
        };
        if found {
            self.touch_data(
                &DataKey::Id(record.data_id.as_u128()),
                ms(record.data_ttl),
                now,
            );
        }
        Ok(found)
    }

    pub(super) fn delete_service(
        &self,
        id: Uuid,
        owner: Option<&str>,
    ) -> StoreResult<Option<ServiceRecord>> {
        let now = self.now();
        let key = id.as_u128();
        let removed = {
            let mut shard = self.services.shard(&key);
            match shard.get(&key) {
                Some(e) if e.expires > now && may_access(e.value.owner.as_deref(), owner) => {
                    shard.remove(&key)
                }
                _ => None,
            }
        };
        let Some(e) = removed else { return Ok(None) };
        let stored = e.value;
        self.release_all(key, &stored);
        let data_key = DataKey::Id(stored.data_id);
        self.data.remove(&data_key, &self.budget);
        self.status.shard(&key).remove(&key);
        Ok(Some(stored.unpack(key)))
    }

    pub(super) fn get_status(&self, id: Uuid) -> StoreResult<Option<StatusEntry>> {
        let now = self.now();
        let key = id.as_u128();
        let shard = self.status.shard(&key);
        Ok(shard
            .get(&key)
            .filter(|e| e.expires > now)
            .map(|e| e.value.clone()))
    }

    pub(super) fn put_status(
        &self,
        id: Uuid,
        entry: StatusEntry,
        keep: Duration,
    ) -> StoreResult<()> {
        let key = id.as_u128();
        let expires = self.now() + ms(keep);
        self.status.shard(&key).insert(
            key,
            Entry {
                value: entry,
                expires,
            },
        );
        Ok(())
    }
}
