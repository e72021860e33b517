//! Helpers of the Callback Services API's black-box tests (`tests/callback_*.rs`): a gateway
//! with callback services on a callback-mode `ors-sim` whose state reports go back to that
//! gateway, times on the wire, and bounded waits.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use super::*;

/// The admin credentials of [`CallbackLab`]'s gateway (`admin:secret`), which ORS's state
/// reports carry.
pub const ADMIN: (&str, &str) = ("Authorization", "Basic YWRtaW46c2VjcmV0");

/// The callback service most tests use.
pub const CB: &str = "callback-for-mobile";

/// A gateway with callback services on a callback-mode `ors-sim` (its strategy driven by
/// hand unless a test turns `auto` on), the simulator's reports going to the gateway.
pub struct CallbackLab {
    pub sim: OrsSim,
    pub gw: Gateway,
}

/// The `gms:` block of a [`CallbackLab`]: admin credentials, a fast scheduler (unless
/// `callback`, YAML lines for `gms.callback`, sets its own), short ORS timeouts, and
/// `services` (YAML lines under `services:`, with `{ORS}` for the simulator's first
/// instance).
pub fn callback_gms(sim: &OrsSim, services: &str, callback: &str) -> String {
    let mut section = callback.to_string();
    for default in ["queue-polling-rate: 0.1", "submit_retry_s: 0.3"] {
        let key = default.split(':').next().unwrap_or_default();
        if !callback.contains(key) {
            section.push('\n');
            section.push_str(default);
        }
    }
    format!(
        "admin: {{user: admin, password: secret}}\n\
         ors: {{connect_timeout_ms: 500, socket_timeout_ms: 2000, max_ors_request_attempts: 2}}\n\
         resources: {{DNIS: [\"8003449999\", \"8003449998\"]}}\n\
         callback:\n{}\n\
         services:\n{}",
        indent(section.trim_start_matches('\n'), 2),
        indent(&services.replace("{ORS}", &sim.url(0)), 2)
    )
}

/// A callback service on the simulator, with more options (`extra`, YAML map entries).
pub fn callback_service(name: &str, extra: &str) -> String {
    format!(
        "{name}:\n  _type: ors\n  _service_type: callback\n  _service: \"http://scxml.example.com/callback.scxml\"\n  _ors: \"{{ORS}}\"\n{}\n",
        indent(extra, 2)
    )
}

/// An office open every day around the clock, in a zone with daylight saving time.
pub const OFFICE_24X7: &str = "business-hours:\n  _type: builtin\n  _service: office-hours\n  _timezone: Europe/Paris\n  _bh_regular1: \"Mon-Sun 00:00-24:00\"\n";

impl CallbackLab {
    /// `ors-sim` (one instance, callback mode, steps by hand) and a gateway with `services`.
    pub fn start(services: &str) -> CallbackLab {
        CallbackLab::start_with(services, "")
    }

