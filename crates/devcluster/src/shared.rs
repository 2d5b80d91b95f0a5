//! Things that live as long as the test process: the shared control plane and helper processes
//! (an operator under test). They are stopped when the process exits — normally, after failed
//! tests — and die with it when it is killed (PR_SET_PDEATHSIG).
//!
//! PR_SET_PDEATHSIG fires when the *thread* that started a child exits, and test threads end
//! with their test, so children are started on one "keeper" thread that lives as long as the
//! process.

use crate::process::{Lifetime, Proc};
use crate::{ControlPlane, ControlPlaneInfo, Options};
use anyhow::{Result, anyhow};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, Once, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

static KEEPER: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
static SHARED: OnceLock<std::result::Result<ControlPlaneInfo, String>> = OnceLock::new();
/// Owned here so the exit hook can stop them: statics are never dropped.
static PLANE: Mutex<Option<ControlPlane>> = Mutex::new(None);
static PROCS: Mutex<Vec<Proc>> = Mutex::new(Vec::new());
static EXIT_HOOK: Once = Once::new();

/// Runs `job` on the keeper thread and returns its result.
fn on_keeper<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let sender = KEEPER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("devcluster-keeper".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
                // The sender lives in a static, so this thread never gets here; park to be sure.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawning the devcluster keeper thread");
        Mutex::new(tx)
    });
    let (tx, rx) = channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(job());
    });
    sender.lock().map_err(|_| anyhow!("keeper poisoned"))?.send(job).map_err(|_| anyhow!("keeper thread is gone"))?;
    Ok(rx.recv()?)
}

fn register_exit_hook() {
    EXIT_HOOK.call_once(|| {
        // SAFETY: registers a plain extern "C" function with no captured state.
        unsafe { libc::atexit(stop_at_exit) };
    });
}

extern "C" fn stop_at_exit() {
    if let Ok(mut procs) = PROCS.lock() {
        for proc in procs.iter_mut() {
            proc.kill();
        }
        procs.clear();
    }
    if let Ok(mut plane) = PLANE.lock() {
        drop(plane.take());
    }
}

/// The control plane shared by every test in this binary, started on first use.
pub fn shared() -> Result<&'static ControlPlaneInfo> {
    shared_with(|options| options)
}

/// Like [`shared`], with options changed by `configure` (e.g. an identity provider). The first
/// call of the test binary starts the plane: a binary uses one of the two, always the same way.
pub fn shared_with(configure: impl FnOnce(Options) -> Options + Send + 'static) -> Result<&'static ControlPlaneInfo> {
    SHARED
        .get_or_init(|| {
            let started = on_keeper(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(async { ControlPlane::start(configure(Options::for_tests()?)).await })
            });
            match started {
                Ok(Ok(plane)) => {
                    let info = plane.info.clone();
                    if let Ok(mut slot) = PLANE.lock() {
                        *slot = Some(plane);
                    }
                    register_exit_hook();
                    Ok(info)
                }
                Ok(Err(err)) | Err(err) => Err(format!("{err:#}")),
            }
        })
        .as_ref()
        .map_err(|e| anyhow!("shared control plane: {e}"))
}

/// Starts `cmd` for the rest of the test process (logging to `<log_dir>/<name>.log`) and
/// returns its pid.
pub fn spawn_for_process_lifetime(name: &'static str, cmd: Command, log_dir: &Path) -> Result<u32> {
    let log_dir = log_dir.to_path_buf();
    let proc = on_keeper(move || Proc::spawn(name, cmd, &log_dir, Lifetime::Attached))??;
    let pid = proc.child.id();
    PROCS.lock().map_err(|_| anyhow!("process list poisoned"))?.push(proc);
    register_exit_hook();
    Ok(pid)
}
