//! The memory store's byte budget (`gms.limits.max_store_bytes`, issue 15 item 3): the bytes
//! of stored user data (values, files, keys, owners) counted as records are written, merged,
//! expired and deleted, so anonymous uploads cannot fill the process's memory. A write that
//! would pass the budget takes nothing and is refused whole (507).

use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;

/// What the budget is when the machine's memory cannot be read (no `/proc`): 1 GiB.
const FALLBACK_MAX: u64 = 1 << 30;

/// Bytes in use against a maximum, shared by every thread.
#[derive(Debug)]
pub struct Budget {
    max: u64,
    used: AtomicU64,
}

impl Budget {
    /// An empty budget of `max` bytes.
    pub fn new(max: u64) -> Self {
        Budget {
            max,
            used: AtomicU64::new(0),
        }
    }

    /// Takes `n` bytes, or takes nothing and answers [`StoreError::Full`] when they would pass
    /// the maximum.
    pub fn take(&self, n: u64) -> Result<(), StoreError> {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|&u| u <= self.max)
            })
            .map(|_| ())
            .map_err(|_| self.full())
    }

    /// Gives `n` bytes back (a record deleted, expired or shrunk).
    pub fn give(&self, n: u64) {
        // Saturating: a miscount must never wrap into a full store.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(n))
            });
    }

    /// A record of `old` bytes becomes one of `new` bytes: takes or gives the difference.
    pub fn resize(&self, old: u64, new: u64) -> Result<(), StoreError> {
        if new > old {
            self.take(new - old)
        } else {
            self.give(old - new);
            Ok(())
        }
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The maximum.
    pub fn max(&self) -> u64 {
        self.max
    }

    fn full(&self) -> StoreError {
        StoreError::Full(format!(
            "the store is full: no room for this write within gms.limits.max_store_bytes ({} bytes)",
            self.max
        ))
    }
}

/// The default `gms.limits.max_store_bytes` of the memory store: a quarter of the memory this
/// process may use, the lower of the machine's (`MemTotal` in `/proc/meminfo`) and its
/// cgroup's limit (`memory.max`, cgroup v2; `memory.limit_in_bytes`, v1), so a container's
/// limit counts. The rest is the process itself, connections, bodies in flight, allocator
/// slack and the service records, which are not counted.
pub fn default_max() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| mem_total(&m));
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .and_then(|s| s.trim().parse::<u64>().ok());
    match (machine, cgroup) {
        (Some(m), Some(c)) => m.min(c) / 4,
        (Some(m), None) => m / 4,
        (None, Some(c)) => c / 4,
        (None, None) => FALLBACK_MAX,
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_what_would_pass_it_and_takes_nothing() {
        let b = Budget::new(100);
        b.take(60).unwrap();
        assert!(matches!(b.take(41), Err(StoreError::Full(_))));
        assert_eq!(b.used(), 60);
        b.take(40).unwrap();
        assert!(b.resize(50, 51).is_err());
        b.resize(50, 10).unwrap();
        assert_eq!(b.used(), 60);
        b.give(1000);
        assert_eq!(b.used(), 0, "never below zero");
        assert!(b.take(u64::MAX).is_err());
    }

    #[test]
    fn the_default_is_a_quarter_of_the_memory() {
        assert_eq!(
            mem_total("MemTotal:        8000000 kB\nMemFree: 1 kB\n"),
            Some(8_192_000_000)
        );
        assert_eq!(mem_total("nothing"), None);
        let d = default_max();
        assert!(d > 0);
    }
}
