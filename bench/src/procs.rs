//! The processes a benchmark run owns besides the servers (which come from the test kit,
//! `hookline_testkit`): the receiver (this binary's `receiver` subcommand) and hookline itself
//! (`hookline serve`), plus what is measured about every process from `/proc` (peak RSS, CPU
//! seconds).
//!
//! Invariants: every child is killed when its handle drops (no stray servers after a panic);
//! each child's output goes to a log file in the run's temp dir, whose tail is shown when a
//! process dies early; the temp dir is removed at the end unless `--keep` is given.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// Linux reports `/proc/<pid>/stat` CPU times in USER_HZ ticks, fixed at 100 for userspace.
const TICKS_PER_SECOND: f64 = 100.0;

/// A directory under the system temp dir, removed on drop unless kept.
pub struct TempDir {
    path: PathBuf,
    pub keep: bool,
}

impl TempDir {
    pub fn new(tag: &str) -> anyhow::Result<TempDir> {
        let path =
            std::env::temp_dir().join(format!("hookline-bench-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A child process with its log file; killed on drop.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> anyhow::Result<Proc> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {name}"))?;
        Ok(Proc { name: name.to_string(), child, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Fails (with the log's tail) if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("{} exited with {status}; log tail:\n{}", self.name, log_tail(&self.log, 3000));
        }
        Ok(())
    }

    /// SIGKILL and reap.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// The last bytes of the process's log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log, 3000)
    }

    /// Current resource usage, or zeros if the process is gone.
    pub fn usage(&self) -> Usage {
        Usage::of(self.pid())
    }
}

/// CPU time and memory of one process, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// utime + stime, seconds.
    pub cpu_s: f64,
    /// VmHWM: peak resident set, KiB.
    pub hwm_kib: u64,
    /// VmRSS: current resident set, KiB.
    pub rss_kib: u64,
    /// Open file descriptors (mostly sockets: one per pooled HTTP connection).
    pub fds: u64,
}

impl Usage {
    pub fn of(pid: u32) -> Usage {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        let cpu_s = (tick(11) + tick(12)) / TICKS_PER_SECOND;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        let fds =
            std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0);
        Usage { cpu_s, hwm_kib: kib("VmHWM:"), rss_kib: kib("VmRSS:"), fds }
    }
}

fn log_tail(path: &Path, bytes: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(bytes);
    let start = (start..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
    text[start..].to_string()
}

/// Polls `ready` every 50 ms until it is true, `proc` dies, or `timeout` passes.
pub async fn wait_ready<F, Fut>(
    proc: &mut Proc,
    timeout: Duration,
    mut ready: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        proc.check_alive()?;
        if ready().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} not ready after {timeout:?}; log tail:\n{}", proc.name, proc.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn accepts(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
}

/// This binary's `receiver` subcommand on `port`.
pub async fn start_receiver(port: u16, dir: &Path) -> anyhow::Result<Proc> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["receiver", "--port", &port.to_string()]);
    let mut proc = Proc::spawn("receiver", cmd, dir.join("receiver.log"))?;
    wait_ready(&mut proc, Duration::from_secs(10), || async move { accepts(port).await }).await?;
    Ok(proc)
}

/// How a hookline process is configured: `HOOKLINE_<SECTION>__<KEY>` pairs and `RUST_LOG`.
pub struct HooklineSetup<'a> {
    pub binary: &'a Path,
    pub env: Vec<(String, String)>,
    pub rust_log: &'a str,
    pub log: PathBuf,
}

/// `hookline serve` with only the given configuration (inherited `HOOKLINE_*` vars removed).
pub fn spawn_hookline(setup: HooklineSetup<'_>) -> anyhow::Result<Proc> {
    if !setup.binary.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release --bin hookline`",
            setup.binary.display()
        );
    }
    let mut cmd = Command::new(setup.binary);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("HOOKLINE_")) {
        cmd.env_remove(key);
    }
    cmd.arg("serve").env("RUST_LOG", setup.rust_log).envs(setup.env);
    Proc::spawn("hookline", cmd, setup.log)
}
