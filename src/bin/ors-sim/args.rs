//! The command line.

use crate::callback::CallbackConfig;
use crate::config::{default_status_script, parse_status_script, ScriptStep};

pub const DEFAULT_LOG_MAX: usize = 10_000;
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

/// The usage text printed with `--help` and after a bad argument.
pub const USAGE: &str =
    "usage: ors-sim --listen ADDR [--listen ADDR ...] [--control ADDR]\n       \
    [--status-script JSON|@FILE] [--log-max N] [--threads N] [--max-sessions N]\n       \
    [--tls-cert FILE --tls-key FILE]\n       \
    [--callback JSON|@FILE] [--gms-base URL] [--gms-auth USER:PASSWORD]";

/// The parsed command line.
#[derive(Debug)]
pub struct Args {
    pub listen: Vec<String>,
    pub control: Option<String>,
    pub status_script: Vec<ScriptStep>,
    pub log_max: usize,
    pub threads: usize,
    pub max_sessions: usize,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// Callback strategy mode, when on.
    pub callback: Option<CallbackConfig>,
    pub help: bool,
}

/// Parses argv (without the program name); `--flag value` and `--flag=value` both work.
pub fn parse_args<I: IntoIterator<Item = String>>(argv: I) -> Result<Args, String> {
    let mut args = Args {
        listen: Vec::new(),
        control: None,
        status_script: default_status_script(),
        log_max: DEFAULT_LOG_MAX,
        threads: 1,
        max_sessions: DEFAULT_MAX_SESSIONS,
        tls_cert: None,
        tls_key: None,
        callback: None,
        help: false,
    };
    let mut callback: Option<CallbackConfig> = None;
    let mut gms_base = None;
    let mut gms_auth = None;
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => args.help = true,
            "--listen" => {
                let v = take_value(&flag, inline, &mut it)?;
                // Port 0 may repeat: each bind picks its own port.
                if !v.ends_with(":0") && args.listen.contains(&v) {
                    return Err(format!("--listen {v} given twice"));
                }
                args.listen.push(v);
            }
            "--control" => args.control = Some(take_value(&flag, inline, &mut it)?),
            "--status-script" => {
                let text = json_or_file(&flag, take_value(&flag, inline, &mut it)?)?;
                args.status_script =
                    parse_status_script(&text).map_err(|e| format!("--status-script: {e}"))?;
            }
            "--log-max" => {
                args.log_max =
                    parse_num(&flag, &take_value(&flag, inline, &mut it)?, 0, 10_000_000)?
            }
            "--threads" => {
                args.threads = parse_num(&flag, &take_value(&flag, inline, &mut it)?, 1, 256)?
            }
            "--max-sessions" => {
                args.max_sessions =
                    parse_num(&flag, &take_value(&flag, inline, &mut it)?, 1, 100_000_000)?
            }
            "--tls-cert" => args.tls_cert = Some(take_value(&flag, inline, &mut it)?),
            "--tls-key" => args.tls_key = Some(take_value(&flag, inline, &mut it)?),
            "--callback" => {
                let text = json_or_file(&flag, take_value(&flag, inline, &mut it)?)?;
                let c: CallbackConfig =
                    serde_json::from_str(&text).map_err(|e| format!("--callback: {e}"))?;
                callback = Some(c);
            }
            "--gms-base" => gms_base = Some(take_value(&flag, inline, &mut it)?),
            "--gms-auth" => {
                let v = take_value(&flag, inline, &mut it)?;
                let (user, password) = v
                    .split_once(':')
                    .ok_or("--gms-auth: expected USER:PASSWORD")?;
                gms_auth = Some((user.to_string(), password.to_string()));
            }
            _ => return Err(format!("unknown argument: {arg}")),
        }
    }
    if gms_base.is_some() || gms_auth.is_some() {
        let c = callback.get_or_insert_with(CallbackConfig::default);
        if let Some(base) = gms_base {
            c.gms_base = Some(base);
        }
        if let Some((user, password)) = gms_auth {
            c.gms_user = Some(user);
            c.gms_password = Some(password);
        }
    }
    if let Some(c) = &callback {
        c.validate().map_err(|e| format!("--callback: {e}"))?;
    }
    args.callback = callback;
    if !args.help && args.listen.is_empty() {
        return Err("at least one --listen ADDR is required".into());
    }
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    Ok(args)
}

