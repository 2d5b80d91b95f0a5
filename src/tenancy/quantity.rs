//! Kubernetes quantities as exact integers of milli-units, for dividing a plan's quota without
//! ever handing out more than the plan has.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// `q` in milli-units ("1" = 1000, "500m" = 500, "1Ki" = 1_024_000). None when malformed.
pub fn to_milli(q: &Quantity) -> Option<i128> {
    let s = q.0.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let (multiplier_num, multiplier_den): (i128, i128) = match suffix {
        "" => (1000, 1),
        "m" => (1, 1),
        "k" => (1000 * 1000, 1),
        "M" => (1000 * 1_000_000, 1),
        "G" => (1000 * 1_000_000_000, 1),
        "T" => (1000 * 1_000_000_000_000, 1),
        "P" => (1000 * 1_000_000_000_000_000, 1),
        "E" => (1000 * 1_000_000_000_000_000_000, 1),
        "Ki" => (1000 << 10, 1),
        "Mi" => (1000 << 20, 1),
        "Gi" => (1000 << 30, 1),
        "Ti" => (1000 << 40, 1),
        "Pi" => (1000 << 50, 1),
        "Ei" => (1000 << 60, 1),
        _ => return None,
    };
    let negative = number.starts_with('-');
    let digits = number.trim_start_matches(['+', '-']);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let scale = 10i128.checked_pow(fraction.len() as u32)?;
    let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
    // Round down: a share is never larger than what the plan grants.
    let milli = mantissa.checked_mul(multiplier_num)? / (scale * multiplier_den);
    Some(if negative { -milli } else { milli })
}

/// Text for milli-units: milli-units below 1000 units (CPU), whole units above (rounded down),
/// with the largest binary suffix that divides exactly (memory and storage read as `Gi`).
pub fn from_milli(milli: i128) -> Quantity {
    if milli % 1000 != 0 && milli < 1_000_000 {
        return Quantity(format!("{milli}m"));
    }
    let units = milli / 1000;
    for (suffix, shift) in [("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)] {
        let size = 1i128 << shift;
        if units != 0 && units % size == 0 {
            return Quantity(format!("{}{suffix}", units / size));
        }
    }
    Quantity(units.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.into())
    }

    #[test]
    fn parses_decimal_binary_and_milli_suffixes() {
        assert_eq!(to_milli(&q("2")), Some(2000));
        assert_eq!(to_milli(&q("500m")), Some(500));
        assert_eq!(to_milli(&q("1.5")), Some(1500));
        assert_eq!(to_milli(&q("4Gi")), Some(4 * (1 << 30) * 1000));
        assert_eq!(to_milli(&q("1k")), Some(1_000_000));
        assert_eq!(to_milli(&q("bogus")), None);
        assert_eq!(to_milli(&q("5Zi")), None);
    }

    #[test]
    fn formats_whole_values_without_suffix() {
        assert_eq!(from_milli(2000), q("2"));
        assert_eq!(from_milli(666), q("666m"));
        assert_eq!(from_milli(8 * (1 << 30) * 1000), q("8Gi"));
        assert_eq!(from_milli(2_863_311_530_666), q("2863311530"), "large values round down to whole units");
        assert!(to_milli(&from_milli(to_milli(&q("8Gi")).unwrap() / 3)).unwrap() <= to_milli(&q("8Gi")).unwrap() / 3);
    }
}
