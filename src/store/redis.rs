//! The Redis [`Store`]: every piece of state in one Redis (or Redis Cluster) shared by all
//! gateway nodes, each entry with a native TTL, so any node serves any request and a restarted
//! node loses nothing (Redis persistence, AOF, keeps it across a Redis restart).
//!
//! # Key layout
//!
//! `P` is the configured prefix (`gms:` by default). The part in braces is the Redis Cluster
//! hash tag: keys that one script changes together share it, so they sit in one slot.
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `P s{<service id>}` | hash | service record: `n` name, `d` data id, `u` owner, `st`/`dt` TTLs (ms), `o` ORS session, `r<number>[\0<code>]` one per reservation | `_service_ttl` |
//! | `P t{<service id>}` | string | status entry: stored-at ms (u64 LE), fresh ms (u64 LE), JSON body | service TTL |
//! | `P d{<data id>}` | hash | user data: one field per key, value `t<text>` or `f<u32 LE len><filename><u32 LE len><content type><bytes>`; `\0o` owner; `\0k` the keys in order, each followed by NUL | `_ttl` / storage TTL |
//! | `P n{<group>}<number>` | hash | holds on one access number: `x` exclusive, `c<code>` coded; value `"<expires ms> <service id> <phone>"` | the latest hold's expiry |
//! | `P r{<group>}` | string | the group's round-robin position | 7 days, renewed by use |
//! | `P h{<group>}` | hash | per-phone index (only under `gms.limits.reservations_per_phone`): field phone, value its reservations, each `<expires ms>\0<service id>\0<number>\0<hold field>\0` | the latest entry's expiry |
//!
//! Custom storage ids are data ids chosen by the client; ownership (`gms_user`) is the `u` /
//! `\0o` field, checked inside the scripts. Reservations keep their expiry inside the hold
//! (Redis 7.0 has no per-field TTL): scripts purge expired holds as they go, and the number's
//! key expires with its last hold.
//!
//! # Round trips
//!
//! Single Redis: `create_service` is one script call (reserve + service + data), with or
//! without a reservation. Redis Cluster: the reservation script runs in the group's slot, then
//! the service and its data (two other slots) are written concurrently: two round trips.
//! Reads are one command; `touch_service` is two commands sent together (one round trip).
//!
//! # Connections
//!
//! The connection is made lazily, on first use, on the runtime of the caller (Pingora creates
//! its runtimes after the store is built). A single server goes through a `ConnectionManager`
//! (multiplexed, reconnects by itself); a cluster through the async cluster client. Every
//! operation is bounded by `timeout_ms`: when Redis does not answer in time the operation
//! fails as [`StoreError::Unavailable`] (503), never hangs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rand::Rng;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Script, ScriptInvocation, Value as RValue};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::pool::{pack_code, phone_limit_message};
use super::redis_lua as lua;
use super::{
    Allocation, DataRecord, MatchRequest, NumberUse, OrsSession, PutMode, Reservation,
    ReservationRef, ReserveRequest, ServiceRecord, StatusEntry, Store, StoreError, StoreResult,
    Usage,
};
use crate::value::{Fields, FileValue, Value};

/// Random candidate codes sent with each coded reservation (the script walks on from the
/// first when all are taken).
const CODE_CANDIDATES: usize = 8;

/// Numbers a reservation first tries: every number is a key the script must be given, and a
/// group of 1,000 made each create send 1,000 keys (5,600 creates/s instead of tens of
/// thousands). Random allocation tries them from a random number on; round robin from where
/// this node last saw the group's position, which other nodes may have moved on by less than
/// this. Only when the window has no room (or round robin's position lies outside it) is the
/// script given the whole group, which finds any free number or says the group is exhausted.
/// The round-robin window never starts past the position: a guess that also counted this
/// node's reservations in flight was measured worse (one miss put the windows after it past
/// the position too, and misses cascaded into whole-group calls under load).
const RESERVE_WINDOW: usize = 16;

/// Numbers one usage script counts: bounds how long one call keeps Redis busy (its numbers'
/// holds), while a large group still takes few calls.
const USAGE_CHUNK: usize = 64;

/// Where the store connects (one per process: the variants' sizes do not matter).
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum Target {
    Single(redis::Client),
    Cluster(ClusterClient),
}

