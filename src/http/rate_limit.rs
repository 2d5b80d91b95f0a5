//! Where the rate limits' state lives: in this process when it is the only replica (SQLite), in PostgreSQL
//! when replicas share the ledger, so the limit is exact across them — one statement per request
//! (`Ledger::take_rate_limit`; measured in `make bench-api`). Both take the same `gcra` step.

use super::gcra::{self, Rate, Verdict};
use crate::ledger::{Backend, Ledger};
use std::collections::HashMap;
use std::sync::Mutex;

pub enum Limiter {
    Local(Mutex<HashMap<String, i64>>),
    Shared(Ledger),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Store {
    /// PostgreSQL when the ledger is PostgreSQL, else in process.
    Auto,
    /// In process: exact for one replica only.
    Memory,
    /// PostgreSQL (the ledger's).
    Postgres,
}

impl Limiter {
    pub fn new(store: Store, ledger: &Ledger) -> anyhow::Result<Self> {
        Ok(match (store, ledger.backend()) {
            (Store::Memory, _) | (Store::Auto, Backend::Sqlite) => Limiter::Local(Mutex::new(HashMap::new())),
            (Store::Auto | Store::Postgres, Backend::Postgres) => Limiter::Shared(ledger.clone()),
            (Store::Postgres, Backend::Sqlite) => {
                anyhow::bail!("--rate-limit-store postgres needs a PostgreSQL ledger (--database-url postgres://…)")
            }
        })
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Limiter::Local(_) => "in process",
            Limiter::Shared(_) => "PostgreSQL",
        }
    }

    /// One request of `key` at `rate`.
    pub async fn take(&self, key: &str, rate: Rate) -> crate::ledger::Result<Verdict> {
        match self {
            Limiter::Local(tats) => {
                let now = jiff::Timestamp::now().as_microsecond();
                let mut tats = tats.lock().unwrap_or_else(|p| p.into_inner());
                // A key whose TAT is past is as good as new: drop such keys now and then (memory stays bounded).
                if tats.len() > 100_000 {
                    tats.retain(|_, tat| *tat > now);
                }
                let (verdict, tat) = gcra::step(tats.get(key).copied(), now, rate);
                tats.insert(key.to_string(), tat);
                Ok(verdict)
            }
            Limiter::Shared(ledger) => {
                let taken = ledger.take_rate_limit(key, rate.interval_us, rate.tolerance_us()).await?;
                Ok(gcra::verdict(taken.allowed, taken.tat_us, taken.now_us, rate))
            }
        }
    }
}
