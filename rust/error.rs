//! Per-file failures, recorded instead of aborting a run.

use std::io;
use std::path::PathBuf;

/// One file (or directory, or archive) that could not be handled, and why.
///
/// `error_type` uses the name of the Python exception a user would expect for the same failure
/// (`FileNotFoundError`, `PermissionError`, ...), so the record reads the same on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub path: PathBuf,
    pub error_type: String,
    pub message: String,
}

impl FileError {
    pub fn new(path: impl Into<PathBuf>, error_type: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            error_type: error_type.to_owned(),
            message: message.into(),
        }
    }

    pub fn from_io(path: impl Into<PathBuf>, err: &io::Error) -> Self {
        Self::new(path, io_error_type(err), err.to_string())
    }
}

/// The Python exception name matching an I/O error.
pub fn io_error_type(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::ENOENT) => return "FileNotFoundError",
        Some(libc::EACCES) | Some(libc::EPERM) => return "PermissionError",
        Some(libc::EISDIR) => return "IsADirectoryError",
        Some(libc::ENOTDIR) => return "NotADirectoryError",
        Some(libc::ELOOP) => return "SymlinkLoopError",
        _ => {}
    }
    match err.kind() {
        io::ErrorKind::NotFound => "FileNotFoundError",
        io::ErrorKind::PermissionDenied => "PermissionError",
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => "ValueError",
        io::ErrorKind::UnexpectedEof => "EOFError",
        io::ErrorKind::Interrupted => "InterruptedError",
        _ => "OSError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_errno_to_python_names() {
        let nf = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_error_type(&nf), "FileNotFoundError");
        let pd = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(io_error_type(&pd), "PermissionError");
        let lp = io::Error::from_raw_os_error(libc::ELOOP);
        assert_eq!(io_error_type(&lp), "SymlinkLoopError");
        let other = io::Error::other("boom");
        assert_eq!(io_error_type(&other), "OSError");
    }

    #[test]
    fn from_io_keeps_path_and_message() {
        let e = FileError::from_io("/x/y", &io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(e.path, PathBuf::from("/x/y"));
        assert_eq!(e.error_type, "FileNotFoundError");
        assert!(e.message.contains("No such file"));
    }
}
