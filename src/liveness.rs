//! When a root context is gone. The module exports no `proxy_on_done` (Envoy would call it on
//! every stream), so Envoy removes a root context without telling it; what shows is that the
//! root stops ticking. Envoy ticks every root context it holds, draining ones included, on the
//! dispatcher of the thread its VM runs on: one timer per root, re-armed after each
//! `proxy_on_tick` (`Wasm::tickHandler`, source/extensions/common/wasm/wasm.cc). A removed root
//! gets no more ticks (`getContext` finds none).
//!
//! A root's age is measured on a clock of the VM's own (`VmClock`), advanced at each event of
//! the VM (a tick, a configuration) by the host's wall-clock time since the previous event, at
//! most `MAX_STEP_NS` and never backwards. Every root of a VM runs on one thread: a busy or
//! stalled thread delays all their ticks alike, and then counts as one step, as does a jump of
//! the wall clock (Envoy's `proxy_get_current_time_nanoseconds` is the system clock). So a live
//! root's age on this clock stays under one period plus two steps (5 s) whatever the load or the
//! wall clock does, and `GONE_AFTER_NS` (10 s) is twice that.

/// How often each root context asks to tick.
pub const TICK_PERIOD_MS: u32 = 1000;
/// The most the VM's clock moves between two events: two periods, so it keeps up with the wall
/// clock while anything ticks, and a stall or a jump of the wall clock counts as one such step.
pub const MAX_STEP_NS: u64 = 2 * TICK_PERIOD_MS as u64 * 1_000_000;
/// A root that has not ticked for this long on the VM's clock is gone: ten periods, twice the
/// most a live root's age reaches (see the module comment).
pub const GONE_AFTER_NS: u64 = 10 * TICK_PERIOD_MS as u64 * 1_000_000;

/// The VM's clock: nanoseconds of the host's wall clock seen between the VM's events, each step
/// at most `MAX_STEP_NS`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VmClock {
    /// The wall clock at the previous event; `None` before the first.
    last_wall_ns: Option<u64>,
    now_ns: u64,
}

impl VmClock {
    /// An event of the VM at wall-clock time `wall_ns`: the clock moves by the time since the
    /// previous event, at most `MAX_STEP_NS`, not at all if the wall clock went back. Returns
    /// the clock's time.
    pub fn observe(&mut self, wall_ns: u64) -> u64 {
        if let Some(last) = self.last_wall_ns {
            self.now_ns += wall_ns.saturating_sub(last).min(MAX_STEP_NS);
        }
        self.last_wall_ns = Some(wall_ns);
        self.now_ns
    }

    /// Whether a root last seen at `seen_ns` (a time `observe` returned) is gone.
    pub fn is_gone(&self, seen_ns: u64) -> bool {
        self.now_ns.saturating_sub(seen_ns) > GONE_AFTER_NS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Two roots ticking once a second each, `b` a little later than `a`; the wall clock is
    /// `wall(i)` at the i-th second. Returns the most `b`'s age reached when `a` ticked.
    fn run(wall: impl Fn(u64) -> u64, seconds: u64) -> u64 {
        let mut clock = VmClock::default();
        let (mut b_seen, mut oldest) = (clock.observe(wall(0)), 0);
        for i in 1..seconds {
            clock.observe(wall(i));
            oldest = oldest.max(clock.now_ns - b_seen);
            assert!(!clock.is_gone(b_seen), "b dropped at second {i}");
            b_seen = clock.observe(wall(i) + S / 100);
        }
        oldest
    }

    #[test]
    fn live_roots_stay_young_whatever_the_wall_clock_does() {
        // Steady.
        assert!(run(|i| 1_700_000_000 * S + i * S, 100) <= S + S / 100);
        // The wall clock jumps an hour ahead, then a day back, then stands still.
        let jumpy = |i: u64| match i {
            0..=9 => 1_700_000_000 * S + i * S,
            10..=19 => 1_700_003_600 * S + i * S,
            20..=29 => 1_699_900_000 * S + i * S,
            _ => 1_699_900_030 * S,
        };
        assert!(run(jumpy, 40) <= MAX_STEP_NS + S / 100);
        // A thread busy for a minute between two seconds: both roots' ticks wait, then run.
        assert!(run(|i| 1_700_000_000 * S + i * S + if i >= 5 { 60 * S } else { 0 }, 20) <= MAX_STEP_NS + S / 100);
    }

    #[test]
    fn a_root_that_stops_ticking_is_gone_after_the_window() {
        let mut clock = VmClock::default();
        let start = 1_700_000_000 * S;
        let gone = clock.observe(start);
        let mut dropped_at = None;
        for i in 1..30 {
            clock.observe(start + i * S);
            if dropped_at.is_none() && clock.is_gone(gone) {
                dropped_at = Some(i);
            }
        }
        assert_eq!(dropped_at, Some(GONE_AFTER_NS / S + 1), "after ten seconds of others' ticks");
        // However long the VM was idle before: a stalled clock gives one step.
        let mut clock = VmClock::default();
        let seen = clock.observe(start);
        clock.observe(start + 3600 * S);
        assert!(!clock.is_gone(seen));
    }
}
