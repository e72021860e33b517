//! The [`Store`] implementation on Redis: each operation as one command or script call (or a
//! few sent together), bounded by the store's timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Value as RValue;
use uuid::Uuid;

use super::codec::{
    decode_status, encode_ors, encode_status, field_args, hash_pairs, ms, owner_args, parse_data,
    parse_service, service_fields,
};
use super::conn::{damaged, OpError, Target};
use super::keys::number_base;
use super::RedisStore;
use crate::store::pool::pack_code;
use crate::store::{
    DataRecord, MatchOutcome, MatchRequest, NumberUse, OrsSession, PutMode, Reservation,
    ReservationRef, ReserveRequest, ServiceRecord, StatusEntry, Store, StoreResult, Usage,
};
use crate::value::Fields;

/// Numbers one usage script counts: bounds how long one call keeps Redis busy (its numbers'
/// holds), while a large group still takes few calls.
const USAGE_CHUNK: usize = 64;

#[async_trait]
impl Store for RedisStore {
    async fn create_service(
        &self,
        mut record: ServiceRecord,
        data: DataRecord,
        reserve: Option<ReserveRequest>,
    ) -> StoreResult<Option<Reservation>> {
        let svc_key = self.service_key(record.id);
        let data_key = self.data_key(&record.data_id.hyphenated().to_string());
        let (has_owner, owner) = owner_args(data.owner.as_deref());
        let data_args = field_args(&data.fields);
        self.bounded(async {
            match &self.target {
                Target::Single(_) => {
                    // One script: reserve, service, data.
                    let base = || {
                        let mut inv = self.scripts.create.key(&svc_key);
                        inv.key(&data_key);
                        inv.arg(ms(record.service_ttl)).arg(service_fields(&record));
                        inv.arg(ms(record.data_ttl))
                            .arg(has_owner)
                            .arg(owner)
                            .arg(&data_args);
                        inv
                    };
                    match &reserve {
                        Some(req) => {
                            let made = self
                                .reserving(req, record.id, |keys, args| {
                                    let mut inv = base();
                                    for k in keys {
                                        inv.key(k);
                                    }
                                    inv.arg("1").arg(args);
                                    async move { self.invoke(&inv).await }
                                })
                                .await?;
                            Ok(Some(made))
                        }
                        None => {
                            let mut inv = base();
                            inv.arg("0");
                            let _: RValue = self.invoke(&inv).await?;
                            Ok(None)
                        }
                    }
                }
                Target::Cluster(_) => {
                    // The reservation in its group's slot first; then service and data
                    // (two other slots) together.
                    let mut made = None;
                    if let Some(req) = &reserve {
                        let r = self
                            .reserving(req, record.id, |k, a| self.reserve_only(k, a))
                            .await?;
                        record.reservations.push(ReservationRef {
                            number: r.number.clone(),
                            code: r.code.clone(),
                        });
                        made = Some(r);
                    }
                    let mut svc = self.scripts.write_service.key(&svc_key);
                    svc.arg(ms(record.service_ttl)).arg(service_fields(&record));
                    let mut dat = self.scripts.put_data.key(&data_key);
                    dat.arg("n")
                        .arg(has_owner)
                        .arg(owner)
                        .arg(ms(record.data_ttl))
                        .arg(&data_args);
                    let (a, b) = tokio::join!(self.invoke::<i64>(&svc), self.invoke::<i64>(&dat));
                    if let Err(e) = a.and(b) {
                        if let Some(r) = &made {
                            // Best effort: give the number back rather than hold it to its TTL.
                            let refs = [ReservationRef {
                                number: r.number.clone(),
                                code: r.code.clone(),
                            }];
                            let _ = self.release_all(record.id, &refs).await;
                        }
                        return Err(e);
                    }
                    Ok(made)
                }
            }
        })
        .await
    }

