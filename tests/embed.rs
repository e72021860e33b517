//! `examples/embed.rs`, an embedder's own Pingora proxy with the GMS API in it, built and run
//! as a real process: a create, a status poll, a storage read through the plugin, and a
//! pass-through to the embedder's own upstream (an `ors-sim`, which is its ORS node too).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The example's binary, built into the target directory this test runs from (so that
/// `CARGO_TARGET_DIR` is respected).
fn build_example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // <target>/<profile>/deps/embed-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("profile dir");
    let target_dir = profile_dir.parent().expect("target dir");
    let mut cmd = Command::new(env!("CARGO"));
    // A clean environment: the variables cargo sets for a test run would make this build
    // differ from the one that built the test, and each would rebuild what the other built.
    cmd.args(["build", "--example", "embed"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| {
            matches!(
                k.as_str(),
                "PATH" | "HOME" | "CARGO_HOME" | "RUSTUP_HOME" | "RUSTUP_TOOLCHAIN" | "TMPDIR"
            )
        }))
        .env("CARGO_TARGET_DIR", target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build --example embed");
    assert!(status.success(), "cargo build --example embed failed");
    profile_dir.join("examples").join("embed")
}

/// The running example; killed (by its PID, through its handle) when dropped.
struct Embedded {
    child: Child,
    dir: TempDir,
}

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_embedders_proxy_serves_the_api_and_passes_the_rest_to_its_upstream() {
    let sim = OrsSim::start(1);
    let dir = TempDir::new("embed");
    let config = dir.file("gms.yaml");
    std::fs::write(
        &config,
        format!(
            "gms:\n  services:\n    request-inbound-poll:\n      _type: ors\n      \
             _service: \"http://scxml.example.com/poll.scxml\"\n      _ors: \"{}\"\n",
            sim.url(0)
        ),
    )
    .expect("config");
    let port = free_port();
    let log = std::fs::File::create(dir.file("stderr.log")).expect("log");
    let child = Command::new(build_example())
        .arg(&config)
        .arg(format!("127.0.0.1:{port}"))
        .arg(sim.addr(0))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start the example");
    let mut proxy = Embedded { child, dir };
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = proxy.child.try_wait() {
            panic!(
                "the example exited ({status}): {}",
                std::fs::read_to_string(proxy.dir.file("stderr.log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "the example never listened");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A create and a status poll of the ORS service, through the plugin.
    let v = ok_json(&post_form(
        &format!("{base}/genesys/1/service/request-inbound-poll"),
        &[("first_name", "Ann")],
        &[],
    ));
    let id = str_field(&v, "_id").to_string();
    assert!(is_uuid_v4(&id), "{v}");
    let r = post_empty(&format!("{base}/genesys/1/service/{id}/status"), &[]);
    assert_eq!(r.status, 200, "{:?}", r.text());
    assert!(r.header("x-request-id").is_some(), "{:?}", r.headers);

    // A storage write and read.
    let v = ok_json(&post_form(
        &format!("{base}/genesys/1/storage/60"),
        &[("a", "1")],
        &[],
    ));
    let data = str_field(&v, "id").to_string();
    let r = get(&format!("{base}/genesys/1/storage/{data}/a"), &[]);
    assert_eq!((r.status, r.text()), (200, "1".to_string()));

    // Everything else: the embedder's upstream.
    let r = get(&format!("{base}/not/gms?x=1"), &[]);
    assert_eq!(r.status, 200, "{:?}", r.text());
    assert_eq!(r.header("x-sim-instance"), Some(sim.addr(0).as_str()));
    assert_eq!(r.json()["path"], "/not/gms");
}