/// A live connection: a single server's manager or the cluster client's connection. Both are
/// multiplexed handles, cheap to clone.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, RValue> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<RValue>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The scripts, hashed once.
struct Scripts {
    create: Script,
    reserve: Script,
    write_service: Script,
    put_data: Script,
    merge_data: Script,
    delete_data: Script,
    set_ors: Script,
    attach: Script,
    delete_service: Script,
    matching: Script,
    release: Script,
    usage: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::new(&format!("{}{}", lua::LIB, body));
        Scripts {
            create: s(lua::CREATE),
            reserve: s(lua::RESERVE),
            write_service: s(lua::WRITE_SERVICE),
            put_data: s(lua::PUT_DATA),
            merge_data: s(lua::MERGE_DATA),
            delete_data: s(lua::DELETE_DATA),
            set_ors: s(lua::SET_ORS),
            attach: s(lua::ATTACH),
            delete_service: s(lua::DELETE_SERVICE),
            matching: s(lua::MATCH),
            release: s(lua::RELEASE),
            usage: s(lua::USAGE),
        }
    }

    fn all(&self) -> [&Script; 12] {
        [
            &self.create,
            &self.reserve,
            &self.write_service,
            &self.put_data,
            &self.merge_data,
            &self.delete_data,
            &self.set_ors,
            &self.attach,
            &self.delete_service,
            &self.matching,
            &self.release,
            &self.usage,
        ]
    }
}

/// The keys of one resource group.
struct GroupKeys {
    /// The configured numbers (to recognise a request built from the same configuration).
    numbers: Arc<[String]>,
    /// `P r{group}`
    rr: String,
    /// `P n{group}`: the common start of the number keys.
    base: String,
    /// `P n{group}<number>`, in configured order.
    number_keys: Vec<String>,
    /// `P h{group}`: the per-phone index.
    phones: Arc<str>,
    /// The group's round-robin position after this node's last reservation in it: where the
    /// next round-robin window starts.
    rr_next: AtomicUsize,
}

impl GroupKeys {
    fn new(prefix: &str, group: &str, numbers: Arc<[String]>) -> Self {
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

/// The Redis-backed [`Store`].
pub struct RedisStore {
    target: Target,
    conn: OnceCell<Conn>,
    prefix: String,
    timeout: Duration,
    scripts: Scripts,
    groups: HashMap<String, GroupKeys>,
    /// Access number -> its key and its group's per-phone index, for matching and releasing.
    number_keys: HashMap<String, (String, Arc<str>)>,
}

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
    ) -> Result<RedisStore, String> {
        let client = redis::Client::open(url).map_err(|e| format!("gms.storage.url: {e}"))?;
        RedisStore::new(Target::Single(client), prefix, timeout, resources)
    }

    /// A store on a Redis Cluster, given some of its nodes' URLs.
    pub fn cluster(
        nodes: &[String],
        prefix: &str,
        timeout: Duration,
        resources: &HashMap<String, Arc<[String]>>,
    ) -> Result<RedisStore, String> {
        let client = ClusterClient::builder(nodes.iter().map(String::as_str))
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(2)
            .min_retry_wait(20)
            .max_retry_wait(200)
            .build()
            .map_err(|e| format!("gms.storage.cluster: {e}"))?;
        RedisStore::new(Target::Cluster(client), prefix, timeout, resources)
    }

