//! Safe, parallel ZIP extraction.
//!
//! The central directory is read once per archive; entries are then extracted in parallel,
//! largest first, each worker reading through its own clone of the archive whose reader uses
//! positioned reads (`pread`) on one shared file, so there is no lock and no shared seek
//! position. Archives are also extracted in parallel with each other (rayon nests the two).
//!
//! Nothing is trusted: every name is checked before anything is written (traversal, absolute
//! and drive paths, backslashes that are not separators (see [`entry_name`]), NUL bytes,
//! `.`/`..`, duplicates, case clashes, file/directory clashes), symlink targets must stay
//! inside the archive's folder and are created last, sizes are checked while inflating (never
//! trusted from headers), and overlapping entries (the "better zip bomb") are refused. An archive extracts into a fresh temporary folder next to
//! its target and is renamed into place only when every entry succeeded, so a failed or
//! cancelled archive leaves nothing behind, and no pre-existing link in the output can
//! redirect a write. What a killed run leaves is removed by the next one (module `leftovers`).
//! An archive path that is a FIFO, socket or device is refused, never opened for a blocking
//! read.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use zip::{CompressionMethod, ExtraField, ZipArchive};

use crate::error::{io_error_type, FileError};
use crate::progress::Progress;

mod leftovers;
pub use leftovers::{clean_folder, clean_folder_now, Leftover};

const IN_BUF_SIZE: usize = 1 << 20;
const OUT_BUF_SIZE: usize = 1 << 20;
/// Compression ratios are only judged once an entry has produced this much: tiny, highly
/// compressible files are harmless.
const RATIO_GRACE_BYTES: u64 = 1 << 20;
const MAX_LINK_TARGET: u64 = 4096;
const MAX_LINK_HOPS: usize = 40;
const UTF8_FLAG: u16 = 0x0800;

/// Limits that keep a hostile archive from filling the disk.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Total uncompressed bytes one archive may produce.
    pub max_total_bytes: u64,
    /// Uncompressed / compressed size allowed for one entry (above 1 MiB of output).
    pub max_ratio: f64,
    /// Entries one archive may hold.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total_bytes: 64 << 30,
            max_ratio: 200.0,
            max_entries: 1_000_000,
        }
    }
}

/// What to do when an archive's target already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfExists {
    #[default]
    Error,
    Skip,
    Overwrite,
}

/// Which entries to extract: patterns without `/` match the entry's file name, others its
/// whole name (as the scanner's globs do).
#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    by_name: Option<GlobSet>,
    by_path: Option<GlobSet>,
    exclude_name: Option<GlobSet>,
    exclude_path: Option<GlobSet>,
}

impl MemberFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, globset::Error> {
        let (by_name, by_path) = split_globs(include)?;
        let (exclude_name, exclude_path) = split_globs(exclude)?;
        Ok(Self {
            by_name,
            by_path,
            exclude_name,
            exclude_path,
        })
    }

    fn is_active(&self) -> bool {
        self.by_name.is_some() || self.by_path.is_some()
    }

    fn keeps(&self, name: &str) -> bool {
        let base = name.rsplit('/').next().unwrap_or(name);
        let hit = |set: &Option<GlobSet>, s: &str| set.as_ref().is_some_and(|g| g.is_match(s));
        if hit(&self.exclude_name, base) || hit(&self.exclude_path, name) {
            return false;
        }
        !self.is_active() || hit(&self.by_name, base) || hit(&self.by_path, name)
    }
}

fn split_globs(patterns: &[String]) -> Result<(Option<GlobSet>, Option<GlobSet>), globset::Error> {
    let (mut names, mut paths) = (GlobSetBuilder::new(), GlobSetBuilder::new());
    let (mut n, mut p) = (0, 0);
    for pat in patterns {
        let glob = Glob::new(pat)?;
        if pat.contains('/') {
            paths.add(glob);
            p += 1;
        } else {
            names.add(glob);
            n += 1;
        }
    }
    let names = if n > 0 { Some(names.build()?) } else { None };
    let paths = if p > 0 { Some(paths.build()?) } else { None };
    Ok((names, paths))
}

#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    pub limits: Limits,
    pub if_exists: IfExists,
    /// Leave the output of a failed archive at `<target>.partial` instead of removing it.
    pub keep_partial: bool,
    /// Extract into the target folder itself, beside what is already there (flat layout),
    /// instead of creating the target as a new folder.
    pub merge: bool,
    pub members: MemberFilter,
}

/// One archive and the folder it extracts into.
#[derive(Debug, Clone)]
pub struct Job {
    pub archive: PathBuf,
    pub target: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Extracted,
    Skipped,
    Failed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Extracted => "extracted",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ArchiveReport {
    pub archive: PathBuf,
    pub target: PathBuf,
    /// Entries written (files, folders and links).
    pub entries: u64,
    pub bytes: u64,
    pub status: Status,
    pub error: Option<FileError>,
}

/// Why an archive was refused or failed. Each maps to a specific Python exception.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("{0}")]
    Unsafe(String),
    #[error("{0}")]
    Bomb(String),
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    Exists(String),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: io::Error },
    #[error("cancelled")]
    Cancelled,
}

impl ExtractError {
    pub fn error_type(&self) -> &'static str {
        match self {
            ExtractError::Unsafe(_) => "UnsafeArchiveError",
            ExtractError::Bomb(_) => "ZipBombError",
            ExtractError::Corrupt(_) => "ArchiveError",
            ExtractError::Exists(_) => "TargetExistsError",
            ExtractError::Io { err, .. } => io_error_type(err),
            ExtractError::Cancelled => "KeyboardInterrupt",
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ExtractError + '_ {
    move |err| ExtractError::Io {
        path: path.to_path_buf(),
        err,
    }
}

fn corrupt(e: zip::result::ZipError) -> ExtractError {
    ExtractError::Corrupt(format!("not a readable ZIP archive: {e}"))
}

// --- reading ---------------------------------------------------------------------------------

/// A reader over a shared file with its own position: clones read with `pread`, so workers
/// never share a seek position or a lock.
#[derive(Clone)]
struct PReader {
    file: Arc<File>,
    pos: u64,
    len: u64,
}

impl Read for PReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(n) => i128::from(n),
            SeekFrom::End(d) => i128::from(self.len) + i128::from(d),
            SeekFrom::Current(d) => i128::from(self.pos) + i128::from(d),
        };
        if new < 0 || new > i128::from(u64::MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek out of range",
            ));
        }
        self.pos = new as u64;
        Ok(self.pos)
    }
}

/// What a path is when it is not a regular file, for the refusal message.
fn special_kind(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// The callers put the archive's path in front of every message.
fn not_regular(ft: fs::FileType) -> ExtractError {
    ExtractError::Corrupt(format!(
        "not a regular file ({}): not read",
        special_kind(ft)
    ))
}

/// Open an archive for reading without ever blocking: FIFOs, sockets and devices are refused
/// from `stat` before any `open`, and the open itself is non-blocking (a FIFO swapped in
/// between is seen by `fstat` and refused, not waited on).
fn open_regular(path: &Path) -> Result<(File, u64), ExtractError> {
    let meta = fs::metadata(path).map_err(io_at(path))?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(io_at(path))?;
    let meta = file.metadata().map_err(io_at(path))?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    Ok((file, meta.len()))
}

fn open_archive(path: &Path) -> Result<ZipArchive<PReader>, ExtractError> {
    let (file, len) = open_regular(path)?;
    let reader = PReader {
        file: Arc::new(file),
        pos: 0,
        len,
    };
    ZipArchive::new(reader).map_err(corrupt)
}

// --- names -----------------------------------------------------------------------------------

const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

/// Decode an entry name: UTF-8 when the archive's flag says so (invalid bytes are an error for
/// that entry), otherwise CP437 as the format specifies (every byte maps, so nothing is lost).
pub fn decode_name(raw: &[u8], utf8: bool) -> Result<String, String> {
    if utf8 || raw.is_ascii() {
        return std::str::from_utf8(raw).map(str::to_owned).map_err(|_| {
            format!(
                "name {} is not valid UTF-8 although its flag says so",
                escape(raw)
            )
        });
    }
    let high: Vec<char> = CP437_HIGH.chars().collect();
    Ok(raw
        .iter()
        .map(|&b| {
            if b < 0x80 {
                b as char
            } else {
                high[usize::from(b - 0x80)]
            }
        })
        .collect())
}

fn escape(raw: &[u8]) -> String {
    raw.escape_ascii().to_string()
}

/// How one archive's backslashes are read, decided once from all its names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameRules {
    /// No name in the archive contains `/`: a `\` can only be a separator.
    pub no_slash: bool,
}

