//! The platform's figures for the super-admin pages: revenue from the subscription history (pure, in
//! `crate::revenue`), feature adoption, and the platform's usage. A year of history for 1,000
//! organizations is tens of thousands of rows, so they are computed at most every [`REFRESH`] and
//! shared by every page view (one computation at a time); pages say how old they are.

use crate::http::App;
use crate::ledger::LedgerError;
use crate::metering::Meter;
use crate::revenue::{self, Report};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
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
    /// One computation at a time; others wait for its result.
    computing: tokio::sync::Mutex<()>,
}

impl PlatformCache {
    pub async fn get(&self, app: &App) -> Result<Arc<PlatformFigures>, LedgerError> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let _turn = self.computing.lock().await;
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let figures = Arc::new(compute(app).await?);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), figures.clone()));
        Ok(figures)
    }

    fn fresh(&self) -> Option<Arc<PlatformFigures>> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.as_ref().filter(|(at, _)| at.elapsed() < REFRESH).map(|(_, f)| f.clone())
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
