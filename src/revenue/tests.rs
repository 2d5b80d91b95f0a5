use super::*;

fn instant(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Noon UTC on a `YYYY-MM-DD` day.
fn noon(day: &str) -> Timestamp {
    instant(&format!("{day}T12:00:00Z"))
}

fn date(s: &str) -> Date {
    s.parse().unwrap()
}

/// A monthly `pro` subscription row in usd; other fields by struct update.
fn change(organization: &str, at: Timestamp, state: &str, price_cents: i64) -> SubscriptionChange {
    SubscriptionChange {
        id: format!("{organization}-{at}-{state}"),
        organization: organization.to_string(),
        at,
        plan: "pro".to_string(),
        state: state.to_string(),
        price_cents,
        currency: "usd".to_string(),
        billing_interval: "month".to_string(),
        reason: "test".to_string(),
    }
}

fn on(organization: &str, day: &str, state: &str, price_cents: i64) -> SubscriptionChange {
    change(organization, noon(day), state, price_cents)
}

fn eur(row: SubscriptionChange) -> SubscriptionChange {
    SubscriptionChange { currency: "EUR".to_string(), ..row }
}

fn internal() -> BTreeSet<String> {
    BTreeSet::from(["staff".to_string()])
}

/// January to May 2026 in usd and eur, one organization per rule (the letters are the brief's).
fn scenario() -> Vec<SubscriptionChange> {
    let mut rows = vec![
        // A: new at $100/mo in January.
        on("a", "2026-01-10", "active", 10_000),
        // B: trial in January, converts to $50 in February.
        on("b", "2026-01-05", "trialing", 5_000),
        on("b", "2026-02-05", "active", 5_000),
        // C: $200/mo since December, churns in March, reactivates in April at $150.
        on("c", "2025-12-01", "active", 20_000),
        on("c", "2026-03-10", "canceled", 20_000),
        on("c", "2026-04-03", "active", 15_000),
        // D: $100 → $300 in February (expansion 200), → $250 in March (contraction 50).
        on("d", "2025-12-15", "active", 10_000),
        on("d", "2026-02-12", "active", 30_000),
        on("d", "2026-03-20", "active", 25_000),
        // E: $1,200 a year is $100 MRR.
        SubscriptionChange { billing_interval: "year".to_string(), ..on("e", "2026-01-20", "active", 120_000) },
        // F: an internal plan never counts.
        SubscriptionChange { plan: "staff".to_string(), ..on("f", "2026-01-01", "active", 99_900) },
        // G: past_due still counts; canceled in April.
        on("g", "2025-11-01", "active", 4_000),
        on("g", "2026-02-03", "past_due", 4_000),
        on("g", "2026-04-02", "canceled", 4_000),
        // H: a trial that ends canceled in the month it started.
        on("h", "2026-02-01", "trialing", 5_000),
        on("h", "2026-02-15", "canceled", 5_000),
        // I: $80, upgraded to $160 and canceled within April: one churn of $80.
        on("i", "2025-12-01", "active", 8_000),
        on("i", "2026-04-05", "active", 16_000),
        on("i", "2026-04-20", "canceled", 16_000),
        // L: paid in 2024, back in February 2026: a reactivation, not new.
        on("l", "2024-03-01", "active", 3_000),
        on("l", "2024-06-01", "canceled", 3_000),
        on("l", "2026-02-10", "active", 3_000),
        // J (eur): new €90 in January, €120 in February.
        eur(on("j", "2026-01-15", "active", 9_000)),
        eur(on("j", "2026-02-10", "active", 12_000)),
        // K (eur): trial in March, converts to €50 in April.
        eur(on("k", "2026-03-03", "trialing", 5_000)),
        eur(on("k", "2026-04-03", "active", 5_000)),
    ];
    // The order rows come in does not matter.
    rows.reverse();
    rows
}

fn scenario_report(now: &str) -> Report {
    let history = scenario();
    let internal_plans = internal();
    let inputs = Inputs {
        history: &history,
        internal_plans: &internal_plans,
        months: months_ending(noon(now), 5),
        now: noon(now),
    };
    report(&inputs)
}

/// `[start, new, expansion, contraction, churn, reactivation, end]` MRR.
fn movements(month: &MonthFigures) -> [i64; 7] {
    [
        month.start_mrr_cents,
        month.new_cents,
        month.expansion_cents,
        month.contraction_cents,
        month.churn_cents,
        month.reactivation_cents,
        month.end_mrr_cents,
    ]
}

/// `[customers start, customers end, churned, trials started, trials ended, trials converted]`.
fn counts(month: &MonthFigures) -> [usize; 6] {
    [
        month.customers_start,
        month.customers_end,
        month.churned_customers,
        month.trials_started,
        month.trials_ended,
        month.trials_converted,
    ]
}

fn assert_adds_up(month: &MonthFigures) {
    let movements = month.new_cents + month.expansion_cents + month.reactivation_cents
        - month.contraction_cents
        - month.churn_cents;
    assert_eq!(month.end_mrr_cents - month.start_mrr_cents, movements, "{month:?}");
    assert_eq!(month.net_new_cents, movements, "{month:?}");
}

#[test]
fn usd_months_have_the_known_movements() {
    let report = scenario_report("2026-05-15");
    let usd = &report.currencies["usd"];
    let labels: Vec<&str> = usd.months.iter().map(|m| m.month.as_str()).collect();
    assert_eq!(labels, ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]);
    let [jan, feb, mar, apr, may] = &usd.months[..] else { panic!("five months") };

    // January: A and E are new; B's trial starts; F is internal.
    assert_eq!(movements(jan), [42_000, 20_000, 0, 0, 0, 0, 62_000]);
    assert_eq!(counts(jan), [4, 6, 0, 1, 0, 0]);
    assert_eq!(jan.logo_churn_rate, Some(0.0));
    assert_eq!(jan.gross_revenue_churn_rate, Some(0.0));
    assert_eq!(jan.net_revenue_churn_rate, Some(0.0));
    assert_eq!(jan.trial_conversion_rate, None);
    assert_eq!(jan.arpa_cents, Some(10_333), "62,000 / 6 rounded");
    assert_eq!(jan.arr_cents, 744_000);

    // February: B converts (new), D expands, L comes back; H's trial starts and ends unconverted; G past_due.
    assert_eq!(movements(feb), [62_000, 5_000, 20_000, 0, 0, 3_000, 90_000]);
    assert_eq!(counts(feb), [6, 8, 0, 1, 2, 1]);
    assert_eq!(feb.trial_conversion_rate, Some(0.5));
    assert_eq!(feb.gross_revenue_churn_rate, Some(0.0));
    assert_eq!(feb.net_revenue_churn_rate, Some(-20_000.0 / 62_000.0), "expansion outgrows losses");
    assert_eq!(feb.arpa_cents, Some(11_250));
    assert_eq!(feb.arr_cents, 1_080_000);

    // March: C churns, D contracts.
    assert_eq!(movements(mar), [90_000, 0, 0, 5_000, 20_000, 0, 65_000]);
    assert_eq!(counts(mar), [8, 7, 1, 0, 0, 0]);
    assert_eq!(mar.logo_churn_rate, Some(0.125));
    assert_eq!(mar.gross_revenue_churn_rate, Some(25_000.0 / 90_000.0));
    assert_eq!(mar.net_revenue_churn_rate, Some(25_000.0 / 90_000.0));
    assert_eq!(mar.arpa_cents, Some(9_286), "65,000 / 7 rounded half-up");

    // April: C reactivates; G churns; I's upgrade and cancellation net out to a churn of its start MRR.
    assert_eq!(movements(apr), [65_000, 0, 0, 0, 12_000, 15_000, 68_000]);
    assert_eq!(counts(apr), [7, 6, 2, 0, 0, 0]);
    assert_eq!(apr.logo_churn_rate, Some(2.0 / 7.0));
    assert_eq!(apr.gross_revenue_churn_rate, Some(12_000.0 / 65_000.0));
    assert_eq!(apr.arpa_cents, Some(11_333));
    assert_eq!(apr.arr_cents, 816_000);

    // May: nothing happens.
    assert_eq!(movements(may), [68_000, 0, 0, 0, 0, 0, 68_000]);
    assert_eq!(counts(may), [6, 6, 0, 0, 0, 0]);
    assert_eq!(may.net_new_cents, 0);

    for month in &usd.months {
        assert_adds_up(month);
    }
}

