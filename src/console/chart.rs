//! Server-side charts for the console: pure functions that return HTML fragments (inline SVG, a table, a
//! meter), readable with JavaScript off. Templates insert them unescaped, so every piece of text is escaped
//! here. Each SVG is `role="img"` with a `<title>` and a `<desc>` summary, scales with its container
//! (`viewBox`, `width="100%"`, height from the aspect ratio, so text is never stretched), and has a
//! `<title>` tooltip per bar; [`data_table`] gives screen readers the same numbers.
//!
//! The stylesheet themes them through classes; colours have fallbacks only: `.chart` (the `<svg>`, text in
//! `currentColor`), `.bar` (fill `var(--brand, #2563eb)`), `.limit`, `.axis`, `.tick`, `.x-label`, `.empty`;
//! `.movements` with `.mv-new` … `.mv-churn` (fill `var(--mv-new, …)` and so on), `.zero`, `.legend`;
//! `.chart-table`; `.meter` with `.ok` / `.warn` / `.over` / `.unlimited`, `.meter-label`, `.meter-track`,
//! `.meter-tick` (needs `position: absolute` in a `position: relative` `.meter-track`), `.meter-text`.

const RIGHT: f64 = 592.0;
const LEFT: f64 = 48.0;
const TOP: f64 = 12.0;
const NO_USAGE: &str = "No usage in this period";

/// A daily series: `points` are `("2026-11-03", quantity)`, oldest first; `limit` the plan's included amount.
#[derive(Debug, Clone, Copy)]
pub struct ChartSeries<'a> {
    pub title: &'a str,
    pub unit: &'a str,
    pub points: &'a [(String, f64)],
    pub limit: Option<f64>,
}

/// One month's revenue movements in cents. Amounts are magnitudes: the sign of a field is ignored, so
/// contraction and churn may be given as positive or negative numbers; they are drawn below the zero line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonthMovements {
    pub new: i64,
    pub expansion: i64,
    pub reactivation: i64,
    pub contraction: i64,
    pub churn: i64,
}

/// (class suffix, label, fallback colour, below the zero line).
const MOVEMENTS: [(&str, &str, &str, bool); 5] = [
    ("new", "New", "#16a34a", false),
    ("expansion", "Expansion", "#4ade80", false),
    ("reactivation", "Reactivation", "#0ea5e9", false),
    ("contraction", "Contraction", "#f59e0b", true),
    ("churn", "Churn", "#dc2626", true),
];

impl MonthMovements {
    fn amounts(&self) -> [u64; 5] {
        [self.new, self.expansion, self.reactivation, self.contraction, self.churn].map(i64::unsigned_abs)
    }
}

