//! `FileInfo`: the seed's file record as a native class, so a scan of a million files makes a
//! million small objects without a `pathlib.Path`, a Python `__init__` or a garbage-collector
//! entry each. The `Path` is built the first time `.path` is read; the relative path is a slice
//! of the path string, made when first read.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyOSError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple, PyType};

use crate::prefetch::Budget;
use crate::scan::Entry;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FileInfo>()?;
    m.add_function(wrap_pyfunction!(untrack_results, m)?)?;
    Ok(())
}

/// Take the items of `results` whose type is exactly `cls` (the engine's ProcessingResult)
/// out of the cyclic garbage collector's watch: a result is made after the call that produced
/// its value and is never referred to by it, so it can be part of no cycle, and a run of a
/// million items would otherwise have every collection walk them all.
#[pyfunction]
fn untrack_results(results: &Bound<'_, PyList>, cls: &Bound<'_, PyType>) {
    for r in results.iter() {
        if r.get_type().is(cls) {
            untrack(&r);
        }
    }
}

static PATH_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn path_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    PATH_TYPE.import(py, "pathlib", "Path")
}

/// How `.path` builds its `pathlib.Path` from the path string.
///
/// `Path(s)` parses the string (about 4 µs on CPython 3.11, more than the rest of a scanned
/// file's cost). Scanned paths are already in the form pathlib would produce (no `//`, no `.`
/// component, no trailing `/`), so the object can be filled in directly: on 3.10-3.11 with
/// the parts pathlib would have computed, on 3.12+ with the raw string (pathlib parses it
/// lazily). Either way the string is set as the cached `str()`. Which way works is decided
/// once, by checking the direct objects against `Path(s)` on sample paths; any difference
/// (another Python, another pathlib) falls back to plain `Path(s)`.
enum PathMaker {
    Plain,
    /// 3.10-3.11: what `PosixPath._from_parsed_parts(drv, root, parts)` does, done here:
    /// `object.__new__(PosixPath)` with `_drv`, `_root` and `_parts` set.
    Parts {
        new: Py<PyAny>,
        cls: Py<PyAny>,
    },
    /// 3.12+: `object.__new__(PosixPath)` with `_raw_paths = [s]`.
    Raw {
        new: Py<PyAny>,
        cls: Py<PyAny>,
    },
}

static PATH_MAKER: PyOnceLock<PathMaker> = PyOnceLock::new();
/// The folder of the last path built and its parts (only touched with the GIL held).
static LAST_DIR: std::sync::Mutex<Option<(String, Py<PyList>)>> = std::sync::Mutex::new(None);

/// Whether `str(Path(s)) == s` with the parts `s.split('/')` (what scanned paths look like).
fn is_plain_path(s: &str) -> bool {
    !s.is_empty()
        && !s.contains("//")
        && !s.ends_with('/')
        && !s.split('/').any(|c| c == ".")
        && !s.starts_with("./")
}

impl PathMaker {
    fn detect(py: Python<'_>) -> PathMaker {
        let Ok(pathlib) = py.import("pathlib") else {
            return PathMaker::Plain;
        };
        let Ok(cls) = pathlib.getattr("PosixPath") else {
            return PathMaker::Plain;
        };
        let Ok(new) = py
            .import("builtins")
            .and_then(|b| b.getattr("object"))
            .and_then(|o| o.getattr("__new__"))
        else {
            return PathMaker::Plain;
        };
        let candidates = [
            PathMaker::Parts {
                new: new.clone().unbind(),
                cls: cls.clone().unbind(),
            },
            PathMaker::Raw {
                new: new.unbind(),
                cls: cls.clone().unbind(),
            },
        ];
        for maker in candidates {
            if maker.agrees(py).unwrap_or(false) {
                return maker;
            }
        }
        PathMaker::Plain
    }

