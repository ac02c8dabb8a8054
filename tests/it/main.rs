//! The one integration-test binary: hookline against real nats-server and redis-server.
//!
//! `harness/` spawns the servers and the scriptable webhook receiver and provides the only
//! waiting primitive (`harness::eventually`); `harness_selftest` proves the harness itself.
//! Run through `scripts/test.sh`, which repeats the suite per supported NATS version.
mod harness;
mod harness_selftest;
mod world;

mod delivery;
mod process;
mod cli;
mod api;
mod signatures;
mod recipes;
mod egress;
mod faults;
mod hostile;
mod inputs;
mod secrets;
mod fuzz_checks;
mod fuzz_regressions;
mod health;
mod observability;