impl NameRules {
    pub fn of<'a>(raw_names: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Self {
            no_slash: raw_names.into_iter().all(|n| !n.contains(&b'/')),
        }
    }
}

/// Whether the "version made by" host is DOS or Windows (FAT, NTFS, VFAT), where `\` is the
/// folder separator and can never be part of a file name.
pub fn windows_host(system: zip::System) -> bool {
    matches!(
        system,
        zip::System::Dos | zip::System::WindowsNTFS | zip::System::VFAT
    )
}

/// An entry's name as it is listed and extracted: decoded ([`decode_name`]), then with `\` read
/// as a folder separator where that is the only possible reading:
///
/// * the name is pure ASCII or flagged UTF-8 (in UTF-8 the byte 0x5C is always `\`; in a
///   legacy double-byte code page such as Shift-JIS, GBK or Big5 it is also the second byte of
///   many characters, so such names are never split on it), and
/// * the entry was made on a DOS/Windows host, or no name in the archive contains `/`.
///
/// Any other backslash is left in place, and [`check_name`] refuses the entry. The result is
/// only a candidate: every safety check still applies to it (`..\..\x` becomes `../../x`,
/// which is refused).
pub fn entry_name(
    raw: &[u8],
    utf8: bool,
    windows: bool,
    rules: NameRules,
) -> Result<String, String> {
    let name = decode_name(raw, utf8)?;
    if raw.contains(&b'\\') && (utf8 || raw.is_ascii()) && (windows || rules.no_slash) {
        return Ok(name.replace('\\', "/"));
    }
    Ok(name)
}

/// Why a name (after [`entry_name`]) is refused, if it is.
fn name_problem(name: &str, legacy: bool) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty name");
    }
    if name.contains('\0') {
        return Some("NUL byte");
    }
    if name.contains('\\') {
        return Some(if legacy {
            "a backslash in a name that is not UTF-8: in double-byte code pages (Shift-JIS, GBK, \
             Big5) that byte is part of a character, so it is neither read as a separator nor kept"
        } else {
            "backslash in a name of an archive not made on Windows whose other names use '/'"
        });
    }
    if name.starts_with('/') {
        return Some("absolute path");
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Some("drive letter");
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    for part in body.split('/') {
        match part {
            "" => return Some("empty path component"),
            "." | ".." => return Some("'.' or '..' component"),
            _ => {}
        }
    }
    None
}

/// Check an entry name (after [`entry_name`]); returns its components and whether it names a
/// folder. Unsafe names are refused, never rewritten (`a/../../x` is not turned into `a/x`).
pub fn check_name(name: &str) -> Result<(Vec<&str>, bool), String> {
    if let Some(why) = name_problem(name, false) {
        return Err(format!("unsafe entry name {name:?}: {why}"));
    }
    let is_dir = name.ends_with('/');
    let body = name.strip_suffix('/').unwrap_or(name);
    Ok((body.split('/').collect(), is_dir))
}

/// [`check_name`] for an entry stored as `stored` (decoded, before backslashes were read as
/// separators): the error quotes the name as stored, and says how it was read.
fn check_entry_name<'a>(
    name: &'a str,
    stored: &str,
    legacy: bool,
) -> Result<(Vec<&'a str>, bool), String> {
    match name_problem(name, legacy) {
        None => check_name(name),
        Some(why) if stored != name => Err(format!(
            "unsafe entry name {stored:?} (read with '\\' as a folder separator: {name:?}): {why}"
        )),
        Some(why) => Err(format!("unsafe entry name {name:?}: {why}")),
    }
}

// --- planning --------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
}

#[derive(Debug, Clone)]
struct Planned {
    index: usize,
    name: String,
    rel: PathBuf,
    kind: Kind,
    size: u64,
    csize: u64,
    crc32: u32,
    method: CompressionMethod,
    mode: Option<u32>,
}

/// One entry as listed without extracting.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    pub name: String,
    pub name_error: Option<String>,
    pub is_dir: bool,
    pub is_symlink: bool,
    pub size: u64,
    pub compressed_size: u64,
    pub method: String,
    pub crc32: u32,
    pub mtime: Option<i64>,
    pub mode: Option<u32>,
    pub encrypted: bool,
}