#[test]
fn currencies_are_kept_apart() {
    let report = scenario_report("2026-05-15");
    assert_eq!(report.currencies.keys().collect::<Vec<_>>(), ["eur", "usd"], "lower-case keys");
    let [jan, feb, mar, apr, may] = &report.currencies["eur"].months[..] else { panic!("five months") };

    assert_eq!(movements(jan), [0, 9_000, 0, 0, 0, 0, 9_000]);
    assert_eq!(counts(jan), [0, 1, 0, 0, 0, 0]);
    assert_eq!(jan.logo_churn_rate, None, "no customers at start");
    assert_eq!(jan.gross_revenue_churn_rate, None);
    assert_eq!(jan.net_revenue_churn_rate, None);
    assert_eq!(jan.arpa_cents, Some(9_000));

    assert_eq!(movements(feb), [9_000, 0, 3_000, 0, 0, 0, 12_000]);
    assert_eq!(feb.net_revenue_churn_rate, Some(-3_000.0 / 9_000.0));

    assert_eq!(movements(mar), [12_000, 0, 0, 0, 0, 0, 12_000]);
    assert_eq!(counts(mar), [1, 1, 0, 1, 0, 0], "K's trial starts, in eur");

    assert_eq!(movements(apr), [12_000, 5_000, 0, 0, 0, 0, 17_000]);
    assert_eq!(counts(apr), [1, 2, 0, 0, 1, 1]);
    assert_eq!(apr.trial_conversion_rate, Some(1.0));
    assert_eq!(apr.arpa_cents, Some(8_500));

    assert_eq!(movements(may), [17_000, 0, 0, 0, 0, 0, 17_000]);
    for month in &report.currencies["eur"].months {
        assert_adds_up(month);
    }
}