    fn new(
        target: Target,
        prefix: &str,
        timeout: Duration,
        resources: &HashMap<String, Arc<[String]>>,
    ) -> Result<RedisStore, String> {
        if prefix.contains(['{', '}']) {
            // The prefix would become every key's hash tag (or split the tags of keys that
            // one script changes together).
            return Err(format!(
                "gms.storage.prefix: '{prefix}' may not contain {{ or }}"
            ));
        }
        let mut groups = HashMap::new();
        let mut number_keys = HashMap::new();
        for (group, numbers) in resources {
            if group.contains(['{', '}']) {
                return Err(format!(
                    "gms.resources.{group}: with the Redis store a group name may not contain {{ or }}"
                ));
            }
            if let Some(n) = numbers.iter().find(|n| n.contains('\0')) {
                return Err(format!(
                    "gms.resources.{group}: '{}' contains a NUL character",
                    n.escape_debug()
                ));
            }
            let keys = GroupKeys::new(prefix, group, numbers.clone());
            for (n, k) in numbers.iter().zip(&keys.number_keys) {
                number_keys.insert(n.clone(), (k.clone(), keys.phones.clone()));
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

    fn service_key(&self, id: Uuid) -> String {
        format!("{}s{{{}}}", self.prefix, id.hyphenated())
    }

    fn status_key(&self, id: Uuid) -> String {
        format!("{}t{{{}}}", self.prefix, id.hyphenated())
    }

    fn data_key(&self, id: &str) -> String {
        format!("{}d{{{id}}}", self.prefix)
    }

    /// The connection, made on first use (on the caller's runtime).
    async fn conn(&self) -> RedisResult<Conn> {
        let c = self
            .conn
            .get_or_try_init(|| async {
                let mut conn = match &self.target {
                    Target::Single(client) => {
                        let config = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(self.timeout))
                            .set_response_timeout(Some(self.timeout))
                            .set_number_of_retries(3)
                            .set_min_delay(Duration::from_millis(20))
                            .set_max_delay(Duration::from_millis(500));
                        Conn::Single(
                            ConnectionManager::new_with_config(client.clone(), config).await?,
                        )
                    }
                    Target::Cluster(client) => Conn::Cluster(client.get_async_connection().await?),
                };
                // Load the scripts now so the first calls are one EVALSHA each (after a Redis
                // restart, a NOSCRIPT reply makes the call load its script again).
                for s in self.scripts.all() {
                    s.prepare_invoke().load_async(&mut conn).await?;
                }
                Ok::<Conn, redis::RedisError>(conn)
            })
            .await?;
        Ok(c.clone())
    }

    /// Runs one store operation within the timeout; a Redis error or no answer in time is
    /// [`StoreError::Unavailable`].
    async fn bounded<T, F>(&self, op: F) -> StoreResult<T>
    where
        F: Future<Output = Result<T, OpError>>,
    {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(OpError::Redis(e))) => Err(StoreError::Unavailable(format!("redis: {e}"))),
            Ok(Err(OpError::Store(e))) => Err(e),
            Err(_) => Err(StoreError::Unavailable(format!(
                "redis did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    /// A command that may run twice (a read, or a write that sets the same thing again), sent
    /// once more when the connection turned out to be broken (Redis restarted since its last
    /// use, say), so that a restart costs no request a 503.
    async fn read<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, OpError> {
        let mut conn = self.conn().await?;
        match cmd.query_async(&mut conn).await {
            Err(e) if e.is_connection_dropped() || e.is_unrecoverable_error() => {
                let mut conn = self.conn().await?;
                Ok(cmd.query_async(&mut conn).await?)
            }
            r => Ok(r?),
        }
    }

    /// A script call, sent once more when the connection was found dropped while sending it
    /// (then it did not run: after a Redis restart, the first use of the old connection). Had
    /// it run after all, the retry could only find its own reservation gone (a match answers
    /// 404 instead of 503) or leave a reservation unused until its TTL (a create).
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, OpError> {
        let mut conn = self.conn().await?;
        match inv.invoke_async(&mut conn).await {
            Err(e) if e.is_connection_dropped() => {
                let mut conn = self.conn().await?;
                Ok(inv.invoke_async(&mut conn).await?)
            }
            r => Ok(r?),
        }
    }

    /// Runs a script that reserves (`run` gets its reservation keys and arguments) and reads
    /// the reservation it made: over a window of the group's numbers first when the group is
    /// large, over the whole group when the window had no room.
    async fn reserving<F, Fut>(
        &self,
        req: &ReserveRequest,
        service: Uuid,
        mut run: F,
    ) -> Result<Reservation, OpError>
    where
        F: FnMut(Vec<String>, Vec<Vec<u8>>) -> Fut,
        Fut: Future<Output = Result<RValue, OpError>>,
    {
        let owned;
        let g = match self.groups.get(&req.group) {
            Some(g) if Arc::ptr_eq(&g.numbers, &req.numbers) || *g.numbers == *req.numbers => g,
            _ => {
                // A group the store was not built with: same layout, computed now.
                owned = GroupKeys::new(&self.prefix, &req.group, req.numbers.clone());
                &owned
            }
        };
        let n = g.numbers.len();
        let rr = req.allocation == Allocation::RoundRobin;
        for window in [n > RESERVE_WINDOW, false] {
            let (keys, args, first) = reserve_args(g, req, service, window);
            let given = keys.len() - 2;
            match parse_reservation(run(keys, args).await?) {
                Some(ReserveReply::PhoneLimit) => {
                    return Err(OpError::Store(StoreError::PhoneLimit(phone_limit_message(
                        req,
                    ))))
                }
                Some(ReserveReply::Made(i, code)) if i < given => {
                    let at = (first + i) % n;
                    if rr {
                        g.rr_next.store((at + 1) % n, Ordering::Relaxed);
                    }
                    return Ok(Reservation {
                        number: g.numbers[at].clone(),
                        code,
                    });
                }
                Some(ReserveReply::NoRoom) if window => continue,
                Some(ReserveReply::NoRoom) => return Err(OpError::Store(exhausted(&req.group))),
                Some(ReserveReply::Made(..)) | None => return Err(damaged("reservation reply")),
            }
        }
        Err(OpError::Store(exhausted(&req.group)))
    }

    /// The reservation script alone (Redis Cluster creates, reservations added later).
    async fn reserve_only(&self, keys: Vec<String>, args: Vec<Vec<u8>>) -> Result<RValue, OpError> {
        let mut inv = self.scripts.reserve.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        inv.arg(args);
        self.invoke(&inv).await
    }

    /// Releases holds a service had (each only if the service still holds it).
    async fn release_all(&self, service: Uuid, refs: &[ReservationRef]) -> Result<(), OpError> {
        let sid = service.hyphenated().to_string();
        let calls = refs.iter().filter_map(|r| {
            let (key, phones) = self.number_keys.get(&r.number)?;
            let sid = sid.clone();
            Some(async move {
                self.invoke::<i64>(
                    self.scripts
                        .release
                        .key(key)
                        .key(&**phones)
                        .arg(r.code.as_deref().unwrap_or(""))
                        .arg(sid)
                        .arg(&r.number),
                )
                .await
            })
        });
        for r in futures::future::join_all(calls).await {
            r?;
        }
        Ok(())
    }
}

/// Why an operation failed before the timeout.
enum OpError {
    Redis(redis::RedisError),
    Store(StoreError),
}

impl From<redis::RedisError> for OpError {
    fn from(e: redis::RedisError) -> Self {
        OpError::Redis(e)
    }
}

fn ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// `P n{group}`: the common start of a group's number keys.
fn number_base(prefix: &str, group: &str) -> String {
    format!("{prefix}n{{{group}}}")
}

fn owner_args(owner: Option<&str>) -> (&'static str, &str) {
    match owner {
        Some(o) => ("1", o),
        None => ("0", ""),
    }
}

fn exhausted(group: &str) -> StoreError {
    StoreError::Exhausted(format!(
        "no access number is free in resource group '{group}'"
    ))
}

fn damaged(what: &str) -> OpError {
    OpError::Store(StoreError::Unavailable(format!(
        "redis holds a damaged {what}"
    )))
}

// ---------------------------------------------------------------------------------------------
// Encodings

/// One user value as a hash field value.
fn encode_value(v: &Value) -> Vec<u8> {
    match v {
        Value::Text(s) => {
            let mut out = Vec::with_capacity(1 + s.len());
            out.push(b't');
            out.extend_from_slice(s.as_bytes());
            out
        }
        Value::File(f) => {
            let mut out =
                Vec::with_capacity(9 + f.filename.len() + f.content_type.len() + f.bytes.len());
            out.push(b'f');
            for s in [f.filename.as_bytes(), f.content_type.as_bytes()] {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s);
            }
            out.extend_from_slice(&f.bytes);
            out
        }
    }
}

fn decode_value(b: Vec<u8>) -> Option<Value> {
    match b.first()? {
        b't' => {
            let mut b = b;
            b.remove(0);
            String::from_utf8(b).ok().map(Value::Text)
        }
        b'f' => {
            let all = Bytes::from(b);
            let mut pos = 1;
            let mut text = || -> Option<String> {
                let len = u32::from_le_bytes(all.get(pos..pos + 4)?.try_into().ok()?) as usize;
                let s = all.get(pos + 4..pos + 4 + len)?;
                pos += 4 + len;
                String::from_utf8(s.to_vec()).ok()
            };
            let filename = text()?;
            let content_type = text()?;
            Some(Value::File(FileValue {
                filename,
                content_type,
                bytes: all.slice(pos..),
            }))
        }
        _ => None,
    }
}

fn field_args(fields: &Fields) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(1 + 2 * fields.len());
    out.push(fields.len().to_string().into_bytes());
    for (k, v) in fields {
        out.push(k.clone().into_bytes());
        out.push(encode_value(v));
    }
    out
}

fn encode_ors(s: &OrsSession) -> Vec<u8> {
    match s {
        OrsSession::Started { node, session_id } => {
            format!("s{}:{node}{session_id}", node.len()).into_bytes()
        }
        OrsSession::Pending => b"p".to_vec(),
        OrsSession::Failed(m) => format!("f{m}").into_bytes(),
    }
}

fn decode_ors(b: &[u8]) -> Option<OrsSession> {
    let s = std::str::from_utf8(b).ok()?;
    match s.as_bytes().first()? {
        b'p' => Some(OrsSession::Pending),
        b'f' => Some(OrsSession::Failed(s[1..].to_string())),
        b's' => {
            let (len, rest) = s[1..].split_once(':')?;
            let len: usize = len.parse().ok()?;
            Some(OrsSession::Started {
                node: rest.get(..len)?.to_string(),
                session_id: rest.get(len..)?.to_string(),
            })
        }
        _ => None,
    }
}

fn res_field(r: &ReservationRef) -> Vec<u8> {
    let mut f = Vec::with_capacity(2 + r.number.len() + 12);
    f.push(b'r');
    f.extend_from_slice(r.number.as_bytes());
    if let Some(c) = &r.code {
        f.push(0);
        f.extend_from_slice(c.as_bytes());
    }
    f
}

/// The service record's hash fields, reservations included.
fn service_fields(r: &ServiceRecord) -> Vec<Vec<u8>> {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"n".to_vec(), r.service.clone().into_bytes()),
        (
            b"d".to_vec(),
            r.data_id.hyphenated().to_string().into_bytes(),
        ),
        (b"st".to_vec(), ms(r.service_ttl).to_string().into_bytes()),
        (b"dt".to_vec(), ms(r.data_ttl).to_string().into_bytes()),
    ];
    if let Some(o) = &r.owner {
        pairs.push((b"u".to_vec(), o.clone().into_bytes()));
    }
    if let Some(s) = &r.ors {
        pairs.push((b"o".to_vec(), encode_ors(s)));
    }
    for res in &r.reservations {
        pairs.push((res_field(res), b"1".to_vec()));
    }
    let mut out = Vec::with_capacity(1 + 2 * pairs.len());
    out.push(pairs.len().to_string().into_bytes());
    for (k, v) in pairs {
        out.push(k);
        out.push(v);
    }
    out
}

/// Flattens a hash reply (RESP2 array of pairs or RESP3 map) into pairs of byte strings.
fn hash_pairs(v: RValue) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    fn bytes(v: RValue) -> Option<Vec<u8>> {
        match v {
            RValue::BulkString(b) => Some(b),
            RValue::SimpleString(s) => Some(s.into_bytes()),
            RValue::Int(i) => Some(i.to_string().into_bytes()),
            _ => None,
        }
    }
    match v {
        RValue::Nil => Some(Vec::new()),
        RValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let Some(k) = it.next() {
                out.push((bytes(k)?, bytes(it.next()?)?));
            }
            Some(out)
        }
        RValue::Map(items) => items
            .into_iter()
            .map(|(k, v)| Some((bytes(k)?, bytes(v)?)))
            .collect(),
        _ => None,
    }
}