/// A bar chart of a daily series, with a dashed line at the limit if there is one.
pub fn daily_bars(series: &ChartSeries) -> String {
    const BOTTOM: f64 = 156.0;
    let values: Vec<f64> = series.points.iter().map(|(_, v)| if v.is_finite() { v.max(0.0) } else { 0.0 }).collect();
    let max = values.iter().copied().fold(0.0, f64::max);
    let limit = series.limit.filter(|l| l.is_finite() && *l > 0.0);
    let ticks = nice_ticks(max.max(limit.unwrap_or(0.0)));
    let top = ticks.last().copied().unwrap_or(1.0);
    let y = |v: f64| BOTTOM - v / top * (BOTTOM - TOP);
    let mut out = svg_open("chart", series.title, &describe(series, &values), 180.0);
    for &t in &ticks {
        grid_line(&mut out, y(t), &format_quantity(t));
    }
    let band = (RIGHT - LEFT) / values.len().max(1) as f64;
    out.push_str(r#"<g class="bars" style="fill:var(--brand, #2563eb)">"#);
    for (i, ((day, _), &v)) in series.points.iter().zip(&values).enumerate() {
        let [x, top, w, h] = [LEFT + i as f64 * band + band * 0.1, y(v), band * 0.8, BOTTOM - y(v)].map(num);
        let tip = escape(&format!("{day}: {}", with_unit(v, series.unit)));
        out.push_str(&format!(
            r#"<rect class="bar" x="{x}" y="{top}" width="{w}" height="{h}"><title>{tip}</title></rect>"#
        ));
    }
    out.push_str("</g>");
    out.push_str(&hline("axis", BOTTOM, ""));
    if let Some(l) = limit {
        let label = text("", RIGHT, y(l) - 4.0, "end", &format!("Included: {}", with_unit(l, series.unit)));
        out.push_str(&format!(r#"<g class="limit">{}{label}</g>"#, hline("", y(l), r#" stroke-dasharray="6 4""#)));
    }
    let n = series.points.len();
    let mut labelled: Vec<usize> = vec![0, n / 2, n.saturating_sub(1)];
    labelled.dedup();
    for i in labelled.into_iter().filter(|&i| i < n) {
        let (x, anchor) = match i {
            0 => (LEFT, "start"),
            i if i + 1 == n => (RIGHT, "end"),
            i => (LEFT + (i as f64 + 0.5) * band, "middle"),
        };
        out.push_str(&text("x-label", x, 172.0, anchor, &series.points[i].0));
    }
    if max == 0.0 {
        out.push_str(&text("empty", (LEFT + RIGHT) / 2.0, (TOP + BOTTOM) / 2.0, "middle", NO_USAGE));
    }
    out.push_str("</svg>");
    out
}

/// The series as an accessible table (caption, one row per day, the total and the limit in the footer).
pub fn data_table(series: &ChartSeries) -> String {
    let unit = if series.unit.is_empty() { String::new() } else { format!(" ({})", escape(series.unit)) };
    let mut out = format!(
        r#"<table class="chart-table"><caption>{}</caption><thead><tr><th scope="col">Day</th><th scope="col">Quantity{unit}</th></tr></thead><tbody>"#,
        escape(series.title)
    );
    for (day, v) in series.points {
        out.push_str(&format!(r#"<tr><th scope="row">{}</th><td>{}</td></tr>"#, escape(day), exact(*v)));
    }
    if series.points.is_empty() {
        out.push_str(&format!(r#"<tr><td colspan="2">{NO_USAGE}</td></tr>"#));
    }
    out.push_str("</tbody>");
    if !series.points.is_empty() {
        let total: f64 = series.points.iter().map(|(_, v)| v).filter(|v| v.is_finite()).sum();
        out.push_str(&format!(r#"<tfoot><tr><th scope="row">Total</th><td>{}</td></tr>"#, exact(total)));
        if let Some(l) = series.limit {
            out.push_str(&format!(r#"<tr><th scope="row">Included</th><td>{}</td></tr>"#, exact(l)));
        }
        out.push_str("</tfoot>");
    }
    out.push_str("</table>");
    out
}

/// Usage against an included amount: a `<meter>` (browsers colour it natively) with tick marks at 80 % and
/// 100 %, a text, and the state class `ok`, `warn` (≥ 80 %) or `over` (≥ 100 %). No limit: text only.
pub fn meter_bar(label: &str, used: f64, included: Option<f64>, unit: &str) -> String {
    let used = if used.is_finite() { used.max(0.0) } else { 0.0 };
    let l = escape(label);
    let Some(max) = included.map(|m| if m.is_finite() { m.max(0.0) } else { 0.0 }) else {
        let text = escape(&format!("{} (unlimited)", with_unit(used, unit)));
        return format!(
            r#"<div class="meter ok unlimited" role="group" aria-label="{l}"><span class="meter-label">{l}</span> <span class="meter-text">{text}</span></div>"#
        );
    };
    let state = if used > 0.0 && used >= max {
        "over"
    } else if used > 0.0 && used * 5.0 >= max * 4.0 {
        "warn"
    } else {
        "ok"
    };
    let mut text = format!("{} of {}", format_quantity(used), with_unit(max, unit));
    if max > 0.0 {
        text.push_str(&format!(" ({:.0} %)", (used / max * 100.0).floor()));
    }
    let text = escape(&text);
    // With `optimum` at 0, browsers colour values below `low` as good, up to `high` as suboptimal and above
    // `high` as bad. Over the limit `value` is clamped to `max`, so `high` drops to `low` to show it as bad.
    let scale = if max > 0.0 { max } else { 1.0 };
    let low = scale * 0.8;
    let high = if state == "over" { low } else { scale };
    let value = if max > 0.0 { used.min(max) } else { f64::from(u8::from(used > 0.0)) };
    let [max, low, high, value] = [scale, low, high, value].map(|v| fixed(v, 3));
    let ticks = [80, 100].map(|pct| {
        format!(r#"<span class="meter-tick meter-tick-{pct}" style="left:{pct}%" aria-hidden="true"></span>"#)
    });
    format!(
        r#"<div class="meter {state}" role="group" aria-label="{l}"><span class="meter-label">{l}</span> <span class="meter-track"><meter min="0" max="{max}" low="{low}" high="{high}" optimum="0" value="{value}" aria-label="{l}: {text}">{text}</meter>{}</span> <span class="meter-text">{text}</span></div>"#,
        ticks.concat()
    )
}

/// Stacked bars of revenue movements per month (`("2026-11", movements)`, oldest first): new, expansion and
/// reactivation above the zero line, contraction and churn below it, with a legend.
pub fn movements_bars(months: &[(String, MonthMovements)]) -> String {
    const BOTTOM: f64 = 150.0;
    let rows: Vec<[f64; 5]> = months.iter().map(|(_, m)| m.amounts().map(|c| c as f64 / 100.0)).collect();
    let extent = |range: std::ops::Range<usize>| {
        let max = rows.iter().map(|r| r[range.clone()].iter().sum::<f64>()).fold(0.0, f64::max);
        if max > 0.0 { nice_ticks(max).last().copied().unwrap_or(max) } else { 0.0 }
    };
    let (pos, neg) = (extent(0..3), extent(3..5));
    let scale = if pos + neg > 0.0 { (BOTTOM - TOP) / (pos + neg) } else { 0.0 };
    let zero = if pos + neg > 0.0 { TOP + pos * scale } else { (TOP + BOTTOM) / 2.0 };
    let mut out = svg_open("chart movements", "Monthly revenue movements", &describe_movements(months), 200.0);
    let cents = |dollars: f64| (dollars * 100.0).round() as i64;
    if pos > 0.0 {
        grid_line(&mut out, TOP, &format_dollars(cents(pos)));
    }
    if neg > 0.0 {
        grid_line(&mut out, BOTTOM, &format_dollars(-cents(neg)));
    }
    let band = (RIGHT - LEFT) / months.len().max(1) as f64;
    let every = months.len().div_ceil(8).max(1);
    for (i, ((month, _), row)) in months.iter().zip(&rows).enumerate() {
        let (mut up, mut down) = (zero, zero);
        for (&(key, _, colour, below), &amount) in MOVEMENTS.iter().zip(row) {
            if amount == 0.0 {
                continue;
            }
            let h = amount * scale;
            let y = if below { down } else { up - h };
            (up, down) = if below { (up, down + h) } else { (y, down) };
            let [x, y, w, h] = [LEFT + i as f64 * band + band * 0.2, y, band * 0.6, h].map(num);
            let tip =
                escape(&format!("{month} {key}: {}{}", if below { "-" } else { "" }, format_dollars(cents(amount))));
            out.push_str(&format!(
                r#"<rect class="mv-{key}" x="{x}" y="{y}" width="{w}" height="{h}" style="fill:var(--mv-{key}, {colour})"><title>{tip}</title></rect>"#
            ));
        }
        if i % every == (months.len() - 1) % every {
            out.push_str(&text("x-label", LEFT + (i as f64 + 0.5) * band, 166.0, "middle", month));
        }
    }
    grid_line(&mut out, zero, "$0");
    out.push_str(&hline("zero axis", zero, ""));
    out.push_str(r#"<g class="legend">"#);
    for (i, (key, label, colour, _)) in MOVEMENTS.iter().enumerate() {
        let x = LEFT + i as f64 * 108.0;
        let swatch = format!(r#"x="{x}" y="180" width="10" height="10" style="fill:var(--mv-{key}, {colour})""#);
        out.push_str(&format!(r#"<rect class="mv-{key}" {swatch}/>{}"#, text("", x + 14.0, 189.0, "start", label)));
    }
    out.push_str("</g>");
    if pos + neg == 0.0 {
        out.push_str(&text("empty", (LEFT + RIGHT) / 2.0, zero - 8.0, "middle", "No revenue movements in this period"));
    }
    out.push_str("</svg>");
    out
}

/// Rounded axis ticks from 0 to at least `max`: 3 to 5 values with a step of 1, 2, 2.5 or 5 × 10ⁿ
/// (`100` → 0, 25, 50, 75, 100). Nothing to show (`max` ≤ 0, not finite): `[0, 1]`.
pub fn nice_ticks(max: f64) -> Vec<f64> {
    if !(max.is_finite() && max > 0.0) {
        return vec![0.0, 1.0];
    }
    let exp = (max / 4.0).log10().floor() as i32;
    // Dividing by 10ⁿ for negative n keeps 0.1 × 3 at 0.3 rather than 0.30000000000000004.
    let scaled = |m: f64| if exp >= 0 { m * 10f64.powi(exp) } else { m / 10f64.powi(-exp) };
    for mult in [1.0, 2.0, 2.5, 5.0, 10.0] {
        let intervals = (max / scaled(mult) - 1e-9).ceil().max(1.0) as u32;
        if intervals <= 4 {
            return (0..=intervals).map(|i| scaled(mult * f64::from(i))).collect();
        }
    }
    vec![0.0, max]
}

/// A compact human number: 0, 0.25, 12, 12.5, 1,234, 12.3k, 4.56M, 7.1B.
pub fn format_quantity(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_owned();
    }
    let a = value.abs();
    let body = if a < 999.95 {
        fixed(a, if a < 10.0 { 2 } else { 1 })
    } else if a < 9999.5 {
        thousands(&format!("{a:.0}"))
    } else {
        let (mut m, mut unit) = (a / 1000.0, 0);
        while m >= 999.5 && unit < 2 {
            (m, unit) = (m / 1000.0, unit + 1);
        }
        let decimals = 2 - usize::from(m >= 10.0) - usize::from(m >= 100.0);
        format!("{}{}", fixed(m, decimals), ["k", "M", "B"][unit])
    };
    if value < 0.0 && body != "0" { format!("-{body}") } else { body }
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    escaped.replace('"', "&quot;").replace('\'', "&#39;")
}

fn svg_open(class: &str, title: &str, desc: &str, height: f64) -> String {
    let t = escape(title);
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="{class}" role="img" aria-label="{t}" viewBox="0 0 600 {}" width="100%" fill="currentColor" font-size="11"><title>{t}</title><desc>{}</desc>"#,
        num(height),
        escape(desc)
    )
}

/// A faint horizontal gridline across the plot with its label left of the axis.
fn grid_line(out: &mut String, y: f64, label: &str) {
    let (line, label) = (hline("", y, r#" stroke-opacity="0.15""#), text("", LEFT - 4.0, y + 4.0, "end", label));
    out.push_str(&format!(r#"<g class="tick">{line}{label}</g>"#));
}

/// A line across the plot at `y`, with an optional class and extra attributes.
fn hline(class: &str, y: f64, extra: &str) -> String {
    let class = if class.is_empty() { String::new() } else { format!(r#" class="{class}""#) };
    format!(r#"<line{class} x1="{LEFT}" y1="{y}" x2="{RIGHT}" y2="{y}" stroke="currentColor"{extra}/>"#, y = num(y))
}

/// An SVG `<text>` element with the content escaped.
fn text(class: &str, x: f64, y: f64, anchor: &str, content: &str) -> String {
    let class = if class.is_empty() { String::new() } else { format!(r#" class="{class}""#) };
    format!(r#"<text{class} x="{}" y="{}" text-anchor="{anchor}">{}</text>"#, num(x), num(y), escape(content))
}

fn describe(series: &ChartSeries, values: &[f64]) -> String {
    let total: f64 = values.iter().sum();
    let mut desc = if total == 0.0 {
        format!("{NO_USAGE}.")
    } else {
        let (peak, peak_value) =
            values.iter().enumerate().fold((0, 0.0), |best, (i, &v)| if v > best.1 { (i, v) } else { best });
        let last = values.len() - 1;
        format!(
            "Total {} over {} day{}. Highest day {}: {}. Last day {}: {}.",
            with_unit(total, series.unit),
            values.len(),
            if values.len() == 1 { "" } else { "s" },
            series.points[peak].0,
            with_unit(peak_value, series.unit),
            series.points[last].0,
            with_unit(values[last], series.unit),
        )
    };
    if let Some(l) = series.limit.filter(|l| l.is_finite() && *l > 0.0) {
        desc.push_str(&format!(" Included: {}.", with_unit(l, series.unit)));
    }
    desc
}

fn describe_movements(months: &[(String, MonthMovements)]) -> String {
    let (Some((first, _)), Some((last, m))) = (months.first(), months.last()) else {
        return "No revenue movements in this period.".to_owned();
    };
    let a = m.amounts().map(|c| c.min(i64::MAX as u64) as i64);
    let net = a[0].saturating_add(a[1]).saturating_add(a[2]).saturating_sub(a[3]).saturating_sub(a[4]);
    let parts: Vec<String> = MOVEMENTS
        .iter()
        .zip(a)
        .map(|(&(key, _, _, below), c)| format!("{key} {}", format_dollars(if below { -c } else { c })))
        .collect();
    format!(
        "{} month{} from {first} to {last}. {last}: {}; net {}.",
        months.len(),
        if months.len() == 1 { "" } else { "s" },
        parts.join(", "),
        format_dollars(net)
    )
}

fn with_unit(value: f64, unit: &str) -> String {
    if unit.is_empty() { format_quantity(value) } else { format!("{} {unit}", format_quantity(value)) }
}

/// Cents as whole dollars, or with cents when there are some: "$1,250", "-$3.50".
fn format_dollars(cents: i64) -> String {
    let (sign, a) = (if cents < 0 { "-" } else { "" }, cents.unsigned_abs());
    let amount = format!("{}.{:02}", a / 100, a % 100);
    format!("{sign}${}", thousands(amount.strip_suffix(".00").unwrap_or(&amount)))
}

/// An exact table value: thousands separators and up to two decimals.
fn exact(value: f64) -> String {
    if value.is_finite() { thousands(&fixed(value, 2)) } else { "–".to_owned() }
}

/// Thousands separators in a formatted number's integer part: "-1234.5" → "-1,234.5".
fn thousands(number: &str) -> String {
    let (sign, digits) = number.split_at(usize::from(number.starts_with('-')));
    let int_len = digits.find('.').unwrap_or(digits.len());
    let mut out = sign.to_owned();
    for (i, c) in digits.char_indices() {
        if i > 0 && i < int_len && (int_len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// At most `decimals` decimals, trailing zeros dropped.
fn fixed(value: f64, decimals: usize) -> String {
    let mut s = format!("{value:.decimals$}");
    if s.contains('.') {
        s.truncate(s.trim_end_matches('0').trim_end_matches('.').len());
    }
    if s == "-0" { "0".to_owned() } else { s }
}

/// An SVG coordinate, rounded to one decimal.
fn num(value: f64) -> String {
    fixed(value, 1)
}

#[cfg(test)]
#[path = "chart_tests.rs"]
mod tests;