    /// The direct objects equal `Path(s)` in every way a user could look at them.
    fn agrees(&self, py: Python<'_>) -> PyResult<bool> {
        let path = path_type(py)?;
        for s in [
            "/srv/data/a b/r\u{e9}sum\u{e9}.tar.gz",
            "rel/x.csv",
            "/",
            "name",
        ] {
            let fast = self.build(py, &PyString::new(py, s))?;
            let slow = path.call1((s,))?;
            if !fast.get_type().is(slow.get_type()) || !fast.eq(&slow)? {
                return Ok(false);
            }
            for attr in ["parts", "name", "suffix", "stem", "anchor"] {
                if !fast.getattr(attr)?.eq(slow.getattr(attr)?)? {
                    return Ok(false);
                }
            }
            let same = fast.str()?.to_str()? == slow.str()?.to_str()?
                && fast.hash()? == slow.hash()?
                && fast.getattr("parent")?.eq(slow.getattr("parent")?)?
                && fast
                    .call_method1("joinpath", ("z",))?
                    .eq(slow.call_method1("joinpath", ("z",))?)?
                && fast.call_method1("__truediv__", ("..",))?.str()?.to_str()?
                    == slow.call_method1("__truediv__", ("..",))?.str()?.to_str()?
                && fast
                    .call_method0("__reduce__")?
                    .eq(slow.call_method0("__reduce__")?)?;
            if !same {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn build<'py>(&self, py: Python<'py>, s: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
        let text = match s.to_str() {
            Ok(t) if is_plain_path(t) || t == "/" => t,
            _ => return path_type(py)?.call1((s,)),
        };
        match self {
            PathMaker::Plain => path_type(py)?.call1((s,)),
            PathMaker::Parts { new, cls } => {
                let (root, rest) = match text.strip_prefix('/') {
                    Some(rest) => ("/", rest),
                    None => ("", text),
                };
                // Files come folder by folder: the folder's parts are made once and shared.
                let (dir, name) = match rest.rfind('/') {
                    Some(i) => (&text[..root.len() + i], &rest[i + 1..]),
                    None => (root, rest),
                };
                let mut last = LAST_DIR.lock().unwrap_or_else(|e| e.into_inner());
                let dir_parts = match last.as_ref() {
                    Some((d, parts)) if d == dir => parts.bind(py).clone(),
                    _ => {
                        let parts = PyList::empty(py);
                        if !root.is_empty() {
                            parts.append(root)?;
                        }
                        let inner = &dir[root.len()..];
                        if !inner.is_empty() {
                            for c in inner.split('/') {
                                parts.append(c)?;
                            }
                        }
                        *last = Some((dir.to_owned(), parts.clone().unbind()));
                        parts
                    }
                };
                drop(last);
                let parts = PyList::new(py, dir_parts.iter())?;
                if !name.is_empty() {
                    parts.append(name)?;
                }
                let p = new.bind(py).call1((cls.bind(py),))?;
                p.setattr(intern!(py, "_drv"), intern!(py, ""))?;
                p.setattr(intern!(py, "_root"), PyString::new(py, root))?;
                untrack(parts.as_any());
                p.setattr(intern!(py, "_parts"), parts)?;
                p.setattr(intern!(py, "_str"), s)?;
                untrack(&p);
                Ok(p)
            }
            PathMaker::Raw { new, cls } => {
                let p = new.bind(py).call1((cls.bind(py),))?;
                let raw = PyList::new(py, [s])?;
                untrack(raw.as_any());
                p.setattr(intern!(py, "_raw_paths"), raw)?;
                p.setattr(intern!(py, "_str"), s)?;
                untrack(&p);
                Ok(p)
            }
        }
    }
}

/// Take an object the scanner made out of the cyclic garbage collector's watch: what it holds
/// (strings, a `pathlib.Path`, a list of strings) can never lead back to it, and a million
/// watched objects would make every collection walk them all, for nothing. (Objects made from
/// Python stay watched: their fields may hold anything.)
pub fn untrack(obj: &Bound<'_, PyAny>) {
    // SAFETY: the object is alive (we hold a reference). `PyObject_GC_IsTracked` is false
    // for objects of types without GC support, so only a tracked GC object is untracked; it
    // is freed by reference counting as before.
    unsafe {
        if pyo3::ffi::PyObject_GC_IsTracked(obj.as_ptr()) != 0 {
            pyo3::ffi::PyObject_GC_UnTrack(obj.as_ptr().cast());
        }
    }
}

/// `pathlib.Path(s)` for a path string, built directly where that is known to be the same.
pub fn make_path<'py>(py: Python<'py>, s: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let Ok(text) = s.cast::<PyString>() else {
        return path_type(py)?.call1((s,));
    };
    PATH_MAKER
        .get_or_init(py, || PathMaker::detect(py))
        .build(py, text)
}

/// Where the relative path starts in the path string: one shared object per scan root, held
/// by a FileInfo in place of its relative path until that is first read (8 bytes a file,
/// not 8 plus a string).
#[pyclass(module = "parallel_file_processor._core", frozen)]
struct RelFrom(usize);

/// Bytes read ahead, and the read-ahead budget they count against until handed over.
struct Ahead {
    data: Py<PyBytes>,
    held: Option<(Arc<Budget>, u64)>,
}

/// Bytes read ahead for FileInfo objects, by the object's address: kept outside the objects so
/// the millions a scan makes stay in pymalloc's 80-byte size class. Only touched with the GIL
/// held; `AHEAD_LEN` lets objects without read-ahead skip the lock.
static AHEAD: Mutex<Option<HashMap<usize, Ahead>>> = Mutex::new(None);
static AHEAD_LEN: AtomicUsize = AtomicUsize::new(0);

fn ahead_put(key: usize, ahead: Ahead) {
    let mut table = AHEAD.lock().unwrap_or_else(|e| e.into_inner());
    if table
        .get_or_insert_with(HashMap::new)
        .insert(key, ahead)
        .is_none()
    {
        AHEAD_LEN.fetch_add(1, Ordering::Relaxed);
    }
}

fn ahead_take(key: usize) -> Option<Ahead> {
    if AHEAD_LEN.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let got = AHEAD
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .and_then(|t| t.remove(&key));
    if got.is_some() {
        AHEAD_LEN.fetch_sub(1, Ordering::Relaxed);
    }
    got
}

fn ahead_has(key: usize) -> bool {
    AHEAD_LEN.load(Ordering::Relaxed) > 0
        && AHEAD
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|t| t.contains_key(&key))
}

