//! stripe-mock (Stripe's OpenAPI-driven mock) as a plain process on loopback, for the contract tests and the
//! push benchmark. Both of its listeners are bound to 127.0.0.1: with `-http-addr` alone it still serves
//! HTTPS on `[::]:12112`.

use anyhow::{Context, Result, ensure};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running stripe-mock; stopped when dropped.
pub struct StripeMock {
    child: Child,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
}

impl StripeMock {
    /// Starts the cached stripe-mock (`make tools`) and waits until it listens (30 s at most).
    pub fn start() -> Result<StripeMock> {
        let bin = super::tools_bin()?.join("stripe-mock");
        ensure!(bin.exists(), "stripe-mock not found at {}: run `make tools`", bin.display());
        let (http, https) = (super::free_port()?, super::free_port()?);
        let child = Command::new(&bin)
            .args(["-http-addr", &format!("127.0.0.1:{http}"), "-https-addr", &format!("127.0.0.1:{https}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mock = StripeMock { child, port: http };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
            ensure!(Instant::now() < deadline, "stripe-mock did not listen on 127.0.0.1:{http} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(mock)
    }

    /// The base URL for a Stripe client.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for StripeMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
