//! A throwaway PostgreSQL server for tests and benchmarks: `initdb` into a temporary directory, `postgres` on a
//! free loopback port (and a Unix socket in that directory), databases made with `createdb`.
//!
//! - Binaries: `$ATLANTIPLEX_PG_BIN` (a directory), else the directory `postgres` on `PATH` resolves to, else
//!   the newest `/usr/lib/postgresql/*/bin`. Missing binaries are an error that says so, never a skip.
//! - PostgreSQL refuses to run as root: as root the server runs as the `postgres` user (or `nobody`).
//! - Servers die with the process that started them, also when it is killed (PR_SET_PDEATHSIG, set on a
//!   keeper thread that lives as long as the process), are stopped by an exit hook after the last test, and
//!   their directories are removed then (or by the next start, if the process was killed).

use anyhow::{Context, Result, anyhow, bail};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

const DIR_PREFIX: &str = "atlantiplex-pg-";
const SUPERUSER: &str = "postgres";

/// A running (or stopped) server and its data directory.
#[derive(Debug)]
pub struct PgServer {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    pid: Option<u32>,
}

impl PgServer {
    /// Creates a cluster and starts it.
    pub fn start() -> Result<PgServer> {
        register_exit_hook();
        remove_stale_dirs();
        let bin = bin_dir()?;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock")).with_context(|| format!("creating {}", dir.display()))?;
        let run_as = unprivileged_user()?;
        if let Some((uid, gid)) = run_as {
            for d in [dir.clone(), dir.join("sock")] {
                chown(&d, uid, gid)?;
            }
        }
        lock(&DIRS).push(dir.clone());
        let mut server = PgServer { dir, port: 0, bin, run_as, pid: None };
        server.initdb()?;
        let mut last = None;
        for _ in 0..3 {
            server.port = free_port()?;
            match server.start_again() {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("postgres did not start")))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE` (trust authentication on loopback).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", SUPERUSER, name])
            .stdin(Stdio::null())
            .output()
            .context("running createdb")?;
        if !out.status.success() {
            bail!("createdb {name} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(self.url(name))
    }

    /// Fast shutdown (SIGINT: clients are disconnected, data is flushed), as an administrator would.
    pub fn stop(&mut self) -> Result<()> {
        self.signal_and_wait(libc::SIGINT, Duration::from_secs(30))
    }

    /// SIGKILL of the whole process group: a crash.
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: plain syscall on a process group we created.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
        let _ = self.signal_and_wait(libc::SIGKILL, Duration::from_secs(10));
    }

    fn signal_and_wait(&mut self, signal: i32, grace: Duration) -> Result<()> {
        let Some(pid) = self.pid.take() else { return Ok(()) };
        let Some(mut child) = take_child(pid) else { return Ok(()) };
        // SAFETY: plain syscall on our own child.
        unsafe { libc::kill(pid as i32, signal) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        child.wait()?;
        bail!("postgres did not stop within {grace:?}; killed it")
    }

    /// Starts the server (again) on its data directory and port, and waits until it accepts connections.
    pub fn start_again(&mut self) -> Result<()> {
        if self.pid.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("postgres.log"))?;
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.join("sock"))
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.prepare(&mut cmd);
        cmd.process_group(0);
        let child = on_keeper(move || cmd.spawn())?.context("starting postgres")?;
        let pid = child.id();
        lock(&CHILDREN).push((pid, child));
        self.pid = Some(pid);
        self.wait_ready().inspect_err(|_| self.kill())
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let exited = match self.pid {
                Some(pid) => {
                    lock(&CHILDREN).iter_mut().find(|(p, _)| *p == pid).map(|(_, c)| c.try_wait()).transpose()?
                }
                None => None,
            };
            if let Some(Some(status)) = exited {
                bail!("postgres exited ({status}); its log:\n{}", self.log_tail());
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-t", "1"])
                .status()
                .context("running pg_isready")?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("postgres was not ready within 60s; its log:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn initdb(&self) -> Result<()> {
        let mut cmd = Command::new(self.bin.join("initdb"));
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"])
            .stdin(Stdio::null());
        self.prepare(&mut cmd);
        let out = cmd.output().with_context(|| format!("running {}", self.bin.join("initdb").display()))?;
        if !out.status.success() {
            bail!("initdb failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// Drops root (PostgreSQL refuses it) and ties the child's life to ours.
    fn prepare(&self, cmd: &mut Command) {
        let run_as = self.run_as;
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if let Some((uid, gid)) = run_as
                    && (libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0)
                {
                    return Err(std::io::Error::last_os_error());
                }
                // After setuid: changing credentials clears the parent-death signal.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        lock(&DIRS).retain(|d| d != &self.dir);
    }
}

/// One server per process, started on first use (tests create a database each on it).
pub fn shared() -> Result<&'static PgServer> {
    static SHARED: OnceLock<std::result::Result<PgServer, String>> = OnceLock::new();
    SHARED.get_or_init(|| PgServer::start().map_err(|e| format!("{e:#}"))).as_ref().map_err(|e| anyhow!("{e}"))
}

/// Where the PostgreSQL server binaries are.
pub fn bin_dir() -> Result<PathBuf> {
    let has_all = |dir: &Path| ["initdb", "postgres", "pg_isready", "createdb"].iter().all(|b| dir.join(b).is_file());
    if let Some(dir) = std::env::var_os("ATLANTIPLEX_PG_BIN") {
        let dir = PathBuf::from(dir);
        if has_all(&dir) {
            return Ok(dir);
        }
        bail!("ATLANTIPLEX_PG_BIN={} lacks initdb, postgres, pg_isready or createdb", dir.display());
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("postgres")).collect::<Vec<_>>())
        .unwrap_or_default();
    for candidate in on_path {
        if let Ok(real) = std::fs::canonicalize(&candidate)
            && let Some(dir) = real.parent()
            && has_all(dir)
        {
            return Ok(dir.to_path_buf());
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|d| has_all(d)).collect())
        .unwrap_or_default();
    versions.sort_by_key(|d| {
        d.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().ok_or_else(|| {
        anyhow!(
            "PostgreSQL server binaries (initdb, postgres, pg_isready, createdb) not found: install PostgreSQL \
             (Debian: apt-get install postgresql) or set ATLANTIPLEX_PG_BIN to their directory"
        )
    })
}

/// As root, the uid/gid to run PostgreSQL as.
fn unprivileged_user() -> Result<Option<(u32, u32)>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in [c"postgres", c"nobody"] {
        // SAFETY: getpwnam returns a pointer to static storage or null; read at once.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if !pw.is_null() {
            // SAFETY: non-null per the check above.
            let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
            return Ok(Some((uid, gid)));
        }
    }
    bail!("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as")
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| format!("chown {}", path.display()))
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Directories of servers of processes that no longer exist (killed before their exit hook ran).
fn remove_stale_dirs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(DIR_PREFIX).and_then(|r| r.split('-').next()) else { continue };
            let Ok(pid) = pid.parse::<i32>() else { continue };
            // SAFETY: signal 0 only checks that the process exists.
            let alive = unsafe { libc::kill(pid, 0) } == 0
                || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

static CHILDREN: Mutex<Vec<(u32, Child)>> = Mutex::new(Vec::new());
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn take_child(pid: u32) -> Option<Child> {
    let mut children = lock(&CHILDREN);
    let index = children.iter().position(|(p, _)| *p == pid)?;
    Some(children.swap_remove(index).1)
}

fn lock<T>(m: &'static Mutex<T>) -> std::sync::MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` on a thread that lives as long as the process: PR_SET_PDEATHSIG fires when the *thread* that
/// started a child exits, and test threads end with their test.
fn on_keeper<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    static KEEPER: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    let sender = KEEPER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let spawned = std::thread::Builder::new().name("pgserver-keeper".into()).spawn(move || {
            for job in rx {
                job();
            }
            loop {
                std::thread::park();
            }
        });
        if let Err(e) = spawned {
            eprintln!("pgserver: cannot spawn its keeper thread: {e}");
        }
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
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // SAFETY: registers a plain extern "C" function with no captured state.
        unsafe { libc::atexit(stop_at_exit) };
    });
}

extern "C" fn stop_at_exit() {
    if let Ok(mut children) = CHILDREN.lock() {
        for (pid, child) in children.iter_mut() {
            // SAFETY: plain syscall on our own child's process group.
            unsafe { libc::kill(-(*pid as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }
    if let Ok(dirs) = DIRS.lock() {
        for dir in dirs.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