    async fn get_service(&self, id: Uuid) -> StoreResult<Option<ServiceRecord>> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.service_key(id));
        self.bounded(async { service_reply(id, self.read(&cmd).await?) })
            .await
    }

    async fn set_ors_session(&self, id: Uuid, session: OrsSession) -> StoreResult<bool> {
        let key = self.service_key(id);
        self.bounded(async {
            let n: i64 = self
                .invoke(self.scripts.set_ors.key(&key).arg(encode_ors(&session)))
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn touch_service(&self, record: &ServiceRecord) -> StoreResult<bool> {
        let svc_key = self.service_key(record.id);
        let data_key = self.data_key(&record.data_id.hyphenated().to_string());
        let mut svc = redis::cmd("PEXPIRE");
        svc.arg(&svc_key).arg(ms(record.service_ttl));
        let mut data = redis::cmd("PEXPIRE");
        data.arg(&data_key).arg(ms(record.data_ttl));
        self.bounded(async {
            // Sent together on the multiplexed connection(s): one round trip.
            let (found, data) = tokio::join!(self.read::<i64>(&svc), self.read::<i64>(&data));
            data?;
            Ok(found? == 1)
        })
        .await
    }

    async fn delete_service(
        &self,
        id: Uuid,
        owner: Option<&str>,
    ) -> StoreResult<Option<ServiceRecord>> {
        let svc_key = self.service_key(id);
        let status_key = self.status_key(id);
        let (has, who) = owner_args(owner);
        self.bounded(async {
            let v: RValue = self
                .invoke(
                    self.scripts
                        .delete_service
                        .key(&svc_key)
                        .key(&status_key)
                        .arg(has)
                        .arg(who),
                )
                .await?;
            let pairs = hash_pairs(v).ok_or_else(|| damaged("service record"))?;
            if pairs.is_empty() {
                return Ok(None);
            }
            let rec = parse_service(id, pairs).ok_or_else(|| damaged("service record"))?;
            let data_key = self.data_key(&rec.data_id.hyphenated().to_string());
            let mut del = redis::cmd("DEL");
            del.arg(&data_key);
            let (a, b) = tokio::join!(
                self.read::<i64>(&del),
                self.release_all(id, &rec.reservations)
            );
            a?;
            b?;
            Ok(Some(rec))
        })
        .await
    }

    async fn add_reservation(
        &self,
        id: Uuid,
        owner: Option<&str>,
        reserve: ReserveRequest,
    ) -> StoreResult<Option<Reservation>> {
        let svc_key = self.service_key(id);
        let mut check = redis::cmd("HMGET");
        check.arg(&svc_key).arg("d").arg("u");
        self.bounded(async {
            let (data_id, rec_owner): (Option<Vec<u8>>, Option<String>) = self.read(&check).await?;
            if data_id.is_none() || !crate::store::may_access(rec_owner.as_deref(), owner) {
                return Ok(None);
            }
            let r = self
                .reserving(&reserve, id, |k, a| self.reserve_only(k, a))
                .await?;
            let r_ref = ReservationRef {
                number: r.number.clone(),
                code: r.code.clone(),
            };
            let attached: i64 = self
                .invoke(
                    self.scripts
                        .attach
                        .key(&svc_key)
                        .arg(&r.number)
                        .arg(r.code.as_deref().unwrap_or("")),
                )
                .await?;
            if attached == 0 {
                // The service went away meanwhile: give the number back.
                self.release_all(id, &[r_ref]).await?;
                return Ok(None);
            }
            Ok(Some(r))
        })
        .await
    }

    async fn match_reservation(&self, call: &MatchRequest) -> StoreResult<MatchOutcome> {
        let Some(keys) = self.number_keys.get(&call.number) else {
            return Ok(MatchOutcome::NoMatch);
        };
        // A malformed code can never match a coded hold (but an exclusive hold ignores it).
        let code = call
            .code
            .as_deref()
            .filter(|c| pack_code(c).is_some())
            .unwrap_or("");
        let (has_phone, phone) = owner_args(call.phone.as_deref());
        self.bounded(async {
            let v: RValue = self
                .invoke(
                    self.scripts
                        .matching
                        .key(&keys.holds)
                        .key(&*keys.phones)
                        .key(&keys.fails)
                        .arg(code)
                        .arg(has_phone)
                        .arg(phone)
                        .arg(&call.number)
                        .arg(call.max_failed)
                        .arg(if call.require_code { "1" } else { "0" }),
                )
                .await?;
            match v {
                RValue::Nil => Ok(MatchOutcome::NoMatch),
                RValue::BulkString(b) if b == b"ambiguous" => Ok(MatchOutcome::Ambiguous),
                RValue::BulkString(b) => Uuid::try_parse_ascii(&b)
                    .map(MatchOutcome::Matched)
                    .map_err(|_| damaged("hold")),
                RValue::Int(ms) => Ok(MatchOutcome::Locked(Duration::from_millis(
                    u64::try_from(ms).unwrap_or(0),
                ))),
                _ => Err(damaged("match reply")),
            }
        })
        .await
    }

    async fn put_data(
        &self,
        id: &str,
        record: DataRecord,
        ttl: Duration,
        mode: PutMode,
    ) -> StoreResult<bool> {
        let key = self.data_key(id);
        let (has_owner, owner) = owner_args(record.owner.as_deref());
        let mode = match mode {
            PutMode::New => "n",
            PutMode::CreateOrReplaceOwn => "c",
        };
        let args = field_args(&record.fields);
        self.bounded(async {
            let n: i64 = self
                .invoke(
                    self.scripts
                        .put_data
                        .key(&key)
                        .arg(mode)
                        .arg(has_owner)
                        .arg(owner)
                        .arg(ms(ttl))
                        .arg(&args),
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn merge_data(
        &self,
        id: &str,
        owner: Option<&str>,
        fields: Fields,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let key = self.data_key(id);
        let (has, who) = owner_args(owner);
        let args = field_args(&fields);
        self.bounded(async {
            let n: i64 = self
                .invoke(
                    self.scripts
                        .merge_data
                        .key(&key)
                        .arg(has)
                        .arg(who)
                        .arg(ms(ttl))
                        .arg(&args),
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_data(&self, id: &str) -> StoreResult<Option<DataRecord>> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.data_key(id));
        self.bounded(async {
            let v: RValue = self.read(&cmd).await?;
            let pairs = hash_pairs(v).ok_or_else(|| damaged("data record"))?;
            if pairs.is_empty() {
                return Ok(None);
            }
            parse_data(pairs)
                .map(Some)
                .ok_or_else(|| damaged("data record"))
        })
        .await
    }

    async fn delete_data(&self, id: &str, owner: Option<&str>) -> StoreResult<bool> {
        let key = self.data_key(id);
        let (has, who) = owner_args(owner);
        self.bounded(async {
            let n: i64 = self
                .invoke(self.scripts.delete_data.key(&key).arg(has).arg(who))
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_data_key(&self, id: &str, owner: Option<&str>, key: &str) -> StoreResult<bool> {
        let data_key = self.data_key(id);
        let (has, who) = owner_args(owner);
        self.bounded(async {
            let n: i64 = self
                .invoke(
                    self.scripts
                        .delete_key
                        .key(&data_key)
                        .arg(has)
                        .arg(who)
                        .arg(key),
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_status(&self, id: Uuid) -> StoreResult<Option<StatusEntry>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.status_key(id));
        self.bounded(async { status_reply(self.read(&cmd).await?) })
            .await
    }

    async fn get_service_and_status(
        &self,
        id: Uuid,
    ) -> StoreResult<(Option<ServiceRecord>, Option<StatusEntry>)> {
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(self.service_key(id));
        pipe.cmd("GET").arg(self.status_key(id));
        self.bounded(async {
            let (record, status): (RValue, Option<Vec<u8>>) = self.read(&pipe).await?;
            match service_reply(id, record)? {
                Some(record) => Ok((Some(record), status_reply(status)?)),
                None => Ok((None, None)),
            }
        })
        .await
    }

    async fn put_status(&self, id: Uuid, entry: StatusEntry, keep: Duration) -> StoreResult<()> {
        let key = self.status_key(id);
        let value = encode_status(&entry);
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key).arg(value).arg("PX").arg(ms(keep));
        self.bounded(async {
            self.read::<()>(&cmd).await?;
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        let cmd = redis::cmd("PING");
        self.bounded(async {
            self.read::<()>(&cmd).await?;
            Ok(())
        })
        .await
    }

    /// This store: the callback records live in the same Redis (`callbacks/`).
    fn callbacks(&self) -> &dyn crate::store::callback::CallbackStore {
        self
    }

    /// Holds: one script call per [`USAGE_CHUNK`] numbers of a group (a group's keys share a
    /// slot), all sent together; each reads its numbers' holds, so the cost is O(numbers +
    /// live holds). Live services: `None`. Service records are keys of their own, spread over
    /// the cluster; counting them exactly would take a SCAN of the whole keyspace or an index
    /// written on every create, renewal and delete (and a hot key on a cluster), which the
    /// request path should not pay for a gauge.
    /// Nothing to start: Redis expires keys itself and connects lazily.
    fn start_upkeep(&self) {}

    async fn usage(&self, groups: &HashMap<String, Arc<[String]>>) -> StoreResult<Usage> {
        // The groups' calls all go out together: one round trip, however many groups.
        let counts = groups.iter().map(|(group, numbers)| async move {
            Ok::<_, crate::store::StoreError>((
                group.clone(),
                self.group_use(group, numbers).await?,
            ))
        });
        let mut out = Vec::with_capacity(groups.len());
        for r in futures::future::join_all(counts).await {
            out.push(r?);
        }
        Ok(Usage {
            live_services: None,
            groups: out,
            data_bytes: None,
        })
    }

    async fn group_use(&self, group: &str, numbers: &Arc<[String]>) -> StoreResult<Vec<NumberUse>> {
        let base = number_base(&self.prefix, group);
        let calls = numbers.chunks(USAGE_CHUNK).map(|chunk| {
            let mut inv = self.scripts.usage.prepare_invoke();
            for n in chunk {
                inv.key(format!("{base}{n}"));
            }
            async move {
                let counts: Vec<u64> = self.invoke(&inv).await?;
                if counts.len() != 2 * chunk.len() {
                    return Err(damaged("usage reply"));
                }
                Ok(counts
                    .chunks(2)
                    .map(|c| NumberUse {
                        exclusive: c[0] == 1,
                        coded: c[1],
                    })
                    .collect::<Vec<_>>())
            }
        });
        let calls: Vec<_> = calls.collect();
        self.bounded(async {
            let mut out = Vec::with_capacity(numbers.len());
            // Chunks come back in the group's order.
            for r in futures::future::join_all(calls).await {
                out.extend(r?);
            }
            Ok(out)
        })
        .await
    }
}

/// A service record from its hash (`HGETALL`; empty: no such service).
fn service_reply(id: Uuid, hash: RValue) -> Result<Option<ServiceRecord>, OpError> {
    let pairs = hash_pairs(hash).ok_or_else(|| damaged("service record"))?;
    if pairs.is_empty() {
        return Ok(None);
    }
    parse_service(id, pairs)
        .map(Some)
        .ok_or_else(|| damaged("service record"))
}

/// A cached status from its value (`GET`; nil: none cached).
fn status_reply(value: Option<Vec<u8>>) -> Result<Option<StatusEntry>, OpError> {
    value
        .map(|b| decode_status(b).ok_or_else(|| damaged("status entry")))
        .transpose()
}
