//! The access log (issue 7): one line per request, written by its own thread so that a slow
//! disk never holds up a request. Lines go through a bounded channel; when it is full the line
//! is dropped, never waited for. The thread starts once the process serves
//! ([`crate::lifecycle`]): a daemon's fork would leave a thread started earlier behind.
//!
//! Line: `ts_ms=<unix ms> client=<ip:port> method path status=<code> bytes=<body bytes sent>
//! ms=<latency> route=<route> request_id=<id>` (`route` names the API operation or
//! `pass_through`; `request_id` is the reply's `X-Request-Id`), then `service=`, `id=` and
//! `upstream=` where they apply.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::start_error::StartError;

/// Lines waiting to be written before new ones are dropped.
const QUEUE: usize = 8192;

/// The sending side of the access log.
pub struct AccessLog {
    tx: SyncSender<String>,
}

/// The writing side: the destination and the queue, until [`AccessLogWriter::spawn`].
pub struct AccessLogWriter {
    rx: Receiver<String>,
    out: Box<dyn Write + Send>,
}

impl AccessLogWriter {
    /// Starts the writer thread; it ends when the [`AccessLog`] is dropped.
    pub fn spawn(self) -> std::io::Result<()> {
        let AccessLogWriter { rx, out } = self;
        std::thread::Builder::new()
            .name("gms-access-log".into())
            .spawn(move || writer(rx, out))
            .map(|_| ())
    }
}

impl AccessLog {
    /// Opens the destination (`stderr` or a file, appended to); lines queue until the writer
    /// is spawned.
    pub fn open(dest: &str) -> Result<(AccessLog, AccessLogWriter), StartError> {
        let out: Box<dyn Write + Send> = if dest == "stderr" {
            Box::new(std::io::stderr())
        } else {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(dest)
                .map_err(|error| StartError::AccessLog {
                    dest: dest.to_string(),
                    error,
                })?;
            Box::new(f)
        };
        let (tx, rx) = sync_channel(QUEUE);
        let log = AccessLog { tx };
        Ok((log, AccessLogWriter { rx, out }))
    }

    /// Queues one line; drops it if the writer is behind.
    pub fn write(&self, line: String) {
        // Full or disconnected: the line is lost either way, and the request must not wait.
        let _ = self.tx.try_send(line);
    }
}

fn writer(rx: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = BufWriter::new(out);
    // Write what is queued, flush when the queue runs dry: few syscalls under load, and a
    // line is on disk soon after its request when it is quiet.
    while let Ok(line) = rx.recv() {
        let _ = writeln!(out, "{line}");
        while let Ok(more) = rx.try_recv() {
            let _ = writeln!(out, "{more}");
        }
        let _ = out.flush();
    }
}
