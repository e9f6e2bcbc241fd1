//! The one Redis connection of a process.
//!
//! Standalone (the default): one `redis::aio::ConnectionManager` (a multiplexed connection
//! that reconnects by itself), built lazily and shared by every task: the redis-rs
//! maintainers recommend one multiplexed connection over a pool unless blocking commands
//! are used. Cluster mode (`LEXPIPE_REDIS_CLUSTER`): one `redis::cluster_async`
//! connection, which keeps a multiplexed connection per node, routes each command by the
//! slot of its keys, follows `MOVED`/`ASK` and refreshes the topology after a failover by
//! itself. Both are a [`Conn`], so every caller sends the same commands either way.
//!
//! Around it: TCP_NODELAY (redis 1.x leaves it off), connect and response timeouts, a
//! rebuild after repeated timeouts (a wedged socket is not something the manager notices),
//! one jittered retry for transient errors of idempotent commands, and the [`Breaker`] so
//! that a dead Redis is skipped rather than waited on.
//!
//! Commands that concern the whole keyspace rather than keys (`SCAN`, `INFO`, `DBSIZE`,
//! `CONFIG GET`) must reach every primary of a cluster, not a random node: use
//! [`RedisHandle::scan_keys`] and [`RedisHandle::on_each_primary`].

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::io::tcp::TcpSettings;
use redis::{Client, Cmd, ConnectionInfo, IntoConnectionInfo, RedisError, RedisFuture, Value};

use super::breaker::Breaker;
use crate::config::{Config, RedisConfig};

/// Consecutive response timeouts after which the connection is dropped and rebuilt.
const TIMEOUTS_BEFORE_REBUILD: u32 = 3;

/// Why a Redis operation did not happen. Callers of caches fail open on every variant;
/// locks and idempotency fail closed.
#[derive(Debug, thiserror::Error)]
pub enum RedisUnavailable {
    #[error("redis circuit breaker is open (recent failures); skipping")]
    BreakerOpen,
    #[error("cannot connect to redis: {0}")]
    Connect(String),
    #[error("redis command failed: {0}")]
    Command(String),
}

/// A connection to one server or to a cluster: what [`RedisHandle::run`] hands to its
/// operation. Cheap to clone (both kinds are multiplexed handles).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
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

/// Shared handle: cheap to clone, one connection underneath.
#[derive(Clone)]
pub struct RedisHandle {
    inner: Arc<Inner>,
}

enum Backend {
    Single {
        client: Client,
        manager_config: ConnectionManagerConfig,
    },
    Cluster {
        client: ClusterClient,
    },
}

struct Inner {
    backend: Backend,
    connect_timeout: Duration,
    manager: RwLock<Option<Conn>>,
    connect_lock: tokio::sync::Mutex<()>,
    breaker: Breaker,
    connect_attempts: AtomicU64,
    consecutive_timeouts: AtomicU32,
    rebuilds: AtomicU64,
    /// Host:port for messages (never the password); the first seed node of a cluster.
    display_addr: String,
}

impl std::fmt::Debug for RedisHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHandle")
            .field("addr", &self.inner.display_addr)
            .field("cluster", &self.is_cluster())
            .finish_non_exhaustive()
    }
}

impl RedisHandle {
    /// Builds the client from configuration; connects on first use.
    ///
    /// # Errors
    /// A URL the driver refuses (message without the URL, which may hold a password).
    pub fn new(cfg: &Config) -> Result<RedisHandle, RedisUnavailable> {
        Self::with_settings(
            &cfg.redis,
            cfg.cache.breaker_failures,
            cfg.cache.breaker_cooldown,
        )
    }