/// File metadata container (the seed's fields), able to read its file.
///
/// ``path`` is a :class:`pathlib.Path`, built the first time it is read. ``read_bytes()`` and
/// ``read_text()`` return bytes read ahead by the engine (``prefetch=True``) at once, else
/// read the file.
#[pyclass(module = "parallel_file_processor._core", name = "FileInfo", subclass)]
pub struct FileInfo {
    /// The path as `os.fspath` gives it (a str, or bytes for a bytes path) until a
    /// `pathlib.Path` is given or built; then that Path (which holds the same string).
    path: Py<PyAny>,
    #[pyo3(get, set)]
    size_bytes: i64,
    #[pyo3(get, set)]
    modified_time: f64,
    #[pyo3(get, set)]
    extension: Py<PyAny>,
    /// The relative path, when given or made; or a `RelFrom`: it is the path string from that
    /// byte on (made when first read). Kept small: a scan makes millions of these.
    rel: Option<Py<PyAny>>,
}

impl Drop for FileInfo {
    fn drop(&mut self) {
        self.give_back();
    }
}

static OS_FSPATH: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn fspath<'py>(py: Python<'py>, path: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if path.is_instance_of::<PyString>() {
        return Ok(path.clone());
    }
    OS_FSPATH.import(py, "os", "fspath")?.call1((path,))
}

#[pymethods]
impl FileInfo {
    #[new]
    #[pyo3(signature = (path, size_bytes, modified_time, extension, relative_path = None))]
    fn new(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        size_bytes: i64,
        modified_time: f64,
        extension: Py<PyAny>,
        relative_path: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let path = if path.is_instance(path_type(py)?)? {
            path.clone()
        } else {
            fspath(py, path)?
        };
        Ok(Self {
            path: path.unbind(),
            size_bytes,
            modified_time,
            extension,
            rel: relative_path,
        })
    }

    /// The path as a :class:`pathlib.Path` (built on first use).
    #[getter]
    fn path(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let held = self.path.bind(py);
        if !held.is_instance_of::<PyString>() && !held.is_instance_of::<PyBytes>() {
            return Ok(self.path.clone_ref(py));
        }
        let p = make_path(py, held)?.unbind();
        self.path = p.clone_ref(py);
        Ok(p)
    }

    #[setter]
    fn set_path(&mut self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.path = if value.is_instance(path_type(py)?)? {
            value.clone().unbind()
        } else {
            fspath(py, value)?.unbind()
        };
        Ok(())
    }

