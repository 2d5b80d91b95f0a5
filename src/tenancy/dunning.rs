//! Billing standing and dunning (DESIGN.md §2), pure: from a Subscription's mirrored Stripe state,
//! which plan applies and whether the tenant is in grace or suspended. No clock here: `now` is given.

use jiff::{SignedDuration, Timestamp};

/// Where a subscription stands with Stripe, from its status (no time involved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Not billed through Stripe: no Subscription, billing disabled, an unbilled plan, or not synced yet.
    Unbilled,
    Trialing,
    Active,
    /// A payment failed; the plan stays during the grace period, counted from `since`.
    PastDue {
        since: Option<Timestamp>,
    },
    /// unpaid, canceled or paused: the organization falls back to the default plan.
    Lapsed {
        state: String,
    },
    /// incomplete, incomplete_expired: the first payment has not succeeded; nothing paid for yet.
    AwaitingPayment {
        state: String,
    },
}

impl Standing {
    pub fn from_stripe(state: Option<&str>, past_due_since: Option<&str>) -> Self {
        match state {
            None => Standing::Unbilled,
            Some("trialing") => Standing::Trialing,
            Some("active") => Standing::Active,
            Some("past_due") => Standing::PastDue { since: past_due_since.and_then(|s| s.parse().ok()) },
            Some(s @ ("unpaid" | "canceled" | "paused")) => Standing::Lapsed { state: s.into() },
            Some(other) => Standing::AwaitingPayment { state: other.into() },
        }
    }

    /// Whether the subscription's own plan applies (otherwise the default plan does).
    pub fn keeps_plan(&self) -> bool {
        matches!(self, Standing::Unbilled | Standing::Trialing | Standing::Active | Standing::PastDue { .. })
    }
}

/// What dunning decides for the tenant now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Good,
    /// Past due, still served until `until`.
    Grace {
        until: Timestamp,
    },
    /// Quota cut to zero pods, ingress to the suspended page, data kept.
    Suspend {
        reason: String,
    },
}

/// past_due → grace (the plan stays) → suspended once the grace ends; unpaid/canceled → the
/// default plan if usage fits it, else suspended until usage fits or the bill is paid.
pub fn verdict(standing: &Standing, now: Timestamp, grace: SignedDuration, fits_default_plan: bool) -> Verdict {
    match standing {
        Standing::PastDue { since } => {
            let until = since.unwrap_or(now).saturating_add(grace).unwrap_or(now);
            if now >= until {
                Verdict::Suspend {
                    reason: format!(
                        "payment past due since {}; the grace period ended at {until}: pay the open invoice to restore service",
                        since.unwrap_or(now)
                    ),
                }
            } else {
                Verdict::Grace { until }
            }
        }
        Standing::Lapsed { state } if !fits_default_plan => Verdict::Suspend {
            reason: format!(
                "subscription is {state} and usage exceeds the default plan: pay or subscribe again, or reduce usage to the default plan's limits"
            ),
        },
        _ => Verdict::Good,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn stripe_states_map_to_standings() {
        assert_eq!(Standing::from_stripe(None, None), Standing::Unbilled);
        assert_eq!(Standing::from_stripe(Some("trialing"), None), Standing::Trialing);
        assert_eq!(Standing::from_stripe(Some("active"), None), Standing::Active);
        assert_eq!(
            Standing::from_stripe(Some("past_due"), Some("2026-01-01T00:00:00Z")),
            Standing::PastDue { since: Some(t("2026-01-01T00:00:00Z")) }
        );
        for s in ["unpaid", "canceled", "paused"] {
            assert_eq!(Standing::from_stripe(Some(s), None), Standing::Lapsed { state: s.into() });
            assert!(!Standing::from_stripe(Some(s), None).keeps_plan());
        }
        for s in ["incomplete", "incomplete_expired"] {
            assert!(!Standing::from_stripe(Some(s), None).keeps_plan());
        }
        assert!(Standing::from_stripe(Some("past_due"), None).keeps_plan());
    }

    #[test]
    fn past_due_has_a_grace_period_then_suspends() {
        let grace = SignedDuration::from_hours(7 * 24);
        let since = t("2026-01-01T00:00:00Z");
        let standing = Standing::PastDue { since: Some(since) };
        assert_eq!(
            verdict(&standing, t("2026-01-03T00:00:00Z"), grace, true),
            Verdict::Grace { until: t("2026-01-08T00:00:00Z") }
        );
        assert!(matches!(verdict(&standing, t("2026-01-08T00:00:00Z"), grace, true), Verdict::Suspend { .. }));
        // Paid: active again, nothing suspended.
        assert_eq!(verdict(&Standing::Active, t("2026-02-01T00:00:00Z"), grace, false), Verdict::Good);
    }

    #[test]
    fn lapsed_falls_back_when_usage_fits_else_suspends() {
        let lapsed = Standing::Lapsed { state: "canceled".into() };
        let now = t("2026-01-01T00:00:00Z");
        assert_eq!(verdict(&lapsed, now, SignedDuration::ZERO, true), Verdict::Good);
        assert!(matches!(verdict(&lapsed, now, SignedDuration::ZERO, false), Verdict::Suspend { .. }));
    }
}
