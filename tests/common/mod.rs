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
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The gms block most tests use.
pub const STD_GMS: &str = r#"resources:
  DNIS: ["8003449999", "8003449998", "8003449997"]
  SOLO: ["8005550001"]
services:
  request-interaction: {_type: builtin, _service: request-interaction}
  request-access: {_type: builtin, _service: request-access}
  match-interaction: {_type: builtin, _service: match-interaction}
  request-inbound-callback: {_type: builtin, _service: request-interaction}
"#;

/// The DNIS pool of `STD_GMS`, in configured order.
pub const DNIS: [&str; 3] = ["8003449999", "8003449998", "8003449997"];
/// The single number of the SOLO pool of `STD_GMS`.
pub const SOLO: &str = "8005550001";

/// How long the gateway / simulator may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Ports and temp dirs
// ---------------------------------------------------------------------------

/// A loopback port that was free a moment ago (bind 127.0.0.1:0, read it, drop).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A per-test directory under the system temp dir; removed on drop unless panicking.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("gmsgw-{tag}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}

/// Indent every line of `text` by `n` spaces.
pub fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The standard config file around a gms block, with `{PORT}` and `{DIR}` placeholders.
pub fn gateway_yaml(gms_yaml: &str) -> String {
    format!(
        "version: 1\n\
         threads: 2\n\
         pid_file: {{DIR}}/gw.pid\n\
         upgrade_sock: {{DIR}}/gw.sock\n\
         grace_period_seconds: 1\n\
         graceful_shutdown_timeout_seconds: 1\n\
         gms:\n  listen: [\"127.0.0.1:{{PORT}}\"]\n{}\n",
        indent(gms_yaml, 2)
    )
}

/// Fill the `{PORT}` and `{DIR}` placeholders.
pub fn fill(template: &str, port: u16, dir: &Path) -> String {
    template
        .replace("{PORT}", &port.to_string())
        .replace("{DIR}", &dir.display().to_string())
}

// ---------------------------------------------------------------------------
// The gateway under test
// ---------------------------------------------------------------------------

pub struct Gateway {
    child: Child,
    port: u16,
    config: PathBuf,
    dir: TempDir,
}

enum StartError {
    Exited(ExitStatus),
    Timeout,
}

impl Gateway {
    /// Start the gateway with the standard top-level keys and `gms_yaml` under `gms:`.
    pub fn start(gms_yaml: &str) -> Gateway {
        Gateway::start_full(&gateway_yaml(gms_yaml))
    }