    /// The path as a string, without building a :class:`pathlib.Path`.
    #[getter]
    fn path_str(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.fs(py)?.unbind())
    }

    #[getter]
    fn relative_path(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let Some(r) = &self.rel else {
            return Ok(None);
        };
        let Ok(from) = r.bind(py).cast::<RelFrom>() else {
            return Ok(Some(r.clone_ref(py)));
        };
        let start = from.get().0;
        let fs = self.fs(py)?;
        let full = fs.cast::<PyString>()?.to_cow()?;
        let rel = PyString::new(py, full.get(start..).unwrap_or_default()).into_any();
        self.rel = Some(rel.clone().unbind());
        Ok(Some(rel.unbind()))
    }

    #[setter]
    fn set_relative_path(&mut self, value: Option<Py<PyAny>>) {
        self.rel = value;
    }

    /// The file's name (the last component of the path).
    #[getter]
    fn name(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let os_path = py.import("os")?.getattr("path")?;
        Ok(os_path.call_method1("basename", (self.fs(py)?,))?.unbind())
    }

    /// Whether bytes read ahead are waiting for :meth:`read_bytes`.
    #[getter]
    fn prefetched(&self) -> bool {
        ahead_has(self.key())
    }

    /// Hand over bytes read ahead (used by the engine's read-ahead).
    fn set_prefetched(&mut self, data: Option<Py<PyBytes>>) {
        self.give_back();
        if let Some(data) = data {
            ahead_put(self.key(), Ahead { data, held: None });
        }
    }

    /// The file's bytes: prefetched ones if the engine read ahead (handed over once, then
    /// released), else read now with the GIL released.
    fn read_bytes(&mut self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        if let Some(ahead) = ahead_take(self.key()) {
            let Ahead { data, held } = ahead;
            if let Some((budget, n)) = held {
                budget.release(n);
            }
            return Ok(data);
        }
        let path: PathBuf = self.fs(py)?.extract()?;
        let hint = usize::try_from(self.size_bytes.max(0)).unwrap_or(0);
        let read = py.detach(|| -> std::io::Result<Vec<u8>> {
            let mut f = File::open(&path)?;
            let mut buf = Vec::with_capacity(hint + 1);
            f.read_to_end(&mut buf)?;
            Ok(buf)
        });
        match read {
            Ok(buf) => Ok(PyBytes::new(py, &buf).unbind()),
            Err(e) => Err(os_error(&path, &e)),
        }
    }

    /// The file's text, decoded from :meth:`read_bytes`.
    #[pyo3(signature = (encoding = "utf-8", errors = "strict"))]
    fn read_text(&mut self, py: Python<'_>, encoding: &str, errors: &str) -> PyResult<Py<PyAny>> {
        let data = self.read_bytes(py)?;
        Ok(data
            .bind(py)
            .call_method1("decode", (encoding, errors))?
            .unbind())
    }

    /// Create a FileInfo from a path (``stat`` is called once).
    #[classmethod]
    #[pyo3(signature = (path, base_path = None))]
    fn from_path<'py>(
        cls: &Bound<'py, PyType>,
        path: &Bound<'py, PyAny>,
        base_path: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let path = path_type(py)?.call1((path,))?;
        let st = path.call_method0("stat")?;
        let relative = match base_path {
            Some(base) if base.is_truthy()? => {
                Some(path.call_method1("relative_to", (base,))?.str()?.into_any())
            }
            _ => None,
        };
        let suffix = path.getattr("suffix")?.call_method0("lower")?;
        cls.call1((
            path,
            st.getattr("st_size")?,
            st.getattr("st_mtime")?,
            suffix,
            relative,
        ))
    }

    fn __fspath__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.fs(py)?.unbind())
    }

    fn __eq__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let Ok(other) = other.cast::<FileInfo>() else {
            return Ok(py.NotImplemented());
        };
        if !slf.get_type().is(other.get_type()) {
            return Ok(py.NotImplemented());
        }
        let a = Self::fields(slf)?;
        let b = Self::fields(other)?;
        Ok(a.eq(b)?.into_pyobject(py)?.to_owned().into_any().unbind())
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        self.fs(py)?.hash()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let rel = slf.borrow_mut().relative_path(py)?;
        let path = slf.borrow_mut().path(py)?;
        let this = slf.borrow();
        Ok(format!(
            "FileInfo(path={}, size_bytes={}, modified_time={}, extension={}, relative_path={})",
            path.bind(py).repr()?,
            this.size_bytes,
            this.modified_time.into_pyobject(py)?.repr()?,
            this.extension.bind(py).repr()?,
            match rel {
                Some(r) => r.bind(py).repr()?.to_string(),
                None => "None".to_owned(),
            }
        ))
    }

    /// Pickled as its five fields (read-ahead bytes stay behind: a copy reads its own file).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let args = Self::fields(slf)?;
        PyTuple::new(py, [slf.get_type().into_any(), args.into_any()])
    }

    #[classattr]
    fn __match_args__(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
        PyTuple::new(
            py,
            [
                "path",
                "size_bytes",
                "modified_time",
                "extension",
                "relative_path",
            ],
        )
    }
}