fn parse_service(id: Uuid, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Option<ServiceRecord> {
    let mut rec = ServiceRecord {
        id,
        service: String::new(),
        data_id: Uuid::nil(),
        owner: None,
        service_ttl: Duration::ZERO,
        data_ttl: Duration::ZERO,
        ors: None,
        reservations: Vec::new(),
    };
    let text = |v: Vec<u8>| String::from_utf8(v).ok();
    let millis = |v: Vec<u8>| -> Option<Duration> {
        Some(Duration::from_millis(
            std::str::from_utf8(&v).ok()?.parse().ok()?,
        ))
    };
    let mut have_data = false;
    for (k, v) in pairs {
        match k.as_slice() {
            b"n" => rec.service = text(v)?,
            b"d" => {
                rec.data_id = Uuid::try_parse_ascii(&v).ok()?;
                have_data = true;
            }
            b"u" => rec.owner = Some(text(v)?),
            b"st" => rec.service_ttl = millis(v)?,
            b"dt" => rec.data_ttl = millis(v)?,
            b"o" => rec.ors = Some(decode_ors(&v)?),
            [b'r', rest @ ..] => {
                let rest = std::str::from_utf8(rest).ok()?;
                rec.reservations.push(match rest.rsplit_once('\0') {
                    Some((number, code)) => ReservationRef {
                        number: number.to_string(),
                        code: Some(code.to_string()),
                    },
                    None => ReservationRef {
                        number: rest.to_string(),
                        code: None,
                    },
                });
            }
            _ => {}
        }
    }
    have_data.then_some(rec)
}

fn parse_data(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Option<DataRecord> {
    let mut owner = None;
    let mut order: Vec<u8> = Vec::new();
    let mut values: HashMap<Vec<u8>, Vec<u8>> = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        match k.as_slice() {
            b"\0o" => owner = Some(String::from_utf8(v).ok()?),
            b"\0k" => order = v,
            _ => {
                values.insert(k, v);
            }
        }
    }
    let mut fields: Fields = Vec::with_capacity(values.len());
    for key in order.split(|b| *b == 0) {
        if let Some(v) = values.remove(key) {
            fields.push((String::from_utf8(key.to_vec()).ok()?, decode_value(v)?));
        }
    }
    // Fields missing from the order list (never written so): after the ordered ones.
    let mut rest: Vec<_> = values.into_iter().collect();
    rest.sort();
    for (k, v) in rest {
        fields.push((String::from_utf8(k).ok()?, decode_value(v)?));
    }
    Some(DataRecord { owner, fields })
}

fn encode_status(e: &StatusEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + e.body.len());
    out.extend_from_slice(&e.stored_at_ms.to_le_bytes());
    out.extend_from_slice(&e.fresh_ms.to_le_bytes());
    out.extend_from_slice(&e.body);
    out
}

