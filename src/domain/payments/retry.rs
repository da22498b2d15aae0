//! When the payment pool tries a failed provider call again: exponential
//! backoff with full jitter, up to a number of attempts. Declines are final
//! at once; only transient failures and timeouts are retried.

use std::time::Duration;

/// The pool's retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt (before jitter).
    pub base: Duration,
    /// Ceiling of any one backoff.
    pub max: Duration,
}

impl RetryPolicy {
    /// Whether a transient failure of attempt `attempt` (1-based) may be
    /// retried.
    pub fn retries_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The upper bound of the wait after attempt `attempt`: `base × 2^(n-1)`,
    /// capped at `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait after attempt `attempt`, given a uniform random `unit` in
    /// [0, 1): "full jitter", so retries of many payments spread out.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let p = policy();
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(3), Duration::from_millis(400));
        assert_eq!(p.ceiling(5), Duration::from_secs(1));
        assert_eq!(p.ceiling(100), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_the_ceiling() {
        let p = policy();
        assert_eq!(p.backoff(2, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(2, 0.5), Duration::from_millis(100));
        assert!(p.backoff(2, 0.999) < Duration::from_millis(200));
        assert_eq!(p.backoff(2, 7.0), Duration::from_millis(200));
    }

    #[test]
    fn attempts_stop_at_the_maximum() {
        let p = policy();
        assert!(p.retries_after(1));
        assert!(p.retries_after(3));
        assert!(!p.retries_after(4));
    }
}