    /// As [`RedisHandle::new`], from the Redis part of the configuration alone.
    ///
    /// # Errors
    /// A URL the driver refuses.
    pub fn with_settings(
        redis: &RedisConfig,
        breaker_failures: u32,
        breaker_cooldown: Duration,
    ) -> Result<RedisHandle, RedisUnavailable> {
        if redis.tls {
            // rustls needs one process-wide crypto provider; a second install is a no-op.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let invalid = |e: RedisError| {
            RedisUnavailable::Connect(format!(
                "invalid REDIS_URL ({})",
                e.kind().to_string_lossy()
            ))
        };
        let ca = match &redis.tls_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                RedisUnavailable::Connect(format!("cannot read REDIS_TLS_CA_FILE: {e}"))
            })?),
            None => None,
        };
        let settings_of = |info: ConnectionInfo| {
            let info = info.set_tcp_settings(TcpSettings::default().set_nodelay(true));
            let mut settings = info.redis_settings().clone();
            if let Some(u) = &redis.username {
                settings = settings.set_username(u);
            }
            if let Some(p) = &redis.password {
                settings = settings.set_password(p.expose());
            }
            if let Some(db) = redis.db {
                settings = settings.set_db(db);
            }
            info.set_redis_settings(settings)
        };
        let refused = |e: RedisError| {
            RedisUnavailable::Connect(format!(
                "invalid redis settings ({})",
                e.kind().to_string_lossy()
            ))
        };
        let mut seeds = Vec::new();
        for url in redis.seed_urls() {
            seeds.push(settings_of(url.into_connection_info().map_err(invalid)?));
        }
        let display_addr = seeds
            .first()
            .map(|i| i.addr().to_string())
            .unwrap_or_default();
        let backend = if redis.cluster {
            let mut builder = ClusterClientBuilder::new(seeds)
                .connection_timeout(redis.connect_timeout)
                .response_timeout(redis.response_timeout)
                // Redirections and a failover's brief unavailability are retried by the
                // client, briefly: beyond that the breaker and the callers decide (caches
                // fail open, locks fail closed), as in standalone mode.
                .overall_response_timeout(Some(redis.response_timeout * 4))
                .retries(4)
                .min_retry_wait(20)
                .max_retry_wait(400)
                .retry_wait_formula(20, 2)
                .tcp_settings(TcpSettings::default().set_nodelay(true));
            if let Some(u) = &redis.username {
                builder = builder.username(u);
            }
            if let Some(p) = &redis.password {
                builder = builder.password(p.expose());
            }
            if let Some(pem) = ca {
                builder = builder.certs(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                });
            }
            Backend::Cluster {
                client: builder.build().map_err(refused)?,
            }
        } else {
            let info = seeds.pop().expect("standalone mode has one URL");
            let client = match ca {
                Some(pem) => Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                ),
                None => Client::open(info),
            }
            .map_err(refused)?;
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(redis.connect_timeout))
                .set_response_timeout(Some(redis.response_timeout))
                // The breaker decides when to try again; the manager should not sit in its
                // own exponential back-off for seconds.
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(20))
                .set_max_delay(Duration::from_millis(200));
            Backend::Single {
                client,
                manager_config,
            }
        };
        Ok(RedisHandle {
            inner: Arc::new(Inner {
                backend,
                connect_timeout: redis.connect_timeout,
                manager: RwLock::new(None),
                connect_lock: tokio::sync::Mutex::new(()),
                breaker: Breaker::new(breaker_failures, breaker_cooldown),
                connect_attempts: AtomicU64::new(0),
                consecutive_timeouts: AtomicU32::new(0),
                rebuilds: AtomicU64::new(0),
                display_addr,
            }),
        })
    }

    /// True in cluster mode (`LEXPIPE_REDIS_CLUSTER`).
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.backend, Backend::Cluster { .. })
    }

    /// `host:port` of the server (no credentials), for messages.
    pub fn address(&self) -> &str {
        &self.inner.display_addr
    }

    /// How many times a connection was attempted (tests assert the breaker bounds this).
    pub fn connect_attempts(&self) -> u64 {
        self.inner.connect_attempts.load(Ordering::Relaxed)
    }

    /// How many times the connection was dropped after repeated timeouts.
    pub fn rebuilds(&self) -> u64 {
        self.inner.rebuilds.load(Ordering::Relaxed)
    }

    pub fn breaker(&self) -> &Breaker {
        &self.inner.breaker
    }

    /// Connects now (used at start to decide between Redis and the in-process fallback).
    ///
    /// # Errors
    /// Redis cannot be reached or refuses the handshake.
    pub async fn connect(&self) -> Result<(), RedisUnavailable> {
        let mut c = self.connection().await?;
        let pong: Result<String, _> = redis::cmd("PING").query_async(&mut c).await;
        match pong {
            Ok(_) => {
                self.inner.breaker.on_success();
                Ok(())
            }
            Err(e) => {
                self.note_failure(&e);
                Err(RedisUnavailable::Command(describe(&e)))
            }
        }
    }

    /// The underlying connection, connecting if needed (benchmarks compare raw redis-rs
    /// with the cache through it). Prefer [`RedisHandle::run`], which adds the breaker.
    ///
    /// # Errors
    /// Redis cannot be reached.
    pub async fn connection(&self) -> Result<Conn, RedisUnavailable> {
        if let Some(m) = self.inner.manager.read().expect("poisoned").as_ref() {
            return Ok(m.clone());
        }
        let attempts_before = self.inner.connect_attempts.load(Ordering::Acquire);
        let _guard = self.inner.connect_lock.lock().await;
        if let Some(m) = self.inner.manager.read().expect("poisoned").as_ref() {
            return Ok(m.clone());
        }
        // Someone attempted while we queued, and failed: queued callers must not each
        // spend a connect timeout on a dead host.
        if self.inner.connect_attempts.load(Ordering::Acquire) != attempts_before {
            return Err(RedisUnavailable::Connect(format!(
                "{}: the connection attempt just made failed",
                self.inner.display_addr
            )));
        }
        self.inner.connect_attempts.fetch_add(1, Ordering::Relaxed);
        let timeout = self.inner.connect_timeout * 2;
        let fut = async {
            match &self.inner.backend {
                Backend::Single {
                    client,
                    manager_config,
                } => ConnectionManager::new_with_config(client.clone(), manager_config.clone())
                    .await
                    .map(Conn::Single),
                Backend::Cluster { client } => {
                    client.get_async_connection().await.map(Conn::Cluster)
                }
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(m)) => {
                *self.inner.manager.write().expect("poisoned") = Some(m.clone());
                Ok(m)
            }
            Ok(Err(e)) => {
                self.inner.breaker.on_failure();
                Err(RedisUnavailable::Connect(format!(
                    "{}: {}",
                    self.inner.display_addr,
                    describe(&e)
                )))
            }
            Err(_) => {
                self.inner.breaker.on_failure();
                Err(RedisUnavailable::Connect(format!(
                    "{}: timed out",
                    self.inner.display_addr
                )))
            }
        }
    }

    /// Runs `op` on the connection, through the breaker. `idempotent` operations are
    /// retried once after a short jittered pause on a transient error.
    ///
    /// # Errors
    /// [`RedisUnavailable`] when the breaker is open, the connection cannot be made, or
    /// the command fails.
    pub async fn run<T, F, Fut>(&self, idempotent: bool, op: F) -> Result<T, RedisUnavailable>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        // One retry for idempotent commands, after a short jittered pause.
        let attempts = if idempotent { 2 } else { 1 };
        for attempt in 1..=attempts {
            if !self.inner.breaker.allow() {
                return Err(RedisUnavailable::BreakerOpen);
            }
            let conn = self.connection().await?;
            match op(conn).await {
                Ok(v) => {
                    self.note_success();
                    return Ok(v);
                }
                Err(e) => {
                    self.note_failure(&e);
                    if attempt == attempts || !is_transient(&e) {
                        return Err(RedisUnavailable::Command(describe(&e)));
                    }
                }
            }
            let jitter = rand::random_range(5..25u64);
            tokio::time::sleep(Duration::from_millis(jitter)).await;
        }
        unreachable!("the last attempt returns")
    }

    /// `host:port` of every primary: the one server in standalone mode, each shard's
    /// primary in cluster mode (from `CLUSTER SLOTS`, the view the client routes by).
    ///
    /// # Errors
    /// Redis unavailable, or a reply that is not a slot table.
    pub async fn primaries(&self) -> Result<Vec<String>, RedisUnavailable> {
        if !self.is_cluster() {
            return Ok(vec![self.inner.display_addr.clone()]);
        }
        let table: Value = self
            .run(true, |mut c| async move {
                redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut c).await
            })
            .await?;
        let mut out = primaries_of(&table)
            .ok_or_else(|| RedisUnavailable::Command("CLUSTER SLOTS: unexpected reply".into()))?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Runs `cmd` on every primary (one server in standalone mode) and returns each one's
    /// answer with its address: for commands about a node rather than keys (`INFO`,
    /// `DBSIZE`, `SCAN`, `CONFIG GET`), which a cluster would otherwise send to one
    /// random node.
    ///
    /// # Errors
    /// Redis unavailable, or any primary failing the command.
    pub async fn on_each_primary<T: redis::FromRedisValue>(
        &self,
        cmd: &Cmd,
    ) -> Result<Vec<(String, T)>, RedisUnavailable> {
        let mut out = Vec::new();
        for addr in self.primaries().await? {
            let value: T = self.on_node(&addr, cmd).await?;
            out.push((addr, value));
        }
        Ok(out)
    }

    /// Runs `cmd` on the node at `addr` (`host:port`, as [`RedisHandle::primaries`] gives
    /// it); in standalone mode, on the server.
    ///
    /// # Errors
    /// Redis unavailable, or the command fails.
    pub async fn on_node<T: redis::FromRedisValue>(
        &self,
        addr: &str,
        cmd: &Cmd,
    ) -> Result<T, RedisUnavailable> {
        let route = node_route(addr);
        self.run(true, |c| {
            let (cmd, route) = (cmd.clone(), route.clone());
            async move {
                match c {
                    Conn::Single(mut c) => cmd.query_async(&mut c).await,
                    Conn::Cluster(mut c) => {
                        let route = route.ok_or_else(|| {
                            RedisError::from((
                                redis::ErrorKind::InvalidClientConfig,
                                "a cluster node address is host:port",
                            ))
                        })?;
                        let v = c.route_command(cmd, route).await?;
                        Ok(redis::from_redis_value(v)?)
                    }
                }
            }
        })
        .await
    }

    /// Every key matching `pattern`, by `SCAN` (never `KEYS`, which blocks the server) on
    /// every primary.
    ///
    /// # Errors
    /// Redis unavailable.
    pub async fn scan_keys(&self, pattern: &str) -> Result<Vec<String>, RedisUnavailable> {
        let mut out = Vec::new();
        for addr in self.primaries().await? {
            let mut cursor: u64 = 0;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000);
                let (next, batch): (u64, Vec<String>) = self.on_node(&addr, &cmd).await?;
                out.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(out)
    }

    fn note_success(&self) {
        self.inner.breaker.on_success();
        if self.inner.consecutive_timeouts.load(Ordering::Relaxed) != 0 {
            self.inner.consecutive_timeouts.store(0, Ordering::Relaxed);
        }
    }

    fn note_failure(&self, e: &RedisError) {
        if !is_transient(e) {
            // A server-side error (WRONGTYPE, NOSCRIPT…) says Redis is alive.
            return;
        }
        self.inner.breaker.on_failure();
        if e.is_timeout() {
            let n = self
                .inner
                .consecutive_timeouts
                .fetch_add(1, Ordering::AcqRel)
                + 1;
            if n >= TIMEOUTS_BEFORE_REBUILD {
                self.inner.consecutive_timeouts.store(0, Ordering::Relaxed);
                self.inner.rebuilds.fetch_add(1, Ordering::Relaxed);
                *self.inner.manager.write().expect("poisoned") = None;
                tracing::warn!(
                    addr = %self.inner.display_addr,
                    "redis: {n} timeouts in a row, rebuilding the connection"
                );
            }
        }
    }
}