fn decode_status(b: Vec<u8>) -> Option<StatusEntry> {
    if b.len() < 16 {
        return None;
    }
    let stored_at_ms = u64::from_le_bytes(b[0..8].try_into().ok()?);
    let fresh_ms = u64::from_le_bytes(b[8..16].try_into().ok()?);
    let all = Bytes::from(b);
    Some(StatusEntry {
        body: all.slice(16..),
        stored_at_ms,
        fresh_ms,
    })
}

/// The keys and arguments of the reservation part of a script, and the index in the group of
/// the first number they name: [`RESERVE_WINDOW`] numbers when `window` (from a random one,
/// or from round robin's expected position), else the whole group.
fn reserve_args(
    g: &GroupKeys,
    req: &ReserveRequest,
    service: Uuid,
    window: bool,
) -> (Vec<String>, Vec<Vec<u8>>, usize) {
    let n = g.numbers.len().max(1);
    let rr = req.allocation == Allocation::RoundRobin;
    let start = if rr && window {
        g.rr_next.load(Ordering::Relaxed) % n
    } else {
        rand::thread_rng().gen_range(0..n)
    };
    let mut keys = vec![g.rr.clone(), g.phones.to_string()];
    let first = if window {
        keys.extend((0..RESERVE_WINDOW.min(n)).map(|j| g.number_keys[(start + j) % n].clone()));
        start
    } else {
        keys.extend(g.number_keys.iter().cloned());
        0
    };
    let code_len = req.code_len.unwrap_or(0);
    let mut args: Vec<Vec<u8>> = vec![
        code_len.to_string().into_bytes(),
        if rr { b"1".to_vec() } else { b"0".to_vec() },
        start.to_string().into_bytes(),
        g.numbers.len().to_string().into_bytes(),
        service.hyphenated().to_string().into_bytes(),
        req.phone.clone().into_bytes(),
        ms(req.ttl).to_string().into_bytes(),
        g.base.len().to_string().into_bytes(),
        req.per_phone.to_string().into_bytes(),
    ];
    match req.code_len {
        Some(len) => {
            args.push(CODE_CANDIDATES.to_string().into_bytes());
            for _ in 0..CODE_CANDIDATES {
                args.push(crate::ids::access_code(len).into_bytes());
            }
        }
        None => args.push(b"0".to_vec()),
    }
    (keys, args, first)
}

