//! The rayon pools native jobs run on.
//!
//! Jobs never use rayon's global pool: after a `fork` (multiprocessing's default start method
//! on Linux before Python 3.14) the child inherits a global pool whose threads do not exist,
//! and the first parallel call would wait forever. Instead each process builds its own pool on
//! first use and rebuilds it when it finds itself in a new process.

use std::sync::{Arc, Mutex};

use rayon::{ThreadPool, ThreadPoolBuilder};

static DEFAULT: Mutex<Option<(u32, Arc<ThreadPool>)>> = Mutex::new(None);

/// This process's default pool (one thread per available core).
pub fn default_pool() -> Option<Arc<ThreadPool>> {
    let pid = std::process::id();
    let mut slot = DEFAULT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((owner, pool)) = slot.as_ref() {
        if *owner == pid {
            return Some(pool.clone());
        }
    }
    // A pool inherited through fork has no threads here: leak it rather than try to stop them.
    if let Some((_, stale)) = slot.take() {
        std::mem::forget(stale);
    }
    let pool = Arc::new(
        ThreadPoolBuilder::new()
            .thread_name(|i| format!("pfp-rayon-{i}"))
            .build()
            .ok()?,
    );
    *slot = Some((pid, pool.clone()));
    Some(pool)
}

/// Run `job` on this process's default pool, or on a private pool of `workers` threads.
///
/// A private pool keeps `workers=` local to one call: other callers keep the default size.
pub fn with_workers<R: Send>(workers: Option<usize>, job: impl FnOnce() -> R + Send) -> R {
    match workers {
        Some(n) if n > 0 => match ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(pool) => pool.install(job),
            Err(_) => job(),
        },
        _ => match default_pool() {
            Some(pool) => pool.install(job),
            None => job(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_pool_has_requested_size() {
        assert_eq!(with_workers(Some(3), rayon::current_num_threads), 3);
        assert_eq!(with_workers(Some(1), rayon::current_num_threads), 1);
    }

    #[test]
    fn default_pool_is_reused_and_sized_to_the_machine() {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        assert_eq!(with_workers(None, rayon::current_num_threads), n);
        let a = default_pool().unwrap();
        let b = default_pool().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }
}
