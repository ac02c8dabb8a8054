//! The one integration-test binary: hookline against real nats-server and redis-server.
//!
//! `harness/` spawns the servers and the scriptable webhook receiver and provides the only
//! waiting primitive (`harness::eventually`); `harness_selftest` proves the harness itself.
//! Run through `scripts/test.sh`, which repeats the suite per supported NATS version.
mod harness;
mod harness_selftest;
mod world;

mod api;
mod cli;
mod delivery;
mod egress;
mod faults;
mod fuzz_checks;
mod fuzz_regressions;
mod health;
mod hostile;
mod inputs;
mod observability;
mod parity;
mod process;
mod recipes;
mod secrets;
mod signatures;
