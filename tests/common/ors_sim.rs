//! `ors-sim` as a process: the ORS simulator and echo web backend the tests run against.

use std::fs;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::certs::TestCerts;
use super::http::{get, request, Resp};
use super::process::{read_lossy, READY_TIMEOUT};
use super::sandbox::{free_port, TempDir};

/// A running `ors-sim` with `n` ORS / echo listeners and a control listener; killed on drop.
pub struct OrsSim {
    child: Child,
    /// `https` when the instances speak TLS, else `http`.
    scheme: &'static str,
    ports: Vec<u16>,
    control: u16,
    dir: TempDir,
}

impl OrsSim {
    /// Start `ors-sim` with `n` ORS / echo listeners and a control listener.
    pub fn start(n: usize) -> OrsSim {
        OrsSim::start_with(n, None, &[])
    }

    /// `start`, the instances speaking HTTPS with `certs`' server certificate (the control
    /// listener stays plain HTTP).
    pub fn start_tls(n: usize, certs: &TestCerts) -> OrsSim {
        OrsSim::start_with(n, Some(certs), &[])
    }

    /// `start` with more command-line arguments (e.g. `--callback ...`).
    pub fn start_args(n: usize, args: &[&str]) -> OrsSim {
        OrsSim::start_with(n, None, args)
    }

    fn start_with(n: usize, tls: Option<&TestCerts>, args: &[&str]) -> OrsSim {
        assert!(n >= 1, "at least one instance");
        let dir = TempDir::new("sim");
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let control = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ors-sim"));
        for p in &ports {
            cmd.arg("--listen").arg(format!("127.0.0.1:{p}"));
        }
        cmd.arg("--control").arg(format!("127.0.0.1:{control}"));
        if let Some(c) = tls {
            cmd.arg("--tls-cert")
                .arg(&c.cert)
                .arg("--tls-key")
                .arg(&c.key);
        }
        cmd.args(args);
        let stdout = fs::File::create(dir.file("stdout.log")).expect("stdout.log");
        let stderr = fs::File::create(dir.file("stderr.log")).expect("stderr.log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn ors-sim");
        let mut sim = OrsSim {
            child,
            scheme: if tls.is_some() { "https" } else { "http" },
            ports,
            control,
            dir,
        };
        sim.wait_ready();
        sim
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pending: Vec<u16> = self.ports.clone();
        pending.push(self.control);
        while !pending.is_empty() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "ors-sim exited during startup ({status}); stderr:\n{}",
                    read_lossy(&self.dir.file("stderr.log"))
                );
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "ors-sim ports {pending:?} not accepting within {READY_TIMEOUT:?}; stderr:\n{}",
                    read_lossy(&self.dir.file("stderr.log"))
                );
            }
            pending.retain(|p| {
                TcpStream::connect_timeout(
                    &format!("127.0.0.1:{p}").parse().expect("addr"),
                    Duration::from_millis(500),
                )
                .is_err()
            });
            if !pending.is_empty() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.ports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// `127.0.0.1:<port i>`
    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    /// `http://127.0.0.1:<port i>` (`https://` with TLS)
    pub fn url(&self, i: usize) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.ports[i])
    }

    pub fn control_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.control)
    }

    /// `GET {control}/sim/log` as JSON.
    pub fn log(&self) -> Value {
        let r = get(&format!("{}/sim/log", self.control_url()), &[]);
        assert_eq!(r.status, 200, "GET /sim/log: {}", r.text());
        r.json()
    }

    /// `PUT {control}/sim/instances/{addr i}` with a JSON body.
    pub fn set(&self, i: usize, config: &Value) -> Resp {
        let url = format!("{}/sim/instances/{}", self.control_url(), self.addr(i));
        let r = request(
            "PUT",
            &url,
            &[],
            Some(("application/json", config.to_string().as_bytes())),
        );
        assert!(
            (200..300).contains(&r.status),
            "PUT {url}: {} {}",
            r.status,
            r.text()
        );
        r
    }

    pub fn stderr(&self) -> String {
        read_lossy(&self.dir.file("stderr.log"))
    }
}

impl Drop for OrsSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
