//! Connections to Redis: one server through a `ConnectionManager` (multiplexed, reconnects by
//! itself) or a cluster through the async cluster client, both made lazily, on first use, on
//! the runtime of the caller (Pingora creates its runtimes after the store is built). Every
//! operation is bounded by `timeout_ms`: when Redis does not answer in time the operation
//! fails as [`StoreError::Unavailable`] (503), never hangs.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, ScriptInvocation, Value as RValue};

use super::RedisStore;
use crate::store::{StoreError, StoreResult};

/// Where the store connects (one per process: the variants' sizes do not matter).
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
pub(super) enum Target {
    Single(redis::Client),
    Cluster(ClusterClient),
}

/// A live connection: a single server's manager or the cluster client's connection. Both are
/// multiplexed handles, cheap to clone.
#[derive(Clone)]
pub(super) enum Conn {
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

impl RedisStore {
    /// The connection, made on first use (on the caller's runtime).
    pub(super) async fn conn(&self) -> RedisResult<Conn> {
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
    pub(super) async fn bounded<T, F>(&self, op: F) -> StoreResult<T>
    where
        F: Future<Output = Result<T, OpError>>,
    {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            // Over `maxmemory` (noeviction): Redis refused a write whole (see `lua::GROWS`).
            Ok(Err(OpError::Redis(e))) if e.code() == Some("OOM") => Err(StoreError::Full(
                "the store is full: Redis is at its maxmemory".into(),
            )),
            Ok(Err(OpError::Redis(e))) => Err(StoreError::Unavailable(format!("redis: {e}"))),
            Ok(Err(OpError::Store(e))) => Err(e),
            Err(_) => Err(StoreError::Unavailable(format!(
                "redis did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    /// A command or pipeline that may run twice (reads, or a write that sets the same thing
    /// again), sent once more when the connection turned out to be broken (Redis restarted
    /// since its last use, say), so that a restart costs no request a 503.
    pub(super) async fn read<'q, T: redis::FromRedisValue>(
        &self,
        query: impl Into<Query<'q>>,
    ) -> Result<T, OpError> {
        let query = query.into();
        let mut conn = self.conn().await?;
        match query.send(&mut conn).await {
            Err(e) if e.is_connection_dropped() || e.is_unrecoverable_error() => {
                let mut conn = self.conn().await?;
                Ok(query.send(&mut conn).await?)
            }
            r => Ok(r?),
        }
    }

    /// A script call, sent once more when the connection was found dropped while sending it
    /// (then it did not run: after a Redis restart, the first use of the old connection). Had
    /// it run after all, the retry could only find its own reservation gone (a match answers
    /// 404 instead of 503) or leave a reservation unused until its TTL (a create).
    pub(super) async fn invoke<T: redis::FromRedisValue>(
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
}

/// What [`RedisStore::read`] sends: one command, or a pipeline (one round trip; on a cluster
/// its keys must share a slot).
pub(super) enum Query<'a> {
    Cmd(&'a Cmd),
    Pipeline(&'a Pipeline),
}

impl<'a> From<&'a Cmd> for Query<'a> {
    fn from(cmd: &'a Cmd) -> Self {
        Query::Cmd(cmd)
    }
}

impl<'a> From<&'a Pipeline> for Query<'a> {
    fn from(pipeline: &'a Pipeline) -> Self {
        Query::Pipeline(pipeline)
    }
}

impl Query<'_> {
    async fn send<T: redis::FromRedisValue>(&self, conn: &mut Conn) -> RedisResult<T> {
        match self {
            Query::Cmd(cmd) => cmd.query_async(conn).await,
            Query::Pipeline(pipeline) => pipeline.query_async(conn).await,
        }
    }
}

/// Why an operation failed before the timeout.
pub(super) enum OpError {
    Redis(redis::RedisError),
    Store(StoreError),
}

impl From<redis::RedisError> for OpError {
    fn from(e: redis::RedisError) -> Self {
        OpError::Redis(e)
    }
}

pub(super) fn damaged(what: &str) -> OpError {
    OpError::Store(StoreError::Unavailable(format!(
        "redis holds a damaged {what}"
    )))
}
