//! The rate-limit rule, pure: the Generic Cell Rate Algorithm (as `governor` and Redis' GCRA scripts use).
//! One number per organization, its theoretical arrival time (TAT): a request at `now` is allowed when the
//! TAT is at most `tolerance` ahead of `now`, and then moves the TAT one emission interval further. The
//! in-process limiter (one replica) and the PostgreSQL statement (`ledger::rate_limits`, replicas) take the
//! same step; this module also turns its result into the answer's headers.

use crate::api::RateLimit;

/// A plan's limit in GCRA terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub requests_per_minute: u32,
    /// Requests allowed back to back after a quiet spell.
    pub burst: u32,
    /// 60 s / requests per minute, in µs.
    pub interval_us: i64,
}

impl Rate {
    /// `Plan.spec.rateLimit`: without `burst`, one second's worth of requests (at least 1).
    pub fn of(limit: &RateLimit) -> Rate {
        let per_minute = limit.requests_per_minute.max(1) as u32;
        let burst = limit.burst.map_or_else(|| per_minute.div_ceil(60), |b| b.max(1) as u32);
        Rate { requests_per_minute: per_minute, burst, interval_us: 60_000_000 / i64::from(per_minute) }
    }

    /// How far ahead of now the TAT may be for a request to pass: `burst - 1` intervals.
    pub fn tolerance_us(&self) -> i64 {
        i64::from(self.burst.saturating_sub(1)) * self.interval_us
    }
}

/// The answer to one request, with what its headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// `RateLimit-Limit`: the burst.
    pub limit: u32,
    /// `RateLimit-Remaining`: requests that would pass right now.
    pub remaining: u32,
    /// `RateLimit-Reset`: seconds until the full burst is available again.
    pub reset_seconds: u64,
    /// `Retry-After` of a refusal: seconds until one request passes again (at least 1).
    pub retry_after_seconds: u64,
}

/// One step: the verdict and the TAT to store (unchanged when refused).
pub fn step(prior_tat_us: Option<i64>, now_us: i64, rate: Rate) -> (Verdict, i64) {
    let base = prior_tat_us.unwrap_or(now_us).max(now_us);
    if base - now_us <= rate.tolerance_us() {
        let tat = base + rate.interval_us;
        (verdict(true, tat, now_us, rate), tat)
    } else {
        (verdict(false, base, now_us, rate), base)
    }
}

/// The verdict for a TAT after the request (allowed) or the TAT that refused it.
pub fn verdict(allowed: bool, tat_us: i64, now_us: i64, rate: Rate) -> Verdict {
    let ahead = (tat_us - now_us).max(0);
    let capacity = rate.tolerance_us() + rate.interval_us;
    let remaining = ((capacity - ahead).max(0) / rate.interval_us) as u32;
    let retry = (ahead - rate.tolerance_us()).max(1);
    Verdict {
        allowed,
        limit: rate.burst,
        remaining: remaining.min(rate.burst),
        reset_seconds: ceil_seconds(ahead),
        retry_after_seconds: if allowed { 0 } else { ceil_seconds(retry).max(1) },
    }
}

fn ceil_seconds(us: i64) -> u64 {
    (us.max(0) as u64).div_ceil(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_minute: i32, burst: Option<i32>) -> Rate {
        Rate::of(&RateLimit { requests_per_minute: per_minute, burst })
    }

    #[test]
    fn a_burst_passes_back_to_back_then_one_request_per_interval() {
        let rate = rate(60, Some(3)); // 1 per second, 3 at once
        let mut tat = None;
        let mut allowed = Vec::new();
        for _ in 0..5 {
            let (v, t) = step(tat, 0, rate);
            tat = Some(t);
            allowed.push((v.allowed, v.remaining));
        }
        assert_eq!(allowed, vec![(true, 2), (true, 1), (true, 0), (false, 0), (false, 0)]);
        let (refused, _) = step(tat, 0, rate);
        assert_eq!((refused.retry_after_seconds, refused.reset_seconds, refused.limit), (1, 3, 3));
        // A second later exactly one more passes.
        let (v, t) = step(tat, 1_000_000, rate);
        assert!(v.allowed && v.remaining == 0);
        assert!(!step(Some(t), 1_000_000, rate).0.allowed);
    }

    #[test]
    fn over_any_window_at_most_burst_plus_rate_times_window_pass() {
        let rate = rate(1200, Some(200)); // professional: 20/s, 200 at once
        let mut tat = None;
        let mut passed = 0;
        // 3× the rate for 30 s, one request every 1/60 s.
        for i in 0..1800 {
            let (v, t) = step(tat, i * 1_000_000 / 60, rate);
            tat = Some(t);
            passed += u32::from(v.allowed);
        }
        assert!(passed <= 200 + 20 * 30, "{passed}");
        assert!(passed >= 200 + 20 * 30 - 2, "{passed}");
    }

    #[test]
    fn default_burst_is_a_second_of_requests_and_a_quiet_key_is_full_again() {
        assert_eq!(rate(300, None).burst, 5);
        assert_eq!(rate(30, None).burst, 1);
        let rate = rate(300, None);
        let (_, tat) = step(None, 0, rate);
        let (v, _) = step(Some(tat), 10_000_000, rate);
        assert_eq!(v.remaining, 4, "a full burst minus this request");
    }
}
