//! Ory Hydra (built by `hack/build-tools.sh hydra`) as the control plane's OpenID Connect provider:
//! HTTPS on loopback with a certificate from the plane's CA, its store a SQLite file (WAL, with a
//! busy timeout: the in-memory store fails overlapping flows). kube-apiserver
//! trusts it through `--authentication-config`. Hydra has no login screen of its own: it sends the
//! browser to a login app (`login_url`), which tests play through Hydra's admin API.

use crate::pki::{Ca, write_private};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the control plane's identity provider is and how to reach it as a client.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct IdentityInfo {
    /// The issuer (public) URL, with its trailing slash, as in the tokens' `iss`.
    pub issuer: String,
    /// Hydra's admin API (clients; accepting logins and consents).
    pub admin_url: String,
    /// The CA that signed Hydra's certificate (PEM file): the cluster CA.
    pub ca_file: PathBuf,
}

/// How to start the identity provider with the plane.
#[derive(Clone, Debug)]
pub struct IdentityOptions {
    /// A command that prints the AuthenticationConfiguration for the API server; it is run with
    /// `--issuer URL --ca-file FILE` appended (the operator's `authentication-config`).
    pub authentication_config_command: Vec<String>,
    /// Hydra's login and consent app (never contacted when a test plays them).
    pub login_url: String,
    pub consent_url: String,
}

pub(crate) struct Started {
    pub info: IdentityInfo,
    pub command: Command,
    pub public_port: u16,
}

/// Writes Hydra's certificate and configuration; the caller spawns `command`.
pub(crate) fn prepare(dir: &Path, ca: &Ca, options: &IdentityOptions, bin: &Path) -> Result<Started> {
    let hydra = bin.join("hydra");
    if !hydra.exists() {
        bail!("hydra not found in {}: build it with `hack/build-tools.sh hydra` (or `make tools`)", bin.display());
    }
    let state = dir.join("hydra");
    std::fs::create_dir_all(&state)?;
    let serving = ca.serving("hydra", &["localhost", "127.0.0.1"])?;
    write_private(&state.join("tls.crt"), &serving.cert_pem)?;
    write_private(&state.join("tls.key"), &serving.key_pem)?;
    let (public_port, admin_port) = (crate::free_port()?, crate::free_port()?);
    let issuer = format!("https://127.0.0.1:{public_port}/");
    let dsn =
        format!("sqlite://{}?_fk=true&_busy_timeout=10000&_journal_mode=WAL", state.join("hydra.sqlite").display());
    let migrate = Command::new(&hydra).args(["migrate", "sql", "up", "-e", "--yes"]).env("DSN", &dsn).output()?;
    if !migrate.status.success() {
        bail!("hydra migrate sql up failed: {}", String::from_utf8_lossy(&migrate.stderr));
    }
    let config = serde_json::json!({
        "dsn": dsn,
        "log": { "level": "warn" },
        "serve": {
            "public": { "host": "127.0.0.1", "port": public_port },
            "admin": { "host": "127.0.0.1", "port": admin_port },
            "tls": {
                "enabled": true,
                "cert": { "path": state.join("tls.crt") },
                "key": { "path": state.join("tls.key") },
            },
        },
        "urls": {
            "self": { "issuer": issuer },
            "login": options.login_url,
            "consent": options.consent_url,
        },
        "ttl": { "id_token": "1h", "access_token": "1h" },
        "secrets": { "system": ["atlantiplex-devcluster-hydra-system-secret-in-memory"] },
    });
    let config_path = state.join("hydra.json");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config)?)?;
    let mut command = Command::new(hydra);
    command.args(["serve", "all", "--config"]).arg(&config_path).arg("--sqa-opt-out");
    let ca_file = dir.join("pki").join("ca.crt");
    let info = IdentityInfo { issuer, admin_url: format!("https://127.0.0.1:{admin_port}"), ca_file };
    Ok(Started { info, command, public_port })
}

/// Runs the authentication-config command and writes its output for `--authentication-config`.
pub(crate) fn write_authentication_config(
    dir: &Path,
    info: &IdentityInfo,
    options: &IdentityOptions,
) -> Result<PathBuf> {
    let (program, args) =
        options.authentication_config_command.split_first().context("authentication_config_command is empty")?;
    let output = Command::new(program)
        .args(args)
        .arg("--issuer")
        .arg(&info.issuer)
        .arg("--ca-file")
        .arg(&info.ca_file)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!("{program} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let path = dir.join("authentication-config.yaml");
    std::fs::write(&path, &output.stdout)?;
    Ok(path)
}
