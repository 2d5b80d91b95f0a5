//! The platform's figures for the super-admin pages: revenue from the subscription history (pure, in
//! `crate::revenue`), feature adoption, and the platform's usage. A year of history for 1,000
//! organizations is tens of thousands of rows (150–350 ms to read and compute in `make bench-console`),
//! so the figures are shared by every page view and, once older than [`REFRESH`], recomputed in the
//! background while pages keep showing the previous ones with their age: only the first view after
//! start waits for them, and nothing is computed while nobody looks.

use crate::http::App;
use crate::ledger::LedgerError;
use crate::metering::Meter;
use crate::revenue::{self, Report};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const REFRESH: Duration = Duration::from_secs(30);
/// Months of revenue history shown.
pub const MONTHS: usize = 12;
/// Days of platform usage shown.
pub const USAGE_DAYS: i64 = 30;

pub struct PlatformFigures {
    pub computed_at: jiff::Timestamp,
    pub revenue: Report,
    /// Organizations with at least one usable API key.
    pub with_keys: BTreeSet<String>,
    /// Per meter, per day (`YYYY-MM-DD`), every organization's usage in base units.
    pub usage: BTreeMap<Meter, BTreeMap<String, i64>>,
}

#[derive(Default)]
pub struct PlatformCache {
    current: std::sync::Mutex<Option<(Instant, Arc<PlatformFigures>)>>,
    /// The first computation: page views wait for it, one computation at a time.
    computing: tokio::sync::Mutex<()>,
    /// A background refresh is running.
    refreshing: AtomicBool,
}

impl PlatformCache {
    pub async fn get(&self, app: &Arc<App>) -> Result<Arc<PlatformFigures>, LedgerError> {
        if let Some((at, figures)) = self.latest() {
            if at.elapsed() >= REFRESH {
                self.refresh_in_background(app.clone());
            }
            return Ok(figures);
        }
        let _turn = self.computing.lock().await;
        if let Some((_, figures)) = self.latest() {
            return Ok(figures);
        }
        let figures = Arc::new(compute(app).await?);
        self.store(figures.clone());
        Ok(figures)
    }

    fn latest(&self) -> Option<(Instant, Arc<PlatformFigures>)> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn store(&self, figures: Arc<PlatformFigures>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), figures));
    }

    fn refresh_in_background(&self, app: Arc<App>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(async move {
            let cache = &app.console.platform;
            match compute(&app).await {
                Ok(figures) => cache.store(Arc::new(figures)),
                // The previous figures stay, with their age on the page; the next view tries again.
                Err(err) => tracing::warn!(%err, "cannot refresh the platform figures"),
            }
            cache.refreshing.store(false, Ordering::Release);
        });
    }
}

async fn compute(app: &App) -> Result<PlatformFigures, LedgerError> {
    let now = jiff::Timestamp::now();
    let months = revenue::months_ending(now, MONTHS);
    // Every change from the beginning: an organization's first paying month decides new against
    // reactivation, however long ago it was.
    let history = app.ledger.subscription_history(None, jiff::Timestamp::UNIX_EPOCH, now).await?;
    let internal_plans: BTreeSet<String> =
        app.caches.plans().into_iter().filter(|p| p.spec.internal).filter_map(|p| p.metadata.name).collect();
    let report = revenue::report(&revenue::Inputs { history: &history, internal_plans: &internal_plans, months, now });
    let with_keys = app.ledger.organizations_with_usable_keys(now).await?;
    let from = now - jiff::SignedDuration::from_hours(24 * USAGE_DAYS);
    let mut usage: BTreeMap<Meter, BTreeMap<String, i64>> = BTreeMap::new();
    for (meter, start, quantity) in app.ledger.platform_usage(crate::metering::window_start(from), now).await? {
        let day = start.to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
        *usage.entry(meter).or_default().entry(day).or_default() += quantity;
    }
    Ok(PlatformFigures { computed_at: now, revenue: report, with_keys, usage })
}
