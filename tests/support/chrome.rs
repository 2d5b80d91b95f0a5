//! A headless Chromium for end-to-end tests of web pages, driven over WebDriver: one chromedriver
//! per test binary (started on first use, for the rest of the process, by
//! `devcluster::spawn_for_process_lifetime`), and one browser session per test ([`Chrome::session`]),
//! each with a fresh profile, so cookies and storage never leak from one test to another.
//!
//! A `#[path]` module: `#[path = "support/chrome.rs"] mod chrome;` in a test file. Helpers panic with
//! the selector, the page's URL and its title when something is not there within [`DEADLINE`]; they
//! poll, never sleep a fixed time. A [`Page`] belongs to the tokio runtime it was opened on (use it
//! within one `#[tokio::test]` or one `on_runtime` block). When a test panics while a page is open,
//! the page's screenshot is saved as `target/screenshots/failed-<test>.png`.
//!
//! Chromium and chromedriver come from `$CHROMIUM` and `$CHROMEDRIVER`, else PATH, else /usr/bin
//! (Debian's `chromium` and `chromium-driver` packages; .ci/run installs them).
#![allow(dead_code)] // each test binary uses a different part

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a helper waits for an element, a text or a navigation before it fails the test.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Between two looks at the page.
const POLL: Duration = Duration::from_millis(100);
/// The window of every session (its viewport is the window less the browser's own frame).
pub const WINDOW: (u32, u32) = (1280, 900);
/// The tallest screenshot [`Page::screenshot`] takes of a long page.
const MAX_SCREENSHOT_HEIGHT: u32 = 6000;

/// `<temp>/atlantiplex-chrome-<pid>`: chromedriver's log, the browser launcher and the profiles of one test process.
const DIR_PREFIX: &str = "atlantiplex-chrome-";

/// Where screenshots go: `<workspace>/target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("screenshots")
}

/// The chromedriver of this test process.
pub struct Chrome {
    port: u16,
    /// Logs, the browser launcher and the sessions' profiles.
    dir: PathBuf,
    log: PathBuf,
    /// What chromedriver starts for a session (the launcher script, or Chromium itself).
    browser: PathBuf,
}

impl Chrome {
    /// The chromedriver of this test process, started (and waited for) on first use. Blocking:
    /// from async code prefer [`Chrome::session`].
    pub fn get() -> &'static Chrome {
        static CHROME: OnceLock<Chrome> = OnceLock::new();
        CHROME.get_or_init(Chrome::start)
    }

    /// A new browser session (its own window and profile) for one test.
    pub async fn session() -> Page {
        let chrome = tokio::task::spawn_blocking(Chrome::get).await.expect("starting chromedriver");
        chrome.new_page().await
    }

    /// chromedriver's WebDriver endpoint.
    pub fn webdriver_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// chromedriver's log (it includes the browsers' start-up errors).
    pub fn log(&self) -> &Path {
        &self.log
    }

    fn start() -> Chrome {
        let driver = find_program("CHROMEDRIVER", &["chromedriver"], "/usr/bin/chromedriver").unwrap_or_else(|| {
            panic!(
                "chromedriver not found: install chromium and chromium-driver (Debian: \
                 `apt-get install chromium chromium-driver`), or set CHROMEDRIVER"
            )
        });
        let chromium =
            find_program("CHROMIUM", &["chromium", "chromium-browser"], "/usr/bin/chromium").unwrap_or_else(|| {
                panic!(
                    "Chromium not found: install chromium and chromium-driver (Debian: \
                     `apt-get install chromium chromium-driver`), or set CHROMIUM"
                )
            });
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("chrome directory");
        let browser = launcher(&dir, &chromium);
        // A port that was free a moment ago may be taken by the time chromedriver binds it: try again.
        const NAMES: [&str; 3] = ["chromedriver", "chromedriver-2", "chromedriver-3"];
        let mut failures = Vec::new();
        for name in NAMES {
            let port = devcluster::free_port().expect("free port");
            let mut cmd = std::process::Command::new(&driver);
            cmd.arg(format!("--port={port}"));
            let pid = devcluster::spawn_for_process_lifetime(name, cmd, &dir).expect("starting chromedriver");
            let log = dir.join(format!("{name}.log"));
            let deadline = Instant::now() + DEADLINE;
            loop {
                if driver_ready(port) {
                    return Chrome { port, dir, log, browser };
                }
                let gone = exited(pid);
                if gone || Instant::now() > deadline {
                    devcluster::kill_pid(pid as i32);
                    let what = if gone { "exited" } else { "not ready within 60 s" };
                    failures.push(format!("{name} on port {port}: {what} (see {})", log.display()));
                    break;
                }
                std::thread::sleep(POLL);
            }
        }
        panic!("chromedriver ({}) did not start: {}", driver.display(), failures.join("; "));
    }

    /// Opens a browser session: Chromium with a fresh profile directory.
    pub async fn new_page(&self) -> Page {
        static SESSIONS: AtomicUsize = AtomicUsize::new(0);
        let n = SESSIONS.fetch_add(1, Ordering::SeqCst);
        let profile = self.dir.join(format!("profile-{n}"));
        let label = std::thread::current()
            .name()
            .filter(|name| *name != "main" && !name.starts_with("tokio-"))
            .map(|name| name.replace("::", "-"))
            .unwrap_or_else(|| format!("session-{n}"));
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--password-store=basic",
            // The servers under test present certificates of the test cluster's private CA.
            "--ignore-certificate-errors",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.push(format!("--window-size={},{}", WINDOW.0, WINDOW.1));
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "timeouts": { "pageLoad": DEADLINE.as_millis() as u64, "script": 30_000, "implicit": 0 },
            "goog:chromeOptions": { "binary": self.browser, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        // Under load a browser now and then fails to come up ("DevToolsActivePort file doesn't exist").
        let mut errors = Vec::new();
        for _ in 0..3 {
            let _ = std::fs::remove_dir_all(&profile);
            let connected = ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&self.webdriver_url())
                .await;
            match connected {
                Ok(client) => {
                    let session_id = client.session_id().await.ok().flatten().unwrap_or_default();
                    return Page { client, session_id, port: self.port, profile, label, closed: false };
                }
                Err(err) => errors.push(err.to_string()),
            }
        }
        panic!("no browser session: {}; see {}", errors.join("; "), self.log.display());
    }
}

