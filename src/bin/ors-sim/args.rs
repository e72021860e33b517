//! The command line.

use crate::config::{default_status_script, parse_status_script, ScriptStep};

pub const DEFAULT_LOG_MAX: usize = 10_000;
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

/// The usage text printed with `--help` and after a bad argument.
pub const USAGE: &str =
    "usage: ors-sim --listen ADDR [--listen ADDR ...] [--control ADDR]\n       \
    [--status-script JSON|@FILE] [--log-max N] [--threads N] [--max-sessions N]\n       \
    [--tls-cert FILE --tls-key FILE]";

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
        help: false,
    };
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
            _ => return Err(format!("unknown argument: {arg}")),
        }
    }
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
}
