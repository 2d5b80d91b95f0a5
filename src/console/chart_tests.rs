use super::*;

/// A tiny well-formedness check: tags balance, `/>` closes, attribute quotes pair up, no stray `<` or `>`
/// in text, and every `&` starts one of the entities `escape` writes.
fn assert_well_formed(markup: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = markup;
    while let Some(open) = rest.find('<') {
        assert!(!rest[..open].contains('>'), "stray > in text before {:?}", &rest[open..]);
        let close = rest[open..].find('>').map(|i| open + i).expect("unclosed tag");
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "< inside tag {tag:?}");
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in {tag:?}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            let name = tag.split(|c: char| c.is_whitespace()).next().unwrap_or("");
            assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()), "bad tag {tag:?}");
            stack.push(name);
        }
        rest = &rest[close + 1..];
    }
    assert!(!rest.contains('>'), "stray > at the end");
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    for (i, _) in markup.match_indices('&') {
        let entity = &markup[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|e| entity.starts_with(e)),
            "bare & at {:?}",
            &entity[..entity.len().min(12)]
        );
    }
}

/// The start tags (without `<`) that begin with `prefix`, e.g. `rect class="bar"`.
fn tags<'a>(markup: &'a str, prefix: &str) -> Vec<&'a str> {
    markup.split('<').filter(|t| t.starts_with(prefix)).map(|t| t.split('>').next().unwrap_or(t)).collect()
}

fn attr(tag: &str, name: &str) -> f64 {
    let start = tag.find(&format!(" {name}=\"")).expect("attribute") + name.len() + 3;
    tag[start..].split('"').next().unwrap().parse().unwrap()
}

fn days(values: &[f64]) -> Vec<(String, f64)> {
    values.iter().enumerate().map(|(i, v)| (format!("2026-11-{:02}", i + 1), *v)).collect()
}

fn series<'a>(points: &'a [(String, f64)], limit: Option<f64>) -> ChartSeries<'a> {
    ChartSeries { title: "Bandwidth", unit: "GiB", points, limit }
}

#[test]
fn nice_ticks_are_round_and_cover_the_maximum() {
    assert_eq!(nice_ticks(100.0), [0.0, 25.0, 50.0, 75.0, 100.0]);
    assert_eq!(nice_ticks(7.0), [0.0, 2.0, 4.0, 6.0, 8.0]);
    assert_eq!(nice_ticks(12.5), [0.0, 5.0, 10.0, 15.0]);
    assert_eq!(nice_ticks(3.0), [0.0, 1.0, 2.0, 3.0]);
    assert_eq!(nice_ticks(1.0), [0.0, 0.25, 0.5, 0.75, 1.0]);
    assert_eq!(nice_ticks(0.3), [0.0, 0.1, 0.2, 0.3]);
    assert_eq!(nice_ticks(101.0), [0.0, 50.0, 100.0, 150.0]);
    assert_eq!(nice_ticks(1234.0), [0.0, 500.0, 1000.0, 1500.0]);
    assert_eq!(nice_ticks(9_000_000.0), [0.0, 2_500_000.0, 5_000_000.0, 7_500_000.0, 10_000_000.0]);
    assert_eq!(nice_ticks(0.0), [0.0, 1.0]);
    assert_eq!(nice_ticks(-5.0), [0.0, 1.0]);
    assert_eq!(nice_ticks(f64::NAN), [0.0, 1.0]);
    for max in [0.001, 0.07, 1.5, 9.99, 42.0, 333.0, 86_400.0, 1e12] {
        let ticks = nice_ticks(max);
        assert!((3..=5).contains(&ticks.len()), "{max}: {ticks:?}");
        assert!(ticks.last().copied().unwrap_or(0.0) >= max, "{max}: {ticks:?}");
    }
}

