//! A test CA and server certificate, made with `openssl`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A test CA and a server certificate it signed, valid for `127.0.0.1`, `::1` and `localhost`,
/// made with `openssl` (scripts/deps installs it). PEM files, valid for two days.
pub struct TestCerts {
    /// The CA certificate (`ca.pem`): what a client must trust.
    pub ca: PathBuf,
    /// The server certificate (`server.pem`).
    pub cert: PathBuf,
    /// The server's private key (`server.key`).
    pub key: PathBuf,
}

impl TestCerts {
    /// Makes a new CA and server certificate in `dir` (created); another call in another dir
    /// gives an unrelated CA.
    pub fn make(dir: &Path) -> TestCerts {
        fs::create_dir_all(dir).expect("certs dir");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::null())
                .output()
                .expect("openssl (scripts/deps installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let new_key = ["-newkey", "rsa:2048", "-nodes"];
        run(&[
            &["req", "-x509", "-days", "2"][..],
            &new_key,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=gms-test-ca",
            ],
        ]
        .concat());
        run(&[
            &["req"][..],
            &new_key,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat());
        fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n",
        )
        .expect("ext.cnf");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        TestCerts {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}
