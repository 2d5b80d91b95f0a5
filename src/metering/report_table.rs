//! [`UsageReport`] as a table for a terminal: a header (organization, plan, window, period), one line per meter
//! (window and period totals in billing units, included, percent, state, overage), the period's overage
//! total, the notes, and the daily sums. Quantities are the exact billed figures (micro-units rounded up).

use super::meter::Meter;
use super::report::{Against, UsageReport};
use super::units::{format_cents, format_micros};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The unit as shown after a figure.
fn unit(meter: Meter) -> &'static str {
    match meter {
        Meter::Bandwidth => "GiB",
        Meter::Storage => "GiB-mo",
        Meter::ApiCalls => "k calls",
        Meter::StreamTime => "h",
    }
}

fn overage(a: &Against, meter: Meter) -> String {
    match (a.overage, a.cents_per_unit) {
        ("Bill", Some(price)) => {
            format!("Bill {price}¢/{}: {} ${}", meter.billing_unit(), a.billed_beyond, format_cents(a.cents))
        }
        ("Block", _) if a.blocked_beyond != "0" => format!("Block ({} blocked)", a.blocked_beyond),
        (other, _) => other.to_string(),
    }
}

pub fn table(report: &UsageReport) -> String {
    let mut out = String::new();
    let plan = report.plan.as_deref().unwrap_or("unknown");
    let _ = writeln!(out, "organization {}   plan {plan}", report.organization);
    let _ = writeln!(out, "window       {} .. {}", report.window.from, report.window.to);
    let _ = writeln!(out, "period       {} .. {} ({})", report.period.from, report.period.to, report.period_source);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<12} {:>20} {:>20} {:>16} {:>5} {:<8} OVERAGE",
        "METER", "WINDOW", "PERIOD", "INCLUDED", "USED", "STATE"
    );
    for m in &report.meters {
        let with_unit = |figure: &str| format!("{figure} {}", unit(m.meter));
        let (included, percent, state, overage) = match &m.plan {
            Some(a) => (
                if a.included == "unlimited" { a.included.clone() } else { with_unit(&a.included) },
                a.percent.map_or_else(|| "-".to_string(), |p| format!("{p}%")),
                format!("{:?}", a.state),
                overage(a, m.meter),
            ),
            None => ("?".into(), "?".into(), "?".into(), "?".into()),
        };
        let _ = writeln!(
            out,
            "{:<12} {:>20} {:>20} {:>16} {:>5} {:<8} {overage}",
            m.meter.as_str(),
            with_unit(&m.window.billed),
            with_unit(&m.period.billed),
            included,
            percent,
            state
        );
    }
    if let Some(cents) = report.total_cents {
        let _ = writeln!(out, "\noverage this period, if billed: ${}", format_cents(cents));
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out.push_str(&daily_table(report));
    out
}

/// One row per UTC day with usage, one column per meter.
fn daily_table(report: &UsageReport) -> String {
    let mut days: BTreeMap<&str, BTreeMap<Meter, i64>> = BTreeMap::new();
    for m in &report.meters {
        for d in &m.daily {
            days.entry(d.at.as_str()).or_default().insert(m.meter, d.quantity);
        }
    }
    let mut out = String::new();
    if days.is_empty() {
        let _ = writeln!(out, "\nno usage in the window");
        return out;
    }
    let seconds = report.period.to.as_second() - report.period.from.as_second();
    let _ = write!(out, "\n{:<12}", "DAY");
    for meter in Meter::ALL {
        let _ = write!(out, " {:>20}", format!("{} ({})", meter.as_str(), unit(meter)));
    }
    out.push('\n');
    for (day, sums) in days {
        let _ = write!(out, "{day:<12}");
        for meter in Meter::ALL {
            let base = sums.get(&meter).copied().unwrap_or(0);
            let billed = super::units::billing_micros(meter, i128::from(base), seconds);
            let _ = write!(out, " {:>20}", format_micros(billed));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::period::Period;
    use crate::metering::report::{Inputs, Span, Window, build};
    use crate::metering::terms::plan_terms;
    use crate::metering::testing::{shipped, t};

    fn report(with_plan: bool) -> UsageReport {
        let windows = [
            Window { meter: Meter::Bandwidth, start: t("2026-03-10T12:00:00Z"), quantity: 3 << 29, events: 2 },
            Window { meter: Meter::ApiCalls, start: t("2026-03-11T00:00:00Z"), quantity: 1_250_499, events: 4 },
        ];
        let pro = plan_terms(&shipped("professional")).unwrap();
        build(Inputs {
            organization: "acme",
            plan: with_plan.then_some(("professional", &pro)),
            window: Span { from: t("2026-02-12T00:00:00Z"), to: t("2026-03-14T00:00:00Z") },
            windows: &windows,
            period: Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap(),
            period_source: "calendar month (UTC)",
            period_windows: &windows,
            notes: if with_plan { vec![] } else { vec!["no cluster".into()] },
        })
    }

    #[test]
    fn one_line_per_meter_with_the_overage() {
        let text = table(&report(true));
        assert!(text.starts_with("organization acme   plan professional\n"), "{text}");
        let line = |meter: &str| text.lines().find(|l| l.starts_with(meter)).unwrap().to_string();
        let bandwidth = line("bandwidth");
        assert!(
            bandwidth.contains("1.5 GiB") && bandwidth.contains("2048 GiB") && bandwidth.contains(" 0% "),
            "{bandwidth}"
        );
        let calls = line("api_calls");
        assert!(calls.contains("1250.499 k calls") && calls.contains("125%") && calls.contains("Reached"), "{calls}");
        assert!(calls.ends_with("Bill 1¢/1,000 calls: 250.499 $2.50"), "{calls}");
        assert!(text.contains("overage this period, if billed: $2.50"), "{text}");
        let day = |d: &str| text.lines().find(|l| l.starts_with(d)).unwrap().split_whitespace().collect::<Vec<_>>();
        assert_eq!(day("2026-03-10"), ["2026-03-10", "1.5", "0", "0", "0"], "{text}");
        assert_eq!(day("2026-03-11"), ["2026-03-11", "0", "0", "1250.499", "0"], "{text}");
    }

    #[test]
    fn without_a_plan_included_and_overage_are_unknown() {
        let text = table(&report(false));
        assert!(text.contains("plan unknown"), "{text}");
        assert!(text.contains("note: no cluster"), "{text}");
        assert!(!text.contains("overage this period"), "{text}");
        let line = text.lines().find(|l| l.starts_with("stream_time")).unwrap();
        assert!(line.contains("0 h") && line.trim_end().ends_with('?'), "{line}");
    }
}