/// The primaries' `host:port` in a `CLUSTER SLOTS` reply (each entry: start, end, then
/// the primary as `[host, port, id, …]`, then its replicas).
fn primaries_of(table: &Value) -> Option<Vec<String>> {
    let Value::Array(entries) = table else {
        return None;
    };
    let mut out = Vec::new();
    for entry in entries {
        let Value::Array(fields) = entry else {
            return None;
        };
        let Some(Value::Array(primary)) = fields.get(2) else {
            return None;
        };
        let host: String = redis::from_redis_value_ref(primary.first()?).ok()?;
        let port: u16 = redis::from_redis_value_ref(primary.get(1)?).ok()?;
        out.push(format!("{host}:{port}"));
    }
    Some(out)
}

/// The route to one node by its `host:port` (IPv6 hosts keep their colons).
fn node_route(addr: &str) -> Option<RoutingInfo> {
    let (host, port) = addr.rsplit_once(':')?;
    Some(RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: port.parse().ok()?,
    }))
}

/// Errors worth retrying and counting against the breaker: I/O, dropped connections,
/// timeouts, and the server's own "try again" answers (LOADING, TRYAGAIN, BUSY…).
pub fn is_transient(e: &RedisError) -> bool {
    use redis::RetryMethod;
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.retry_method(),
            RetryMethod::Reconnect | RetryMethod::WaitAndRetry | RetryMethod::RetryImmediately
        )
}

/// An error message without anything that could be a credential.
fn describe(e: &RedisError) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connection_refusal() {
        "connection refused".into()
    } else if e.is_connection_dropped() {
        "connection dropped".into()
    } else {
        format!(
            "{} ({})",
            e.kind().to_string_lossy(),
            e.code().unwrap_or("-")
        )
    }
}

trait KindText {
    fn to_string_lossy(&self) -> String;
}

impl KindText for redis::ErrorKind {
    fn to_string_lossy(&self) -> String {
        format!("{self:?}")
    }
}
