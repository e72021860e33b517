//! `ors-sim`: a simulator of the Genesys Orchestration Server (ORS) HTTP interface, for
//! black-box tests and benchmarks of gms-gateway.
//!
//! It serves HTTP/1.1 through `hyper` (keep-alive, chunked or sized request bodies) on one or
//! more addresses. Each `--listen` address is one ORS node ("instance") of a cluster whose
//! sessions are shared. Tests script the session status, inject failures per node, run
//! callback strategies and read back what the gateway sent.
//!
//! # CLI
//! ```text
//! ors-sim --listen 127.0.0.1:7210 [--listen 127.0.0.1:7211 ...] [--control 127.0.0.1:7299]
//!         [--status-script JSON|@FILE] [--log-max N] [--threads N] [--max-sessions N]
//!         [--tls-cert FILE --tls-key FILE]
//!         [--callback JSON|@FILE] [--gms-base URL] [--gms-auth USER:PASSWORD]
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
//!   Callbacks are kept under the same bound.
//! - `--tls-cert FILE --tls-key FILE` (PEM chain and key, both or neither): every instance
//!   listener speaks HTTPS (HTTP/1.1 inside TLS), base URL `https://ADDR`; the control
//!   listener stays plain HTTP.
//! - `--callback JSON|@FILE`: callback strategy mode on, with this configuration (the body
//!   of `PUT /sim/callback`, below; `{}` takes every default).
//! - `--gms-base URL`, `--gms-auth USER:PASSWORD`: where the gateway's Callback Services API
//!   lives and the admin credentials for its state PUTs; each turns callback mode on (with
//!   defaults, if `--callback` is not given) and overrides the same field of `--callback`.
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
//! - `POST /scxml/session/{sid}/terminate`: `{}`, and the session is gone (with its callback).
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
//! # Callback strategy mode
//! On while a callback configuration is set (`--callback`, `--gms-base`, `--gms-auth` or
//! `PUT /sim/callback`). The gateway submits a callback as a session start (`src`,
//! `_service_id` = callback id, `_service_name`, `_customer_number`, `_desired_time`, other
//! underscore options; as form parameters or `X-GMS-*` headers) and then a start request.
//! - `POST /scxml/session/{sid}/request/{start}` for a name in `start_requests` (default
//!   `["start"]`; add `"gms.start"` to take that one too): the session's callback is
//!   registered in state `QUEUED` and the reply is its dialog. The dialog is chosen by the
//!   session's `_sim_dialog` parameter (start or start request), else the instance's
//!   `callback_dialog`, else the configuration's `dialog`:
//!   - `ConfirmationDialog`: `{"_action":"ConfirmationDialog","_text":"You will receive the
//!     call shortly","_ok_title":"Ok","_dialog_id":"0"}`;
//!   - `DialNumber`: `{"_action":"DialNumber","_tel_url":"tel:+18005550100","_label":..,
//!     "_dialog_id":"0"}`;
//!   - `DisplayMenu`: `{"_action":"DisplayMenu","_label":..,"_dialog_id":"0","_content":[
//!     {"_group_name":..,"_group_content":[{"_label":..,"_user_action_url":
//!     "{gms_base}/service/{id}/menu-agent"},{..,"{gms_base}/service/{id}/cancel"}]}]}`
//!     (`/genesys/1` stands for `gms_base` while none is set);
//!   - a JSON object instead of a name is answered as it is.
//!
//!   Without `_service_id` (parameter or `X-GMS-service_id`) the start request is a 400.
//! - State reports: `PUT {gms_base}/service/callback/{_service_name}/{_service_id}` with
//!   basic auth `gms_user:gms_password` (when set) and a form (or JSON, `report_body`) body
//!   `_callback_state=S[&_callback_reason=R]`, one per step of `steps`. With `auto` (the
//!   default) each step goes out `delay_ms` after the previous one (or after the start
//!   request); this applies to callbacks started while `auto` is on, and turning it off
//!   stops their timers. `POST /sim/callbacks/{id}/state` drives one by hand. Without
//!   `gms_base` the steps are taken but not sent. Reports of one callback go out one at a
//!   time, in order; the configuration in force when a step is taken is the one used.
//! - `POST|GET /scxml/session/{sid}/request/check-queue-position`: `{"_position":"<n>",
//!   "_eta":"<s>","_total_waiting":"<n>"}`, all strings: `n` is the rank among callbacks
//!   still `QUEUED` by start order (`"0"` once past it), `_eta` is `n * eta_per_position_s`.
//!   A GET takes its parameters from the query.
//! - `POST /scxml/session/{sid}/request/cancel`: `{}`; the session ends and its callback
//!   stops (no report: the gateway records the cancel itself).
//!
//! These are ORS requests like the others: logged, counted, subject to failure injection.
//!
//! The configuration (`GET|PUT /sim/callback`; unknown fields are refused):
//! ```text
//! {"start_requests":["start"],"dialog":"ConfirmationDialog",
//!  "gms_base":"http://127.0.0.1:8080/genesys/1","gms_user":"admin","gms_password":"secret",
//!  "auto":true,"report_body":"form","eta_per_position_s":60,
//!  "steps":[{"state":"QUEUED","delay_ms":500},{"state":"ROUTING","delay_ms":2000},
//!           {"state":"PROCESSING","delay_ms":2000},
//!           {"state":"COMPLETED","reason":"AGENT_CONNECTED","delay_ms":3000}]}
//! ```
//! (those are the defaults, but for `gms_base` and the credentials, unset by default; only
//! `http://` bases are supported). States are `QUEUED`, `ROUTING`, `PROCESSING`, `PAUSED`,
//! `COMPLETED`; a `COMPLETED` step ends the callback.
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
//! - `callback_dialog`: this instance's callback dialog (a name or an object, as `dialog`).
//!
//! # Control endpoints (every listener; not logged)
//! - `GET /sim/instances`; `GET|PUT /sim/instances/{addr}`: an instance's failure-injection
//!   config `{"latency_ms":0,"mode":"ok|refuse|error|hang|redirect","error_status":503,
//!   "redirect_to":null,"status_script":null,"start_reply":"json|text","idle_close_ms":0,
//!   "callback_dialog":null}`.
//! - `GET /sim/log[?path_prefix=P&instance=ADDR]`, `DELETE /sim/log` (also resets the stats).
//! - `GET /sim/stats`: per instance `{"requests":n,"by_kind":{...}}`.
//! - `GET /sim/sessions`, `DELETE /sim/sessions`.
//! - `GET|PUT /sim/callback`: the callback configuration (`null` while the mode is off);
//!   `DELETE /sim/callback` turns the mode off.
//! - `GET /sim/callbacks`: callback id -> `{"service_name","session","owner","state",
//!   "reason","ended","next_step","reports":[{"state","reason","at_ms","status","error"}]}`
//!   (`status` is the gateway's answer, `error` why there is none); `DELETE /sim/callbacks`
//!   forgets them all; `GET /sim/callbacks/{id}`: one.
//! - `GET /sim/starts`: callback id -> `{"sessions":n,"requests":m}`, the sessions started
//!   for it (`_service_id`) and the start requests it took while the callback mode was on (a
//!   count past 1 is a callback submitted twice); `DELETE /sim/starts` resets the counts.
//!   Kept for as many ids as `--max-sessions`.
//! - `POST /sim/callbacks/{id}/state`: takes the callback's next step now, or with a body
//!   `{"state":"ROUTING","reason":null}` reports that state; answers
//!   `{"callback":{..},"report":{..}}` once the gateway has answered the PUT (409 when no step
//!   is left).

mod args;
mod callback;
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