fn method_name(m: CompressionMethod) -> String {
    match m {
        CompressionMethod::Stored => "stored".into(),
        CompressionMethod::Deflated => "deflate".into(),
        CompressionMethod::Deflate64 => "deflate64".into(),
        CompressionMethod::Bzip2 => "bzip2".into(),
        CompressionMethod::Zstd => "zstd".into(),
        CompressionMethod::Lzma => "lzma".into(),
        CompressionMethod::Xz => "xz".into(),
        CompressionMethod::Ppmd => "ppmd".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn supported(m: CompressionMethod) -> bool {
    matches!(
        m,
        CompressionMethod::Stored
            | CompressionMethod::Deflated
            | CompressionMethod::Deflate64
            | CompressionMethod::Bzip2
            | CompressionMethod::Zstd
            | CompressionMethod::Lzma
            | CompressionMethod::Xz
            | CompressionMethod::Ppmd
    )
}

/// The entry's modification time in Unix seconds: the extended-timestamp field (UTC) when
/// present, otherwise the DOS time read as local time (as `unzip` does).
fn entry_mtime<R: Read>(entry: &zip::read::ZipFile<'_, R>) -> Option<i64> {
    for field in entry.extra_data_fields() {
        if let ExtraField::ExtendedTimestamp(ts) = field {
            if let Some(t) = ts.mod_time() {
                return Some(i64::from(t));
            }
        }
    }
    let dt = entry.last_modified()?;
    // SAFETY: a zeroed `tm` is a valid value; mktime only reads and normalises it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = i32::from(dt.year()) - 1900;
    tm.tm_mon = i32::from(dt.month()) - 1;
    tm.tm_mday = i32::from(dt.day());
    tm.tm_hour = i32::from(dt.hour());
    tm.tm_min = i32::from(dt.minute());
    tm.tm_sec = i32::from(dt.second());
    tm.tm_isdst = -1;
    // SAFETY: `tm` is a valid, initialised struct.
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some(t)
}

/// List an archive's entries from its central directory, without extracting anything.
pub fn list_entries(path: &Path) -> Result<Vec<EntryInfo>, ExtractError> {
    let mut archive = open_archive(path)?;
    let rules = NameRules::of(archive.file_names_raw());
    let mut out = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        // Raw access reads the local header too: its extra fields hold the UTC timestamp.
        let e = archive.by_index_raw(i).map_err(corrupt)?;
        let utf8 = e.flags().as_u16() & UTF8_FLAG != 0;
        let (name, name_error) =
            match entry_name(e.name_raw(), utf8, windows_host(e.system()), rules) {
                Ok(n) => (n, None),
                Err(msg) => (
                    String::from_utf8_lossy(e.name_raw()).into_owned(),
                    Some(msg),
                ),
            };
        out.push(EntryInfo {
            is_dir: name.ends_with('/'),
            is_symlink: e.is_symlink(),
            name,
            name_error,
            size: e.size(),
            compressed_size: e.compressed_size(),
            method: method_name(e.compression()),
            crc32: e.crc32(),
            mtime: entry_mtime(&e),
            mode: e.unix_mode(),
            encrypted: e.encrypted(),
        });
    }
    Ok(out)
}

struct Plan {
    entries: Vec<Planned>,
    /// Every folder to create (explicit entries and parents of files), shallowest first.
    dirs: Vec<PathBuf>,
    /// Top-level names, for the flat layout's clash check.
    top: Vec<String>,
    total: u64,
}

fn plan(
    archive: &mut ZipArchive<PReader>,
    opts: &ExtractOptions,
    case_insensitive: bool,
) -> Result<Plan, ExtractError> {
    let limits = &opts.limits;
    if archive.len() as u64 > limits.max_entries {
        return Err(ExtractError::Bomb(format!(
            "{} entries, more than the limit of {} (max_entries)",
            archive.len(),
            limits.max_entries
        )));
    }
    let metadata = archive.metadata();
    if metadata.has_duplicate_names() {
        return Err(ExtractError::Unsafe(
            "duplicate entry names: later entries would silently replace earlier ones".into(),
        ));
    }
    let rules = NameRules::of(archive.file_names_raw());
    let mut entries = Vec::with_capacity(archive.len());
    let mut total: u64 = 0;
    let mut seen_folded: HashMap<String, String> = HashMap::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for i in 0..archive.len() {
        let e = archive.by_index_data(i).map_err(corrupt)?;
        let utf8 = e.flags().as_u16() & UTF8_FLAG != 0;
        let raw = e.name_raw();
        let name =
            entry_name(raw, utf8, windows_host(e.system()), rules).map_err(ExtractError::Unsafe)?;
        let stored = decode_name(raw, utf8).map_err(ExtractError::Unsafe)?;
        let legacy = !utf8 && !raw.is_ascii();
        let (parts, is_dir) =
            check_entry_name(&name, &stored, legacy).map_err(ExtractError::Unsafe)?;
        let rel: PathBuf = parts.iter().collect();
        // The crate's own test (`is_dir`) also takes a trailing `\` as a folder; only the name
        // as read here decides.
        let kind = if e.is_symlink() {
            Kind::Symlink
        } else if is_dir {
            Kind::Dir
        } else {
            Kind::File
        };
        if kind != Kind::Dir {
            // Names equal once backslashes are read as separators (`a\b` and `a/b`) are
            // duplicates too, which the crate's check of the stored bytes cannot see.
            if let Some(other) = seen.insert(parts.join("/"), stored.clone()) {
                return Err(ExtractError::Unsafe(format!(
                    "duplicate entry names {other:?} and {stored:?}: the later entry would \
                     silently replace the earlier one"
                )));
            }
        }
        if kind != Kind::Dir && !opts.members.keeps(name.trim_end_matches('/')) {
            continue;
        }
        if opts.members.is_active() && kind == Kind::Dir {
            continue;
        }
        if e.encrypted() {
            return Err(ExtractError::Corrupt(format!(
                "entry {name:?} is encrypted; encrypted archives are not supported"
            )));
        }
        if kind != Kind::Dir && !supported(e.compression()) {
            return Err(ExtractError::Corrupt(format!(
                "entry {name:?} uses an unsupported compression method ({:?})",
                e.compression()
            )));
        }
        let size = if kind == Kind::Dir { 0 } else { e.size() };
        let csize = e.compressed_size();
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(ExtractError::Bomb(format!(
                "declares more than {} bytes uncompressed, the limit (max_total_size)",
                limits.max_total_bytes
            )));
        }
        if size > RATIO_GRACE_BYTES && size as f64 > limits.max_ratio * csize.max(1) as f64 {
            return Err(ExtractError::Bomb(format!(
                "entry {name:?} declares a compression ratio of {:.0}:1, above the limit of {}:1 (max_ratio)",
                size as f64 / csize.max(1) as f64,
                limits.max_ratio
            )));
        }
        let key = parts.join("/");
        if case_insensitive {
            let folded = key.to_lowercase();
            if let Some(other) = seen_folded.insert(folded, key.clone()) {
                if other != key {
                    return Err(ExtractError::Unsafe(format!(
                        "entries {other:?} and {key:?} differ only in case and would clash on this file system"
                    )));
                }
            }
        }
        entries.push(Planned {
            index: i,
            name: name.clone(),
            rel,
            kind,
            size,
            csize,
            crc32: e.crc32(),
            method: e.compression(),
            mode: e.unix_mode(),
        });
    }
    drop(metadata);

    // A name used both as a file (or link) and as a folder, explicitly or as a parent.
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    let mut nondirs: HashMap<&Path, &str> = HashMap::new();
    for p in &entries {
        if p.kind == Kind::Dir {
            dirs.insert(p.rel.clone());
        } else {
            nondirs.insert(p.rel.as_path(), p.name.as_str());
        }
        let mut parent = p.rel.parent();
        while let Some(d) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(d.to_path_buf());
            parent = d.parent();
        }
    }
    for d in &dirs {
        if let Some(name) = nondirs.get(d.as_path()) {
            return Err(ExtractError::Unsafe(format!(
                "entry {name:?} is both a file and a folder"
            )));
        }
    }
    check_links(archive, &entries)?;

    // Overlapping entries are how the "better zip bomb" multiplies a few kilobytes.
    if archive.has_overlapping_entries().map_err(corrupt)? {
        return Err(ExtractError::Bomb(
            "entries overlap in the file (a quoted-overlap zip bomb)".into(),
        ));
    }

    let mut dirs: Vec<PathBuf> = dirs.into_iter().collect();
    dirs.sort_by_key(|d| d.components().count());
    let mut top: Vec<String> = entries
        .iter()
        .filter_map(|p| p.rel.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    top.sort();
    top.dedup();
    entries.sort_by(|a, b| b.size.cmp(&a.size).then(a.index.cmp(&b.index)));
    Ok(Plan {
        entries,
        dirs,
        top,
        total,
    })
}

/// Symlink entries: their targets must resolve (following the archive's other links) inside
/// the archive's folder, and no entry may be written beneath a link.
fn check_links(archive: &mut ZipArchive<PReader>, entries: &[Planned]) -> Result<(), ExtractError> {
    let mut links: HashMap<Vec<String>, (String, Vec<String>)> = HashMap::new();
    for p in entries.iter().filter(|p| p.kind == Kind::Symlink) {
        let target = read_link_target(archive, p)?;
        let parts: Vec<String> = p
            .rel
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        links.insert(parts, (p.name.clone(), vec![target]));
    }
    if links.is_empty() {
        return Ok(());
    }
    for p in entries {
        let mut prefix: Vec<String> = Vec::new();
        let comps: Vec<String> = p
            .rel
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            prefix.push(c.clone());
            if let Some((link, _)) = links.get(&prefix) {
                return Err(ExtractError::Unsafe(format!(
                    "entry {:?} would be written through the link {link:?}",
                    p.name
                )));
            }
        }
    }
    for (path, (name, target)) in &links {
        let mut start = path.clone();
        start.pop();
        resolve_inside(&links, start, &target[0], 0).map_err(|why| {
            ExtractError::Unsafe(format!("link {name:?} -> {:?} {why}", target[0]))
        })?;
    }
    Ok(())
}

