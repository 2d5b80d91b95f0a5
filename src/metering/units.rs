//! Exact integer maths for quantities: decimal strings in, base units stored, billing units out.
//!
//! The rounding rule, in one place: a billed quantity is counted in **micro-units** (millionths of the billing
//! unit: of a GiB, a GiB-month, 1,000 calls, an hour) and **rounded up** to the next micro-unit, once, on a
//! running total (see `push`). Up, so usage is never billed short; to a millionth, not to a whole unit,
//! because Stripe meters take decimal values, and rounding each hourly window up to a whole GiB would bill
//! up to 720 GiB a month that nobody used. A micro-GiB is 1,074 bytes; a micro-hour 3.6 ms.
//! Money is rounded once per meter, half up to the cent, as Stripe rounds each invoice line.

use super::meter::Meter;

/// Bytes in a GiB.
pub const GIB: i128 = 1 << 30;
/// Micro-units in one billing unit.
pub const MICROS: i128 = 1_000_000;
pub const MS_PER_HOUR: i128 = 3_600_000;
/// The largest `data.value` one event may carry, in the meter's base unit: 10^15 (about 0.9 PiB, or
/// 31,000 years of stream time), so a batch of 1,000 such events still sums within an i64.
pub const MAX_EVENT_VALUE: i64 = 1_000_000_000_000_000;

/// Why a decimal string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not plain digits with an optional decimal point (signs, exponents, spaces, empty).
    NotDecimal,
    Negative,
    /// More decimal places than the meter counts (that are not zeros).
    TooPrecise {
        max_decimals: u32,
    },
    /// Above [`MAX_EVENT_VALUE`].
    TooLarge,
}

/// `text` scaled by 10^`decimals` ("12.5" with 3 decimals → 12500), exactly. Digits with an optional
/// decimal point and digits after it; trailing zeros beyond `decimals` are fine ("10.000" is whole).
pub fn parse_decimal(text: &str, decimals: u32) -> Result<i64, DecimalError> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !is_digits(whole) || (digits.contains('.') && !is_digits(fraction)) {
        return Err(DecimalError::NotDecimal);
    }
    if negative {
        return Err(DecimalError::Negative);
    }
    let kept = fraction.len().min(decimals as usize);
    if fraction[kept..].bytes().any(|b| b != b'0') {
        return Err(DecimalError::TooPrecise { max_decimals: decimals });
    }
    let whole = whole.trim_start_matches('0');
    // 10^15 has 16 digits: anything longer is too large, and never overflows the sum below.
    if whole.len() > 16 {
        return Err(DecimalError::TooLarge);
    }
    let mut value: i128 = 0;
    for b in whole.bytes().chain(fraction[..kept].bytes()) {
        value = value * 10 + i128::from(b - b'0');
    }
    for _ in kept..decimals as usize {
        value *= 10;
    }
    if value > i128::from(MAX_EVENT_VALUE) {
        return Err(DecimalError::TooLarge);
    }
    i64::try_from(value).map_err(|_| DecimalError::TooLarge)
}

/// ⌈n / d⌉ for n ≥ 0, d > 0.
pub fn div_ceil(n: i128, d: i128) -> i128 {
    if n <= 0 { 0 } else { (n + d - 1) / d }
}

/// n / d rounded half up, for n ≥ 0, d > 0 (how Stripe rounds a line item to the cent).
pub fn div_round_half_up(n: i128, d: i128) -> i128 {
    if n <= 0 { 0 } else { (2 * n + d) / (2 * d) }
}

/// Base units in one billing unit. Storage's depends on the period: a GiB-month is one GiB held for the
/// whole billing period, so it is GiB × the period's seconds of byte-seconds.
pub fn base_per_unit(meter: Meter, period_seconds: i64) -> i128 {
    match meter {
        Meter::Bandwidth => GIB,
        Meter::Storage => GIB * i128::from(period_seconds.max(1)),
        Meter::ApiCalls => 1_000,
        Meter::StreamTime => MS_PER_HOUR,
    }
}

/// A base quantity in billing micro-units, rounded up: ⌈base × 10^6 / base per unit⌉.
/// `period_seconds` matters for storage only.
pub fn billing_micros(meter: Meter, base: i128, period_seconds: i64) -> i128 {
    div_ceil(base.saturating_mul(MICROS), base_per_unit(meter, period_seconds))
}

/// Bytes in micro-GiB, rounded up (a storage limit of N GiB includes N GiB-months).
pub fn gib_micros(bytes: i128) -> i128 {
    div_ceil(bytes.saturating_mul(MICROS), GIB)
}

