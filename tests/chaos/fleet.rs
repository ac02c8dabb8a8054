//! hookline as a fleet of child processes (`hookline serve`, all roles, sharing the durable
//! consumers), each killable with SIGKILL and restartable on the same config.
//!
//! Every instance sends `user-agent: chaos-p<index>g<generation>` (via
//! `HOOKLINE_DELIVERY__USER_AGENT`), so the receiver knows which incarnation made each POST and
//! the ledger can tie a duplicate to the kill that caused it. Logs (RUST_LOG=info) go to one file
//! per process in the run's directory; the driver counts log lines to pace outages.
//! Invariant: children die with the fleet (kill_on_drop).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// What hookline logs once all its roles run (after connecting and preparing the streams).
const RUNNING: &str = "hookline running";

/// What kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SIGKILL of a hookline process.
    Kill,
    /// A hookline process that exited during start-up and was restarted.
    StartFailure,
    /// NATS lost (a server or cluster node killed) or back.
    Nats,
    /// Redis lost or back.
    Redis,
}

/// A fault the run injected, for the report and for explaining duplicates.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: Kind,
    pub what: String,
    /// The killed instance's user-agent, for hookline kills.
    pub agent: Option<String>,
    /// Since the run started.
    pub at: Duration,
}

struct Proc {
    generation: u32,
    /// Incarnations that never logged that they run (killed or failed during start-up).
    never_ran: usize,
    child: Child,
}

/// The hookline processes of one run.
pub struct Fleet {
    config: PathBuf,
    dir: PathBuf,
    started: Instant,
    procs: Vec<Proc>,
    pub faults: Vec<Fault>,
}

/// The user-agent of instance `index`, generation `generation`.
pub fn agent(index: usize, generation: u32) -> String {
    format!("chaos-p{index}g{generation}")
}

impl Fleet {
    /// Starts one process with `config`, logging into `dir`.
    pub fn start(config: &Path, dir: &Path, started: Instant) -> Fleet {
        let mut fleet = Fleet {
            config: config.to_path_buf(),
            dir: dir.to_path_buf(),
            started,
            procs: Vec::new(),
            faults: Vec::new(),
        };
        fleet.add();
        fleet
    }

    /// Starts one more process.
    pub fn add(&mut self) {
        let child = self.spawn(self.procs.len(), 0);
        self.procs.push(Proc { generation: 0, never_ran: 0, child });
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// The user-agent of instance `index`'s current generation.
    pub fn agent_of(&self, index: usize) -> String {
        agent(index, self.procs[index].generation)
    }

    fn log_path(&self, index: usize) -> PathBuf {
        self.dir.join(format!("hookline-{index}.log"))
    }

    fn spawn(&self, index: usize, generation: u32) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(index))
            .expect("opening a hookline log");
        Command::new(env!("CARGO_BIN_EXE_hookline"))
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("RUST_LOG", "info")
            .env("HOOKLINE_DELIVERY__USER_AGENT", agent(index, generation))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the hookline binary starts")
    }

    /// SIGKILLs instance `index` and starts its next generation at once.
    pub async fn kill_and_restart(&mut self, index: usize) {
        let at = self.started.elapsed();
        let proc = &mut self.procs[index];
        let _ = proc.child.start_kill();
        let _ = proc.child.wait().await;
        let killed = agent(index, proc.generation);
        let (generation, never_ran) = (proc.generation, proc.never_ran);
        if self.starts(index) + never_ran <= generation as usize {
            self.procs[index].never_ran += 1;
        }
        let proc = &mut self.procs[index];
        proc.generation += 1;
        let next = proc.generation;
        self.faults.push(Fault {
            kind: Kind::Kill,
            what: format!("kill -9 hookline {killed}"),
            agent: Some(killed),
            at,
        });
        let child = self.spawn(index, next);
        self.procs[index].child = child;
    }

    /// Records a fault injected elsewhere (a server restart).
    pub fn note(&mut self, kind: Kind, what: impl Into<String>) {
        self.note_at(kind, what, self.started.elapsed());
    }

    /// Records a fault injected elsewhere at `at` (since the run started): a kill noted once the
    /// wait after it is over.
    pub fn note_at(&mut self, kind: Kind, what: impl Into<String>, at: Duration) {
        self.faults.push(Fault { kind, what: what.into(), agent: None, at });
    }

    /// Occurrences of `needle` in all logs so far.
    pub fn log_count(&self, needle: &str) -> usize {
        (0..self.procs.len())
            .map(|i| {
                std::fs::read_to_string(self.log_path(i))
                    .map(|s| s.matches(needle).count())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Times instance `index` has logged that it is running (once per successful start).
    fn starts(&self, index: usize) -> usize {
        std::fs::read_to_string(self.log_path(index))
            .map(|s| s.matches(RUNNING).count())
            .unwrap_or(0)
    }

    /// Whether every current incarnation has finished starting.
    pub fn all_running(&self) -> bool {
        self.procs
            .iter()
            .enumerate()
            .all(|(i, p)| self.starts(i) + p.never_ran > p.generation as usize)
    }

    /// Acts as a process supervisor would: an instance that exited by itself during start-up (a
    /// server was down while it connected or created streams) is started again and noted. `Err`
    /// with its log when a *running* instance exited by itself: that is a crash.
    pub fn supervise(&mut self) -> Result<(), String> {
        for index in 0..self.procs.len() {
            let Ok(Some(status)) = self.procs[index].child.try_wait() else { continue };
            let generation = self.procs[index].generation;
            let log = std::fs::read_to_string(self.log_path(index)).unwrap_or_default();
            if self.starts(index) + self.procs[index].never_ran > generation as usize {
                let tail: String =
                    log.chars().rev().take(3000).collect::<Vec<_>>().into_iter().rev().collect();
                return Err(format!(
                    "hookline {} exited with {status} while running; log tail:\n{tail}",
                    agent(index, generation)
                ));
            }
            let why = log
                .lines()
                .rev()
                .find(|l| l.starts_with("error"))
                .unwrap_or("no error line")
                .to_string();
            self.note(
                Kind::StartFailure,
                format!(
                    "hookline {} exited during start-up ({why}); restarted",
                    agent(index, generation)
                ),
            );
            self.procs[index].generation += 1;
            self.procs[index].never_ran += 1;
            let child = self.spawn(index, generation + 1);
            self.procs[index].child = child;
        }
        Ok(())
    }

    /// Lines of every log mentioning `needle`, for failure messages.
    pub fn grep(&self, needle: &str, max: usize) -> Vec<String> {
        (0..self.procs.len())
            .flat_map(|i| {
                std::fs::read_to_string(self.log_path(i))
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|l| l.contains(needle))
            .take(max)
            .collect()
    }
}
