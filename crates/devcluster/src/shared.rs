//! One control plane per test binary, started on first use and torn down when the process
//! exits — normally, after a failed test, or killed (the processes have PR_SET_PDEATHSIG).

use crate::{ControlPlane, ControlPlaneInfo, Options};
use anyhow::{Result, anyhow};
use std::sync::{Mutex, OnceLock};

static SHARED: OnceLock<std::result::Result<ControlPlaneInfo, String>> = OnceLock::new();
/// The plane itself, so the exit hook can stop it (statics are never dropped).
static OWNED: Mutex<Option<ControlPlane>> = Mutex::new(None);

/// The control plane shared by every test in this binary.
pub fn shared() -> Result<&'static ControlPlaneInfo> {
    SHARED
        .get_or_init(start_on_keeper_thread)
        .as_ref()
        .map_err(|e| anyhow!("shared control plane: {e}"))
}

/// PR_SET_PDEATHSIG fires when the *thread* that started a child exits, so the plane is started
/// from a thread that lives as long as the process.
fn start_on_keeper_thread() -> std::result::Result<ControlPlaneInfo, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("devcluster-keeper".into())
        .spawn(move || {
            let started = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| {
                    rt.block_on(async { ControlPlane::start(Options::for_tests()?).await })
                });
            match started {
                Ok(plane) => {
                    let info = plane.info.clone();
                    if let Ok(mut owned) = OWNED.lock() {
                        *owned = Some(plane);
                    }
                    // SAFETY: registers a plain extern "C" function with no captured state.
                    unsafe { libc::atexit(stop_at_exit) };
                    let _ = tx.send(Ok(info));
                    loop {
                        std::thread::park();
                    }
                }
                Err(err) => {
                    let _ = tx.send(Err(format!("{err:#}")));
                }
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())?
}

extern "C" fn stop_at_exit() {
    if let Ok(mut owned) = OWNED.lock() {
        drop(owned.take());
    }
}