    /// Start the gateway with a whole config file (`{PORT}` / `{DIR}` placeholders).
    pub fn start_full(template: &str) -> Gateway {
        // The free port may be taken by someone else between our probe and the
        // gateway's bind: try again (a bounded number of times) in that case.
        for attempt in 1..=3 {
            let port = free_port();
            let dir = TempDir::new("gw");
            let config = dir.file("gateway.yaml");
            fs::write(&config, fill(template, port, dir.path())).expect("write config");
            let stdout = fs::File::create(dir.file("stdout.log")).expect("stdout.log");
            let stderr = fs::File::create(dir.file("stderr.log")).expect("stderr.log");
            let child = Command::new(env!("CARGO_BIN_EXE_gms-gateway"))
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::from(stdout))
                .stderr(Stdio::from(stderr))
                .spawn()
                .expect("spawn gms-gateway");
            let mut gw = Gateway {
                child,
                port,
                config,
                dir,
            };
            match gw.wait_ready() {
                Ok(()) => return gw,
                Err(StartError::Exited(status)) => {
                    let err = gw.stderr();
                    let in_use = err.contains("in use") || err.contains("os error 98");
                    if in_use && attempt < 3 {
                        continue;
                    }
                    panic!(
                        "gateway exited during startup ({status}); config {}:\n{}\n--- stderr ---\n{}\n--- stdout ---\n{}",
                        gw.config.display(),
                        read_lossy(&gw.config),
                        err,
                        gw.stdout()
                    );
                }
                Err(StartError::Timeout) => {
                    let _ = gw.child.kill();
                    let _ = gw.child.wait();
                    panic!(
                        "gateway not healthy within {READY_TIMEOUT:?} on port {}; config {}:\n{}\n--- stderr ---\n{}\n--- stdout ---\n{}",
                        gw.port,
                        gw.config.display(),
                        read_lossy(&gw.config),
                        gw.stderr(),
                        gw.stdout()
                    );
                }
            }
        }
        unreachable!("the loop either returns or panics")
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = self.url("/genesys/1/admin/node/health");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(1))
            .max_idle_connections(0)
            .redirects(0)
            .build();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(StartError::Exited(status));
            }
            if let Ok(r) = agent.get(&url).call() {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(StartError::Timeout)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port><path>`
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base(), path)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn stderr(&self) -> String {
        read_lossy(&self.dir.file("stderr.log"))
    }

    pub fn stdout(&self) -> String {
        read_lossy(&self.dir.file("stdout.log"))
    }

    /// Panics (with the gateway's stderr) if the process has exited.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "gateway died ({status}); stderr:\n{}",
                read_lossy(&self.dir.file("stderr.log"))
            );
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The ORS simulator / echo web backend
// ---------------------------------------------------------------------------

pub struct OrsSim {
    child: Child,
    ports: Vec<u16>,
    control: u16,
    dir: TempDir,
}

impl OrsSim {
    /// Start `ors-sim` with `n` ORS / echo listeners and a control listener.
    pub fn start(n: usize) -> OrsSim {
        assert!(n >= 1, "at least one instance");
        let dir = TempDir::new("sim");
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let control = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ors-sim"));
        for p in &ports {
            cmd.arg("--listen").arg(format!("127.0.0.1:{p}"));
        }
        cmd.arg("--control").arg(format!("127.0.0.1:{control}"));
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

    /// `http://127.0.0.1:<port i>`
    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
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

// ---------------------------------------------------------------------------
// HTTP client helpers (ureq 2; 4xx/5xx are responses, not errors)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Header names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body text if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .max_idle_connections(0)
            .redirects(0)
            .build()
    })
}

/// Any request; `body` is `(content_type, bytes)`. Transport errors panic.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Resp {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some((ct, bytes)) => req.set("Content-Type", ct).send_bytes(bytes),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: transport error: {e}"),
    };
    let status = resp.status();
    let mut hdrs = Vec::new();
    for name in resp.headers_names() {
        for v in resp.all(&name) {
            hdrs.push((name.to_ascii_lowercase(), v.to_string()));
        }
    }
    let mut body = Vec::new();
    resp.into_reader()
        .take(256 * 1024 * 1024)
        .read_to_end(&mut body)
        .unwrap_or_else(|e| panic!("{method} {url}: reading body: {e}"));
    Resp {
        status,
        headers: hdrs,
        body,
    }
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("GET", url, headers, None)
}

pub fn delete(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("DELETE", url, headers, None)
}

/// POST with no body at all.
pub fn post_empty(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("POST", url, headers, None)
}

/// POST `application/x-www-form-urlencoded`.
pub fn post_form(url: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Resp {
    let body = form_encode(fields);
    request(
        "POST",
        url,
        headers,
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    )
}

/// POST `application/json`.
pub fn post_json(url: &str, json: &Value, headers: &[(&str, &str)]) -> Resp {
    let body = json.to_string();
    request(
        "POST",
        url,
        headers,
        Some(("application/json", body.as_bytes())),
    )
}

/// POST arbitrary bytes with a given content type.
pub fn post_raw(url: &str, content_type: &str, body: &[u8], headers: &[(&str, &str)]) -> Resp {
    request("POST", url, headers, Some((content_type, body)))
}

/// POST a multipart body.
pub fn post_multipart(url: &str, mp: &Multipart, headers: &[(&str, &str)]) -> Resp {
    let (ct, body) = mp.build();
    request("POST", url, headers, Some((&ct, &body)))
}

fn enc_component(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// `application/x-www-form-urlencoded` encoding (also usable as a query string).
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc_component(k, &mut out);
        out.push('=');
        enc_component(v, &mut out);
    }
    out
}

