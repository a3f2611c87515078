//! Reading a large file through a memory map without ever dying of SIGBUS.
//!
//! A mapping saves the copy a `read()` makes (what lets `b3sum` hash a large file at memory
//! speed on every core), but touching a page past the end of a file that was truncated after
//! it was mapped raises SIGBUS, which would kill the whole Python process. So every mapped
//! read is registered here, and a SIGBUS handler checks whether the faulting address lies in a
//! registered mapping: if so, it maps a page of zeros over the faulting page (so the access
//! completes) and marks the mapping as faulted, and the reader reports an error for that file
//! once it is done. A fault anywhere else is handed to whatever handler was there before (the
//! default one, or Python's `faulthandler`), exactly as if this module did not exist.
//!
//! The handler does only what is async-signal-safe: atomic loads and stores, `mmap` and
//! `sigaction`. It is (re)installed before each mapped read, so a handler installed later by
//! someone else (`faulthandler.enable()`) is chained to, not lost.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Mappings that can be read at once (more concurrent readers fall back to `read()`).
const SLOTS: usize = 64;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

static REGISTRY: [Slot; SLOTS] = [EMPTY; SLOTS];

/// The handler that was installed before ours (chained to for faults that are not ours).
static PREVIOUS: Mutex<Option<libc::sigaction>> = Mutex::new(None);
/// Copy of `PREVIOUS` the signal handler can read without a lock: (sa_sigaction, flags, set).
static PREV_ACTION: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
static PREV_FLAGS: AtomicUsize = AtomicUsize::new(0);

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in &REGISTRY {
        let start = slot.start.load(Ordering::Acquire);
        let len = slot.len.load(Ordering::Acquire);
        if start != 0 && addr >= start && addr - start < len {
            let page = addr & !(page_size() - 1);
            // SAFETY: the page lies inside a mapping this module owns; replacing it with
            // zeros lets the faulting read complete. The reader sees `faulted` afterwards.
            let got = unsafe {
                libc::mmap(
                    page as *mut libc::c_void,
                    page_size(),
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            slot.faulted.store(true, Ordering::Release);
            if got != libc::MAP_FAILED {
                return;
            }
        }
    }
    // Not ours: behave as if we were not here.
    let prev = PREV_ACTION.load(Ordering::Acquire);
    let flags = PREV_FLAGS.load(Ordering::Acquire) as libc::c_int;
    if prev == libc::SIG_IGN {
        return;
    }
    if prev != libc::SIG_DFL {
        if flags & libc::SA_SIGINFO != 0 {
            // SAFETY: the previous handler was installed with SA_SIGINFO and this signature.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(prev) };
            f(sig, info, ctx);
        } else {
            // SAFETY: the previous handler was installed as a plain handler.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
            f(sig);
        }
        return;
    }
    // Default action: restore it and return; the faulting access runs again and dies as it
    // would have without us.
    // SAFETY: sigaction is async-signal-safe; a zeroed struct with SIG_DFL is valid.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGBUS, &dfl, ptr::null_mut());
    }
}

/// Make sure our handler is the one installed, keeping whatever was there to chain to.
fn install() -> io::Result<()> {
    let mut prev = PREVIOUS.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: querying the current action with a null new action is always valid.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    if unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut current) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if current.sa_sigaction == on_sigbus as *const () as usize {
        return Ok(());
    }
    // SAFETY: a zeroed sigaction with our handler, SA_SIGINFO and an empty mask is valid.
    let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
    ours.sa_sigaction = on_sigbus as *const () as usize;
    ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    unsafe { libc::sigemptyset(&mut ours.sa_mask) };
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both structs are valid; this replaces the process-wide SIGBUS action.
    if unsafe { libc::sigaction(libc::SIGBUS, &ours, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    PREV_ACTION.store(old.sa_sigaction, Ordering::Release);
    PREV_FLAGS.store(old.sa_flags as usize, Ordering::Release);
    *prev = Some(old);
    Ok(())
}

/// A read-only mapping of a whole file, registered with the SIGBUS handler while it lives.
pub struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
    slot: &'static Slot,
}

// SAFETY: the mapping is read-only and owned by this value; it may move between threads.
unsafe impl Send for Mapped {}
// SAFETY: shared access only reads the mapped bytes.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Map `len` bytes of `file` (its size when opened). None when no slot is free or the
    /// mapping fails: the caller then reads the file instead.
    pub fn new(file: &File, len: u64) -> Option<Mapped> {
        if len == 0 || len > isize::MAX as u64 {
            return None;
        }
        install().ok()?;
        let len = len as usize;
        // SAFETY: a fresh read-only shared mapping of an open file descriptor.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        // No MADV_SEQUENTIAL: it would drop the pages from the cache right after they are read,
        // and the next run of the same job would read them from the disk again.
        for slot in &REGISTRY {
            if slot
                .start
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                slot.faulted.store(false, Ordering::Release);
                slot.len.store(len, Ordering::Release);
                slot.start.store(ptr as usize, Ordering::Release);
                return Some(Mapped { ptr, len, slot });
            }
        }
        // SAFETY: unmapping what was just mapped.
        unsafe { libc::munmap(ptr, len) };
        None
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes for as long as self lives; pages past a
        // truncated end read as zeros (see the module docs) instead of faulting.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// Whether a page past the end of the file was touched (it shrank while being read).
    pub fn faulted(&self) -> bool {
        self.slot.faulted.load(Ordering::Acquire)
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // Unregister first: a fault in the range after this point is no longer ours.
        self.slot.len.store(0, Ordering::Release);
        self.slot.start.store(0, Ordering::Release);
        // SAFETY: unmapping the mapping this value owns (zero pages mapped over it included).
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_truncated_under_the_mapping_reads_zeros_and_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![7u8; 1 << 20]).unwrap();
        drop(f);
        let file = File::open(&path).unwrap();
        let map = Mapped::new(&file, 1 << 20).unwrap();
        assert!(map.bytes()[..4096].iter().all(|&b| b == 7));
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let sum: u64 = map.bytes().iter().map(|&b| b as u64).sum();
        assert!(map.faulted(), "the pages past the new end faulted");
        assert_eq!(sum, 7 * 4096, "and read as zeros");
    }

    #[test]
    fn an_untouched_mapping_is_not_flagged_and_slots_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, vec![1u8; 10_000]).unwrap();
        for _ in 0..(SLOTS * 2) {
            let file = File::open(&path).unwrap();
            let map = Mapped::new(&file, 10_000).unwrap();
            assert_eq!(map.bytes().len(), 10_000);
            assert!(!map.faulted());
        }
    }
}