#[test]
fn hostile_text_is_escaped() {
    let points = vec![("<b>day</b>".to_owned(), 3.0), ("2026-11-02".to_owned(), 4.0)];
    let s = ChartSeries {
        title: "<script>alert('x')</script> & \"co\"",
        unit: "<i>GiB</i>",
        points: &points,
        limit: Some(5.0),
    };
    for out in [daily_bars(&s), data_table(&s), meter_bar("<script>", 1.0, Some(2.0), "<u>")] {
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("<b>") && !out.contains("<i>") && !out.contains("<u>"), "{out}");
        assert_well_formed(&out);
    }
    let svg = daily_bars(&s);
    assert!(
        svg.contains("<title>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;</title>"),
        "{svg}"
    );
    assert!(svg.contains(r#"aria-label="&lt;script&gt;"#), "{svg}");
    let months = [("<x>".to_owned(), MonthMovements { new: 100, ..Default::default() })];
    let mv = movements_bars(&months);
    assert!(!mv.contains("<x>"), "{mv}");
    assert_well_formed(&mv);
}

#[test]
fn one_bar_per_point_with_a_tooltip() {
    for n in [1, 2, 30, 90] {
        let points = days(&(0..n).map(|i| f64::from(i) * 1.5).collect::<Vec<_>>());
        let svg = daily_bars(&series(&points, None));
        assert_well_formed(&svg);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(
            svg.contains(r#"role="img""#)
                && svg.contains(r#"viewBox="0 0 600 180""#)
                && svg.contains(r#"width="100%""#)
        );
        assert_eq!(tags(&svg, r#"rect class="bar""#).len(), n as usize, "{svg}");
        for tag in tags(&svg, r#"rect class="bar""#) {
            assert!(attr(tag, "y") + attr(tag, "height") <= 156.05, "{tag}");
            assert!(attr(tag, "x") >= 48.0 && attr(tag, "x") + attr(tag, "width") <= 592.05, "{tag}");
        }
    }
    let points = days(&[12.5, 40.0, 3.0]);
    let svg = daily_bars(&series(&points, None));
    assert!(svg.contains("<title>2026-11-01: 12.5 GiB</title>"), "{svg}");
    assert!(
        svg.contains(
            "<desc>Total 55.5 GiB over 3 days. Highest day 2026-11-02: 40 GiB. Last day 2026-11-03: 3 GiB.</desc>"
        ),
        "{svg}"
    );
    // First, middle and last day labelled; ticks 0, 10, 20, 30, 40.
    assert_eq!(tags(&svg, r#"text class="x-label""#).len(), 3);
    assert!(
        svg.contains(">2026-11-01</text>") && svg.contains(">2026-11-02</text>") && svg.contains(">2026-11-03</text>")
    );
    assert_eq!(tags(&svg, r#"g class="tick""#).len(), 5);
    assert!(svg.contains(r#"style="fill:var(--brand, #2563eb)""#));
    // The tallest bar reaches the top tick (40 of 40).
    assert!(svg.contains(r#"y="12" width="#), "{svg}");
    assert!(!svg.contains("No usage"));
}

#[test]
fn limit_line_only_with_a_limit() {
    let points = days(&[10.0, 20.0, 60.0]);
    let without = daily_bars(&series(&points, None));
    assert!(!without.contains("class=\"limit\""), "{without}");
    let with = daily_bars(&series(&points, Some(50.0)));
    assert_well_formed(&with);
    assert_eq!(with.matches(r#"<g class="limit">"#).count(), 1);
    assert!(with.contains("stroke-dasharray") && with.contains(">Included: 50 GiB</text>"), "{with}");
    assert!(with.contains("Included: 50 GiB.</desc>"));
    // A limit above every value stretches the axis to it: ticks 0, 50, 100, 150.
    let high = daily_bars(&series(&points, Some(120.0)));
    assert!(high.contains(">150</text>"), "{high}");
    // A zero or non-finite limit draws nothing.
    assert!(!daily_bars(&series(&points, Some(0.0))).contains("class=\"limit\""));
    assert!(!daily_bars(&series(&points, Some(f64::NAN))).contains("class=\"limit\""));
}

#[test]
fn empty_and_all_zero_series_say_so() {
    for points in [vec![], days(&[0.0; 30])] {
        let svg = daily_bars(&series(&points, None));
        assert_well_formed(&svg);
        assert!(svg.contains(r#"<text class="empty""#) && svg.contains(">No usage in this period</text>"), "{svg}");
        assert!(svg.contains("<desc>No usage in this period.</desc>"), "{svg}");
        assert_eq!(tags(&svg, r#"rect class="bar""#).len(), points.len());
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }
    let table = data_table(&series(&[], None));
    assert_well_formed(&table);
    assert!(table.contains(r#"<td colspan="2">No usage in this period</td>"#), "{table}");
    // Negative and non-finite values draw as zero.
    let odd = days(&[-3.0, f64::NAN, f64::INFINITY]);
    let svg = daily_bars(&series(&odd, None));
    assert_well_formed(&svg);
    assert!(svg.contains("No usage in this period") && !svg.contains("NaN"), "{svg}");
}

#[test]
fn data_table_has_caption_headers_rows_and_total() {
    let points = days(&[12.5, 1234.567, 0.0]);
    let table = data_table(&series(&points, Some(50.0)));
    assert_well_formed(&table);
    assert!(table.starts_with(r#"<table class="chart-table"><caption>Bandwidth</caption>"#), "{table}");
    assert!(table.contains(r#"<th scope="col">Day</th><th scope="col">Quantity (GiB)</th>"#), "{table}");
    assert!(table.contains(r#"<tr><th scope="row">2026-11-01</th><td>12.5</td></tr>"#), "{table}");
    assert!(table.contains(r#"<tr><th scope="row">2026-11-02</th><td>1,234.57</td></tr>"#), "{table}");
    assert!(table.contains(r#"<tr><th scope="row">2026-11-03</th><td>0</td></tr>"#), "{table}");
    assert!(table.contains(r#"<th scope="row">Total</th><td>1,247.07</td>"#), "{table}");
    assert!(table.contains(r#"<th scope="row">Included</th><td>50</td>"#), "{table}");
    let unitless = data_table(&ChartSeries { unit: "", ..series(&points, None) });
    assert!(unitless.contains(r#"<th scope="col">Quantity</th>"#) && !unitless.contains("Included"));
}

#[test]
fn meter_bar_states_and_text() {
    let cases = [
        (25.0, "ok", "25 of 50 GiB (50 %)"),
        (40.0, "warn", "40 of 50 GiB (80 %)"),
        (50.0, "over", "50 of 50 GiB (100 %)"),
        (65.0, "over", "65 of 50 GiB (130 %)"),
    ];
    for (used, state, text) in cases {
        let html = meter_bar("Storage", used, Some(50.0), "GiB");
        assert_well_formed(&html);
        assert!(
            html.starts_with(&format!(r#"<div class="meter {state}" role="group" aria-label="Storage">"#)),
            "{html}"
        );
        assert!(html.contains(&format!(r#"<span class="meter-text">{text}</span>"#)), "{html}");
        assert!(html.contains(&format!(r#"aria-label="Storage: {text}""#)), "{html}");
        assert!(html.contains(r#"min="0" max="50" low="40""#) && html.contains(r#"optimum="0""#), "{html}");
        assert!(
            html.contains(r#"meter-tick-80" style="left:80%""#)
                && html.contains(r#"meter-tick-100" style="left:100%""#)
        );
    }
    // Over the limit the value is clamped to max and `high` drops to `low`, so browsers colour it as bad.
    assert!(meter_bar("Storage", 65.0, Some(50.0), "GiB").contains(r#"high="40" optimum="0" value="50""#));
    assert!(meter_bar("Storage", 25.0, Some(50.0), "GiB").contains(r#"high="50" optimum="0" value="25""#));
    assert!(meter_bar("Storage", 39.99, Some(50.0), "GiB").contains(r#"class="meter ok""#));
    // Just under 80 % reads 79 %, not a rounded-up 80 % in the ok state.
    assert!(meter_bar("Calls", 39.9, Some(50.0), "").contains(">39.9 of 50 (79 %)<"));
    let unlimited = meter_bar("Bandwidth", 12.4, None, "GiB");
    assert_well_formed(&unlimited);
    assert!(
        unlimited.starts_with(r#"<div class="meter ok unlimited" role="group" aria-label="Bandwidth">"#),
        "{unlimited}"
    );
    assert!(unlimited.contains(">12.4 GiB (unlimited)</span>") && !unlimited.contains("<meter"), "{unlimited}");
    // Nothing included: any usage is over.
    let none_included = meter_bar("Builds", 2.0, Some(0.0), "hours");
    assert_well_formed(&none_included);
    assert!(
        none_included.contains(r#"class="meter over""#) && none_included.contains(">2 of 0 hours</span>"),
        "{none_included}"
    );
    assert!(meter_bar("Builds", 0.0, Some(0.0), "hours").contains(r#"class="meter ok""#));
}

#[test]
fn movements_stack_above_and_below_the_zero_line() {
    let m = |new, expansion, reactivation, contraction, churn| MonthMovements {
        new,
        expansion,
        reactivation,
        contraction,
        churn,
    };
    let months = vec![
        ("2026-10".to_owned(), m(125_000, 30_000, 0, -20_000, -50_000)),
        ("2026-11".to_owned(), m(80_000, 0, 10_050, 5_000, 0)),
    ];
    let svg = movements_bars(&months);
    assert_well_formed(&svg);
    assert!(svg.contains(r#"class="chart movements""#) && svg.contains("<title>Monthly revenue movements</title>"));
    let zero = attr(tags(&svg, r#"line class="zero"#)[0], "y1");
    // Segments only (the legend's swatches are self-closing): zero amounts draw nothing.
    let segments =
        |class: &str| tags(&svg, &format!(r#"rect class="{class}""#)).into_iter().filter(|t| !t.ends_with('/')).count();
    assert_eq!(segments("mv-new"), 2);
    assert_eq!(segments("mv-expansion"), 1);
    assert_eq!(segments("mv-reactivation"), 1);
    assert_eq!(segments("mv-contraction"), 2);
    assert_eq!(segments("mv-churn"), 1);
    for tag in tags(&svg, r#"rect class="mv-"#).into_iter().filter(|t| !t.ends_with('/')) {
        let (top, bottom) = (attr(tag, "y"), attr(tag, "y") + attr(tag, "height"));
        if tag.contains("mv-contraction") || tag.contains("mv-churn") {
            assert!(top >= zero - 0.05, "{tag} above zero at {zero}");
        } else {
            assert!(bottom <= zero + 0.05, "{tag} below zero at {zero}");
        }
    }
    assert!(svg.contains("<title>2026-10 new: $1,250</title>"), "{svg}");
    assert!(svg.contains("<title>2026-10 churn: -$500</title>"), "{svg}");
    assert!(svg.contains("<title>2026-11 reactivation: $100.50</title>"), "{svg}");
    assert!(svg.contains("<title>2026-11 contraction: -$50</title>"), "{svg}");
    assert!(svg.contains(r#"style="fill:var(--mv-churn, #dc2626)""#));
    assert!(svg.contains(r#"<g class="legend">"#));
    for label in ["New", "Expansion", "Reactivation", "Contraction", "Churn"] {
        assert!(svg.contains(&format!(">{label}</text>")), "{label}");
    }
    // Axis: positive top $2,000 (nice above $1,550), negative bottom -$800 (nice above $700).
    assert!(svg.contains(">$2,000</text>") && svg.contains(">-$800</text>") && svg.contains(">$0</text>"), "{svg}");
    assert!(
        svg.contains(
            "2026-11: new $800, expansion $0, reactivation $100.50, contraction -$50, churn $0; net $850.50.</desc>"
        ),
        "{svg}"
    );
    // The stacks are proportional: new in October is $1,250 of the $2,800 range over 138 units.
    let first_new = tags(&svg, r#"rect class="mv-new""#)[0];
    assert!((attr(first_new, "height") - 1250.0 * 138.0 / 2800.0).abs() < 0.06, "{first_new}");
}

#[test]
fn movements_empty_still_a_chart() {
    for months in [vec![], vec![("2026-11".to_owned(), MonthMovements::default())]] {
        let svg = movements_bars(&months);
        assert_well_formed(&svg);
        assert!(svg.contains(">No revenue movements in this period</text>"), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }
    let many: Vec<_> = (1..=24)
        .map(|i| (format!("m{i:02}"), MonthMovements { new: i * 100, churn: -i * 10, ..Default::default() }))
        .collect();
    let svg = movements_bars(&many);
    assert_well_formed(&svg);
    assert!(tags(&svg, r#"text class="x-label""#).len() <= 8 && svg.contains(">m24</text>"), "{svg}");
    let extreme = [("x".to_owned(), MonthMovements { new: i64::MAX, churn: i64::MIN, ..Default::default() })];
    assert_well_formed(&movements_bars(&extreme));
}

#[test]
fn format_quantity_is_compact() {
    let cases = [
        (0.0, "0"),
        (-0.0, "0"),
        (0.001, "0"),
        (0.25, "0.25"),
        (1.234, "1.23"),
        (12.0, "12"),
        (12.5, "12.5"),
        (999.0, "999"),
        (999.96, "1,000"),
        (1234.0, "1,234"),
        (9999.0, "9,999"),
        (12_345.0, "12.3k"),
        (123_456.0, "123k"),
        (999_999.0, "1M"),
        (4_560_000.0, "4.56M"),
        (7_100_000_000.0, "7.1B"),
        (-1234.0, "-1,234"),
        (-12.5, "-12.5"),
    ];
    for (value, expected) in cases {
        assert_eq!(format_quantity(value), expected, "{value}");
    }
    assert_eq!(format_quantity(f64::NAN), "–");
}

#[test]
fn dollars_and_coordinates() {
    assert_eq!(format_dollars(125_000), "$1,250");
    assert_eq!(format_dollars(-350), "-$3.50");
    assert_eq!(format_dollars(5), "$0.05");
    assert_eq!(format_dollars(0), "$0");
    assert_eq!(format_dollars(i64::MIN), "-$92,233,720,368,547,758.08");
    assert_eq!(num(12.34), "12.3");
    assert_eq!(num(-0.04), "0");
    assert_eq!(num(156.0), "156");
    assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

#[test]
fn output_is_deterministic() {
    let points = days(&[1.0, 2.0, 3.0]);
    assert_eq!(daily_bars(&series(&points, Some(2.0))), daily_bars(&series(&points, Some(2.0))));
}