// ---------------------------------------------------------------------------
// Multipart builder
// ---------------------------------------------------------------------------

pub const BOUNDARY: &str = "----gmsGatewayTestBoundary7MA4YWxkTrZu0gW";

#[derive(Default, Clone)]
pub struct Multipart {
    body: Vec<u8>,
}

impl Multipart {
    pub fn new() -> Multipart {
        Multipart::default()
    }

    /// A text part.
    pub fn text(self, name: &str, value: &str) -> Multipart {
        self.text_bytes(name, value.as_bytes())
    }

    /// A text part with arbitrary (possibly invalid UTF-8) bytes.
    pub fn text_bytes(mut self, name: &str, value: &[u8]) -> Multipart {
        self.check(value);
        self.body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        self.body.extend_from_slice(value);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// A file part (has a filename and a content type).
    pub fn file(
        mut self,
        name: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Multipart {
        self.check(bytes);
        self.body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    fn check(&self, bytes: &[u8]) {
        assert!(
            !bytes
                .windows(BOUNDARY.len())
                .any(|w| w == BOUNDARY.as_bytes()),
            "part contains the boundary"
        );
    }

    /// `(content_type, body)`
    pub fn build(&self) -> (String, Vec<u8>) {
        let mut body = self.body.clone();
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={BOUNDARY}"), body)
    }
}

/// Deterministic pseudo-random bytes (all byte values occur), starting like a JPEG.
pub fn fake_jpeg(len: usize) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut x: u32 = 0x1234_5678;
    while out.len() < len {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        out.push((x >> 24) as u8);
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------
// Raw sockets
// ---------------------------------------------------------------------------

/// Total length of the first complete HTTP response in `buf`, if it is complete.
fn complete_len(buf: &[u8]) -> Option<usize> {
    let head_end = find(buf, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    if (100..200).contains(&status) && status != 101 {
        // An interim response: wait for the final one after it.
        return complete_len(&buf[head_end..]).map(|n| head_end + n);
    }
    if status == 204 || status == 304 {
        return Some(head_end);
    }
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("content-length:") {
            let n: usize = v.trim().parse().ok()?;
            return (buf.len() >= head_end + n).then_some(head_end + n);
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return dechunk(&buf[head_end..]).map(|(_, used)| head_end + used);
        }
    }
    None // read until EOF
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decode a complete chunked body: `(body, bytes consumed)`; None if incomplete.
fn dechunk(mut data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let total = data.len();
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_txt = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_txt.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            // trailers until an empty line
            loop {
                let e = find(data, b"\r\n")?;
                data = &data[e + 2..];
                if e == 0 {
                    return Some((out, total - data.len()));
                }
            }
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Parse a raw HTTP/1.1 response (the first one in `raw`).
pub fn parse_response(raw: &[u8]) -> Option<Resp> {
    let head_end = find(raw, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..head_end - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let rest = &raw[head_end..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)
            .map(|(b, _)| b)
            .unwrap_or_else(|| rest.to_vec())
    } else if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

/// Send raw bytes to the gateway and read one response (bounded by a 10 s read
/// timeout). Returns `(status, full response bytes)`; status 0 when the connection was
/// closed without a parseable response. Panics if nothing arrives within the timeout
/// (the gateway must never hang).
pub fn raw_request(port: u16, bytes: &[u8]) -> (u16, Vec<u8>) {
    raw_exchange(port, bytes, false)
}

/// Like `raw_request`, but half-closes the connection after sending.
pub fn raw_request_half_close(port: u16, bytes: &[u8]) -> (u16, Vec<u8>) {
    raw_exchange(port, bytes, true)
}

fn raw_exchange(port: u16, bytes: &[u8], half_close: bool) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to gateway");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("write timeout");
    // The gateway may answer (and close) before reading everything: ignore write errors.
    let _ = s.write_all(bytes);
    let _ = s.flush();
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(n) = complete_len(&buf) {
            buf.truncate(n);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no complete response within 15 s; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!(
                    "gateway did not answer within 10 s (hang); got {:?}",
                    String::from_utf8_lossy(&buf)
                )
            }
            Err(_) => break, // reset: take what we have
        }
    }
    let status = parse_response(&buf).map(|r| r.status).unwrap_or(0);
    (status, buf)
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

/// Assert an error reply: the status, `application/json`, and a body
/// `{"exception": <string>, "message": <string>}`. Returns the body.
pub fn assert_error(resp: &Resp, status: u16) -> Value {
    assert_eq!(
        resp.status,
        status,
        "expected error status {status}, got {} with body {:?}",
        resp.status,
        resp.text()
    );
    assert!(
        resp.content_type().starts_with("application/json"),
        "error reply ({status}) is not application/json but {:?}: {:?}",
        resp.header("content-type"),
        resp.text()
    );
    let v = resp.json();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {v}"));
    let exc = obj.get("exception").and_then(Value::as_str);
    assert!(
        exc.is_some_and(|s| !s.is_empty()),
        "error body lacks a string \"exception\": {v}"
    );
    assert!(
        obj.get("message").is_some_and(Value::is_string),
        "error body lacks a string \"message\": {v}"
    );
    v
}

/// Assert a 200 JSON reply and return the body.
pub fn ok_json(resp: &Resp) -> Value {
    assert_eq!(
        resp.status,
        200,
        "expected 200, got {} with body {:?}",
        resp.status,
        resp.text()
    );
    assert!(
        resp.content_type().starts_with("application/json"),
        "200 reply is not application/json but {:?}: {:?}",
        resp.header("content-type"),
        resp.text()
    );
    resp.json()
}

/// Is `s` a UUID of version 4?
pub fn is_uuid_v4(s: &str) -> bool {
    uuid::Uuid::parse_str(s)
        .map(|u| u.get_version_num() == 4)
        .unwrap_or(false)
}

/// A string field of a JSON object; panics if missing.
pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string field {key:?} in {v}"))
}

/// The keys of a JSON object.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

// ---------------------------------------------------------------------------
// Service / storage shortcuts
// ---------------------------------------------------------------------------

impl Gateway {
    /// `{base}/genesys/1/service/{name}`
    pub fn service_url(&self, name: &str) -> String {
        self.url(&format!("/genesys/1/service/{name}"))
    }

    /// `{base}/genesys/1/storage/{rest}`
    pub fn storage_url(&self, rest: &str) -> String {
        self.url(&format!("/genesys/1/storage/{rest}"))
    }

    /// POST a form to a service.
    pub fn create(&self, service: &str, fields: &[(&str, &str)]) -> Resp {
        post_form(&self.service_url(service), fields, &[])
    }

    /// POST a form to a service and expect 200 JSON.
    pub fn create_ok(&self, service: &str, fields: &[(&str, &str)]) -> Value {
        ok_json(&self.create(service, fields))
    }

    /// match-interaction.
    pub fn match_call(&self, fields: &[(&str, &str)]) -> Resp {
        self.create("match-interaction", fields)
    }

    /// match-interaction expecting 200.
    pub fn match_ok(&self, fields: &[(&str, &str)]) -> Value {
        ok_json(&self.match_call(fields))
    }

    /// The binary URL the gateway should hand out for a file.
    pub fn binary_url(&self, data_id: &str, key: &str) -> String {
        self.url(&format!("/genesys/1/storage/binary/{data_id}/{key}"))
    }
}

/// Count occurrences.
pub fn tally<I: IntoIterator<Item = String>>(items: I) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}
