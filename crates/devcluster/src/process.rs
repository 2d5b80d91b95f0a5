//! Child processes of the control plane and free loopback ports.

use anyhow::{Context, Result};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// How a control-plane process relates to the program that started it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// Dies with the starting thread's process (tests): PR_SET_PDEATHSIG covers SIGKILL too.
    Attached,
    /// Outlives the starting program in its own session (`devcluster up`, `make cluster-up`).
    Detached,
}

pub struct Proc {
    pub name: &'static str,
    pub child: Child,
}

impl Proc {
    pub fn spawn(name: &'static str, mut cmd: Command, log_dir: &Path, lifetime: Lifetime) -> Result<Self> {
        let log = File::create(log_dir.join(format!("{name}.log")))?;
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        match lifetime {
            Lifetime::Attached => {
                // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
                unsafe {
                    cmd.pre_exec(|| {
                        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            Lifetime::Detached => {
                cmd.process_group(0);
            }
        }
        let child = cmd.spawn().with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        Ok(Self { name, child })
    }

    /// Fails with the tail of the process log when the process has already exited.
    pub fn ensure_running(&mut self, log_dir: &Path) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "{} exited ({status}); last log lines:\n{}",
                self.name,
                log_tail(&log_dir.join(format!("{}.log", self.name)), 25)
            );
        }
        Ok(())
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A port that was free a moment ago. The caller retries start-up if another process takes it.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Sends SIGTERM then SIGKILL to a process started by an earlier `devcluster up`.
pub fn kill_pid(pid: i32) {
    // SAFETY: plain syscalls on a pid we recorded; a stale pid only yields ESRCH.
    unsafe {
        if libc::kill(pid, libc::SIGTERM) != 0 {
            return;
        }
    }
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if !pid_alive(pid) {
            return;
        }
    }
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

pub fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}