/// What a reservation script answered.
enum ReserveReply {
    /// Reserved: the index of the number among the number keys given, and the code.
    Made(usize, Option<String>),
    /// The numbers given had no room.
    NoRoom,
    /// The phone already holds its limit of live reservations in the group.
    PhoneLimit,
}

/// Reads a reservation script's reply; `None` for a reply of another shape.
fn parse_reservation(v: RValue) -> Option<ReserveReply> {
    match v {
        RValue::Nil => Some(ReserveReply::NoRoom),
        RValue::BulkString(b) if b == b"phone-limit" => Some(ReserveReply::PhoneLimit),
        RValue::Array(items) if items.len() == 3 => {
            let mut it = items.into_iter();
            let idx = match it.next()? {
                RValue::Int(i) => usize::try_from(i).ok()?,
                _ => return None,
            };
            let code = match it.next()? {
                RValue::BulkString(b) => String::from_utf8(b).ok()?,
                _ => return None,
            };
            Some(ReserveReply::Made(idx, (!code.is_empty()).then_some(code)))
        }
        _ => None,
    }
}

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
        self.bounded(async {
            let v: RValue = self.read(&cmd).await?;
            let pairs = hash_pairs(v).ok_or_else(|| damaged("service record"))?;
            if pairs.is_empty() {
                return Ok(None);
            }
            parse_service(id, pairs)
                .map(Some)
                .ok_or_else(|| damaged("service record"))
        })
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
            if data_id.is_none() || !super::may_access(rec_owner.as_deref(), owner) {
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

    async fn match_reservation(&self, call: &MatchRequest) -> StoreResult<Option<Uuid>> {
        let Some((key, phones)) = self.number_keys.get(&call.number) else {
            return Ok(None);
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
                        .key(key)
                        .key(&**phones)
                        .arg(code)
                        .arg(has_phone)
                        .arg(phone)
                        .arg(&call.number),
                )
                .await?;
            match v {
                RValue::Nil => Ok(None),
                RValue::BulkString(b) => Uuid::try_parse_ascii(&b)
                    .map(Some)
                    .map_err(|_| damaged("hold")),
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

    async fn get_status(&self, id: Uuid) -> StoreResult<Option<StatusEntry>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.status_key(id));
        self.bounded(async {
            let v: Option<Vec<u8>> = self.read(&cmd).await?;
            match v {
                None => Ok(None),
                Some(b) => decode_status(b)
                    .map(Some)
                    .ok_or_else(|| damaged("status entry")),
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

    /// Holds: one script call per [`USAGE_CHUNK`] numbers of a group (a group's keys share a
    /// slot), all sent together; each reads its numbers' holds, so the cost is O(numbers +
    /// live holds). Live services: `None`. Service records are keys of their own, spread over
    /// the cluster; counting them exactly would take a SCAN of the whole keyspace or an index
    /// written on every create, renewal and delete (and a hot key on a cluster), which the
    /// request path should not pay for a gauge.
    /// Nothing to start: Redis expires keys itself and connects lazily.
    fn start_upkeep(&self) {}

    async fn usage(&self, groups: &HashMap<String, Arc<[String]>>) -> StoreResult<Usage> {
        let calls = groups.iter().flat_map(|(group, numbers)| {
            let base = number_base(&self.prefix, group);
            numbers.chunks(USAGE_CHUNK).map(move |chunk| {
                let mut inv = self.scripts.usage.prepare_invoke();
                for n in chunk {
                    inv.key(format!("{base}{n}"));
                }
                async move {
                    let counts: Vec<u64> = self.invoke(&inv).await?;
                    if counts.len() != 2 * chunk.len() {
                        return Err(damaged("usage reply"));
                    }
                    let uses = counts.chunks(2).map(|c| NumberUse {
                        exclusive: c[0] == 1,
                        coded: c[1],
                    });
                    Ok((group, uses.collect::<Vec<_>>()))
                }
            })
        });
        let calls: Vec<_> = calls.collect();
        self.bounded(async {
            let mut out: Vec<(String, Vec<NumberUse>)> = Vec::with_capacity(groups.len());
            for r in futures::future::join_all(calls).await {
                let (group, uses) = r?;
                match out.last_mut() {
                    // Chunks of one group come one after another.
                    Some((g, all)) if g == group => all.extend(uses),
                    _ => out.push((group.clone(), uses)),
                }
            }
            // A group without numbers made no call; it still has (empty) usage.
            for (group, numbers) in groups {
                if numbers.is_empty() {
                    out.push((group.clone(), Vec::new()));
                }
            }
            Ok(Usage {
                live_services: None,
                groups: out,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for v in [
            Value::Text(String::new()),
            Value::Text("é 1\n".into()),
            Value::File(FileValue {
                filename: "a b.jpg".into(),
                content_type: "image/jpeg".into(),
                bytes: Bytes::from_static(b"\x00\xff\x00"),
            }),
            Value::File(FileValue {
                filename: String::new(),
                content_type: String::new(),
                bytes: Bytes::new(),
            }),
        ] {
            assert_eq!(decode_value(encode_value(&v)), Some(v));
        }
        assert_eq!(decode_value(b"f\x09\x00\x00\x00ab".to_vec()), None);
        assert_eq!(decode_value(Vec::new()), None);
    }

    #[test]
    fn ors_sessions_round_trip() {
        for s in [
            OrsSession::Pending,
            OrsSession::Failed("no: node".into()),
            OrsSession::Started {
                node: "http://127.0.0.1:7210".into(),
                session_id: "a:b\0c".into(),
            },
        ] {
            assert_eq!(decode_ors(&encode_ors(&s)), Some(s));
        }
    }

    #[test]
    fn service_records_round_trip_through_hash_fields() {
        let rec = ServiceRecord {
            id: Uuid::new_v4(),
            service: "request-interaction".into(),
            data_id: Uuid::new_v4(),
            owner: Some("alice".into()),
            service_ttl: Duration::from_secs(3600),
            data_ttl: Duration::from_secs(30),
            ors: Some(OrsSession::Pending),
            reservations: vec![
                ReservationRef {
                    number: "8003449999".into(),
                    code: Some("0042".into()),
                },
                ReservationRef {
                    number: "8005550001".into(),
                    code: None,
                },
            ],
        };
        let mut args = service_fields(&rec).into_iter();
        let n: usize = String::from_utf8(args.next().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        let mut pairs = Vec::new();
        for _ in 0..n {
            pairs.push((args.next().unwrap(), args.next().unwrap()));
        }
        assert_eq!(parse_service(rec.id, pairs), Some(rec));
    }

    #[test]
    fn data_keeps_key_order_and_owner() {
        let pairs = vec![
            (b"b".to_vec(), b"t2".to_vec()),
            (b"\0o".to_vec(), b"bob".to_vec()),
            (b"a".to_vec(), b"t1".to_vec()),
            (b"\0k".to_vec(), b"b\0a\0".to_vec()),
        ];
        let d = parse_data(pairs).unwrap();
        assert_eq!(d.owner.as_deref(), Some("bob"));
        assert_eq!(
            d.fields,
            vec![
                ("b".to_string(), Value::Text("2".into())),
                ("a".to_string(), Value::Text("1".into()))
            ]
        );
    }

    #[test]
    fn status_round_trips() {
        let e = StatusEntry {
            body: Bytes::from_static(b"{\"status\":\"x\"}"),
            stored_at_ms: 1_700_000_000_123,
            fresh_ms: 1000,
        };
        assert_eq!(decode_status(encode_status(&e)), Some(e));
        assert_eq!(decode_status(vec![1, 2]), None);
    }

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
        assert!(err.starts_with("gms.storage.prefix"), "{err}");
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