    /// [`CallbackLab::start`] with keys for `gms.callback` (YAML lines).
    pub fn start_with(services: &str, callback: &str) -> CallbackLab {
        let sim = OrsSim::start_args(1, &["--callback", r#"{"auto":false}"#]);
        let gw = Gateway::start(&callback_gms(&sim, services, callback));
        let lab = CallbackLab { sim, gw };
        lab.sim_config(json!({"auto": false}));
        lab
    }

    /// Sets the simulator's callback configuration, pointed at this gateway with its admin
    /// credentials.
    pub fn sim_config(&self, mut cfg: Value) {
        cfg["gms_base"] = json!(format!("{}/genesys/1", self.gw.base()));
        cfg["gms_user"] = json!("admin");
        cfg["gms_password"] = json!("secret");
        let url = format!("{}/sim/callback", self.sim.control_url());
        let r = request(
            "PUT",
            &url,
            &[],
            Some(("application/json", cfg.to_string().as_bytes())),
        );
        assert_eq!(r.status, 200, "PUT /sim/callback: {}", r.text());
    }

    /// `{base}/genesys/1/service/callback{rest}`.
    pub fn url(&self, rest: &str) -> String {
        self.gw.url(&format!("/genesys/1/service/callback{rest}"))
    }

    /// `POST .../callback/{service}` with a form.
    pub fn create(&self, service: &str, fields: &[(&str, &str)]) -> Resp {
        post_form(&self.url(&format!("/{service}")), fields, &[])
    }

    /// A create that must succeed; its reply.
    pub fn create_ok(&self, service: &str, fields: &[(&str, &str)]) -> Value {
        ok_json(&self.create(service, fields))
    }

    /// A scheduled callback of `service` for `number`, `secs` from now; its id.
    pub fn schedule(&self, service: &str, number: &str, secs: i64) -> String {
        let at = iso_in(secs);
        let v = self.create_ok(
            service,
            &[("_customer_number", number), ("_desired_time", &at)],
        );
        assert_eq!(v["_callback_state"], "SCHEDULED", "{v}");
        str_field(&v, "_id").to_string()
    }

    /// An immediate callback of `service` for `number`; its id.
    pub fn now(&self, service: &str, number: &str) -> String {
        let v = self.create_ok(service, &[("_customer_number", number)]);
        str_field(&v, "_id").to_string()
    }

    /// `GET .../callback{query}` (e.g. `/cb?_id=...`).
    pub fn query(&self, rest: &str) -> Resp {
        get(&self.url(rest), &[])
    }

    /// The one record with `id`, by a query across services.
    pub fn record(&self, id: &str) -> Value {
        let v = ok_json(&self.query(&format!("?_id={id}")));
        let list = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
        assert_eq!(list.len(), 1, "{v}");
        list[0].clone()
    }

    /// The state of callback `id`.
    pub fn state(&self, id: &str) -> String {
        str_field(&self.record(id), "_callback_state").to_string()
    }

    /// `PUT .../callback/{service}/{id}` with a form and headers.
    pub fn put(
        &self,
        service: &str,
        id: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let body = form_encode(fields);
        request(
            "PUT",
            &self.url(&format!("/{service}/{id}")),
            headers,
            Some(("application/x-www-form-urlencoded", body.as_bytes())),
        )
    }

    /// ORS's report of `state` (and `reason`) for callback `id`, with the admin credentials.
    pub fn report(&self, service: &str, id: &str, state: &str, reason: Option<&str>) -> Resp {
        let mut fields = vec![("_callback_state", state)];
        if let Some(r) = reason {
            fields.push(("_callback_reason", r));
        }
        self.put(service, id, &fields, &[ADMIN])
    }

    /// `DELETE .../callback/{service}/{id}{query}`.
    pub fn cancel(&self, service: &str, id: &str, query: &str) -> Resp {
        delete(&self.url(&format!("/{service}/{id}{query}")), &[])
    }

    /// The session starts ORS got for callback `id`.
    pub fn starts(&self, id: &str) -> Vec<Value> {
        sim_requests(&self.sim, "/scxml/session/start")
            .into_iter()
            .filter(|e| e["params"]["_service_id"] == id)
            .collect()
    }

    /// Waits (at most `limit`) until callback `id` is in `state`; panics with what it was.
    pub fn wait_state(&self, id: &str, state: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let r = self.record(id);
            if r["_callback_state"] == state {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "callback {id} not {state} within {limit:?}: {r}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The requests `sim` logged under `prefix`.
pub fn sim_requests(sim: &OrsSim, prefix: &str) -> Vec<Value> {
    let r = get(
        &format!("{}/sim/log?path_prefix={prefix}", sim.control_url()),
        &[],
    );
    assert_eq!(r.status, 200, "GET /sim/log: {}", r.text());
    r.json().as_array().cloned().unwrap_or_default()
}

/// Now plus `secs`, as the wire writes instants (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
pub fn iso_in(secs: i64) -> String {
    iso(Timestamp::now() + SignedDuration::from_secs(secs))
}

/// An instant as the wire writes it.
pub fn iso(t: Timestamp) -> String {
    let ms = t.subsec_millisecond().rem_euclid(1000);
    format!("{}.{ms:03}Z", t.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// Parses a wire instant.
pub fn parse_iso(s: &str) -> Timestamp {
    s.parse()
        .unwrap_or_else(|e| panic!("'{s}' is not an instant: {e}"))
}

/// Asserts a Callback API error: `status`, `exception`, `code` = status and `phrase`; returns
/// the body.
pub fn assert_callback_error(resp: &Resp, status: u16, exception: &str) -> Value {
    let v = assert_error(resp, status);
    assert_eq!(v["exception"], exception, "{v}");
    assert_eq!(v["code"], status, "{v}");
    assert!(v["phrase"].as_str().is_some_and(|p| !p.is_empty()), "{v}");
    v
}

/// Polls `f` every 50 ms until it returns `Some` (at most `limit`); panics with `what`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