fn take_value(
    flag: &str,
    inline: Option<String>,
    it: &mut impl Iterator<Item = String>,
) -> Result<String, String> {
    match inline.or_else(|| it.next()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("{flag} needs a value")),
    }
}

/// The value itself, or with a leading `@` the content of the file it names.
fn json_or_file(flag: &str, v: String) -> Result<String, String> {
    match v.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("{flag}: cannot read {path}: {e}"))
        }
        None => Ok(v),
    }
}

fn parse_num(flag: &str, v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{flag}: expected a number in {min}..={max}, got {v:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn argv_parsing() {
        let a = parse_args(argv(&[
            "--listen",
            "127.0.0.1:7210",
            "--listen=127.0.0.1:7211",
            "--control",
            "127.0.0.1:7299",
            "--log-max",
            "5",
            "--threads=2",
            "--status-script",
            r#"[{"after_ms":0,"body":{"s":1}}]"#,
        ]))
        .unwrap();
        assert_eq!(a.listen, ["127.0.0.1:7210", "127.0.0.1:7211"]);
        assert_eq!(a.control.as_deref(), Some("127.0.0.1:7299"));
        assert_eq!(
            (a.log_max, a.threads, a.max_sessions),
            (5, 2, DEFAULT_MAX_SESSIONS)
        );
        assert_eq!(a.status_script.len(), 1);
        assert!(a.callback.is_none());

        let d = parse_args(argv(&["--listen", "127.0.0.1:1"])).unwrap();
        assert_eq!(
            (d.log_max, d.threads, d.control),
            (DEFAULT_LOG_MAX, 1, None)
        );
        assert_eq!(d.status_script, default_status_script());

        assert!(parse_args(argv(&[])).is_err());
        assert!(parse_args(argv(&["--listen"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--bogus"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--threads", "0"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--log-max", "x"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--listen", "a:1"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--status-script", "{"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--tls-cert", "c.pem"])).is_err());
        let t = parse_args(argv(&[
            "--listen",
            "a:1",
            "--tls-cert",
            "c.pem",
            "--tls-key=k.pem",
        ]))
        .unwrap();
        assert_eq!(
            (t.tls_cert.as_deref(), t.tls_key.as_deref()),
            (Some("c.pem"), Some("k.pem"))
        );
        assert!(parse_args(argv(&["--help"])).unwrap().help);
    }

    #[test]
    fn callback_flags() {
        let a = parse_args(argv(&[
            "--listen",
            "a:1",
            "--callback",
            r#"{"dialog":"DialNumber","auto":false}"#,
            "--gms-base=http://127.0.0.1:8080/genesys/1",
            "--gms-auth",
            "admin:pa:ss",
        ]))
        .unwrap();
        let c = a.callback.unwrap();
        assert!(!c.auto);
        assert_eq!(
            c.gms_base.as_deref(),
            Some("http://127.0.0.1:8080/genesys/1")
        );
        assert_eq!(
            (c.gms_user.as_deref(), c.gms_password.as_deref()),
            (Some("admin"), Some("pa:ss"))
        );
        // --gms-base alone turns the mode on with the defaults.
        let b = parse_args(argv(&["--listen", "a:1", "--gms-base", "http://h:1"])).unwrap();
        assert_eq!(b.callback.unwrap().start_requests, ["start"]);

        let bad = |extra: &[&str]| {
            let mut v = vec!["--listen", "a:1"];
            v.extend_from_slice(extra);
            parse_args(argv(&v)).is_err()
        };
        assert!(bad(&["--callback", "{"]));
        assert!(bad(&["--callback", r#"{"bogus":1}"#]));
        assert!(bad(&["--callback", r#"{"dialog":"Nope"}"#]));
        assert!(bad(&["--gms-base", "https://h:1"]));
        assert!(bad(&["--gms-base", "ftp://h"]));
        assert!(bad(&["--gms-auth", "nocolon"]));
        assert!(bad(&["--callback", r#"{"steps":[{"state":"DONE"}]}"#]));
    }
}
