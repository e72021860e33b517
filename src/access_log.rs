//! The access log (issue 7): one line per request, written by its own thread so that a slow
//! disk never holds up a request. Lines go through a bounded channel; when it is full the line
//! is dropped and counted, never waited for. The thread starts once the process serves
//! ([`crate::lifecycle`]): a daemon's fork would leave a thread started earlier behind.
//!
//! Line: `ts_ms=<unix ms> client=<ip:port> method path status=<code> bytes=<body bytes sent>
//! ms=<latency> route=<route>` (`route` names the API operation or `pass_through`).

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

/// Lines waiting to be written before new ones are dropped.
const QUEUE: usize = 8192;

/// The sending side of the access log.
pub struct AccessLog {
    tx: SyncSender<String>,
    dropped: AtomicU64,
}

/// The writing side: the destination and the queue, until [`AccessLogWriter::spawn`].
pub struct AccessLogWriter {
    rx: Receiver<String>,
    out: Box<dyn Write + Send>,
}

impl AccessLogWriter {
    /// Starts the writer thread; it ends when the [`AccessLog`] is dropped.
    pub fn spawn(self) -> Result<(), String> {
        let AccessLogWriter { rx, out } = self;
        std::thread::Builder::new()
            .name("gms-access-log".into())
            .spawn(move || writer(rx, out))
            .map(|_| ())
            .map_err(|e| format!("gms.access_log: cannot start its thread: {e}"))
    }
}

impl AccessLog {
    /// Opens the destination (`stderr` or a file, appended to); lines queue until the writer
    /// is spawned.
    pub fn open(dest: &str) -> Result<(AccessLog, AccessLogWriter), String> {
        let out: Box<dyn Write + Send> = if dest == "stderr" {
            Box::new(std::io::stderr())
        } else {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(dest)
                .map_err(|e| format!("gms.access_log: cannot open '{dest}': {e}"))?;
            Box::new(f)
        };
        let (tx, rx) = sync_channel(QUEUE);
        let log = AccessLog {
            tx,
            dropped: AtomicU64::new(0),
        };
        Ok((log, AccessLogWriter { rx, out }))
    }

    /// Queues one line; drops it (and counts) if the writer is behind.
    pub fn write(&self, line: String) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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
