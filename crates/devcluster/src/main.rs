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
        /// Hydra's login and consent app (with --identity-config-command).
        #[arg(long, default_value = "https://127.0.0.1:8446/auth/dev-login")]
        login_url: String,
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
        Cmd::Up { identity_config_command, login_url } => {
            let identity = identity_config_command.map(|command| devcluster::IdentityOptions {
                authentication_config_command: command,
                consent_url: login_url.replace("login", "consent"),
                login_url,
            });
            up(&dir, identity).await
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

async fn up(dir: &Path, identity: Option<devcluster::IdentityOptions>) -> Result<()> {
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
            identity,
        };
        let started = std::time::Instant::now();
        let plane = ControlPlane::start(opts).await?;
        let state = State { server: plane.server.clone(), pids: plane.pids(), identity: plane.identity.clone() };
        std::fs::write(dir.join("state.json"), serde_json::to_vec_pretty(&state)?)?;
        plane.into_detached();
        eprintln!("control plane ready at {} in {:.1?}", state.server, started.elapsed());
    }
    println!("export KUBECONFIG={}", kubeconfig.display());
    Ok(())
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
