//! `rediss://` through rustls, with AUTH, against a real TLS Redis started for the test
//! (the cloud stage's set-up: ElastiCache with TLS and a password).

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use lexpipe::redis::{self as lredis, CacheSpec, KeyPart, RedisStatus, Source};
use lexpipe_tests::config_with;

const PASSWORD: &str = "tls-test-password-7f3a";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("the TLS test needs {cmd:?} (openssl from Debian's openssl package): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    let d = |f: &str| dir.join(f).to_str().unwrap().to_string();
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &d("ca.key"),
        "-out",
        &d("ca.crt"),
        "-days",
        "1",
        "-subj",
        "/CN=lexpipe test CA",
    ]));
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &d("server.key"),
        "-out",
        &d("server.csr"),
        "-subj",
        "/CN=127.0.0.1",
    ]));
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &d("server.csr"),
        "-CA",
        &d("ca.crt"),
        "-CAkey",
        &d("ca.key"),
        "-CAcreateserial",
        "-out",
        &d("server.crt"),
        "-days",
        "1",
        "-extfile",
        &d("san.ext"),
    ]));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_tls_redis(dir: &Path) -> (Server, u16) {
    let port = free_port();
    let d = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            &d("server.crt"),
            "--tls-key-file",
            &d("server.key"),
            "--tls-ca-cert-file",
            &d("ca.crt"),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the TLS test starts its own redis-server (Debian: apt-get install redis-server)");
    let server = Server(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (server, port);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("TLS redis-server did not start on port {port}");
}

/// A TLS Redis with its own CA and a password, for one test.
struct TlsRedis {
    _dir: tempfile::TempDir,
    _server: Server,
    url: String,
    ca: std::path::PathBuf,
}

async fn tls_redis() -> TlsRedis {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let (server, port) = start_tls_redis(dir.path()).await;
    TlsRedis {
        url: format!("rediss://127.0.0.1:{port}"),
        ca: dir.path().join("ca.crt"),
        _server: server,
        _dir: dir,
    }
}

#[tokio::test]
async fn the_cloud_stage_caches_over_tls_with_auth_and_a_private_ca() {
    // Arrange
    let tls = tls_redis().await;
    let (url, ca) = (tls.url.clone(), tls.ca.clone());
    let cfg = config_with(
        "t-tls",
        &[
            ("LEXPIPE_STAGE", "cloud"),
            ("REDIS_URL", &url),
            ("REDIS_PASSWORD", PASSWORD),
            ("REDIS_TLS_CA_FILE", ca.to_str().unwrap()),
        ],
    );
    assert!(cfg.redis.tls);
    // Act
    let setup = lexpipe_tests::app_for(&cfg).await;
    let spec = CacheSpec {
        namespace: "itest",
        key: setup.cache.keys().key("itest", 1, &[KeyPart::Id("tls")]),
        schema: 1,
        ttl: Duration::from_secs(60),
    };
    let first = setup
        .cache
        .get_or_compute(&spec, || async { Ok::<_, String>(42u32) })
        .await
        .unwrap();
    let second = setup
        .cache
        .get_or_compute(&spec, || async { Ok::<_, String>(0u32) })
        .await
        .unwrap();
    // Assert
    assert_eq!(setup.redis_status, RedisStatus::Connected);
    assert_eq!(
        (first.source, second.source, second.value),
        (Source::Computed, Source::Hit, 42)
    );
}

#[tokio::test]
async fn a_tls_server_whose_certificate_is_not_trusted_is_unavailable_not_a_crash() {
    let tls = tls_redis().await;
    let url = tls.url.clone();
    // No REDIS_TLS_CA_FILE: the system roots do not know the test CA.
    let cfg = config_with(
        "t-tls-untrusted",
        &[
            ("LEXPIPE_STAGE", "cloud"),
            ("REDIS_URL", &url),
            ("REDIS_PASSWORD", PASSWORD),
        ],
    );
    let setup = lexpipe_tests::app_for(&cfg).await;
    assert_eq!(setup.redis_status, RedisStatus::Unavailable);
    let spec = CacheSpec {
        namespace: "itest",
        key: setup.cache.keys().key("itest", 1, &[KeyPart::Id("tls")]),
        schema: 1,
        ttl: Duration::from_secs(60),
    };
    let r = setup
        .cache
        .get_or_compute(&spec, || async { Ok::<_, String>(1u32) })
        .await
        .unwrap();
    assert_eq!(r.source, Source::Computed, "fails open");
}

#[tokio::test]
async fn a_wrong_password_is_unavailable_and_never_printed() {
    let tls = tls_redis().await;
    let (url, ca) = (tls.url.clone(), tls.ca.clone());
    let cfg = config_with(
        "t-tls-badpass",
        &[
            ("LEXPIPE_STAGE", "cloud"),
            ("REDIS_URL", &url),
            ("REDIS_PASSWORD", "wrong-password-3c1d"),
            ("REDIS_TLS_CA_FILE", ca.to_str().unwrap()),
        ],
    );
    let handle = lredis::RedisHandle::new(&cfg).unwrap();
    let err = handle.connect().await.unwrap_err().to_string();
    assert!(!err.contains("wrong-password-3c1d"), "{err}");
    assert!(!format!("{cfg:?}").contains("wrong-password-3c1d"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_tls_with_auth_from_a_seed_list_serves_the_cache_locks_state_and_health() {
    // Arrange: a 3+3 cluster whose every port (clients, replication, bus) is TLS only,
    // signed by the test CA, with a password: ElastiCache cluster mode with TLS in transit
    // and an AUTH token. Two seed nodes, as REDIS_URL may list them.
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let cluster = tokio::task::block_in_place(|| {
        lexpipe_tests::cluster::RedisCluster::start_with(&[
            ("LEXPIPE_CLUSTER_TLS_DIR", dir.path().to_str().unwrap()),
            ("LEXPIPE_CLUSTER_PASSWORD", PASSWORD),
        ])
    });
    assert!(cluster.url.starts_with("rediss://"), "{}", cluster.url);
    let seeds = format!("{},rediss://127.0.0.1:{}", cluster.url, cluster.base + 1);
    let ca = dir.path().join("ca.crt");
    let env = lexpipe_tests::unique_env("tls-cluster");
    let cfg = config_with(
        &env,
        &[
            ("LEXPIPE_STAGE", "cloud"),
            ("LEXPIPE_REDIS_CLUSTER", "true"),
            ("REDIS_URL", &seeds),
            ("REDIS_PASSWORD", PASSWORD),
            ("REDIS_TLS_CA_FILE", ca.to_str().unwrap()),
        ],
    );

    // Act
    let app = lexpipe_tests::app_for(&cfg).await;
    let spec = CacheSpec {
        namespace: "itest",
        key: app
            .cache
            .keys()
            .key("itest", 1, &[KeyPart::Id("tls-cluster")]),
        schema: 1,
        ttl: Duration::from_secs(60),
    };
    let first = app
        .cache
        .get_or_compute(&spec, || async { Ok::<_, String>(7u32) })
        .await
        .unwrap();
    let second = app
        .cache
        .get_or_compute(&spec, || async { Ok::<_, String>(0u32) })
        .await
        .unwrap();
    let doc = uuid::Uuid::new_v4();
    let states = app.states.clone().expect("document state is on");
    states
        .init(doc, "a.pdf", &"ab".repeat(32), &["ocr", "chunk"])
        .await
        .unwrap();
    let state = states.start_stage(doc, "ocr").await.unwrap();
    let locks = app.locks.clone().expect("locks are on");
    let name = lexpipe::redis::lock::LockName::queue_item(42);
    let lease = locks
        .acquire(&name, Duration::from_secs(10))
        .await
        .unwrap()
        .expect("a free lock");
    let handle = app.redis.clone().expect("a Redis handle");
    let health = lexpipe::redis::health::check(&handle, Vec::new()).await;

    // Assert
    assert_eq!(app.redis_status, RedisStatus::Connected);
    assert!(handle.is_cluster());
    assert_eq!(
        (first.source, second.source, second.value),
        (Source::Computed, Source::Hit, 7)
    );
    assert_eq!(state.current_stage.as_deref(), Some("ocr"));
    assert!(locks.release(&lease).await.unwrap());
    assert_eq!(
        health.cluster_state.as_deref(),
        Some("ok"),
        "{:?}",
        health.problems
    );
    assert_eq!(health.primaries.len(), 3, "{:?}", health.primaries);
    assert!(health.reachable);
    assert!(!format!("{cfg:?}").contains(PASSWORD));
}
