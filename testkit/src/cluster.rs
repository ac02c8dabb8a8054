//! A 3-node NATS cluster with JetStream (same binary as the harness's single server), each node
//! on free client and route ports with its own store dir; nodes can be killed with SIGKILL and
//! restarted on the same ports and store (they rejoin and catch up).
//! Ready means: an R3 stream can be created (the meta leader is elected and every peer is up).
//! Invariant: nodes die with the handle; their stores are removed with it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::nats::nats_server_binary;
use crate::{eventually, free_port};

struct Node {
    name: String,
    port: u16,
    /// The nats-server arguments, to start the node again after a kill.
    args: Vec<String>,
    child: Option<Child>,
}

/// Three clustered nats-servers.
pub struct Cluster {
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Cluster {
    pub async fn start() -> Cluster {
        Cluster::start_binary(nats_server_binary()).await
    }

    /// [`start`](Self::start) with this nats-server binary.
    pub async fn start_binary(binary: PathBuf) -> Cluster {
        let dir =
            tempfile::Builder::new().prefix("hookline-chaos-cluster-").tempdir().expect("temp dir");
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for i in 0..3 {
            let name = format!("n{i}");
            let port = free_port();
            let store: PathBuf = dir.path().join(&name);
            let others: Vec<String> = (0..3)
                .filter(|j| *j != i)
                .map(|j| format!("nats://127.0.0.1:{}", routes[j]))
                .collect();
            let args: Vec<String> = [
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-js",
                "--server_name",
                &name,
                "--cluster_name",
                "hookline-chaos",
                "--cluster",
                &format!("nats://127.0.0.1:{}", routes[i]),
                "--routes",
                &others.join(","),
                "-sd",
                &store.to_string_lossy(),
            ]
            .iter()
            .map(ToString::to_string)
            .collect();
            let child = spawn(&binary, &args, dir.path(), &name);
            nodes.push(Node { name, port, args, child: Some(child) });
        }
        let cluster = Cluster { nodes, dir, binary };
        cluster.wait_ready().await;
        cluster
    }

    /// `nats://127.0.0.1:<p0>,nats://...` — every node.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A client that may connect to any node.
    pub async fn client(&self) -> async_nats::Client {
        let urls: Vec<async_nats::ServerAddr> = self
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port).parse().expect("server addr"))
            .collect();
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(urls)
            .await
            .expect("connecting to the cluster")
    }

    async fn wait_ready(&self) {
        let js = async_nats::jetstream::new(self.client().await);
        eventually(
            Duration::from_secs(60),
            "the 3-node JetStream cluster accepting an R3 stream",
            || {
                let js = js.clone();
                async move {
                    let config = async_nats::jetstream::stream::Config {
                        name: "CHAOS_READY".into(),
                        subjects: vec!["chaos.ready".into()],
                        num_replicas: 3,
                        ..Default::default()
                    };
                    js.get_or_create_stream(config).await.ok()?;
                    js.delete_stream("CHAOS_READY").await.ok().map(|_| ())
                }
            },
        )
        .await;
    }

    /// SIGKILLs the node named `name` (e.g. a stream leader).
    pub async fn kill(&mut self, name: &str) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        if let Some(mut child) = node.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Starts the killed node `name` again on the same ports and store dir; it rejoins the
    /// cluster. Returns once it accepts connections (catching up is the caller's to wait for).
    pub async fn restart(&mut self, name: &str) {
        let binary = self.binary.clone();
        let dir = self.dir.path().to_path_buf();
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        assert!(node.child.is_none(), "node {name} restarted while running");
        node.child = Some(spawn(&binary, &node.args, &dir, name));
        let url = format!("nats://127.0.0.1:{}", node.port);
        eventually(Duration::from_secs(30), &format!("node {name} accepting connections"), || {
            let url = url.clone();
            async move { async_nats::connect(url).await.ok().map(|_| ()) }
        })
        .await;
    }

    /// The process ids of the running nodes (for CPU accounting).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(|n| n.child.as_ref().and_then(Child::id)).collect()
    }

    /// An error naming the first node that has exited by itself (a killed one is not running
    /// and not checked).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                anyhow::bail!(
                    "nats-server {} exited ({status}); see {}",
                    node.name,
                    self.dir.path().join(format!("{}.log", node.name)).display()
                );
            }
        }
        Ok(())
    }

    /// Where the nodes log, for failure messages.
    pub fn log_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Spawns one node with `args`, appending its output to `<name>.log` in `dir`.
fn spawn(binary: &std::path::Path, args: &[String], dir: &std::path::Path, name: &str) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .expect("node log");
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("nats-server starts")
}