impl FileInfo {
    /// The path as `os.fspath` gives it.
    fn fs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let held = self.path.bind(py);
        if held.is_instance_of::<PyString>() || held.is_instance_of::<PyBytes>() {
            return Ok(held.clone());
        }
        fspath(py, held)
    }

    /// This object's key in the read-ahead table (its address, stable while it lives).
    fn key(&self) -> usize {
        self as *const Self as usize
    }

    fn give_back(&mut self) {
        if let Some(ahead) = ahead_take(self.key()) {
            if let Some((budget, n)) = ahead.held {
                budget.release(n);
            }
        }
    }

    /// ``(path string, size, mtime, extension, relative path)``: equality and pickling.
    fn fields<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let rel = slf.borrow_mut().relative_path(py)?;
        let this = slf.borrow();
        PyTuple::new(
            py,
            [
                this.fs(py)?.unbind(),
                this.size_bytes.into_pyobject(py)?.into_any().unbind(),
                this.modified_time.into_pyobject(py)?.into_any().unbind(),
                this.extension.clone_ref(py),
                rel.unwrap_or_else(|| py.None()),
            ],
        )
    }
}

/// An OSError the way Python's own ``open()`` raises it: errno, message and file name, so the
/// subclass (``FileNotFoundError``, ``PermissionError``...) and ``str()`` match.
pub fn os_error(path: &Path, err: &std::io::Error) -> PyErr {
    let code = err.raw_os_error().unwrap_or(0);
    let msg = std::io::Error::from_raw_os_error(code).to_string();
    let msg = msg.split(" (os error").next().unwrap_or(&msg).to_owned();
    PyOSError::new_err((code, msg, path.as_os_str().to_os_string()))
}

/// Hand bytes read ahead to a new FileInfo; they count against `budget` until handed over.
pub fn attach(info: &Bound<'_, FileInfo>, data: &[u8], budget: &Arc<Budget>) {
    let key = info.borrow().key();
    ahead_put(
        key,
        Ahead {
            data: PyBytes::new(info.py(), data).unbind(),
            held: Some((budget.clone(), data.len() as u64)),
        },
    );
}

/// Builds FileInfo objects for scanned entries, sharing one string per distinct extension.
pub struct Maker<'py> {
    py: Python<'py>,
    exts: Vec<(Vec<u8>, Py<PyAny>)>,
    /// The `RelFrom` of each root start seen.
    starts: Vec<(usize, Py<PyAny>)>,
}

impl<'py> Maker<'py> {
    pub fn new(py: Python<'py>) -> Self {
        Self {
            py,
            exts: Vec::new(),
            starts: Vec::new(),
        }
    }

    fn extension(&mut self, e: &Entry) -> Py<PyAny> {
        // Most suffixes are ASCII: found in the cache without making a string.
        if let Some(sfx) = e.suffix().filter(|s| s.is_ascii()) {
            if let Some((_, s)) = self.exts.iter().find(|(k, _)| k.eq_ignore_ascii_case(sfx)) {
                return s.clone_ref(self.py);
            }
        }
        let ext = e.extension();
        if let Some((_, s)) = self.exts.iter().find(|(k, _)| k == ext.as_bytes()) {
            return s.clone_ref(self.py);
        }
        let s = PyString::new(self.py, &ext).into_any().unbind();
        if self.exts.len() < 64 {
            self.exts.push((ext.into_bytes(), s.clone_ref(self.py)));
        }
        s
    }

    /// One FileInfo; `rel_start` is where the path relative to its root begins.
    pub fn make(&mut self, e: &Entry, rel_start: usize) -> PyResult<Bound<'py, FileInfo>> {
        let py = self.py;
        // UTF-8 names (nearly all) straight to a str; others as os.fsdecode makes them.
        let fspath = match e.path.to_str() {
            Some(text) => PyString::new(py, text).into_any().unbind(),
            None => e.path.as_os_str().into_pyobject(py)?.into_any().unbind(),
        };
        // The relative part is a suffix of the path string; with a non-UTF-8 root the byte
        // offset would not be a character offset, so the slice is made here instead.
        let rel = match e.path.to_str() {
            Some(s) if s.is_char_boundary(rel_start.min(s.len())) => {
                match self.starts.iter().find(|(at, _)| *at == rel_start) {
                    Some((_, marker)) => marker.clone_ref(py),
                    None => {
                        let marker = Py::new(py, RelFrom(rel_start))?.into_any();
                        self.starts.push((rel_start, marker.clone_ref(py)));
                        marker
                    }
                }
            }
            _ => OsStr::from_bytes(
                e.path
                    .as_os_str()
                    .as_bytes()
                    .get(rel_start..)
                    .unwrap_or_default(),
            )
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        };
        let info = FileInfo {
            path: fspath,
            size_bytes: e.size as i64,
            modified_time: crate::scan::mtime_secs(e.mtime_ns),
            extension: self.extension(e),
            rel: Some(rel),
        };
        let made = Bound::new(py, info)?;
        untrack(made.as_any());
        Ok(made)
    }
}