#[test]
fn the_snapshot_is_the_state_at_now() {
    let report = scenario_report("2026-05-15");
    assert_eq!(
        report.currencies["usd"].current,
        Snapshot { mrr_cents: 68_000, arr_cents: 816_000, paying_customers: 6, arpa_cents: Some(11_333) }
    );
    assert_eq!(
        report.currencies["eur"].current,
        Snapshot { mrr_cents: 17_000, arr_cents: 204_000, paying_customers: 2, arpa_cents: Some(8_500) }
    );

    let organizations = &report.organizations;
    assert_eq!(organizations.len(), 12, "every organization with a row by now");
    let mrr = |organization: &str| organizations[organization].mrr_cents;
    assert_eq!(
        organizations["e"],
        OrganizationMrr {
            mrr_cents: 10_000,
            currency: "usd".to_string(),
            plan: "pro".to_string(),
            state: "active".to_string()
        }
    );
    assert_eq!(
        organizations["f"],
        OrganizationMrr {
            mrr_cents: 0,
            currency: "usd".to_string(),
            plan: "staff".to_string(),
            state: "active".to_string()
        }
    );
    assert_eq!(organizations["j"].currency, "eur");
    assert_eq!((mrr("c"), mrr("d"), mrr("g"), mrr("h"), mrr("i")), (15_000, 25_000, 0, 0, 0));
}

#[test]
fn the_snapshot_takes_a_change_at_now_and_ignores_later_ones() {
    let history = scenario();
    let internal_plans = internal();
    // I's upgrade is in force; its cancellation is at exactly `now`, so it counts; nothing after it does.
    let now = noon("2026-04-20");
    let inputs = Inputs { history: &history, internal_plans: &internal_plans, months: Vec::new(), now };
    let report = report(&inputs);
    assert_eq!(report.organizations["i"].state, "canceled");
    assert_eq!(report.organizations["c"].mrr_cents, 15_000);
    // A, B, C, D, E, L pay in usd; G canceled on the 2nd.
    assert_eq!(report.currencies["usd"].current.paying_customers, 6);
    assert!(report.currencies["usd"].months.is_empty());

    // Before anyone's first row: nobody has a subscription.
    let inputs = Inputs { now: instant("2024-01-01T00:00:00Z"), ..inputs };
    let early = super::report(&inputs);
    assert!(early.organizations.is_empty());
    assert!(early.currencies.is_empty());
}

