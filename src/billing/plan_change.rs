//! Plan changes on a live Stripe subscription (pure): how the change is billed, and whether the
//! plan paid for stays in effect until the period ends.

use super::keys::{META_KEPT_PLAN, META_KEPT_UNTIL};
use super::stripe::{Proration, RemoteSubscription};
use jiff::Timestamp;

/// A downgrade waiting for the period end, as recorded on the Stripe subscription: still waiting
/// while the period it was paid for has not ended, by our clock and by Stripe's (test clocks move).
pub fn kept_plan(remote: &RemoteSubscription, now: Timestamp) -> Option<(String, Timestamp)> {
    let plan = remote.metadata.get(META_KEPT_PLAN).filter(|p| !p.is_empty())?;
    let until: i64 = remote.metadata.get(META_KEPT_UNTIL)?.parse().ok()?;
    let at = Timestamp::from_second(until).ok()?;
    let period_moved_on = remote.current_period_end.is_some_and(|end| end > until);
    (!remote.ended() && !period_moved_on && now < at).then(|| (plan.clone(), at))
}

pub struct PlanChangeFacts {
    pub trialing: bool,
    /// spec.plan is the plan a waiting downgrade keeps: undo the downgrade.
    pub back_to_kept_plan: bool,
    pub upgrade: bool,
    pub downgrade_at_period_end: bool,
    /// The end of the period paid for (of a downgrade already waiting, or the current one).
    pub keep_until: Option<i64>,
}

pub struct PlanChange {
    pub proration: Proration,
    /// Set: the current plan stays in effect until then.
    pub keep_until: Option<i64>,
}

/// How a plan change is billed, and whether the current plan stays until the period end.
pub fn plan_change(facts: PlanChangeFacts) -> PlanChange {
    let now = |proration| PlanChange { proration, keep_until: None };
    if facts.trialing {
        now(Proration::None)
    } else if facts.back_to_kept_plan {
        // This period was paid at that plan's price, and the downgrade charged nothing.
        now(Proration::None)
    } else if facts.upgrade {
        now(Proration::InvoiceNow)
    } else if facts.downgrade_at_period_end && facts.keep_until.is_some() {
        // Stripe bills the new price from the next period; access stays until then.
        PlanChange { proration: Proration::None, keep_until: facts.keep_until }
    } else {
        now(Proration::NextInvoice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const END: i64 = 1_900_000_000;

    fn facts() -> PlanChangeFacts {
        PlanChangeFacts {
            trialing: false,
            back_to_kept_plan: false,
            upgrade: false,
            downgrade_at_period_end: true,
            keep_until: Some(END),
        }
    }

    fn subscription(kept: &str, until: i64, period_end: i64) -> RemoteSubscription {
        RemoteSubscription {
            status: "active".into(),
            current_period_end: Some(period_end),
            metadata: [
                (META_KEPT_PLAN.to_string(), kept.to_string()),
                (META_KEPT_UNTIL.to_string(), until.to_string()),
            ]
            .into(),
            ..RemoteSubscription::default()
        }
    }

    fn at(unix: i64) -> Timestamp {
        Timestamp::from_second(unix).expect("valid")
    }

    #[test]
    fn a_downgrade_waits_for_the_period_end_without_proration() {
        let change = plan_change(facts());
        assert_eq!((change.proration, change.keep_until), (Proration::None, Some(END)));
    }

    #[test]
    fn an_upgrade_is_invoiced_at_once() {
        let change = plan_change(PlanChangeFacts { upgrade: true, ..facts() });
        assert_eq!((change.proration, change.keep_until), (Proration::InvoiceNow, None));
    }

    #[test]
    fn during_a_trial_every_change_is_immediate_and_free() {
        let change = plan_change(PlanChangeFacts { trialing: true, upgrade: true, ..facts() });
        assert_eq!((change.proration, change.keep_until), (Proration::None, None));
    }

    #[test]
    fn undoing_a_waiting_downgrade_charges_nothing_again() {
        let change = plan_change(PlanChangeFacts { back_to_kept_plan: true, upgrade: true, ..facts() });
        assert_eq!((change.proration, change.keep_until), (Proration::None, None));
    }

    #[test]
    fn without_waiting_downgrades_the_difference_is_credited_on_the_next_invoice() {
        let change = plan_change(PlanChangeFacts { downgrade_at_period_end: false, ..facts() });
        assert_eq!((change.proration, change.keep_until), (Proration::NextInvoice, None));
    }

    #[test]
    fn the_kept_plan_holds_until_the_paid_period_ends() {
        let sub = subscription("enterprise", END, END);
        assert_eq!(kept_plan(&sub, at(END - 10)), Some(("enterprise".into(), at(END))));
        assert_eq!(kept_plan(&sub, at(END)), None, "the period ended by our clock");
        let renewed = subscription("enterprise", END, END + 30 * 86_400);
        assert_eq!(kept_plan(&renewed, at(END - 10)), None, "Stripe's clock moved to the next period");
        let cleared = subscription("", 0, END);
        assert_eq!(kept_plan(&cleared, at(END - 10)), None, "an undone downgrade clears the keys");
        let ended = RemoteSubscription { status: "canceled".into(), ..sub };
        assert_eq!(kept_plan(&ended, at(END - 10)), None);
    }
}