/// Micro-units as the decimal string Stripe takes: "12.5", "0.000001", "3" (no trailing zeros).
pub fn format_micros(micros: i128) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let (whole, fraction) = (m / MICROS as u128, m % MICROS as u128);
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let fraction = format!("{fraction:06}");
    format!("{sign}{whole}.{}", fraction.trim_end_matches('0'))
}

/// Cents with the currency's two decimals: 1234 → "12.34".
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal("1024", 0), Ok(1024));
        assert_eq!(parse_decimal("0", 0), Ok(0));
        assert_eq!(parse_decimal("007", 0), Ok(7));
        assert_eq!(parse_decimal("10.000", 0), Ok(10), "trailing zeros are whole");
        assert_eq!(parse_decimal("12.5", 3), Ok(12_500));
        assert_eq!(parse_decimal("0.001", 3), Ok(1));
        assert_eq!(parse_decimal("3600", 3), Ok(3_600_000));
        assert_eq!(parse_decimal("1000000000000000", 0), Ok(MAX_EVENT_VALUE));
        assert_eq!(parse_decimal("1000000000000.000", 3), Ok(MAX_EVENT_VALUE));
    }

    #[test]
    fn bad_decimals_say_why() {
        for text in ["", " 1", "1 ", "1e3", "+1", "0x10", "1.", ".5", "1.2.3", "1,000", "NaN", "-", "١٢"] {
            assert_eq!(parse_decimal(text, 3), Err(DecimalError::NotDecimal), "{text:?}");
        }
        assert_eq!(parse_decimal("-1", 0), Err(DecimalError::Negative));
        assert_eq!(parse_decimal("-0.5", 3), Err(DecimalError::Negative));
        assert_eq!(parse_decimal("1.5", 0), Err(DecimalError::TooPrecise { max_decimals: 0 }));
        assert_eq!(parse_decimal("1.0001", 3), Err(DecimalError::TooPrecise { max_decimals: 3 }));
        assert_eq!(parse_decimal("1000000000000001", 0), Err(DecimalError::TooLarge));
        assert_eq!(parse_decimal("99999999999999999999999999999999", 0), Err(DecimalError::TooLarge));
        assert_eq!(parse_decimal("1000000000000.001", 3), Err(DecimalError::TooLarge));
    }

    #[test]
    fn billing_units_round_up_to_a_millionth() {
        // Bandwidth: 1 GiB exactly, one byte more, one byte.
        assert_eq!(billing_micros(Meter::Bandwidth, GIB, 0), 1_000_000);
        assert_eq!(billing_micros(Meter::Bandwidth, GIB + 1, 0), 1_000_001);
        assert_eq!(billing_micros(Meter::Bandwidth, 1, 0), 1);
        assert_eq!(billing_micros(Meter::Bandwidth, 0, 0), 0);
        // 1,074 bytes is just over a micro-GiB (1,073.74 bytes).
        assert_eq!(billing_micros(Meter::Bandwidth, 1_073, 0), 1);
        assert_eq!(billing_micros(Meter::Bandwidth, 1_074, 0), 2);
        // API calls per 1,000: exact.
        assert_eq!(billing_micros(Meter::ApiCalls, 1, 0), 1_000);
        assert_eq!(billing_micros(Meter::ApiCalls, 1_500, 0), 1_500_000);
        // Stream time: 90 minutes = 1.5 h; 1 ms rounds up to a micro-hour.
        assert_eq!(billing_micros(Meter::StreamTime, 5_400_000, 0), 1_500_000);
        assert_eq!(billing_micros(Meter::StreamTime, 1, 0), 1);
        // Storage: 2 GiB for half of a 30-day period = 1 GiB-month.
        let period = 30 * 86_400;
        assert_eq!(billing_micros(Meter::Storage, 2 * GIB * i128::from(period / 2), period), 1_000_000);
    }

    #[test]
    fn rounding_helpers() {
        assert_eq!(div_ceil(10, 3), 4);
        assert_eq!(div_ceil(9, 3), 3);
        assert_eq!(div_ceil(0, 3), 0);
        assert_eq!(div_round_half_up(15, 10), 2, "half up, as Stripe's 1.5 cents → 2");
        assert_eq!(div_round_half_up(14, 10), 1);
        assert_eq!(div_round_half_up(5, 10), 1);
        assert_eq!(div_round_half_up(4, 10), 0);
        assert_eq!(gib_micros(5 * GIB), 5_000_000);
    }

    #[test]
    fn micros_format_as_stripe_decimals() {
        assert_eq!(format_micros(12_500_000), "12.5");
        assert_eq!(format_micros(1), "0.000001");
        assert_eq!(format_micros(3_000_000), "3");
        assert_eq!(format_micros(0), "0");
        assert_eq!(format_micros(1_234_567), "1.234567");
        assert_eq!(format_cents(1234), "12.34");
        assert_eq!(format_cents(5), "0.05");
    }
}
