//! `ors-sim`: a simulator of the Genesys Orchestration Server (ORS) HTTP interface, for
//! black-box tests and benchmarks of gms-gateway.
//!
//! It serves HTTP/1.1 through `hyper` (keep-alive, chunked or sized request bodies) on one or
//! more addresses. Each `--listen` address is one ORS node ("instance") of a cluster whose
//! sessions are shared. Tests script the session status, inject failures per node and read
//! back what the gateway sent.
//!
//! # CLI
//! ```text
//! ors-sim --listen 127.0.0.1:7210 [--listen 127.0.0.1:7211 ...] [--control 127.0.0.1:7299]
//!         [--status-script JSON|@FILE] [--log-max N] [--threads N] [--max-sessions N]
//!         [--tls-cert FILE --tls-key FILE]
//! ```
//! - `--listen ADDR` (repeatable, at least one): one instance, named ADDR exactly as given
//!   (with port 0, the address actually bound), base URL `http://ADDR`.
//! - `--control ADDR`: an extra listener serving only `/sim/...`, never affected by failure
//!   injection.
//! - `--status-script`: JSON array `[{"after_ms":0,"body":{...}},...]` (or `@path` of a file
//!   holding it); a session's status is the body of the last step whose `after_ms` <= the
//!   session's age (the first step while none is due yet). The default reports
//!   `waiting-for-agent` and, from 5 s on, `connected`.
//! - `--log-max N`: request log ring size (default 10000; 0 keeps none).
//! - `--threads N`: tokio worker threads (default 1).
//! - `--max-sessions N`: live sessions kept; the oldest are evicted beyond it (default 100000).
//! - `--tls-cert FILE --tls-key FILE` (PEM chain and key, both or neither): every instance
//!   listener speaks HTTPS (HTTP/1.1 inside TLS), base URL `https://ADDR`; the control
//!   listener stays plain HTTP.
//!
//! After binding, one line `ors-sim listening on ADDR` is printed per listener (instances in
//! order, then the control listener). Bad arguments exit 2, bind failures exit 1.
//!
//! # ORS endpoints (every instance)
//! - `POST /scxml/session/start`, form body with `src` (else 400 `{"error":"src is
//!   required"}`): `{"sessionid":"<id>"}`, or the bare id as text/plain with
//!   `"start_reply":"text"`.
//! - `POST /scxml/session/{sid}/request/status`: the scripted status body.
//! - `POST /scxml/session/{sid}/request/gms.start`:
//!   `{"message":"started","sessionid":..,"_id_seen":<_service_id param or null>}`.
//! - `POST /scxml/session/{sid}/request/fail-{code}`: status `code`,
//!   `{"error":"requested failure"}`.
//! - `POST /scxml/session/{sid}/request/{name}`: `{"request":..,"sessionid":..,"params":{..}}`.
//! - `POST /scxml/session/{sid}/event/{name}`: `{}`.
//! - `POST /scxml/session/{sid}/terminate`: `{}`, and the session is gone.
//! - An unknown session is 404 `{"error":"unknown session"}`, another `/scxml/...` path 404,
//!   a method other than POST 405.
//! - Any other path (neither `/scxml/...` nor `/sim/...`), any method: the request echoed as
//!   JSON `{"instance","method","path","query","headers","body","body_len"}`.
//!
//! ORS and echo replies carry `X-Sim-Instance`; ORS and echo requests go to the request log.
//! Parameters come from a body typed `application/x-www-form-urlencoded` (or untyped), decoded
//! strictly (a bad `%` escape or non-UTF-8 is a 400 on ORS paths); a repeated name gives an
//! array of its values. Sessions are shared by all instances; each remembers its owner.
//! Request bodies are limited to 16 MiB (413), request heads to 64 KiB and 100 fields (431,
//! from hyper, as its other protocol errors: empty bodies).
//!
//! # Failure injection (per instance)
//! - `latency_ms`: every ORS or echo reply is delayed this long.
//! - `refuse`: the listening socket is closed (connects are refused) and open connections
//!   are dropped at their next request, `/sim/...` ones included; leaving the mode binds
//!   the address again. The PUT answers once the socket is really down or up.
//! - `error`: ORS and echo requests answer `error_status` `{"error":"injected failure"}`.
//! - `hang`: requests are read and logged but never answered (the connection is held until
//!   the client closes it, at most 120 s).
//! - `redirect`: ORS requests answer 307 `Location: {redirect_to}{path}?{query}`.
//! - `status_script` replaces the global script for status requests this instance answers;
//!   `start_reply: "text"` answers the new session id as text/plain.
//! - `idle_close_ms`: a kept-alive connection idle this long is closed (default 120 s), as
//!   a server that times out idle clients does.
//!
//! # Control endpoints (every listener; not logged)
//! - `GET /sim/instances`; `GET|PUT /sim/instances/{addr}`: an instance's failure-injection
//!   config `{"latency_ms":0,"mode":"ok|refuse|error|hang|redirect","error_status":503,
//!   "redirect_to":null,"status_script":null,"start_reply":"json|text","idle_close_ms":0}`.
//! - `GET /sim/log[?path_prefix=P&instance=ADDR]`, `DELETE /sim/log` (also resets the stats).
//! - `GET /sim/stats`: per instance `{"requests":n,"by_kind":{...}}`.
//! - `GET /sim/sessions`, `DELETE /sim/sessions`.

mod args;
mod config;
mod conn;
mod control;
mod form;
mod http;
mod listeners;
mod ors;
mod record;
mod sessions;
mod sim;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = match args::parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ors-sim: {e}\n{}", args::USAGE);
            std::process::exit(2);
        }
    };
    if args.help {
        println!("{}", args::USAGE);
        return;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ors-sim: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(listeners::run(args)) {
        eprintln!("ors-sim: {e}");
        std::process::exit(1);
    }
}
