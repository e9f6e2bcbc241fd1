//! A Redis Cluster of its own for a test that breaks it (the failover drill): 3 primaries
//! and 3 replicas of local `redis-server` processes, started by `scripts/redis-cluster.sh`
//! (the script the test script and the benchmarks use) on free ports, stopped on drop.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A running cluster; stopped and its files removed when dropped.
pub struct RedisCluster {
    /// The first node's port; the others follow it.
    pub base: u16,
    dir: tempfile::TempDir,
    /// `redis://127.0.0.1:{base}`: one seed node, the client finds the rest.
    pub url: String,
}

fn script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/redis-cluster.sh"
    ))
}

/// True when nothing listens on `port` (nor could: we bind it and let go).
fn free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

impl RedisCluster {
    /// Starts a cluster on the first six free ports (and their bus ports, +10000) from
    /// 7200 on, and waits until every node says `cluster_state:ok`. Panics, naming what
    /// to install, when `redis-server` is missing: never a silent skip.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with(&[])
    }

    /// As [`RedisCluster::start`], with settings of `scripts/redis-cluster.sh`
    /// (`LEXPIPE_CLUSTER_TLS_DIR`, `LEXPIPE_CLUSTER_PASSWORD`).
    pub fn start_with(settings: &[(&str, &str)]) -> RedisCluster {
        let base = (7200u16..7900)
            .step_by(10)
            .find(|b| (0..6).all(|i| free(b + i) && free(b + i + 10_000)))
            .expect("six free ports between 7200 and 7900");
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(script())
            .args(["start", &base.to_string()])
            .arg(dir.path().join("nodes"))
            .envs(settings.iter().copied())
            .output()
            .expect("scripts/redis-cluster.sh runs");
        assert!(
            out.status.success(),
            "scripts/redis-cluster.sh start failed (needs redis-server and redis-cli: apt-get install -y redis-server)\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        RedisCluster { base, dir, url }
    }

    fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).replace('\r', "")
    }

    /// Every node as a seed, comma-separated (`REDIS_URL` in cluster mode): a process
    /// started while one node is down still finds the cluster through the others.
    pub fn seeds(&self) -> String {
        let scheme = self.url.split("://").next().unwrap_or("redis");
        (0..6)
            .map(|i| format!("{scheme}://127.0.0.1:{}", self.base + i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The ports of the nodes that are primaries now, as node `base` sees them.
    pub fn primary_ports(&self) -> Vec<u16> {
        let alive = (0..6)
            .map(|i| self.base + i)
            .find(|p| !free(*p))
            .expect("a node is up");
        let mut out: Vec<u16> = self
            .cli(alive, &["cluster", "nodes"])
            .lines()
            .filter(|l| {
                let flags = l.split(' ').nth(2).unwrap_or("");
                flags.contains("master") && !flags.contains("fail")
            })
            .filter_map(|l| {
                let addr = l.split(' ').nth(1)?;
                addr.split('@').next()?.rsplit(':').next()?.parse().ok()
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// `kill -9` of the node on `port` (no shutdown, no goodbye to the cluster).
    pub fn kill(&self, port: u16) {
        let pidfile = self
            .dir
            .path()
            .join("nodes")
            .join(port.to_string())
            .join("redis.pid");
        let pid = std::fs::read_to_string(&pidfile)
            .unwrap_or_else(|e| panic!("{}: {e}", pidfile.display()));
        let status = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -9 {pid}");
    }

    /// Waits until `dead` is no longer a primary and three primaries serve every slot
    /// again (its replica took over). Panics after `patience`.
    pub fn wait_for_failover(&self, dead: u16, patience: Duration) -> Duration {
        let start = std::time::Instant::now();
        loop {
            let primaries = self.primary_ports();
            let ok = (0..6)
                .map(|i| self.base + i)
                .filter(|p| *p != dead)
                .all(|p| {
                    self.cli(p, &["cluster", "info"])
                        .contains("cluster_state:ok")
                });
            if ok && primaries.len() == 3 && !primaries.contains(&dead) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < patience,
                "no failover of {dead} within {patience:?}: primaries {primaries:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", &self.base.to_string()])
            .arg(self.dir.path().join("nodes"))
            .output();
    }
}