fn resolve_inside(
    links: &HashMap<Vec<String>, (String, Vec<String>)>,
    mut at: Vec<String>,
    target: &str,
    hops: usize,
) -> Result<Vec<String>, String> {
    if hops > MAX_LINK_HOPS {
        return Err("is part of a link loop".into());
    }
    if target.is_empty() || target.contains('\0') || target.contains('\\') {
        return Err("has an invalid target".into());
    }
    if target.starts_with('/') {
        return Err("points to an absolute path".into());
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if at.pop().is_none() {
                    return Err("points outside the archive's folder".into());
                }
            }
            p => {
                at.push(p.to_owned());
                if let Some((_, t)) = links.get(&at) {
                    let mut parent = at.clone();
                    parent.pop();
                    at = resolve_inside(links, parent, &t[0], hops + 1)?;
                }
            }
        }
    }
    Ok(at)
}

fn read_link_target(
    archive: &mut ZipArchive<PReader>,
    p: &Planned,
) -> Result<String, ExtractError> {
    if p.size > MAX_LINK_TARGET {
        return Err(ExtractError::Unsafe(format!(
            "link {:?} has a {}-byte target",
            p.name, p.size
        )));
    }
    let mut zf = archive.by_index(p.index).map_err(corrupt)?;
    let mut raw = Vec::new();
    (&mut zf)
        .take(MAX_LINK_TARGET + 1)
        .read_to_end(&mut raw)
        .map_err(|e| ExtractError::Corrupt(format!("entry {:?}: {e}", p.name)))?;
    String::from_utf8(raw)
        .map_err(|_| ExtractError::Unsafe(format!("link {:?} has a non-UTF-8 target", p.name)))
}

// --- writing ---------------------------------------------------------------------------------

fn is_case_insensitive(dir: &Path) -> bool {
    let probe = dir.join(".pfp-case-probe");
    if File::create(&probe).is_err() {
        return false;
    }
    let folded = fs::symlink_metadata(dir.join(".PFP-CASE-PROBE")).is_ok();
    let _ = fs::remove_file(&probe);
    folded
}

/// A fresh, locked temporary folder beside `target`: `.NAME.pfp-partial-PID-TOKEN-N` (the
/// `leftovers` module says how a killed run's folder is recognised and removed by the next run).
fn temp_dir_for(target: &Path) -> Result<(PathBuf, Option<leftovers::Held>), ExtractError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let parent = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_at(parent))?;
    let stem = target
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = parent.join(format!(
            ".{stem}{}{}-{n}",
            leftovers::PARTIAL,
            leftovers::own_tag()
        ));
        let mut b = fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        match b.create(&tmp) {
            Ok(()) => {
                let held = leftovers::hold(&tmp);
                return Ok((tmp, held));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_at(&tmp)(e)),
        }
    }
}

thread_local! {
    /// Each worker's input and output buffers, reused for every entry it extracts.
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Where an entry's bytes go: counts, checks sizes and ratio as they arrive, computes the CRC.
struct Sink<'a> {
    out: File,
    path: &'a Path,
    p: &'a Planned,
    limits: &'a Limits,
    progress: &'a Progress,
    produced: u64,
    crc: crc32fast::Hasher,
}

impl Sink<'_> {
    fn push(&mut self, data: &[u8]) -> Result<(), ExtractError> {
        if self.progress.is_cancelled() {
            return Err(ExtractError::Cancelled);
        }
        self.produced += data.len() as u64;
        if self.produced > self.p.size {
            return Err(oversized(self.p));
        }
        if self.produced > RATIO_GRACE_BYTES
            && self.produced as f64 > self.limits.max_ratio * self.p.csize.max(1) as f64
        {
            return Err(ExtractError::Bomb(format!(
                "entry {:?} exceeds the compression ratio limit of {}:1 (max_ratio)",
                self.p.name, self.limits.max_ratio
            )));
        }
        self.crc.update(data);
        self.out.write_all(data).map_err(io_at(self.path))?;
        self.progress.add_bytes(data.len() as u64);
        Ok(())
    }

    fn finish(self) -> Result<File, ExtractError> {
        if self.produced != self.p.size {
            return Err(ExtractError::Corrupt(format!(
                "entry {:?} is truncated: {} of {} bytes",
                self.p.name, self.produced, self.p.size
            )));
        }
        let crc = self.crc.finalize();
        if crc != self.p.crc32 {
            return Err(ExtractError::Corrupt(format!(
                "entry {:?} fails its CRC check ({crc:08x}, expected {:08x})",
                self.p.name, self.p.crc32
            )));
        }
        Ok(self.out)
    }
}

/// Fill `buf` from `r` (fewer bytes only at the end of the stream).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Inflate a raw deflate stream with large buffers: one positioned read per MiB of input and
/// output straight into the caller's buffer, which is much cheaper than a small-buffered reader.
fn inflate(
    raw: &mut impl Read,
    sink: &mut Sink<'_>,
    inb: &mut [u8],
    outb: &mut [u8],
) -> Result<(), ExtractError> {
    let name = &sink.p.name;
    let bad = |why: String| ExtractError::Corrupt(format!("entry {name:?}: {why}"));
    let mut dec = flate2::Decompress::new(false);
    let (mut pos, mut filled, mut eof) = (0usize, 0usize, false);
    loop {
        if pos == filled && !eof {
            filled = read_full(raw, inb).map_err(|e| bad(e.to_string()))?;
            pos = 0;
            eof = filled < inb.len();
        }
        let (in0, out0) = (dec.total_in(), dec.total_out());
        let flush = if eof {
            flate2::FlushDecompress::Finish
        } else {
            flate2::FlushDecompress::None
        };
        let status = dec
            .decompress(&inb[pos..filled], outb, flush)
            .map_err(|e| bad(format!("corrupt deflate stream ({e})")))?;
        let used = (dec.total_in() - in0) as usize;
        let made = (dec.total_out() - out0) as usize;
        pos += used;
        if made > 0 {
            sink.push(&outb[..made])?;
        }
        match status {
            flate2::Status::StreamEnd => return Ok(()),
            _ if used == 0 && made == 0 && pos == filled && eof => {
                return Err(bad("the compressed data ends early".into()));
            }
            _ if used == 0 && made == 0 && pos < filled => {
                return Err(bad("corrupt deflate stream (no progress)".into()));
            }
            _ => {}
        }
    }
}

fn write_file(
    archive: &mut ZipArchive<PReader>,
    p: &Planned,
    root: &Path,
    limits: &Limits,
    progress: &Progress,
) -> Result<(), ExtractError> {
    let path = root.join(&p.rel);
    let mode = p.mode.map_or(0o666, |m| m & 0o777);
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(io_at(&path))?;
    let mut sink = Sink {
        out,
        path: &path,
        p,
        limits,
        progress,
        produced: 0,
        crc: crc32fast::Hasher::new(),
    };
    let mtime = BUFFERS.with(|cell| -> Result<Option<i64>, ExtractError> {
        let mut bufs = cell.borrow_mut();
        let (inb, outb) = &mut *bufs;
        if inb.len() < IN_BUF_SIZE {
            inb.resize(IN_BUF_SIZE, 0);
            outb.resize(OUT_BUF_SIZE, 0);
        }
        match p.method {
            // Stored and deflated entries (nearly all) are read raw and handled here.
            CompressionMethod::Stored | CompressionMethod::Deflated => {
                let mut raw = archive.by_index_raw(p.index).map_err(corrupt)?;
                let mtime = entry_mtime(&raw);
                if p.method == CompressionMethod::Deflated {
                    inflate(&mut raw, &mut sink, inb, outb)?;
                } else {
                    loop {
                        let n = read_full(&mut raw, outb).map_err(|e| {
                            ExtractError::Corrupt(format!("entry {:?}: {e}", p.name))
                        })?;
                        if n == 0 {
                            break;
                        }
                        sink.push(&outb[..n])?;
                    }
                }
                Ok(mtime)
            }
            _ => {
                // The sink checks the CRC as bytes arrive; the crate need not check it again.
                let no_crc = zip::ZipReadOptions::new().ignore_crc32(true);
                let mut zf = archive
                    .by_index_with_options(p.index, no_crc)
                    .map_err(corrupt)?;
                let mtime = entry_mtime(&zf);
                loop {
                    let n = match zf.read(outb) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if e.to_string().contains("larger than its declared") => {
                            return Err(oversized(p));
                        }
                        Err(e) => {
                            return Err(ExtractError::Corrupt(format!("entry {:?}: {e}", p.name)));
                        }
                    };
                    if n == 0 {
                        break;
                    }
                    sink.push(&outb[..n])?;
                }
                Ok(mtime)
            }
        }
    })?;
    let out = sink.finish()?;
    if p.mode.is_some() {
        // The creation mode went through the umask; the archive's bits are restored as
        // unzip does, without setuid, setgid or sticky.
        out.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_at(&path))?;
    }
    if let Some(t) = mtime {
        let ft = filetime::FileTime::from_unix_time(t, 0);
        filetime::set_file_handle_times(&out, None, Some(ft)).map_err(io_at(&path))?;
    }
    Ok(())
}

