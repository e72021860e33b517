//! The binary's logger: `env_logger` (`RUST_LOG`, default `info`), with one of Pingora's error
//! lines demoted to debug: a client that closes its connection in the middle of a request head
//! (or one the head limits cut, `head_limits.rs`) is the client's business, not an error of the
//! gateway, but Pingora's proxy logs every failed head read at error level.

use log::{Level, Log, Metadata, Record};

/// Installs the logger; call once, first thing.
pub fn init() {
    let inner =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Demoting { inner })).is_ok() {
        log::set_max_level(max);
    }
}

struct Demoting {
    inner: env_logger::Logger,
}

/// Whether a record is Pingora's line for a head the client did not finish.
fn unfinished_head(r: &Record<'_>) -> Option<String> {
    if r.level() != Level::Error || !r.target().starts_with("pingora_proxy") {
        return None;
    }
    let text = r.args().to_string();
    text.contains("while reading request headers")
        .then_some(text)
}

impl Log for Demoting {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        self.inner.enabled(m)
    }

    fn log(&self, r: &Record<'_>) {
        let Some(text) = unfinished_head(r) else {
            return self.inner.log(r);
        };
        let demoted = Metadata::builder()
            .level(Level::Debug)
            .target(r.target())
            .build();
        if self.inner.enabled(&demoted) {
            self.inner.log(
                &Record::builder()
                    .metadata(demoted)
                    .args(format_args!("{text}"))
                    .module_path(r.module_path())
                    .file(r.file())
                    .line(r.line())
                    .build(),
            );
        }
    }

    fn flush(&self) {
        self.inner.flush()
    }
}
