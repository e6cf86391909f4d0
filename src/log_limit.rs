//! A bound on how often a line may be logged: a client decides how many misdirected requests
//! a dry run sees, and each would otherwise be a log line at Envoy's default level.
//!
//! At most `MAX_LINES` lines per window of `WINDOW_NS`; the rest are counted, and one summary
//! line says how many once the window is over. Pure: the caller brings the clock.

/// Lines per window.
pub const MAX_LINES: u32 = 5;
/// The window: 10 seconds.
pub const WINDOW_NS: u64 = 10_000_000_000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogLimiter {
    window_start: u64,
    logged: u32,
    suppressed: u64,
}

impl LogLimiter {
    /// Whether a line may be logged at `now` (nanoseconds); if not, it is counted.
    /// Call `summary` first: a new window starts only once the last one's count is out.
    pub fn admit(&mut self, now: u64) -> bool {
        if self.window_over(now) && self.suppressed == 0 {
            self.window_start = now;
            self.logged = 0;
        }
        if self.logged < MAX_LINES {
            self.logged += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// How many lines were held back in a window that is over by `now`, once; the next
    /// window starts.
    pub fn summary(&mut self, now: u64) -> Option<u64> {
        if !self.window_over(now) || self.suppressed == 0 {
            return None;
        }
        let suppressed = std::mem::take(&mut self.suppressed);
        self.window_start = now;
        self.logged = 0;
        Some(suppressed)
    }

    fn window_over(&self, now: u64) -> bool {
        now.saturating_sub(self.window_start) >= WINDOW_NS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_lines_per_window_then_one_summary() {
        let mut limiter = LogLimiter::default();
        let t0 = 1_000 * WINDOW_NS;
        let admitted = (0..100).filter(|i| limiter.admit(t0 + i)).count();
        assert_eq!(admitted, MAX_LINES as usize);
        assert_eq!(limiter.summary(t0 + 100), None, "the window is not over");
        assert_eq!(limiter.summary(t0 + WINDOW_NS), Some(100 - u64::from(MAX_LINES)));
        assert_eq!(limiter.summary(t0 + 3 * WINDOW_NS), None, "said once");
        assert!(limiter.admit(t0 + WINDOW_NS + 1), "a new window logs again");
    }

    #[test]
    fn nothing_held_back_nothing_to_say() {
        let mut limiter = LogLimiter::default();
        assert!(limiter.admit(5));
        assert_eq!(limiter.summary(5 + 2 * WINDOW_NS), None);
        assert!(limiter.admit(5 + 2 * WINDOW_NS));
    }

    #[test]
    fn the_clock_going_back_does_not_panic() {
        let mut limiter = LogLimiter::default();
        assert!(limiter.admit(u64::MAX));
        assert!(limiter.admit(0));
        assert_eq!(limiter.summary(0), None);
    }
}