/// One browser session (one window, one profile). Closed on drop if [`Page::close`] was not called.
pub struct Page {
    client: Client,
    session_id: String,
    port: u16,
    profile: PathBuf,
    /// Names the failure screenshot: the test's name (its thread's), else `session-N`.
    label: String,
    closed: bool,
}

impl Page {
    /// fantoccini's client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        if let Err(err) = self.client.goto(url).await {
            panic!("loading {url}: {err} ({})", self.whereabouts().await);
        }
    }

    pub async fn current_url(&self) -> String {
        self.client.current_url().await.map(|url| url.to_string()).unwrap_or_else(|err| panic!("current URL: {err}"))
    }

    pub async fn title(&self) -> String {
        self.client.title().await.unwrap_or_else(|err| panic!("page title: {err}"))
    }

    /// The page source (the DOM as it is now, serialized).
    pub async fn html(&self) -> String {
        self.client.source().await.unwrap_or_else(|err| panic!("page source: {err}"))
    }

    /// Runs JavaScript in the page (`arguments[0]`... are `args`) and returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<serde_json::Value>) -> serde_json::Value {
        match self.client.execute(script, args).await {
            Ok(value) => value,
            Err(err) => panic!("running script {script:?}: {err} ({})", self.whereabouts().await),
        }
    }

    /// The first element matching `css`, if there is one now.
    pub async fn find(&self, css: &str) -> Option<Element> {
        self.client.find(Locator::Css(css)).await.ok()
    }

    /// Waits until an element matches `css` and returns the first.
    pub async fn wait_for(&self, css: &str) -> Element {
        let deadline = Instant::now() + DEADLINE;
        let mut last_error = String::new();
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(err) if err.is_no_such_element() => {}
                // Mid-navigation a lookup can fail in other ways; an invalid selector never recovers.
                Err(err) if err.is_invalid_selector() => panic!("invalid CSS selector {css:?}: {err}"),
                Err(err) => last_error = format!(" (last error: {err})"),
            }
            if Instant::now() > deadline {
                panic!("no element matches {css:?} after {DEADLINE:?}{last_error} ({})", self.whereabouts().await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The rendered text of the first element matching `css` (waited for).
    pub async fn text(&self, css: &str) -> String {
        let element = self.wait_for(css).await;
        match element.text().await {
            Ok(text) => text,
            Err(err) => panic!("text of {css:?}: {err} ({})", self.whereabouts().await),
        }
    }

    /// The rendered texts of every element matching `css` now (none: empty).
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let elements = match self.client.find_all(Locator::Css(css)).await {
            Ok(elements) => elements,
            Err(err) => panic!("finding {css:?}: {err} ({})", self.whereabouts().await),
        };
        let mut texts = Vec::with_capacity(elements.len());
        for element in elements {
            texts.push(element.text().await.unwrap_or_else(|err| panic!("text of {css:?}: {err}")));
        }
        texts
    }

    /// Waits until an element matching `css` has a text containing `contains`; returns that text.
    pub async fn wait_for_text(&self, css: &str, contains: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let mut seen = Vec::new();
            if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
                for element in elements {
                    // An element may go away between the lookup and the read (a re-render).
                    if let Ok(text) = element.text().await {
                        if text.contains(contains) {
                            return text;
                        }
                        seen.push(text);
                    }
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "no element matching {css:?} has a text containing {contains:?} after {DEADLINE:?}; \
                     texts seen: {seen:?} ({})",
                    self.whereabouts().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the current URL satisfies `done` (`what` names the wait in the failure).
    pub async fn wait_for_url(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(url) = self.client.current_url().await
                && done(url.as_str())
            {
                return url.to_string();
            }
            if Instant::now() > deadline {
                panic!("waited {DEADLINE:?} for {what} ({})", self.whereabouts().await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types `value` into the input matching `css` (waited for), replacing what it held.
    pub async fn fill(&self, css: &str, value: &str) {
        let element = self.wait_for(css).await;
        let filled = async {
            element.clear().await?;
            element.send_keys(value).await
        };
        if let Err(err) = filled.await {
            panic!("filling {css:?}: {err} ({})", self.whereabouts().await);
        }
    }

    /// Clicks the element matching `css` once it is there and can be clicked.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let element = self.wait_for(css).await;
            // Not yet interactable, covered by another element or replaced: look again.
            match element.click().await {
                Ok(()) => return,
                Err(err) if Instant::now() > deadline => {
                    panic!("clicking {css:?}: {err} ({})", self.whereabouts().await)
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Submits the form matching `form_css` as a person would: a click on its submit button, or,
    /// when it has none, `requestSubmit()` (validation and submit handlers run either way).
    pub async fn submit(&self, form_css: &str) {
        let form = self.wait_for(form_css).await;
        let button = "button:not([type]), button[type=submit], input[type=submit], input[type=image]";
        let submitted = match form.find(Locator::Css(button)).await {
            Ok(button) => button.click().await,
            Err(err) if err.is_no_such_element() => {
                let form = serde_json::to_value(&form).expect("element reference");
                self.client.execute("arguments[0].requestSubmit()", vec![form]).await.map(drop)
            }
            Err(err) => Err(err),
        };
        if let Err(err) = submitted {
            panic!("submitting {form_css:?}: {err} ({})", self.whereabouts().await);
        }
    }

    /// Saves a PNG of the whole page (up to 6000 px tall) as `target/screenshots/<name>.png` and
    /// returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let size = self
            .client
            .execute(
                "const d = document.documentElement, b = document.body || d;\
                 return [Math.max(d.scrollHeight, b.scrollHeight), window.outerHeight - window.innerHeight];",
                vec![],
            )
            .await
            .ok();
        let (content, chrome) = size
            .and_then(|v| Some((v.get(0)?.as_u64()? as u32, v.get(1)?.as_u64().unwrap_or(0) as u32)))
            .unwrap_or((WINDOW.1, 0));
        let height = (content + chrome).clamp(WINDOW.1, MAX_SCREENSHOT_HEIGHT);
        let resized = height != WINDOW.1 && self.client.set_window_size(WINDOW.0, height).await.is_ok();
        let png = self.client.screenshot().await;
        if resized {
            let _ = self.client.set_window_size(WINDOW.0, WINDOW.1).await;
        }
        let png = match png {
            Ok(png) => png,
            Err(err) => panic!("screenshot {name}: {err} ({})", self.whereabouts().await),
        };
        save_screenshot(name, &png)
    }

    /// Ends the session: the browser quits and its profile is removed.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.closed = true;
    }

    /// "at URL (title "...")", for failure messages.
    async fn whereabouts(&self) -> String {
        let url = match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(err) => format!("<no URL: {err}>"),
        };
        let title = self.client.title().await.unwrap_or_default();
        format!("at {url}, title {title:?}")
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        if !self.closed && !self.session_id.is_empty() {
            // Plain blocking HTTP: this runs whether or not the test's runtime is still there.
            if std::thread::panicking() {
                let shot = driver_request(self.port, "GET", &format!("/session/{}/screenshot", self.session_id));
                let png = shot.as_ref().and_then(|v| v["value"].as_str()).and_then(|b64| {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.decode(b64).ok()
                });
                if let Some(png) = png {
                    let path = save_screenshot(&format!("failed-{}", self.label), &png);
                    eprintln!("chrome: the page at the failure: {}", path.display());
                }
            }
            driver_request(self.port, "DELETE", &format!("/session/{}", self.session_id));
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Signs in on the development login page (`devcluster::login_app`) the browser is on, or is
/// being sent to: fills email, password and (when given) the one-time code, submits, and waits
/// until the browser has left the login page. Fails with the page's message when it refuses.
pub async fn sign_in_dev_login(page: &Page, email: &str, password: &str, one_time_code: Option<&str>) {
    page.wait_for("form input[name=email]").await;
    let login_url = page.current_url().await;
    let login_page = login_url.split(['?', '#']).next().unwrap_or_default().to_string();
    page.fill("input[name=email]", email).await;
    page.fill("input[name=password]", password).await;
    page.fill("input[name=code]", one_time_code.unwrap_or_default()).await;
    // Marks this document: a page without the mark is the answer to the submission.
    page.execute("window.__atlantiplexSignIn = true", vec![]).await;
    page.submit("form:has(input[name=email])").await;
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(url) = page.client.current_url().await
            && !url.as_str().starts_with(&login_page)
        {
            return;
        }
        let answered =
            page.client.execute("return !window.__atlantiplexSignIn", vec![]).await.ok().and_then(|v| v.as_bool());
        if answered == Some(true)
            && let Ok(error) = page.client.find(Locator::Css("p[style*='color']")).await
            && let Ok(text) = error.text().await
        {
            panic!("the development login refused {email}: {text} ({})", page.whereabouts().await);
        }
        if Instant::now() > deadline {
            panic!("still on the login page {DEADLINE:?} after signing in as {email} ({})", page.whereabouts().await);
        }
        tokio::time::sleep(POLL).await;
    }
}

fn save_screenshot(name: &str, png: &[u8]) -> PathBuf {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("creating {}: {err}", dir.display()));
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
    path
}

/// Removes the directories of test processes that are gone (kept until then: the log tells about a failure).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|name| name.strip_prefix(DIR_PREFIX)).and_then(|pid| pid.parse::<i32>().ok());
        if let Some(pid) = pid
            && !devcluster::pid_alive(pid)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `$VAR`, else the first of `names` on PATH, else `fallback`, if it exists.
fn find_program(var: &str, names: &[&str], fallback: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .chain([PathBuf::from(fallback)])
        .find(|candidate| candidate.is_file())
}

/// What chromedriver starts as the browser: Chromium under `setpriv --pdeathsig TERM`, so a browser
/// quits with chromedriver even when the test process (and chromedriver with it) is killed, or
/// Chromium itself where util-linux's setpriv is missing.
fn launcher(dir: &Path, chromium: &Path) -> PathBuf {
    let Some(setpriv) = find_program("SETPRIV", &["setpriv"], "/usr/bin/setpriv") else {
        return chromium.to_path_buf();
    };
    let script = dir.join("chromium");
    let quoted = |path: &Path| format!("'{}'", path.display().to_string().replace('\'', r"'\''"));
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexec {} --pdeathsig TERM {} \"$@\"\n", quoted(&setpriv), quoted(chromium)),
    )
    .expect("browser launcher");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("browser launcher mode");
    script
}

/// Whether the process is gone (or a zombie: its parent keeps the handle, so it is never reaped here).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().is_none_or(|rest| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

fn driver_ready(port: u16) -> bool {
    driver_request(port, "GET", "/status").is_some_and(|status| status["value"]["ready"] == true)
}

/// One request to chromedriver over a plain connection; the JSON answer. chromedriver speaks only
/// HTTP/1.1 and keeps the connection open after its answer, so the body is read by its Content-Length.
fn driver_request(port: u16, method: &str, path: &str) -> Option<serde_json::Value> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    stream.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    let (head_end, length) = loop {
        let read = stream.read(&mut buffer).ok()?;
        if read == 0 {
            return None;
        }
        answer.extend_from_slice(&buffer[..read]);
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length =
                head.lines().find_map(|line| line.strip_prefix("content-length:"))?.trim().parse::<usize>().ok()?;
            break (end + 4, length);
        }
    };
    while answer.len() < head_end + length {
        let read = stream.read(&mut buffer).ok()?;
        if read == 0 {
            return None;
        }
        answer.extend_from_slice(&buffer[..read]);
    }
    serde_json::from_slice(&answer[head_end..head_end + length]).ok()
}
