//! `gms-gateway -c FILE`: runs the gateway; `-t -c FILE` checks the file and exits; `-d` and
//! `-u` keep Pingora's meaning (daemon, graceful upgrade).

use std::process::exit;

use gms_gateway::config::Config;
use pingora::prelude::Opt;
use pingora::server::configuration::ServerConf;

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
