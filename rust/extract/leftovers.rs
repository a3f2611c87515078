//! Temporary folders of extractions that were killed (`kill -9`, out of memory, power loss).
//!
//! An archive is extracted into `.NAME.pfp-partial-PID-TOKEN-N` beside its target, and with
//! `if_exists="overwrite"` (where the file system cannot swap two names in one rename) the old
//! target is set aside as `.NAME.pfp-old-PID-TOKEN`. A run that is killed cannot remove them, so
//! the next run into that folder does, once it is sure their owner is gone:
//!
//! * every run holds an `flock` on each of its temporary folders for as long as it uses them;
//!   the kernel drops it when the process dies, however it dies. A locked leftover is never
//!   touched (this also covers runs in other PID namespaces and, where the file system shares
//!   locks, on other hosts);
//! * `TOKEN` is a checksum of this host's name and of the owner's boot id and start time, so a
//!   PID that was reused by an unrelated process does not keep a leftover alive, and an owner
//!   that is still starting (between creating its folder and locking it) is recognised;
//! * names from before the token existed (`.NAME.pfp-partial-PID-N`, `.NAME.pfp-old-PID`) are
//!   removed when the PID is not alive, or when that process started after the leftover was
//!   last changed (so it cannot be its owner).
//!
//! A set-aside old target whose name is free again (the run died between the two renames) is put
//! back, not deleted: the overwrite never happened.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) const PARTIAL: &str = ".pfp-partial-";
pub(crate) const OLD: &str = ".pfp-old-";

/// One leftover of an interrupted run that was cleaned up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub path: PathBuf,
    /// Set when an old target that an interrupted overwrite had set aside was put back here.
    pub restored_to: Option<PathBuf>,
    /// The process that left it.
    pub pid: u32,
}

// --- who we are ------------------------------------------------------------------------------

fn host_hash() -> u32 {
    static HOST: OnceLock<u32> = OnceLock::new();
    *HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
        let name = if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            buf[..end].to_vec()
        } else {
            Vec::new()
        };
        crc32fast::hash(&name) & 0xffff
    })
}

fn boot_id() -> &'static str {
    static BOOT: OnceLock<String> = OnceLock::new();
    BOOT.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    })
}

/// A process's start time, in clock ticks since boot (field 22 of `/proc/PID/stat`).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split(' ').nth(22 - 3)?.parse().ok()
}

/// The token a live process `pid` of this host has (`None`: no such process).
fn token_of(pid: u32) -> Option<String> {
    let ticks = start_ticks(pid)?;
    let mut h = crc32fast::Hasher::new();
    h.update(boot_id().as_bytes());
    h.update(b":");
    h.update(ticks.to_string().as_bytes());
    Some(format!("{:04x}{:08x}", host_hash(), h.finalize()))
}

/// `PID-TOKEN`, as this process writes it into the names of its temporary folders.
pub(crate) fn own_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let pid = std::process::id();
        let token = token_of(pid).unwrap_or_else(|| format!("{:04x}00000000", host_hash()));
        format!("{pid}-{token}")
    })
}