fn oversized(p: &Planned) -> ExtractError {
    ExtractError::Bomb(format!(
        "entry {:?} inflates beyond its declared size of {} bytes",
        p.name, p.size
    ))
}

fn make_link(
    archive: &mut ZipArchive<PReader>,
    p: &Planned,
    root: &Path,
) -> Result<(), ExtractError> {
    let target = read_link_target(archive, p)?;
    let path = root.join(&p.rel);
    std::os::unix::fs::symlink(&target, &path).map_err(io_at(&path))?;
    let mtime = archive
        .by_index_raw(p.index)
        .ok()
        .and_then(|e| entry_mtime(&e));
    if let Some(t) = mtime {
        let ft = filetime::FileTime::from_unix_time(t, 0);
        let _ = filetime::set_symlink_file_times(&path, ft, ft);
    }
    Ok(())
}

fn extract_into(
    archive: &ZipArchive<PReader>,
    plan: &Plan,
    root: &Path,
    opts: &ExtractOptions,
    progress: &Progress,
) -> Result<u64, ExtractError> {
    for d in &plan.dirs {
        let path = root.join(d);
        let mut b = fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o755);
        match b.create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_at(&path)(e)),
        }
    }
    let files: Vec<&Planned> = plan
        .entries
        .iter()
        .filter(|p| p.kind == Kind::File)
        .collect();
    files.par_iter().with_max_len(1).try_for_each_init(
        || archive.clone(),
        |arch, p| write_file(arch, p, root, &opts.limits, progress),
    )?;
    let mut arch = archive.clone();
    for p in plan.entries.iter().filter(|p| p.kind == Kind::Symlink) {
        make_link(&mut arch, p, root)?;
    }
    // Folder modes and times last: writing files inside would change the times.
    let mut dir_entries: Vec<&Planned> = plan
        .entries
        .iter()
        .filter(|p| p.kind == Kind::Dir)
        .collect();
    dir_entries.sort_by_key(|p| std::cmp::Reverse(p.rel.components().count()));
    for p in dir_entries {
        let path = root.join(&p.rel);
        if let Some(m) = p.mode {
            let _ = fs::set_permissions(&path, fs::Permissions::from_mode((m & 0o777) | 0o700));
        }
        let mtime = arch
            .by_index_raw(p.index)
            .ok()
            .and_then(|e| entry_mtime(&e));
        if let Some(t) = mtime {
            let ft = filetime::FileTime::from_unix_time(t, 0);
            let _ = filetime::set_file_mtime(&path, ft);
        }
    }
    Ok(plan.entries.len() as u64)
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

/// Rename without replacing: an existing destination is an error, never silently merged.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    let f = CString::new(from.as_os_str().as_bytes())?;
    let t = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EINVAL) || err.raw_os_error() == Some(libc::ENOSYS) {
        // File systems without RENAME_NOREPLACE: check, then rename.
        if exists(to) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        return fs::rename(from, to);
    }
    Err(err)
}

/// Swap two names in one step (`RENAME_EXCHANGE`).
fn rename_exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    let f = CString::new(a.as_os_str().as_bytes())?;
    let t = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn replace(from: &Path, to: &Path, overwrite: bool) -> Result<(), ExtractError> {
    match rename_noreplace(from, to) {
        Ok(()) => Ok(()),
        Err(e)
            if e.raw_os_error() == Some(libc::EEXIST)
                || e.raw_os_error() == Some(libc::ENOTEMPTY) =>
        {
            if !overwrite {
                return Err(ExtractError::Exists(format!(
                    "{} already exists (choose overwrite or skip)",
                    to.display()
                )));
            }
            // Lock the old one first: wherever it goes next, no other run takes it for the
            // leftover of a dead one while it is being removed.
            let _old = leftovers::hold(to);
            // The new one takes the old one's place in one step, so the target never goes
            // missing; the old one, now under the temporary name, is removed.
            match rename_exchange(from, to) {
                Ok(()) => return remove_any(from).map_err(io_at(from)),
                Err(e)
                    if e.raw_os_error() == Some(libc::EINVAL)
                        || e.raw_os_error() == Some(libc::ENOSYS) => {}
                Err(e) => return Err(io_at(to)(e)),
            }
            // File systems that cannot swap: move the old one aside first. A run killed between
            // the two renames leaves it aside, and the next run puts it back.
            let trash = to.with_file_name(format!(
                ".{}{}{}",
                to.file_name().unwrap_or_default().to_string_lossy(),
                leftovers::OLD,
                leftovers::own_tag()
            ));
            remove_any(&trash).map_err(io_at(&trash))?;
            fs::rename(to, &trash).map_err(io_at(to))?;
            fs::rename(from, to).map_err(io_at(to))?;
            remove_any(&trash).map_err(io_at(&trash))?;
            Ok(())
        }
        Err(e) => Err(io_at(to)(e)),
    }
}

fn extract_one(
    job: &Job,
    opts: &ExtractOptions,
    progress: &Progress,
) -> Result<(Status, u64, u64), ExtractError> {
    if progress.is_cancelled() {
        return Err(ExtractError::Cancelled);
    }
    let target_exists = exists(&job.target);
    if !opts.merge && target_exists {
        match opts.if_exists {
            IfExists::Skip => return Ok((Status::Skipped, 0, 0)),
            IfExists::Error => {
                return Err(ExtractError::Exists(format!(
                    "{} already exists (choose overwrite or skip)",
                    job.target.display()
                )))
            }
            IfExists::Overwrite => {}
        }
    }
    let mut archive = open_archive(&job.archive)?;
    let staged_beside = if opts.merge {
        job.target.join("x")
    } else {
        job.target.clone()
    };
    let (tmp, _held) = temp_dir_for(&staged_beside)?;
    let result = (|| {
        let plan = plan(&mut archive, opts, is_case_insensitive(&tmp))?;
        if opts.merge {
            let clashes: Vec<&String> = plan
                .top
                .iter()
                .filter(|t| exists(&job.target.join(t)))
                .collect();
            if !clashes.is_empty() {
                match opts.if_exists {
                    IfExists::Skip => return Ok((Status::Skipped, 0, 0)),
                    IfExists::Error => {
                        return Err(ExtractError::Exists(format!(
                            "{} already exists in {} (choose overwrite or skip)",
                            clashes[0],
                            job.target.display()
                        )))
                    }
                    IfExists::Overwrite => {}
                }
            }
        }
        progress.add_total(0, plan.total);
        let n = extract_into(&archive, &plan, &tmp, opts, progress)?;
        if opts.merge {
            for t in &plan.top {
                replace(
                    &tmp.join(t),
                    &job.target.join(t),
                    opts.if_exists == IfExists::Overwrite,
                )?;
            }
            fs::remove_dir(&tmp).map_err(io_at(&tmp))?;
        } else {
            replace(&tmp, &job.target, opts.if_exists == IfExists::Overwrite)?;
        }
        Ok((Status::Extracted, n, plan.total))
    })();
    match &result {
        Ok((Status::Extracted, ..)) => {}
        Ok(_) => {
            let _ = fs::remove_dir_all(&tmp);
        }
        Err(_) if opts.keep_partial && !opts.merge => {
            let partial = job.target.with_file_name(format!(
                "{}.partial",
                job.target.file_name().unwrap_or_default().to_string_lossy()
            ));
            if rename_noreplace(&tmp, &partial).is_err() {
                let _ = fs::remove_dir_all(&tmp);
            }
        }
        Err(_) if opts.keep_partial => {}
        Err(_) => {
            let _ = fs::remove_dir_all(&tmp);
        }
    }
    result
}

