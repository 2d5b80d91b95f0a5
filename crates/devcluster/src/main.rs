//! `devcluster`: start, stop and mint credentials for the local control plane.
//! The Makefile's cluster-up / cluster-down targets call this.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use devcluster::{ControlPlane, ControlPlaneInfo, Lifetime, Options, client_from, tools_bin};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(about = "A real local Kubernetes control plane as plain processes")]
struct Cli {
    /// State directory: PKI, etcd data, logs, kubeconfig.
    #[arg(long, global = true, default_value = "target/cluster", env = "DEVCLUSTER_DIR")]
    dir: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start in the background (a no-op when already running) and print the KUBECONFIG line.
    Up {
        /// Also start Ory Hydra as the cluster's OpenID Connect provider; this command (run with
        /// `--issuer URL --ca-file FILE` appended) prints the API server's AuthenticationConfiguration.
        #[arg(long, value_delimiter = ' ', num_args = 1..)]
        identity_config_command: Option<Vec<String>>,
        /// Where the development login page listens (with --identity-config-command).
        #[arg(long, default_value = "127.0.0.1:8446")]
        login_bind: std::net::SocketAddr,
        /// The people who may sign in at the development login page.
        #[arg(long, default_value = "hack/dev-users.yaml")]
        users: PathBuf,
        /// The tenant API's sign-in callback, registered for the console's OAuth client.
        #[arg(long, default_value = "https://127.0.0.1:8445/auth/callback")]
        console_redirect: String,
    },
    /// Serve the development login page for Hydra (started by `up`).
    LoginApp {
        #[arg(long)]
        users: PathBuf,
        #[arg(long)]
        bind: std::net::SocketAddr,
    },
    /// Stop every process and remove the state directory.
    Down,
    /// Exit 0 when the control plane is running and ready.
    Status,
    /// Write a kubeconfig for a non-admin user (client certificate; CN=user, O=groups).
    Kubeconfig {
        #[arg(long)]
        user: String,
        /// Group memberships (at most two, a limit of the certificate library).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Output path (default: <dir>/users/<user>.kubeconfig). The path is printed.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    server: String,
    pids: Vec<u32>,
    #[serde(default)]
    identity: Option<devcluster::IdentityInfo>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let dir = std::path::absolute(&cli.dir)?;
    match cli.command {
        Cmd::Up { identity_config_command, login_bind, users, console_redirect } => {
            let identity = identity_config_command.map(|command| DevIdentity {
                options: devcluster::IdentityOptions {
                    authentication_config_command: command,
                    login_url: format!("http://{login_bind}/login"),
                    consent_url: format!("http://{login_bind}/consent"),
                },
                login_bind,
                users: std::path::absolute(users).unwrap_or_default(),
                console_redirect,
            });
            up(&dir, identity).await
        }
        Cmd::LoginApp { users, bind } => {
            let written = std::fs::read(dir.join(IDENTITY_FILE))
                .context("no identity provider in this control plane: run `make cluster-up`")?;
            let identity: devcluster::IdentityInfo = serde_json::from_slice(&written)?;
            let users = devcluster::login_app::read_users(&users)?;
            devcluster::login_app::serve(devcluster::idp::Idp::new(&identity)?, users, bind).await
        }
        Cmd::Down => {
            down(&dir);
            eprintln!("control plane in {} stopped and removed", dir.display());
            Ok(())
        }
        Cmd::Status => {
            let state = running(&dir).await.context("control plane is not running")?;
            println!("running: {} (pids {:?})", state.server, state.pids);
            Ok(())
        }
        Cmd::Kubeconfig { user, groups, out } => {
            let state = read_state(&dir).context("control plane is not running; run `make cluster-up`")?;
            let info = info(&dir, &state)?;
            let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
            let minted = info.mint_kubeconfig(&user, &groups)?;
            let path = match out {
                Some(out) => {
                    std::fs::copy(&minted, &out)?;
                    out
                }
                None => minted,
            };
            println!("{}", path.display());
            Ok(())
        }
    }
}

/// Where `up` records the identity provider for `login-app`.
const IDENTITY_FILE: &str = "identity.json";

/// The development identity provider of `up`: Hydra, its OAuth clients and the login page.
struct DevIdentity {
    options: devcluster::IdentityOptions,
    login_bind: std::net::SocketAddr,
    users: PathBuf,
    console_redirect: String,
}

async fn up(dir: &Path, identity: Option<DevIdentity>) -> Result<()> {
    let kubeconfig = dir.join("kubeconfig");
    if let Some(state) = running(dir).await {
        eprintln!("control plane already running at {}", state.server);
    } else {
        down(dir);
        let opts = Options {
            dir: dir.to_path_buf(),
            tools_bin: tools_bin()?,
            lifetime: Lifetime::Detached,
            keep: true,
            audit: false,
            identity: identity.as_ref().map(|i| i.options.clone()),
        };
        let started = std::time::Instant::now();
        let plane = ControlPlane::start(opts).await?;
        let mut state = State { server: plane.server.clone(), pids: plane.pids(), identity: plane.identity.clone() };
        if let (Some(dev), Some(info)) = (&identity, &plane.identity) {
            let login_app = dev_identity(dir, dev, info, &state.server).await?;
            state.pids.push(login_app);
        }
        std::fs::write(dir.join("state.json"), serde_json::to_vec_pretty(&state)?)?;
        plane.into_detached();
        eprintln!("control plane ready at {} in {:.1?}", state.server, started.elapsed());
    }
    println!("export KUBECONFIG={}", kubeconfig.display());
    Ok(())
}

/// Registers the OAuth clients of kubectl and the console, starts the login page, and writes what the
/// tenant API (identity.env) and kubectl (sso.kubeconfig) need. Returns the login page's pid.
async fn dev_identity(dir: &Path, dev: &DevIdentity, info: &devcluster::IdentityInfo, server: &str) -> Result<u32> {
    let idp = devcluster::idp::Idp::new(info)?;
    idp.ensure_client(serde_json::json!({
        "client_id": "kubectl", "client_name": "kubectl (atlantiplex-operator login)",
        "redirect_uris": ["http://127.0.0.1:8000/callback"], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"], "response_types": ["code"], "scope": "openid email groups",
    }))
    .await?;
    let secret_file = dir.join("hydra").join("console-client-secret");
    let mut random = [0u8; 24];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut random)?;
    let secret = format!("dev-console-{}", base64_encode(&random).replace(['+', '/', '='], ""));
    devcluster::pki::write_private(&secret_file, &secret)?;
    idp.ensure_client(serde_json::json!({
        "client_id": "atlantiplex-console", "client_name": "Atlantiplex console", "client_secret": secret,
        "redirect_uris": [dev.console_redirect], "token_endpoint_auth_method": "client_secret_basic",
        // The refresh token renews the ID token the console makes changes with (`--oidc-offline-access`).
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "scope": "openid email groups offline_access",
    }))
    .await?;
    std::fs::write(
        dir.join("identity.env"),
        format!(
            "ATLANTIPLEX_OIDC_ISSUER={}\nATLANTIPLEX_OIDC_CA_FILE={}\nATLANTIPLEX_OIDC_CLIENT_SECRET_FILE={}\n\
             ATLANTIPLEX_OIDC_OFFLINE_ACCESS=true\n",
            info.issuer,
            info.ca_file.display(),
            secret_file.display()
        ),
    )?;
    let operator = dev.options.authentication_config_command.first().cloned().unwrap_or_default();
    let operator = std::path::absolute(&operator)?;
    let ca = std::fs::read(&info.ca_file)?;
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "sso",
        "clusters": [{"name": "atlantiplex-dev", "cluster": {"server": server, "certificate-authority-data": base64_encode(&ca)}}],
        "contexts": [{"name": "sso", "context": {"cluster": "atlantiplex-dev", "user": "sso"}}],
        "users": [{"name": "sso", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": operator,
            "args": ["login", "--issuer", info.issuer, "--ca-file", info.ca_file],
            "interactiveMode": "IfAvailable", "provideClusterInfo": false,
        }}}],
    });
    std::fs::write(dir.join("sso.kubeconfig"), serde_json::to_string_pretty(&kubeconfig)?)?;
    let mut login_app = std::process::Command::new(std::env::current_exe()?);
    login_app
        .arg("--dir")
        .arg(dir)
        .arg("login-app")
        .arg("--users")
        .arg(&dev.users)
        .arg("--bind")
        .arg(dev.login_bind.to_string());
    std::fs::write(dir.join(IDENTITY_FILE), serde_json::to_vec_pretty(info)?)?;
    devcluster::spawn_detached("login-app", login_app, &dir.join("logs"))
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn read_state(dir: &Path) -> Option<State> {
    serde_json::from_slice(&std::fs::read(dir.join("state.json")).ok()?).ok()
}

fn info(dir: &Path, state: &State) -> Result<ControlPlaneInfo> {
    Ok(ControlPlaneInfo {
        dir: dir.to_path_buf(),
        server: state.server.clone(),
        kubeconfig: dir.join("kubeconfig"),
        tools_bin: tools_bin()?,
        identity: state.identity.clone(),
    })
}

/// The recorded state, if every recorded process is alive and the apiserver answers /readyz.
async fn running(dir: &Path) -> Option<State> {
    let state = read_state(dir)?;
    if !state.pids.iter().all(|pid| devcluster::pid_alive(*pid as i32)) {
        return None;
    }
    let client = client_from(&dir.join("kubeconfig")).await.ok()?;
    let request = http::Request::get("/readyz").body(Vec::new()).ok()?;
    client.request_text(request).await.ok().filter(|body| body.trim() == "ok")?;
    Some(state)
}

fn down(dir: &Path) {
    if let Some(state) = read_state(dir) {
        for pid in state.pids.iter().rev() {
            devcluster::kill_pid(*pid as i32);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