fn pid_alive(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(p, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// When `pid` started, in wall-clock time.
fn started_at(pid: u32) -> Option<SystemTime> {
    let ticks = start_ticks(pid)?;
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(UNIX_EPOCH + Duration::from_secs(btime) + Duration::from_millis(ticks * 1000 / hz))
}

// --- locks -----------------------------------------------------------------------------------

/// A lock held on one of this run's temporary folders; other runs leave it alone while it is
/// held. Released when dropped, or by the kernel when the process dies.
#[derive(Debug)]
pub(crate) struct Held(#[allow(dead_code)] File);

enum LockState {
    /// Taken by us now: nobody else holds it.
    Free(#[allow(dead_code)] Held),
    /// Another process holds it.
    Busy,
    /// Not a folder, or the file system does not lock: the lock cannot tell.
    Unknown,
}

fn try_lock(path: &Path) -> LockState {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(_) => return LockState::Unknown,
    };
    // SAFETY: the descriptor is open for the duration of the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return LockState::Free(Held(file));
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EWOULDBLOCK) => LockState::Busy,
        _ => LockState::Unknown,
    }
}

/// Lock a folder of this run (best effort: `None` where the file system cannot lock it).
pub(crate) fn hold(path: &Path) -> Option<Held> {
    match try_lock(path) {
        LockState::Free(h) => Some(h),
        _ => None,
    }
}

// --- finding and judging leftovers -----------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
struct Parsed<'a> {
    old: bool,
    /// The target's name (what the leftover was beside).
    stem: &'a [u8],
    pid: u32,
    token: Option<&'a [u8]>,
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

fn is_token(b: &[u8]) -> bool {
    b.len() == 12 && b.iter().all(u8::is_ascii_hexdigit)
}

/// `.STEM.pfp-partial-PID[-TOKEN]-N` or `.STEM.pfp-old-PID[-TOKEN]`.
fn parse(name: &[u8]) -> Option<Parsed<'_>> {
    let body = name.strip_prefix(b".")?;
    for (marker, old) in [(PARTIAL, false), (OLD, true)] {
        let Some(at) = rfind(body, marker.as_bytes()) else {
            continue;
        };
        let fields: Vec<&[u8]> = body[at + marker.len()..].split(|&b| b == b'-').collect();
        let (pid, token) = match (old, fields.as_slice()) {
            (false, [pid, n]) if digits(pid) && digits(n) => (pid, None),
            (false, [pid, t, n]) if digits(pid) && is_token(t) && digits(n) => (pid, Some(*t)),
            (true, [pid]) if digits(pid) => (pid, None),
            (true, [pid, t]) if digits(pid) && is_token(t) => (pid, Some(*t)),
            _ => return None,
        };
        let pid = std::str::from_utf8(pid).ok()?.parse().ok()?;
        return Some(Parsed {
            old,
            stem: &body[..at],
            pid,
            token,
        });
    }
    None
}

/// Whether the leftover's owner is alive: `None` when this host cannot tell (another host's).
fn owner_alive(p: &Parsed<'_>, modified: Option<SystemTime>) -> Option<bool> {
    match p.token {
        Some(token) => {
            let ours = format!("{:04x}", host_hash());
            if !token.starts_with(ours.as_bytes()) {
                return None;
            }
            Some(token_of(p.pid).is_some_and(|t| t.as_bytes() == token))
        }
        None => {
            if !pid_alive(p.pid) {
                return Some(false);
            }
            // A process that started after the leftover last changed is not its owner.
            let later = match (started_at(p.pid), modified) {
                (Some(start), Some(m)) => start > m + Duration::from_secs(2),
                _ => false,
            };
            Some(!later)
        }
    }
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Clean one leftover if its owner is gone; what was done, if anything.
fn clean_one(dir: &Path, name: &[u8]) -> Option<Leftover> {
    let p = parse(name)?;
    let path = dir.join(std::ffi::OsStr::from_bytes(name));
    let modified = fs::symlink_metadata(&path).and_then(|m| m.modified()).ok();
    let lock = try_lock(&path);
    let gone = match (&lock, owner_alive(&p, modified)) {
        (LockState::Busy, _) => false,
        (LockState::Free(_), alive) => alive != Some(true),
        (LockState::Unknown, alive) => alive == Some(false),
    };
    if !gone {
        return None;
    }
    let mut restored_to = None;
    if p.old && !p.stem.is_empty() {
        let original = dir.join(std::ffi::OsStr::from_bytes(p.stem));
        if !exists(&original) && super::rename_noreplace(&path, &original).is_ok() {
            restored_to = Some(original);
        }
    }
    if restored_to.is_none() && remove_any(&path).is_err() {
        return None;
    }
    drop(lock);
    Some(Leftover {
        path,
        restored_to,
        pid: p.pid,
    })
}

/// Remove (or put back) the leftovers of dead runs in `dir`. Each folder is looked at once per
/// process: a dead run's leftovers cannot appear later except from another process's death.
pub fn clean_folder(dir: &Path) -> Vec<Leftover> {
    static SEEN: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| Mutex::new(HashSet::new()));
    if !seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir.to_path_buf())
    {
        return Vec::new();
    }
    clean_folder_now(dir)
}