/// Extract every archive; one report per job, in the jobs' order. Failures are per archive.
pub fn extract_all(jobs: &[Job], opts: &ExtractOptions, progress: &Progress) -> Vec<ArchiveReport> {
    extract_all_cleaning(jobs, opts, progress).0
}

/// The folders an extraction of `jobs` writes its temporary folders into.
fn staging_folders(jobs: &[Job], merge: bool) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    jobs.iter()
        .map(|j| {
            if merge {
                j.target.clone()
            } else {
                j.target.parent().unwrap_or(Path::new(".")).to_path_buf()
            }
        })
        .filter(|d| seen.insert(d.clone()))
        .collect()
}

/// [`extract_all`], first removing what killed runs left in the folders it writes to (see
/// the `leftovers` module); also returns what was removed or put back.
pub fn extract_all_cleaning(
    jobs: &[Job],
    opts: &ExtractOptions,
    progress: &Progress,
) -> (Vec<ArchiveReport>, Vec<Leftover>) {
    let cleaned: Vec<Leftover> = staging_folders(jobs, opts.merge)
        .iter()
        .flat_map(|d| clean_folder(d))
        .collect();
    (extract_jobs(jobs, opts, progress), cleaned)
}

fn extract_jobs(jobs: &[Job], opts: &ExtractOptions, progress: &Progress) -> Vec<ArchiveReport> {
    progress.add_total(jobs.len() as u64, 0);
    let mut order: Vec<(usize, u64)> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (i, fs::metadata(&j.archive).map(|m| m.len()).unwrap_or(0)))
        .collect();
    order.sort_by_key(|&(_, size)| std::cmp::Reverse(size));
    let one = |&(i, _): &(usize, u64)| {
        let job = &jobs[i];
        let outcome = extract_one(job, opts, progress);
        progress.add_items(1);
        let report = match outcome {
            Ok((status, entries, bytes)) => ArchiveReport {
                archive: job.archive.clone(),
                target: job.target.clone(),
                entries,
                bytes,
                status,
                error: None,
            },
            Err(e) => {
                progress.add_error();
                ArchiveReport {
                    archive: job.archive.clone(),
                    target: job.target.clone(),
                    entries: 0,
                    bytes: 0,
                    status: Status::Failed,
                    error: Some(FileError::new(&job.archive, e.error_type(), e.to_string())),
                }
            }
        };
        (i, report)
    };
    let mut reports: Vec<(usize, ArchiveReport)> = if opts.merge {
        // Archives merged into one folder go one at a time, in the given order (their entries
        // still in parallel), so a name two archives share is decided the same way every
        // time and a clash found up front never leaves half an archive merged.
        order.sort_by_key(|&(i, _)| i);
        order.iter().map(one).collect()
    } else {
        order.par_iter().with_max_len(1).map(one).collect()
    };
    reports.sort_by_key(|(i, _)| *i);
    reports.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use zip::write::SimpleFileOptions;

    fn make_zip(path: &Path, entries: &[(&str, &[u8])]) {
        let mut w = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, data) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, SimpleFileOptions::default())
                    .unwrap();
            } else {
                w.start_file(*name, SimpleFileOptions::default()).unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.finish().unwrap();
    }

    fn job(dir: &Path, name: &str) -> Job {
        Job {
            archive: dir.join(format!("{name}.zip")),
            target: dir.join("out").join(name),
        }
    }

    #[test]
    fn cp437_table_is_complete() {
        assert_eq!(CP437_HIGH.chars().count(), 128);
        assert_eq!(decode_name(&[0x80, b'a'], false).unwrap(), "Ça");
        assert!(decode_name(&[0xff, 0xfe], true).is_err());
    }

    #[test]
    fn unsafe_names_are_refused_not_rewritten() {
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "C:/x",
            "a\\b",
            "a//b",
            "./a",
            "",
            "a/./b",
            "x\0y",
            "//server/share",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            check_name("a/b/c.txt").unwrap(),
            (vec!["a", "b", "c.txt"], false)
        );
        assert_eq!(check_name("a/b/").unwrap(), (vec!["a", "b"], true));
    }

    #[test]
    fn extracts_files_and_folders_atomically() {
        let dir = tempfile::tempdir().unwrap();
        make_zip(
            &dir.path().join("a.zip"),
            &[
                ("d/", b""),
                ("d/x.txt", b"hello"),
                ("y.bin", &[7u8; 100_000]),
            ],
        );
        let reports = extract_all(
            &[job(dir.path(), "a")],
            &ExtractOptions::default(),
            &Progress::new(),
        );
        assert_eq!(
            reports[0].status,
            Status::Extracted,
            "{:?}",
            reports[0].error
        );
        assert_eq!(reports[0].entries, 3);
        let out = dir.path().join("out/a");
        assert_eq!(fs::read(out.join("d/x.txt")).unwrap(), b"hello");
        assert_eq!(fs::read(out.join("y.bin")).unwrap(), vec![7u8; 100_000]);
        // Nothing but the target in the output folder (the temporary folder is gone).
        assert_eq!(fs::read_dir(dir.path().join("out")).unwrap().count(), 1);
    }

    #[test]
    fn existing_target_is_an_error_unless_skip_or_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        make_zip(&dir.path().join("a.zip"), &[("x.txt", b"new")]);
        fs::create_dir_all(dir.path().join("out/a")).unwrap();
        fs::write(dir.path().join("out/a/old.txt"), b"old").unwrap();
        let j = [job(dir.path(), "a")];
        let r = extract_all(&j, &ExtractOptions::default(), &Progress::new());
        assert_eq!(r[0].error.as_ref().unwrap().error_type, "TargetExistsError");
        let skip = ExtractOptions {
            if_exists: IfExists::Skip,
            ..Default::default()
        };
        assert_eq!(
            extract_all(&j, &skip, &Progress::new())[0].status,
            Status::Skipped
        );
        let over = ExtractOptions {
            if_exists: IfExists::Overwrite,
            ..Default::default()
        };
        assert_eq!(
            extract_all(&j, &over, &Progress::new())[0].status,
            Status::Extracted
        );
        assert!(!dir.path().join("out/a/old.txt").exists());
        assert_eq!(fs::read(dir.path().join("out/a/x.txt")).unwrap(), b"new");
    }

    #[test]
    fn bad_archive_fails_alone_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        make_zip(&dir.path().join("good.zip"), &[("x.txt", b"fine")]);
        fs::write(dir.path().join("bad.zip"), b"PK\x03\x04 not really a zip").unwrap();
        let jobs = [job(dir.path(), "good"), job(dir.path(), "bad")];
        let r = extract_all(&jobs, &ExtractOptions::default(), &Progress::new());
        assert_eq!(r[0].status, Status::Extracted);
        assert_eq!(r[1].status, Status::Failed);
        assert_eq!(r[1].error.as_ref().unwrap().error_type, "ArchiveError");
        let names: Vec<_> = fs::read_dir(dir.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("good")]);
    }

    #[test]
    fn size_limits_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        make_zip(&dir.path().join("z.zip"), &[("zeros", &vec![0u8; 4 << 20])]);
        let opts = ExtractOptions::default();
        let r = extract_all(&[job(dir.path(), "z")], &opts, &Progress::new());
        assert_eq!(
            r[0].error.as_ref().unwrap().error_type,
            "ZipBombError",
            "{:?}",
            r[0]
        );
        let small = ExtractOptions {
            limits: Limits {
                max_total_bytes: 1000,
                max_ratio: 1e9,
                max_entries: 10,
            },
            ..Default::default()
        };
        let r = extract_all(&[job(dir.path(), "z")], &small, &Progress::new());
        assert_eq!(r[0].error.as_ref().unwrap().error_type, "ZipBombError");
        assert!(!dir.path().join("out/z").exists());
    }

    #[test]
    fn links_must_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = zip::ZipWriter::new(File::create(dir.path().join("l.zip")).unwrap());
        w.add_symlink("up", "../../etc", SimpleFileOptions::default())
            .unwrap();
        w.finish().unwrap();
        let r = extract_all(
            &[job(dir.path(), "l")],
            &ExtractOptions::default(),
            &Progress::new(),
        );
        assert_eq!(
            r[0].error.as_ref().unwrap().error_type,
            "UnsafeArchiveError"
        );

        let mut w = zip::ZipWriter::new(File::create(dir.path().join("m.zip")).unwrap());
        w.add_symlink("sub", "dir", SimpleFileOptions::default())
            .unwrap();
        w.start_file("sub/x", SimpleFileOptions::default()).unwrap();
        w.write_all(b"through the link").unwrap();
        w.finish().unwrap();
        let r = extract_all(
            &[job(dir.path(), "m")],
            &ExtractOptions::default(),
            &Progress::new(),
        );
        assert_eq!(
            r[0].error.as_ref().unwrap().error_type,
            "UnsafeArchiveError"
        );

        // A link chain that only escapes when the links are followed.
        let links = HashMap::from([(
            vec!["x".into(), "y".into(), "l2".into()],
            ("x/y/l2".to_string(), vec!["../../..".to_string()]),
        )]);
        assert!(resolve_inside(&links, vec![], "x/y/l2/..", 0).is_err());
        assert!(resolve_inside(&links, vec![], "x/y/z", 0).is_ok());
    }

    #[test]
    fn names_differing_in_case_clash_on_a_case_insensitive_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.zip");
        make_zip(&path, &[("Readme.txt", b"1"), ("README.TXT", b"2")]);
        let opts = ExtractOptions::default();
        let mut archive = open_archive(&path).unwrap();
        let err = plan(&mut archive, &opts, true)
            .err()
            .expect("clash refused");
        assert!(matches!(err, ExtractError::Unsafe(ref m) if m.contains("differ only in case")));
        assert!(plan(&mut archive, &opts, false).is_ok());
    }

    #[test]
    fn zstd_bzip2_and_lzma_entries_extract() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = zip::ZipWriter::new(File::create(dir.path().join("m.zip")).unwrap());
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for (name, method) in [
            ("z.bin", CompressionMethod::Zstd),
            ("b.bin", CompressionMethod::Bzip2),
            ("s.bin", CompressionMethod::Stored),
        ] {
            let o = SimpleFileOptions::default().compression_method(method);
            w.start_file(name, o).unwrap();
            w.write_all(&data).unwrap();
        }
        w.finish().unwrap();
        let r = extract_all(
            &[job(dir.path(), "m")],
            &ExtractOptions::default(),
            &Progress::new(),
        );
        assert_eq!(r[0].status, Status::Extracted, "{:?}", r[0].error);
        for name in ["z.bin", "b.bin", "s.bin"] {
            assert_eq!(fs::read(dir.path().join("out/m").join(name)).unwrap(), data);
        }
        let methods: Vec<String> = list_entries(&dir.path().join("m.zip"))
            .unwrap()
            .into_iter()
            .map(|e| e.method)
            .collect();
        assert_eq!(methods, ["zstd", "bzip2", "stored"]);
    }

    #[test]
    fn backslashes_are_separators_only_where_nothing_else_is_possible() {
        let rules = NameRules::default();
        let all_back = NameRules { no_slash: true };
        // Made on Windows: ASCII and flagged UTF-8 names are split on `\`.
        assert_eq!(
            entry_name(b"a\\b\\c.txt", false, true, rules).unwrap(),
            "a/b/c.txt"
        );
        assert_eq!(
            entry_name("d\u{e9}j\u{e0}\\x".as_bytes(), true, true, rules).unwrap(),
            "d\u{e9}j\u{e0}/x"
        );
        // Made elsewhere: only when no name in the archive uses `/`.
        assert_eq!(entry_name(b"a\\b", false, false, all_back).unwrap(), "a/b");
        let kept = entry_name(b"a\\b", false, false, rules).unwrap();
        assert_eq!(kept, "a\\b");
        let err = check_entry_name(&kept, &kept, false).unwrap_err();
        assert!(err.contains("not made on Windows"), "{err}");
        // A legacy (unflagged, non-ASCII) name: in Shift-JIS 0x95 0x5C is one character.
        let sjis = b"\x95\x5c.txt";
        for windows in [true, false] {
            let n = entry_name(sjis, false, windows, all_back).unwrap();
            assert_eq!(n, "\u{f2}\\.txt");
            let err = check_entry_name(&n, &n, true).unwrap_err();
            assert!(err.contains("not UTF-8"), "{err}");
        }
        // NameRules looks at every name.
        assert!(NameRules::of([&b"a\\b"[..], b"c"]).no_slash);
        assert!(!NameRules::of([&b"a\\b"[..], b"c/"]).no_slash);
    }

    #[test]
    fn backslash_traversal_stays_refused() {
        for (raw, why) in [
            ("..\\x", "'..'"),
            ("a\\..\\..\\x", "'..'"),
            ("a/..\\..\\x", "'..'"),
            (".\\a", "'.'"),
            ("C:\\x", "drive letter"),
            ("c:x", "drive letter"),
            ("\\\\server\\share\\x", "absolute"),
            ("\\x", "absolute"),
            ("a\\\\b", "empty path component"),
            ("a\\\0b", "NUL"),
        ] {
            let name = entry_name(raw.as_bytes(), false, true, NameRules::default()).unwrap();
            let err = check_entry_name(&name, raw, false).unwrap_err();
            assert!(err.contains(why), "{raw:?}: {err}");
            assert!(err.contains(&format!("{raw:?}")), "{raw:?}: {err}");
        }
        let name = entry_name(b"a\\b\\", false, true, NameRules::default()).unwrap();
        assert_eq!(check_name(&name).unwrap(), (vec!["a", "b"], true));
    }

    /// An archive whose entries say they were made on MS-DOS (host 0), as PowerShell 5's
    /// Compress-Archive writes them (the zip crate itself writes a Unix host).
    fn windows_zip(path: &Path, names: &[&str]) {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            for n in names {
                w.start_file(*n, SimpleFileOptions::default()).unwrap();
                w.write_all(n.as_bytes()).unwrap();
            }
            w.finish().unwrap();
        }
        let mut bytes = buf.into_inner();
        for i in 0..bytes.len().saturating_sub(6) {
            if bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] {
                bytes[i + 5] = 0;
            }
        }
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn windows_archives_extract_into_folders_and_list_the_same_names() {
        let dir = tempfile::tempdir().unwrap();
        windows_zip(
            &dir.path().join("w.zip"),
            &["report\\2024\\jan.csv", "top.txt"],
        );
        let listed: Vec<String> = list_entries(&dir.path().join("w.zip"))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(listed, ["report/2024/jan.csv", "top.txt"]);
        let opts = ExtractOptions::default();
        let r = extract_all(&[job(dir.path(), "w")], &opts, &Progress::new());
        assert_eq!(r[0].status, Status::Extracted, "{:?}", r[0].error);
        assert_eq!(
            fs::read(dir.path().join("out/w/report/2024/jan.csv")).unwrap(),
            b"report\\2024\\jan.csv"
        );
        // `a\b` and `a/b` are one name once read: a duplicate.
        windows_zip(&dir.path().join("d.zip"), &["a\\b", "a/b"]);
        let r = extract_all(&[job(dir.path(), "d")], &opts, &Progress::new());
        let err = r[0].error.as_ref().unwrap();
        assert!(err.message.contains("duplicate"), "{err:?}");
        // A file and a folder of the same name, one spelled with `\`.
        windows_zip(&dir.path().join("c.zip"), &["a", "a\\b"]);
        let r = extract_all(&[job(dir.path(), "c")], &opts, &Progress::new());
        let err = r[0].error.as_ref().unwrap();
        assert!(err.message.contains("both a file and a folder"), "{err:?}");
    }

    #[test]
    fn xz_and_ppmd_entries_extract_and_keep_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        // Text-like bytes: compressible, but well inside the ratio limit.
        let mut x: u32 = 1;
        let data: Vec<u8> = (0..600_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                b"etaoin shrdlu\n,."[(x >> 16) as usize % 16]
            })
            .collect();
        let methods = [
            ("x.bin", CompressionMethod::Xz),
            ("p.bin", CompressionMethod::Ppmd),
        ];
        let mut w = zip::ZipWriter::new(File::create(dir.path().join("x.zip")).unwrap());
        for (name, method) in methods {
            let o = SimpleFileOptions::default().compression_method(method);
            w.start_file(name, o).unwrap();
            w.write_all(&data).unwrap();
        }
        w.finish().unwrap();
        let opts = ExtractOptions::default();
        let r = extract_all(&[job(dir.path(), "x")], &opts, &Progress::new());
        assert_eq!(r[0].status, Status::Extracted, "{:?}", r[0].error);
        for name in ["x.bin", "p.bin"] {
            assert_eq!(fs::read(dir.path().join("out/x").join(name)).unwrap(), data);
        }
        let listed: Vec<String> = list_entries(&dir.path().join("x.zip"))
            .unwrap()
            .into_iter()
            .map(|e| e.method)
            .collect();
        assert_eq!(listed, ["xz", "ppmd"]);
        // Zeros compress far past the ratio limit in both methods.
        for (name, method) in methods {
            let path = dir.path().join(format!("z{name}.zip"));
            let mut w = zip::ZipWriter::new(File::create(&path).unwrap());
            let o = SimpleFileOptions::default().compression_method(method);
            w.start_file(name, o).unwrap();
            w.write_all(&vec![0u8; 3 << 20]).unwrap();
            w.finish().unwrap();
            let j = Job {
                archive: path,
                target: dir.path().join("out").join(name),
            };
            let r = extract_all(&[j], &opts, &Progress::new());
            assert_eq!(r[0].error.as_ref().unwrap().error_type, "ZipBombError");
        }
    }

    #[test]
    fn fifos_sockets_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f.zip");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let sock = dir.path().join("s.zip");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (sock.as_path(), "a socket"),
            (Path::new("/dev/null"), "a device"),
            (dir.path(), "a directory"),
        ] {
            let err = list_entries(path).err().unwrap();
            assert!(err.to_string().contains(what), "{path:?}: {err}");
            let j = Job {
                archive: path.to_path_buf(),
                target: dir.path().join("out/x"),
            };
            let r = extract_all(&[j], &ExtractOptions::default(), &Progress::new());
            assert_eq!(r[0].error.as_ref().unwrap().error_type, "ArchiveError");
        }
        assert!(!dir.path().join("out/x").exists());
    }

    #[test]
    fn overwrite_swaps_in_one_step_and_leaves_no_temporary_names() {
        let dir = tempfile::tempdir().unwrap();
        make_zip(&dir.path().join("a.zip"), &[("new.txt", b"new")]);
        fs::create_dir_all(dir.path().join("out/a/deep")).unwrap();
        fs::write(dir.path().join("out/a/deep/old.txt"), b"old").unwrap();
        let over = ExtractOptions {
            if_exists: IfExists::Overwrite,
            ..Default::default()
        };
        let r = extract_all(&[job(dir.path(), "a")], &over, &Progress::new());
        assert_eq!(r[0].status, Status::Extracted, "{:?}", r[0].error);
        let names: Vec<_> = fs::read_dir(dir.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a")]);
        assert_eq!(fs::read(dir.path().join("out/a/new.txt")).unwrap(), b"new");
        assert!(!dir.path().join("out/a/deep").exists());
    }

    #[test]
    fn a_killed_runs_folders_are_removed_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        make_zip(&dir.path().join("a.zip"), &[("x.txt", b"x")]);
        let out = dir.path().join("out");
        fs::create_dir_all(out.join(".a.pfp-partial-99999999-0000000000ab-3/half")).unwrap();
        fs::create_dir_all(out.join(".b.pfp-partial-99999999-7")).unwrap();
        let (r, cleaned) = extract_all_cleaning(
            &[job(dir.path(), "a")],
            &ExtractOptions::default(),
            &Progress::new(),
        );
        assert_eq!(r[0].status, Status::Extracted);
        assert_eq!(cleaned.len(), 2, "{cleaned:?}");
        let names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a")]);
    }

    #[test]
    fn fuzzer_escape_input_is_refused() {
        // Found by fuzz/run.sh's `archive` target against a build whose name check let `..`
        // through: the DOS-host entry `..\x` was then written beside the target folder.
        const INPUT: &str =
            "UEsDBBQAAAAAAIMYIlBLu/4cBQAAAAUAAAADAAAAYS9sLi4vLi5QSwMEFAAAAAAAgxgiUFp62u8BAAAA\
            AQAAAAQAAAAuLlx4ZVBLAQIUAxQAAAAAAIMYIlBLu/4cBQAAAAUAAAADAAAAAAAAAAAA////AQAAAABhL2xQ\
            SwECFAAUAAAAAACDGCJQWnra7wEAAAABAAAABAAAAAAAAAAAAAAAgAEmAAAALi5ceFBLBQYAAAAAAgACAGMA\
            AABJAAAAAAA=";
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f.zip"), base64_decode(INPUT)).unwrap();
        let r = extract_all(
            &[job(dir.path(), "f")],
            &ExtractOptions::default(),
            &Progress::new(),
        );
        let err = r[0].error.as_ref().expect("refused");
        assert_eq!(err.error_type, "UnsafeArchiveError", "{err:?}");
        assert_eq!(fs::read_dir(dir.path().join("out")).unwrap().count(), 0);
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        let val = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
        let mut out = Vec::new();
        for chunk in clean.chunks(4) {
            let n = chunk.iter().take_while(|&&c| c != b'=').count();
            let v = chunk[..n]
                .iter()
                .fold(0u32, |acc, &c| (acc << 6) | u32::from(val(c)))
                << (6 * (4 - n));
            out.extend_from_slice(&v.to_be_bytes()[1..n]);
        }
        out
    }

    #[test]
    fn listing_reads_only_the_directory() {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            w.start_file("a.txt", SimpleFileOptions::default()).unwrap();
            w.write_all(b"abc").unwrap();
            w.finish().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.zip");
        fs::write(&p, buf.into_inner()).unwrap();
        let e = list_entries(&p).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].name, "a.txt");
        assert_eq!(e[0].size, 3);
        assert_eq!(e[0].crc32, 0x352441c2);
    }
}
