//! `gms-gateway -c FILE`: runs the gateway; `-t -c FILE` checks the file and exits; `-d` and
//! `-u` keep Pingora's meaning (daemon, graceful upgrade).

use std::process::exit;

use gms_gateway::config::Config;
use pingora::prelude::Opt;
use pingora::server::configuration::ServerConf;

// Most of a request's user-space time outside the kernel went to glibc malloc/free (profiled
// with perf on the create path); mimalloc's thread-local free lists cut that cost.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let opt = Opt::parse_args();
    let Some(path) = opt.conf.clone() else {
        eprintln!("gms-gateway: a configuration file is required: gms-gateway -c FILE");
        exit(2);
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            exit(1);
        }
    };
    if opt.test {
        // Pingora's own keys are checked by Pingora's parser, the same one the server uses.
        if let Err(e) = ServerConf::load_from_yaml(&path) {
            eprintln!("{path}: {e}");
            exit(1);
        }
        println!("{path}: configuration OK");
        exit(0);
    }
    if let Err(e) = gms_gateway::server::run(opt, config) {
        eprintln!("gms-gateway: {e}");
        exit(1);
    }
}
