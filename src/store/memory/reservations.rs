//! Access-number reservations held by services in the memory store: the pools themselves are
//! [`crate::store::pool`]; this keeps each service record's list in step with them.

use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;

use super::services::StoredService;
use super::sharded::{lock, Entry};
use super::Inner;
use crate::store::pool::{pack_code, unpack_code};
use crate::store::{
    may_access, MatchOutcome, MatchRequest, Reservation, ReservationRef, ReserveRequest,
    StoreResult,
};

impl Inner {
    pub(super) fn add_reservation(
        &self,
        id: Uuid,
        owner: Option<&str>,
        reserve: ReserveRequest,
    ) -> StoreResult<Option<Reservation>> {
        let now = self.now();
        let key = id.as_u128();
        let usable = |e: Option<&Entry<StoredService>>| {
            e.is_some_and(|e| e.expires > now && may_access(e.value.owner.as_deref(), owner))
        };
        if !usable(self.services.shard(&key).get(&key)) {
            return Ok(None);
        }
        let r = lock(&self.pools).reserve(&reserve, id, Instant::now())?;
        let packed = self.packed_ref(&r);
        let attached = {
            let mut shard = self.services.shard(&key);
            match shard.get_mut(&key) {
                Some(e) if e.expires > now => {
                    let mut list = std::mem::take(&mut e.value.reservations).into_vec();
                    list.push(packed);
                    e.value.reservations = list.into_boxed_slice();
                    true
                }
                _ => false,
            }
        };
        if !attached {
            // The service went away between the check and the reservation: give it back.
            let r_ref = ReservationRef {
                number: r.number.clone(),
                code: r.code.clone(),
            };
            lock(&self.pools).release(id, &r_ref);
            return Ok(None);
        }
        Ok(Some(r))
    }

    pub(super) fn match_reservation(&self, call: &MatchRequest) -> StoreResult<MatchOutcome> {
        let (outcome, code) = lock(&self.pools).take_released(call, Instant::now());
        if let MatchOutcome::Matched(id) = outcome {
            // Keep the record's list in step so a later delete does not release a stranger's hold.
            let key = id.as_u128();
            let code = code.unwrap_or(0);
            if let Some(e) = self.services.shard(&key).get_mut(&key) {
                let list = std::mem::take(&mut e.value.reservations).into_vec();
                e.value.reservations = list
                    .into_iter()
                    .filter(|(n, c)| !(**n == *call.number && (*c == 0 || *c == code)))
                    .collect();
            }
        }
        Ok(outcome)
    }

    pub(super) fn release_all(&self, id: u128, svc: &StoredService) {
        if svc.reservations.is_empty() {
            return;
        }
        let mut pools = lock(&self.pools);
        for (number, code) in svc.reservations.iter() {
            let r = ReservationRef {
                number: number.to_string(),
                code: (*code != 0).then(|| unpack_code(*code)),
            };
            pools.release(Uuid::from_u128(id), &r);
        }
    }

    pub(super) fn packed_ref(&self, r: &Reservation) -> (Arc<str>, u64) {
        let code = r.code.as_deref().and_then(pack_code).unwrap_or(0);
        (self.names.get(&r.number), code)
    }
}
