//! Shared progress counters and a cancel flag.
//!
//! Native jobs run on rayon threads and never touch Python. Workers bump these atomics; the
//! calling thread (which owns the GIL) polls them in short slices to drive progress callbacks and
//! to notice Ctrl-C, and sets `cancel` so workers stop between files.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Progress {
    /// Units of work finished (files scanned, files hashed, archives extracted...).
    pub items_done: AtomicU64,
    /// Units of work known so far (may grow while a scan discovers more).
    pub items_total: AtomicU64,
    pub bytes_done: AtomicU64,
    pub bytes_total: AtomicU64,
    /// Per-item failures recorded so far.
    pub errors: AtomicU64,
    cancel: AtomicBool,
}

/// A consistent-enough copy of the counters for reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub items_done: u64,
    pub items_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub errors: u64,
}

impl Progress {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn add_items(&self, n: u64) {
        self.items_done.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub fn add_bytes(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub fn add_total(&self, items: u64, bytes: u64) {
        self.items_total.fetch_add(items, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }

    #[inline]
    pub fn add_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Ask every worker to stop at its next check.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Release);
    }

    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            items_done: self.items_done.load(Ordering::Relaxed),
            items_total: self.items_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Returned by a job that noticed `Progress::cancel` and stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counters_add_up_across_threads() {
        let p = Arc::new(Progress::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..1000 {
                        p.add_items(1);
                        p.add_bytes(10);
                    }
                });
            }
        });
        let snap = p.snapshot();
        assert_eq!(snap.items_done, 4000);
        assert_eq!(snap.bytes_done, 40_000);
    }

    #[test]
    fn cancel_is_sticky() {
        let p = Progress::new();
        assert!(!p.is_cancelled());
        p.cancel();
        assert!(p.is_cancelled());
        assert!(p.is_cancelled());
    }
}