/// [`clean_folder`] without the once-per-process memo.
pub fn clean_folder_now(dir: &Path) -> Vec<Leftover> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let b = name.as_bytes();
        if b.first() == Some(&b'.')
            && (rfind(b, PARTIAL.as_bytes()).is_some() || rfind(b, OLD.as_bytes()).is_some())
        {
            out.extend(clean_one(dir, b));
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_both_formats() {
        let p = parse(b".a.b.pfp-partial-123-4").unwrap();
        assert_eq!(
            (p.old, p.stem, p.pid, p.token),
            (false, &b"a.b"[..], 123, None)
        );
        let p = parse(b".x.pfp-partial-9-0123456789ab-0").unwrap();
        assert_eq!(p.token, Some(&b"0123456789ab"[..]));
        let p = parse(b".x.pfp-old-77").unwrap();
        assert!(p.old && p.pid == 77 && p.stem == b"x");
        assert!(parse(b".x.pfp-old-77-0123456789ab")
            .unwrap()
            .token
            .is_some());
        for bad in [
            &b"x.pfp-partial-1-2"[..],
            b".x.pfp-partial-1",
            b".x.pfp-partial-a-2",
            b".x.pfp-partial-1-2-3",
            b".x.pfp-old-",
            b".x.partial",
        ] {
            assert_eq!(parse(bad), None, "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn own_token_is_recognised_and_a_reused_pid_is_not() {
        let tag = own_tag();
        let (pid, token) = tag.split_once('-').unwrap();
        let p = Parsed {
            old: false,
            stem: b"x",
            pid: pid.parse().unwrap(),
            token: Some(token.as_bytes()),
        };
        assert_eq!(owner_alive(&p, None), Some(true));
        // Our PID with another start token: a previous process that had this PID.
        let other = format!("{}00000001", &token[..4]);
        let p = Parsed {
            token: Some(other.as_bytes()),
            ..p
        };
        assert_eq!(owner_alive(&p, None), Some(false));
        // Another host's: this host cannot tell.
        let p = Parsed {
            token: Some(b"zzzz00000000"),
            ..p
        };
        assert_eq!(owner_alive(&p, None), None);
    }

    #[test]
    fn dead_and_stale_leftovers_go_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let me = std::process::id();
        // Dead: a PID that cannot exist (above pid_max).
        fs::create_dir(d.join(".a.pfp-partial-99999999-0")).unwrap();
        fs::write(d.join(".a.pfp-partial-99999999-0/f"), b"x").unwrap();
        // Old format, our (live) PID, but changed long before we started: not ours.
        let stale = d.join(format!(".b.pfp-partial-{me}-0"));
        fs::create_dir(&stale).unwrap();
        filetime::set_file_mtime(&stale, filetime::FileTime::from_unix_time(1_000_000_000, 0))
            .unwrap();
        // Old format, our PID, changed now: could be ours, kept.
        fs::create_dir(d.join(format!(".c.pfp-partial-{me}-0"))).unwrap();
        // New format, ours, locked: kept.
        let live = d.join(format!(".d.pfp-partial-{}-0", own_tag()));
        fs::create_dir(&live).unwrap();
        let _held = hold(&live).unwrap();
        // An old target set aside by a dead run whose name is free: put back.
        fs::create_dir(d.join(".e.pfp-old-99999999")).unwrap();
        fs::write(d.join(".e.pfp-old-99999999/keep"), b"old").unwrap();
        // ... and one whose name was taken again: removed.
        fs::create_dir(d.join(".f.pfp-old-99999999")).unwrap();
        fs::create_dir(d.join("f")).unwrap();
        // Not ours at all.
        fs::create_dir(d.join(".g.partial")).unwrap();
        let cleaned = clean_folder_now(d);
        let names: Vec<String> = cleaned
            .iter()
            .map(|l| l.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec![
                ".a.pfp-partial-99999999-0".to_string(),
                format!(".b.pfp-partial-{me}-0"),
                ".e.pfp-old-99999999".into(),
                ".f.pfp-old-99999999".into(),
            ]
        );
        assert_eq!(cleaned[2].restored_to, Some(d.join("e")));
        assert_eq!(fs::read(d.join("e/keep")).unwrap(), b"old");
        let mut left: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![
            ".g.partial".to_string(),
            format!(".c.pfp-partial-{me}-0"),
            format!(".d.pfp-partial-{}-0", own_tag()),
            "e".into(),
            "f".into(),
        ];
        want.sort();
        assert_eq!(left, want);
    }
}
