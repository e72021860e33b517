//! Shared harness for the black-box integration tests.
//!
//! Every test starts its own gateway (`env!("CARGO_BIN_EXE_gms-gateway")`) on a free
//! loopback port with its own temp dir (config, pid file, upgrade socket, logs), and
//! talks HTTP to it on 127.0.0.1 only. The child is killed (and waited for) when the
//! guard is dropped. Temp dirs are removed on drop unless the test is panicking, so a
//! failed test leaves the gateway's `stderr.log` / `stdout.log` behind for inspection.
//!
//! `Gateway::start_full` takes a whole config file in which the tokens `{PORT}` and
//! `{DIR}` are replaced with the listen port and the test's temp dir.
//!
//! `GMS_TEST_STORE=memory|redis|cluster` (default memory) picks the store of every gateway
//! whose config has no `storage:` of its own: `redis` starts a `redis-server` per gateway
//! (free loopback port, no persistence, killed with the gateway), `cluster` a 3-master Redis
//! Cluster shared by the test binary, each gateway with its own key prefix. Every Redis process
//! started here also has a watchdog that kills it when the test binary is gone.
//!
//! One concern per file: `gateway` (configs, starting a gateway, API shortcuts), `http`
//! (ureq requests, `Resp`, multipart), `raw` (raw sockets), `redis` (`GMS_TEST_STORE`,
//! `redis-server`, clusters), `ors_sim`, `process` (PIDs, signals, bounded waits, commands),
//! `sandbox` (ports, temp dirs), `certs`, `asserts`. Everything is re-exported here, so a test
//! writes `use common::*;`.
#![allow(dead_code)]

mod asserts;
mod certs;
mod gateway;
mod http;
mod ors_sim;
mod process;
mod raw;
mod redis;
mod sandbox;

pub mod callback;
pub mod callback_clients;
pub mod gms_clients;

// Each test binary uses a part of the harness; the rest of these re-exports is unused there.
#[allow(unused_imports)]
pub use {
    asserts::*, certs::*, gateway::*, http::*, ors_sim::*, process::*, raw::*, redis::*, sandbox::*,
};
