//! Running a rayon job on a bounded pool without touching the global one.

use rayon::ThreadPoolBuilder;

/// Run `job` on the global rayon pool, or on a private pool of `workers` threads when given.
///
/// A private pool keeps `workers=` local to one call: other callers (and other Python threads)
/// keep the global pool's size.
pub fn with_workers<R: Send>(workers: Option<usize>, job: impl FnOnce() -> R + Send) -> R {
    match workers {
        Some(n) if n > 0 => match ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(pool) => pool.install(job),
            Err(_) => job(),
        },
        _ => job(),
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
    fn none_uses_global_pool() {
        assert_eq!(
            with_workers(None, rayon::current_num_threads),
            rayon::current_num_threads()
        );
    }
}
