//! The memory store's sweeper: a thread that drops expired entries a shard at a time, faster
//! while records churn.

use std::sync::Weak;
use std::time::{Duration, Instant};

use super::sharded::{lock, SHARDS};
use super::Inner;

/// One shard of each map per tick: a full pass every `SHARDS * SWEEP_TICK` (3.2 s).
pub(super) const SWEEP_TICK: Duration = Duration::from_millis(50);
/// The tick while most of what is swept has expired (records made and dropped at a high
/// rate): a full pass every 0.8 s, so their memory is reused sooner. Long-lived entries are
/// not scanned that often: with every pass at 0.8 s, the benchmark's scale ratio (creates
/// with a million live services against a thousand) fell from 1.03 to 0.94.
const SWEEP_TICK_CHURN: Duration = Duration::from_micros(12_500);
/// Numbers whose holds one tick purges.
const SWEEP_NUMBERS: usize = 1;

/// The sweeper thread's loop; it ends when the store is dropped.
pub(super) fn sweeper(weak: Weak<Inner>) {
    let mut shard = 0usize;
    let mut tick = SWEEP_TICK;
    loop {
        std::thread::sleep(tick);
        let Some(inner) = weak.upgrade() else { return };
        let now = inner.now();
        let swept = [
            inner.services.sweep_shard(shard, now, |_, _| {}),
            inner
                .data
                .sweep_shard(shard, now, |k, d| inner.budget.give(d.bytes(k))),
            inner.status.sweep_shard(shard, now, |_, _| {}),
        ];
        let (before, after) = swept
            .iter()
            .fold((0, 0), |(b, a), (sb, sa)| (b + sb, a + sa));
        tick = sweep_tick(before, after, tick);
        // Holds are checked for expiry wherever they are read; the sweep only returns memory,
        // so one number per tick is enough and keeps the pools lock short under load.
        lock(&inner.pools).sweep(Instant::now(), SWEEP_NUMBERS);
        shard = (shard + 1) % SHARDS;
    }
}

/// The pace of the next sweep, from what the last one found (`before` and `after` entries,
/// after a tick of `tick`): fast while what expired since the shard's last sweep, per unit of
/// time, would leave a quarter of it dead at the slow pace. (That sweep was a full pass of
/// `SHARDS * tick` ago; scaled to a pass of `SHARDS * SWEEP_TICK`.)
fn sweep_tick(before: usize, after: usize, tick: Duration) -> Duration {
    let removed = before.saturating_sub(after) as u128;
    if removed > 0 && removed * 4 * SWEEP_TICK.as_micros() >= before as u128 * tick.as_micros() {
        SWEEP_TICK_CHURN
    } else {
        SWEEP_TICK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweeper_speeds_up_only_for_churn() {
        // Records of 5 s TTL, the multipart benchmark: at the slow pace (3.2 s passes) about
        // 40% of a shard has expired, at the fast one (0.8 s) about 14%: it stays fast.
        assert_eq!(sweep_tick(1000, 600, SWEEP_TICK), SWEEP_TICK_CHURN);
        assert_eq!(sweep_tick(1000, 860, SWEEP_TICK_CHURN), SWEEP_TICK_CHURN);
        // A million long-lived entries with some churn beside them: 12% at the slow pace, 3%
        // at the fast one: it stays slow.
        assert_eq!(sweep_tick(1000, 880, SWEEP_TICK), SWEEP_TICK);
        assert_eq!(sweep_tick(1000, 970, SWEEP_TICK_CHURN), SWEEP_TICK);
        // Nothing expired, or nothing there.
        assert_eq!(sweep_tick(1000, 1000, SWEEP_TICK_CHURN), SWEEP_TICK);
        assert_eq!(sweep_tick(0, 0, SWEEP_TICK), SWEEP_TICK);
    }
}
