//! `gms-gateway -c FILE`: runs the gateway; `-t -c FILE` checks the file and exits; `-d` and
//! `-u` keep Pingora's meaning (daemon, graceful upgrade).
//!
//! `-t` prints, after `FILE: configuration OK`, the settings that operations scripts need
//! (`conf/reload`), one `key: value` a line, so they never parse YAML themselves.

use std::process::exit;

use gms_gateway::binary;
use gms_gateway::GatewayConfig;
use pingora::prelude::Opt;
use pingora::server::configuration::ServerConf;

// Most of a request's user-space time outside the kernel went to glibc malloc/free (profiled
// with perf on the create path); mimalloc's thread-local free lists cut that cost.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (the Rust bindings name no constant
/// for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory for reuse instead of handing it back to the kernel a second later.
///
/// Records live for their TTL and are then freed, at the rate they were made: a process under
/// steady load frees and needs the same memory again seconds apart. Handing it back and
/// faulting it in again cost a third of the CPU of a multipart create at 30,000 req/s on a VM
/// whose kernel reports freed pages to the host (bench/README.md). The peak stays
/// resident, as traffic and TTLs set it; `MIMALLOC_PURGE_DELAY=<ms>` brings the return back.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; mimalloc reads it when it next considers a purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

fn main() {
    keep_freed_memory();
    binary::init_logging();
    let opt = Opt::parse_args();
    let Some(path) = opt.conf.clone() else {
        eprintln!("gms-gateway: a configuration file is required: gms-gateway -c FILE");
        exit(2);
    };
    let config = match GatewayConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            exit(1);
        }
    };
    for w in config.warnings() {
        if opt.test {
            eprintln!("{path}: warning: {w}");
        } else {
            log::warn!("{w}");
        }
    }
    if opt.test {
        // Pingora's own keys are checked by Pingora's parser, the same one the server uses.
        let conf = match ServerConf::load_from_yaml(&path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{path}: {e}");
                exit(1);
            }
        };
        if let Err(e) = binary::check_server_conf(&conf) {
            eprintln!("{path}: {e}");
            exit(1);
        }
        println!("{path}: configuration OK");
        print!("{}", ops_summary(&conf, &config));
        exit(0);
    }
    if let Err(e) = binary::run(opt, config) {
        eprintln!("gms-gateway: {e}");
        exit(1);
    }
}

/// What `-t` reports for scripts. Pingora's defaults where a key is unset: the grace period is
/// 300 s (`EXIT_TIMEOUT`), the runtime shutdown timeout 5 s.
fn ops_summary(conf: &ServerConf, config: &GatewayConfig) -> String {
    format!(
        "pid_file: {}\nupgrade_sock: {}\ngrace_period_seconds: {}\n\
         graceful_shutdown_timeout_seconds: {}\nhealth_url: {}\n",
        conf.pid_file,
        conf.upgrade_sock,
        conf.grace_period_seconds.unwrap_or(300),
        conf.graceful_shutdown_timeout_seconds.unwrap_or(5),
        config.local_health_url()
    )
}
