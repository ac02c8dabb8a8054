//! The one integration-test binary: hookline against real nats-server and redis-server.
//!
//! The test kit (`testkit/`, crate `hookline-testkit`, named `harness` here) spawns the servers
//! and the scriptable webhook receiver and provides the only waiting primitive
//! (`harness::eventually`); `harness_selftest` proves the kit itself.
//! Run through `scripts/test.sh`, which repeats the suite per supported NATS version.
use hookline_testkit as harness;
use hookline_testkit::fuzz_checks;
mod harness_selftest;
mod world;

mod api;
mod cli;
mod cloudevents;
mod console;
mod delivery;
mod egress;
mod examples;
mod faults;
mod fuzz_regressions;
mod health;
mod hostile;
mod inputs;
mod observability;
mod parity;
mod partitions;
mod process;
mod recipes;
mod redis_loss;
mod redis_topologies;
mod secrets;
mod secrets_at_rest;
mod signatures;
mod subscription_features;
mod trace;