#[test]
fn a_change_at_midnight_on_the_first_belongs_to_that_month() {
    let history = vec![
        change("a", instant("2026-01-01T00:00:00Z"), "active", 1_000),
        change("a", instant("2026-02-01T00:00:00Z"), "canceled", 1_000),
    ];
    let internal_plans = BTreeSet::new();
    let months = vec![date("2025-12-01"), date("2026-01-01"), date("2026-02-01")];
    let inputs = Inputs { history: &history, internal_plans: &internal_plans, months, now: noon("2026-03-01") };
    let usd = &report(&inputs).currencies["usd"];
    assert_eq!(movements(&usd.months[0]), [0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(movements(&usd.months[1]), [0, 1_000, 0, 0, 0, 0, 1_000]);
    assert_eq!(movements(&usd.months[2]), [1_000, 0, 0, 0, 1_000, 0, 0]);
}

#[test]
fn a_row_replaced_at_its_own_instant_never_paid() {
    // At the same instant the ids order the rows: "x1" active is replaced by "x2" canceled at once.
    let at = noon("2026-01-10");
    let history = vec![
        SubscriptionChange { id: "x2".to_string(), ..change("a", at, "canceled", 1_000) },
        SubscriptionChange { id: "x1".to_string(), ..change("a", at, "active", 1_000) },
        on("a", "2026-03-05", "active", 1_000),
    ];
    let internal_plans = BTreeSet::new();
    let months = months_ending(noon("2026-03-20"), 3);
    let inputs = Inputs { history: &history, internal_plans: &internal_plans, months, now: noon("2026-03-20") };
    let months = &report(&inputs).currencies["usd"].months;
    assert_eq!(movements(&months[0]), [0; 7], "January: never paying at any instant");
    assert_eq!(movements(&months[2]), [0, 1_000, 0, 0, 0, 0, 1_000], "March: new, not a reactivation");
}

#[test]
fn switching_currency_churns_in_one_and_reactivates_in_the_other() {
    let history = vec![on("a", "2026-01-05", "active", 10_000), eur(on("a", "2026-02-05", "active", 9_000))];
    let internal_plans = BTreeSet::new();
    let months = months_ending(noon("2026-02-20"), 2);
    let inputs = Inputs { history: &history, internal_plans: &internal_plans, months, now: noon("2026-02-20") };
    let report = report(&inputs);
    let usd_feb = &report.currencies["usd"].months[1];
    let eur_feb = &report.currencies["eur"].months[1];
    assert_eq!(movements(usd_feb), [10_000, 0, 0, 0, 10_000, 0, 0]);
    assert_eq!(usd_feb.churned_customers, 1);
    assert_eq!(movements(eur_feb), [0, 0, 0, 0, 0, 9_000, 9_000]);
    assert_eq!(movements(&report.currencies["eur"].months[0]), [0; 7], "eur has all months");
    assert_adds_up(usd_feb);
    assert_adds_up(eur_feb);
    assert_eq!(report.currencies["usd"].current.mrr_cents, 0);
    assert_eq!(report.currencies["eur"].current.mrr_cents, 9_000);
}

#[test]
fn monthly_cents_normalises_paying_rows_only() {
    let internal_plans = internal();
    let yearly =
        |price| SubscriptionChange { billing_interval: "year".to_string(), ..on("a", "2026-01-01", "active", price) };
    assert_eq!(monthly_cents(&on("a", "2026-01-01", "active", 4_900), &internal_plans), 4_900);
    assert_eq!(monthly_cents(&on("a", "2026-01-01", "past_due", 4_900), &internal_plans), 4_900);
    assert_eq!(monthly_cents(&yearly(120_000), &internal_plans), 10_000);
    assert_eq!(monthly_cents(&yearly(1_001), &internal_plans), 83, "83.42 rounds down");
    assert_eq!(monthly_cents(&yearly(1_002), &internal_plans), 84, "83.5 rounds up");
    assert_eq!(monthly_cents(&yearly(i64::MAX), &internal_plans), i64::MAX / 12 + 1, "no overflow");
    for state in ["trialing", "canceled", "suspended", "incomplete", "unpaid"] {
        assert_eq!(monthly_cents(&on("a", "2026-01-01", state, 4_900), &internal_plans), 0, "{state}");
    }
    let staff = SubscriptionChange { plan: "staff".to_string(), ..on("a", "2026-01-01", "active", 4_900) };
    assert_eq!(monthly_cents(&staff, &internal_plans), 0);
    assert_eq!(monthly_cents(&on("a", "2026-01-01", "active", 0), &internal_plans), 0);
    assert_eq!(monthly_cents(&on("a", "2026-01-01", "active", -500), &internal_plans), 0);
    let weekly = SubscriptionChange { billing_interval: "week".to_string(), ..on("a", "2026-01-01", "active", 500) };
    assert_eq!(monthly_cents(&weekly, &internal_plans), 0, "an unknown interval is not guessed");
}

#[test]
fn months_end_with_the_month_of_now_in_utc() {
    // 23:30 on Jan 31 in New York is already February in UTC.
    let now = instant("2026-02-01T04:30:00Z");
    assert_eq!(months_ending(now, 3), [date("2025-12-01"), date("2026-01-01"), date("2026-02-01")]);
    assert_eq!(months_ending(now, 0), Vec::<Date>::new());
    assert_eq!(month_label(date("2026-11-17")), "2026-11");
}

#[test]
fn requested_months_are_sorted_and_taken_once() {
    let history = vec![on("a", "2026-01-05", "active", 10_000)];
    let internal_plans = BTreeSet::new();
    let months = vec![date("2026-03-09"), date("2026-01-01"), date("2026-03-01"), date("2026-01-31")];
    let inputs = Inputs { history: &history, internal_plans: &internal_plans, months, now: noon("2026-03-20") };
    let months = &report(&inputs).currencies["usd"].months;
    let labels: Vec<&str> = months.iter().map(|m| m.month.as_str()).collect();
    assert_eq!(labels, ["2026-01", "2026-03"]);
    // Not adjacent: March starts where February left it.
    assert_eq!(movements(&months[1]), [10_000, 0, 0, 0, 0, 0, 10_000]);
}

#[test]
fn figures_serialize_in_camel_case() {
    let json = serde_json::to_value(scenario_report("2026-05-15")).unwrap();
    let january = &json["currencies"]["usd"]["months"][0];
    assert_eq!(january["month"], "2026-01");
    assert_eq!(january["startMrrCents"], 42_000);
    assert_eq!(january["grossRevenueChurnRate"], 0.0);
    assert_eq!(january["trialConversionRate"], serde_json::Value::Null);
    assert_eq!(json["currencies"]["usd"]["current"]["payingCustomers"], 6);
    assert_eq!(json["organizations"]["a"]["mrrCents"], 10_000);
}

#[test]
fn amounts_and_rates_format_for_people() {
    assert_eq!(format_cents(123_450, "usd"), "$1,234.50");
    assert_eq!(format_cents(0, "USD"), "$0.00");
    assert_eq!(format_cents(-5, "eur"), "-€0.05");
    assert_eq!(format_cents(100_000_000, "gbp"), "£1,000,000.00");
    assert_eq!(format_cents(123_450, "chf"), "1,234.50 CHF");
    assert_eq!(format_cents(1_234, "jpy"), "1,234 JPY", "yen have no cents");
    assert_eq!(format_cents(i64::MIN, "usd"), "-$92,233,720,368,547,758.08");
    assert_eq!(format_rate(Some(0.042)), "4.2 %");
    assert_eq!(format_rate(Some(0.0)), "0.0 %");
    assert_eq!(format_rate(Some(-20_000.0 / 62_000.0)), "-32.3 %");
    assert_eq!(format_rate(None), "—");
}

/// A small deterministic generator (64-bit LCG, Knuth's constants): the same history every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn random_history(organizations: usize, seed: u64) -> Vec<SubscriptionChange> {
    let mut random = Lcg(seed);
    let from = instant("2025-01-01T00:00:00Z");
    let boundaries = months_ending(instant("2026-12-15T00:00:00Z"), 24);
    let states = ["trialing", "trialing", "active", "active", "active", "past_due", "canceled", "suspended", "unpaid"];
    let mut rows = Vec::new();
    for organization in 0..organizations {
        let organization = format!("org-{organization:04}");
        let currency = random.pick(&["usd", "usd", "usd", "eur", "gbp"]);
        for n in 0..random.below(30) {
            let at = match random.below(6) {
                // On a month boundary exactly, to exercise `at < start`.
                0 => boundaries[random.below(24) as usize].to_zoned(TimeZone::UTC).unwrap().timestamp(),
                _ => from + jiff::SignedDuration::from_secs(random.below(2 * 365 * 86_400) as i64),
            };
            rows.push(SubscriptionChange {
                id: format!("{organization}-{n:02}"),
                organization: organization.clone(),
                at,
                plan: random.pick(&["basic", "pro", "pro", "enterprise", "staff"]).to_string(),
                state: random.pick(&states).to_string(),
                price_cents: random.below(50_000) as i64 - 1_000,
                // Now and then an organization pays in another currency.
                currency: if random.below(20) == 0 { "EUR" } else { currency }.to_string(),
                billing_interval: random.pick(&["month", "month", "year", "week"]).to_string(),
                reason: String::new(),
            });
        }
    }
    rows
}

/// The MRR of `rows` (one organization, sorted) from the latest row satisfying `before`, and its currency.
fn naive_mrr<'r>(
    rows: &[&'r SubscriptionChange],
    internal_plans: &BTreeSet<String>,
    before: impl Fn(Timestamp) -> bool,
) -> (i64, &'r str) {
    match rows.iter().rev().find(|row| before(row.at)) {
        Some(row) => (monthly_cents(row, internal_plans), row.currency.as_str()),
        None => (0, ""),
    }
}

#[test]
fn a_thousand_organizations_add_up_every_month() {
    let history = random_history(1_000, 42);
    let internal_plans = internal();
    let now = instant("2026-06-15T08:00:00Z");
    let inputs = Inputs { history: &history, internal_plans: &internal_plans, months: months_ending(now, 12), now };
    let report = report(&inputs);
    assert!(history.len() > 10_000, "{} rows", history.len());
    assert_eq!(report.currencies.keys().collect::<Vec<_>>(), ["eur", "gbp", "usd"]);

    for (currency, figures) in &report.currencies {
        assert_eq!(figures.months.len(), 12);
        for month in &figures.months {
            assert_adds_up(month);
            assert!(month.churned_customers <= month.customers_start, "{currency} {month:?}");
            assert!(month.trials_converted <= month.trials_ended, "{currency} {month:?}");
        }
        for pair in figures.months.windows(2) {
            assert_eq!(
                pair[0].end_mrr_cents, pair[1].start_mrr_cents,
                "{currency}: one month's end is the next's start"
            );
            assert_eq!(pair[0].customers_end, pair[1].customers_start, "{currency}");
        }
    }

    // An independent, slow reading of the same rules: every figure from scratch per organization and month.
    let mut by_organization: BTreeMap<&str, Vec<&SubscriptionChange>> = BTreeMap::new();
    for row in &history {
        by_organization.entry(row.organization.as_str()).or_default().push(row);
    }
    for rows in by_organization.values_mut() {
        rows.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    }
    let mut expected: BTreeMap<String, Vec<[i64; 7]>> = BTreeMap::new();
    let mut expected_now: BTreeMap<String, (i64, usize)> = BTreeMap::new();
    for rows in by_organization.values() {
        for (m, first) in inputs.months.iter().enumerate() {
            let start = first.to_zoned(TimeZone::UTC).unwrap().timestamp();
            let end = first.checked_add(Span::new().months(1)).unwrap().to_zoned(TimeZone::UTC).unwrap().timestamp();
            let (start_mrr, start_currency) = naive_mrr(rows, &internal_plans, |at| at < start);
            let (end_mrr, end_currency) = naive_mrr(rows, &internal_plans, |at| at < end);
            // Paid at some instant before start: at some row's own instant (the last row at it is in force).
            let paid_before = rows
                .iter()
                .filter(|row| row.at < start)
                .any(|row| naive_mrr(rows, &internal_plans, |at| at <= row.at).0 > 0);
            let mut add = |currency: &str, index: usize, cents: i64| {
                let months = expected.entry(currency.to_ascii_lowercase()).or_insert_with(|| vec![[0; 7]; 12]);
                months[m][index] += cents;
            };
            if start_mrr > 0 {
                add(start_currency, 0, start_mrr);
            }
            if end_mrr > 0 {
                add(end_currency, 6, end_mrr);
            }
            let same_currency = start_currency.eq_ignore_ascii_case(end_currency);
            if start_mrr > 0 && end_mrr > 0 && same_currency {
                add(start_currency, 2, (end_mrr - start_mrr).max(0));
                add(start_currency, 3, (start_mrr - end_mrr).max(0));
            } else {
                if start_mrr > 0 {
                    add(start_currency, 4, start_mrr);
                }
                if end_mrr > 0 {
                    add(end_currency, if paid_before { 5 } else { 1 }, end_mrr);
                }
            }
        }
        let (mrr, currency) = naive_mrr(rows, &internal_plans, |at| at <= now);
        if mrr > 0 {
            let tally = expected_now.entry(currency.to_ascii_lowercase()).or_default();
            tally.0 += mrr;
            tally.1 += 1;
        }
    }
    for (currency, months) in &expected {
        let actual: Vec<[i64; 7]> = report.currencies[currency].months.iter().map(movements).collect();
        assert_eq!(&actual, months, "{currency}");
    }
    for (currency, (mrr, paying)) in &expected_now {
        let current = &report.currencies[currency].current;
        assert_eq!((current.mrr_cents, current.paying_customers), (*mrr, *paying), "{currency}");
    }
    let movements_seen: i64 = expected.values().flatten().map(|m| m[1] + m[2] + m[3] + m[4] + m[5]).sum();
    assert!(movements_seen > 0, "the history moves");
}
