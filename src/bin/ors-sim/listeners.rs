//! Start-up and the listening sockets: binding, accepting, refuse mode's close and re-bind,
//! and TLS.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pingora::tls::{
    install_default_crypto_provider, load_certs_and_key_files, ServerConfig, TlsAcceptor,
};
use tokio::net::{TcpListener, TcpSocket};

use crate::args::Args;
use crate::callback::Callbacks;
use crate::conn;
use crate::record::RequestLog;
use crate::sessions::Sessions;
use crate::sim::{Instance, Sim};

const REBIND_RETRY: Duration = Duration::from_millis(200);

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Leaving refuse mode rebinds the port while old connections on it may linger.
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

async fn resolve(spec: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = spec.parse() {
        return Ok(a);
    }
    match tokio::net::lookup_host(spec).await {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{spec}: resolves to no address")),
        Err(e) => Err(format!("bad address {spec:?}: {e}")),
    }
}

/// Accepts while the instance is not refusing; drops the socket while it is, so that
/// connects get "connection refused" as from a stopped node.
async fn run_instance(sim: Arc<Sim>, inst: Arc<Instance>, first: TcpListener) {
    let mut rx = inst.refuse.subscribe();
    let mut listener = Some(first);
    loop {
        if *rx.borrow_and_update() {
            listener = None;
            inst.listening.send_replace(false);
            if rx.changed().await.is_err() {
                return;
            }
            continue;
        }
        let l = match listener.take() {
            Some(l) => l,
            None => match bind(inst.addr) {
                Ok(l) => l,
                Err(e) => {
                    log::warn!("{}: cannot listen again: {e}; retrying", inst.name);
                    tokio::select! {
                        _ = tokio::time::sleep(REBIND_RETRY) => {}
                        r = rx.changed() => if r.is_err() { return },
                    }
                    continue;
                }
            },
        };
        inst.listening.send_replace(true);
        loop {
            tokio::select! {
                r = l.accept() => match r {
                    Ok((stream, _)) => {
                        tokio::spawn(conn::serve(sim.clone(), Some(inst.clone()), stream));
                    }
                    Err(e) => {
                        // Typically out of file descriptors: back off instead of spinning.
                        log::warn!("{}: accept failed: {e}", inst.name);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
                r = rx.changed() => {
                    if r.is_err() {
                        return;
                    }
                    if *rx.borrow() {
                        break;
                    }
                }
            }
        }
    }
}

async fn run_control(sim: Arc<Sim>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(conn::serve(sim.clone(), None, stream));
            }
            Err(e) => {
                log::warn!("control: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Name for a listener: as given, unless port 0 was asked, where only the bound address
/// is of use to a client.
fn listener_name(spec: &str, asked: SocketAddr, bound: SocketAddr) -> String {
    if asked.port() == 0 {
        bound.to_string()
    } else {
        spec.to_string()
    }
}

/// The TLS side of `--tls-cert` / `--tls-key`: HTTP/1.1 only (ALPN `http/1.1`).
fn tls_acceptor(cert: &str, key: &str) -> Result<TlsAcceptor, String> {
    let (certs, key_der) = match load_certs_and_key_files(cert, key) {
        Ok(Some(pair)) => pair,
        Ok(None) => return Err(format!("no certificate in {cert} or no key in {key}")),
        Err(e) => return Err(format!("cannot load {cert} / {key}: {e}")),
    };
    install_default_crypto_provider();
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| format!("{cert} / {key}: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds every listener, prints their addresses and serves until killed.
pub async fn run(args: Args) -> Result<(), String> {
    let mut instances: Vec<Arc<Instance>> = Vec::new();
    let mut listeners = Vec::new();
    for spec in &args.listen {
        let asked = resolve(spec).await?;
        let l = bind(asked).map_err(|e| format!("cannot listen on {spec}: {e}"))?;
        let bound = l.local_addr().map_err(|e| format!("{spec}: {e}"))?;
        let name = listener_name(spec, asked, bound);
        if instances.iter().any(|i| *i.name == *name) {
            return Err(format!("instance {name} given twice"));
        }
        instances.push(Arc::new(Instance::new(name, bound)?));
        listeners.push(l);
    }
    let control = match &args.control {
        Some(spec) => {
            let asked = resolve(spec).await?;
            let l = bind(asked).map_err(|e| format!("cannot listen on {spec}: {e}"))?;
            let bound = l.local_addr().map_err(|e| format!("{spec}: {e}"))?;
            Some((listener_name(spec, asked, bound), l))
        }
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let sim = Arc::new(Sim {
        instances: instances.clone(),
        tls,
        status_script: args.status_script,
        sessions: Mutex::new(Sessions::new(args.max_sessions)),
        log: Mutex::new(RequestLog::new(args.log_max)),
        callbacks: Arc::new(Callbacks::new(args.callback, args.max_sessions)),
    });
    {
        let mut out = std::io::stdout().lock();
        for i in &instances {
            let _ = writeln!(out, "ors-sim listening on {}", i.name);
        }
        if let Some((name, _)) = &control {
            let _ = writeln!(out, "ors-sim listening on {name}");
        }
        let _ = out.flush();
    }
    for (inst, l) in instances.into_iter().zip(listeners) {
        tokio::spawn(run_instance(sim.clone(), inst, l));
    }
    if let Some((_, l)) = control {
        tokio::spawn(run_control(sim.clone(), l));
    }
    std::future::pending::<()>().await;
    Ok(())
}
