//! Listing rows written straight from native buffers: paths, JSON Lines, CSV or an aligned
//! table, in batches, as a command-line tool writes them. Non-UTF-8 names come out the way
//! Python's `os.fsdecode` shows them (each undecodable byte as `\udcXX`), so the command line
//! and the Python API agree.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::scan::{rel_start, Entry};

/// How rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One path per line.
    Paths,
    /// One JSON object per line: path, relative_path, size_bytes, modified_time, extension.
    JsonLines,
    /// A header and one CSV row per file.
    Csv,
    /// An aligned table with a header (needs every row before the first is written).
    Table,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "paths" => Format::Paths,
            "json" => Format::JsonLines,
            "csv" => Format::Csv,
            "table" => Format::Table,
            _ => return None,
        })
    }

    /// Whether rows can be written as they come (the table needs them all first).
    pub fn streams(self) -> bool {
        self != Format::Table
    }
}

/// The columns of a listing row.
pub const COLUMNS: [&str; 5] = [
    "path",
    "relative_path",
    "size_bytes",
    "modified_time",
    "extension",
];

/// One value of a row, written the way Python's writers write it (`json.dumps`, `csv`, `str`).
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    /// Bytes of a name or a string (non-UTF-8 bytes shown as `os.fsdecode` shows them).
    Text(&'a [u8]),
    Int(i64),
    /// Seconds since the epoch, written as Python's `repr` of the float.
    Secs(i64),
    Bool(bool),
    Null,
}

/// Text of a file name the way Python shows it after `os.fsdecode`: valid UTF-8 as is, each
/// byte that is not part of valid UTF-8 as the lone surrogate U+DC00 + byte.
fn fs_text(bytes: &[u8]) -> (String, Vec<usize>) {
    let mut text = String::with_capacity(bytes.len());
    let mut escapes = Vec::new();
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for &b in chunk.invalid() {
            escapes.push(text.len());
            // Placeholder: written as \udcXX by the JSON writer, as U+FFFD elsewhere.
            text.push(char::from_u32(0xDC00 + b as u32).unwrap_or('\u{FFFD}'));
        }
    }
    (text, escapes)
}

fn mtime_text(ns: i64) -> String {
    // Python's repr of the float: the shortest text that reads back the same value.
    let secs = crate::scan::mtime_secs(ns);
    let mut s = format!("{secs}");
    if !s.contains('.') && !s.contains('e') && !s.contains("inf") && !s.contains("NaN") {
        s.push_str(".0");
    }
    s
}

fn json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 || !c.is_ascii() => {
                    // Python's json.dumps default (ensure_ascii): \uXXXX, with surrogate pairs.
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                    }
                }
                c => out.push(c as u8),
            }
        }
        for &b in chunk.invalid() {
            out.extend_from_slice(format!("\\u{:04x}", 0xDC00 + b as u32).as_bytes());
        }
    }
    out.push(b'"');
}

fn csv_field(out: &mut Vec<u8>, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// Writes rows in one of the formats, in batches (one `write` per batch).
pub struct RowWriter<W: Write> {
    out: W,
    format: Format,
    columns: Vec<&'static str>,
    buf: Vec<u8>,
    /// Table rows held until the end (the widths need every row).
    table: Vec<Vec<String>>,
    pub rows: u64,
}

impl<W: Write> RowWriter<W> {
    pub fn new(out: W, format: Format, columns: &[&'static str]) -> Self {
        let mut w = Self {
            out,
            format,
            columns: columns.to_vec(),
            buf: Vec::with_capacity(1 << 16),
            table: Vec::new(),
            rows: 0,
        };
        if format == Format::Csv {
            w.buf.extend_from_slice(columns.join(",").as_bytes());
            w.buf.push(b'\n');
        }
        w
    }

    /// Add one row (`Paths` writes only the first cell).
    pub fn row(&mut self, cells: &[Cell<'_>]) {
        self.rows += 1;
        let b = &mut self.buf;
        match self.format {
            Format::Paths => {
                if let Some(Cell::Text(t)) = cells.first() {
                    b.extend_from_slice(t);
                }
                b.push(b'\n');
            }
            Format::JsonLines => {
                b.push(b'{');
                for (i, (name, cell)) in self.columns.iter().zip(cells).enumerate() {
                    if i > 0 {
                        b.extend_from_slice(b", ");
                    }
                    json_string(b, name.as_bytes());
                    b.extend_from_slice(b": ");
                    match *cell {
                        Cell::Text(t) => json_string(b, t),
                        Cell::Int(n) => b.extend_from_slice(n.to_string().as_bytes()),
                        Cell::Secs(ns) => b.extend_from_slice(mtime_text(ns).as_bytes()),
                        Cell::Bool(v) => b.extend_from_slice(if v { b"true" } else { b"false" }),
                        Cell::Null => b.extend_from_slice(b"null"),
                    }
                }
                b.extend_from_slice(b"}\n");
            }
            Format::Csv => {
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    csv_field(b, &text(cell));
                }
                b.push(b'\n');
            }
            Format::Table => self.table.push(cells.iter().map(text).collect()),
        }
    }

    /// Write the rows added since the last flush.
    pub fn flush_rows(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Format a batch of scanned entries (of `roots`) and write it.
    pub fn write_entries(&mut self, entries: &[Entry], roots: &[PathBuf]) -> io::Result<()> {
        for e in entries {
            let path = e.path.as_os_str().as_bytes();
            let rel = path
                .get(rel_start(&roots[e.root as usize])..)
                .unwrap_or_default();
            let ext = e.extension();
            self.row(&[
                Cell::Text(path),
                Cell::Text(rel),
                Cell::Int(e.size as i64),
                Cell::Secs(e.mtime_ns),
                Cell::Text(ext.as_bytes()),
            ]);
        }
        self.flush_rows()
    }

    /// Write what is held (the table) and flush.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.format == Format::Table {
            let mut widths: Vec<usize> = self.columns.iter().map(|c| c.len()).collect();
            for row in &self.table {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let header: Vec<String> = self.columns.iter().map(|c| c.to_string()).collect();
            let table = std::mem::take(&mut self.table);
            for row in std::iter::once(&header).chain(table.iter()) {
                let mut line = String::new();
                for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                    if i > 0 {
                        line.push_str("  ");
                    }
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
                }
                self.buf.extend_from_slice(line.trim_end().as_bytes());
                self.buf.push(b'\n');
                if self.buf.len() > 1 << 16 {
                    self.flush_rows()?;
                }
            }
        }
        self.flush_rows()?;
        self.out.flush()
    }
}

/// A cell as `str()` shows it (None as an empty string, as the table and CSV writers do).
fn text(cell: &Cell<'_>) -> String {
    match *cell {
        Cell::Text(t) => fs_text(t).0,
        Cell::Int(n) => n.to_string(),
        Cell::Secs(ns) => mtime_text(ns),
        Cell::Bool(v) => if v { "True" } else { "False" }.to_owned(),
        Cell::Null => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Kind;
    use std::ffi::OsStr;

    fn entry(path: &[u8], size: u64) -> Entry {
        Entry {
            path: PathBuf::from(OsStr::from_bytes(path)),
            root: 0,
            size,
            mtime_ns: 1_700_000_000_500_000_000,
            dev: 0,
            ino: 0,
            kind: Kind::File,
            link: false,
        }
    }

    fn render(format: Format, entries: &[Entry]) -> String {
        let mut out = Vec::new();
        let mut w = RowWriter::new(&mut out, format, &COLUMNS);
        w.write_entries(entries, &[PathBuf::from("/r")]).unwrap();
        w.finish().unwrap();
        drop(w);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn paths_json_csv_and_table() {
        let es = [entry(b"/r/a.csv", 10), entry(b"/r/sub/b \"q\",x.TXT", 2000)];
        assert_eq!(
            render(Format::Paths, &es),
            "/r/a.csv\n/r/sub/b \"q\",x.TXT\n"
        );
        let js = render(Format::JsonLines, &es);
        assert_eq!(
            js.lines().next().unwrap(),
            "{\"path\": \"/r/a.csv\", \"relative_path\": \"a.csv\", \"size_bytes\": 10, \
             \"modified_time\": 1700000000.5, \"extension\": \".csv\"}"
        );
        assert!(js.contains("\"relative_path\": \"sub/b \\\"q\\\",x.TXT\""));
        let csv = render(Format::Csv, &es);
        assert!(csv.starts_with("path,relative_path,size_bytes,modified_time,extension\n"));
        assert!(csv.contains("\"/r/sub/b \"\"q\"\",x.TXT\",\"sub/b \"\"q\"\",x.TXT\",2000,"));
        let table = render(Format::Table, &es);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with(&format!("{:<18}  relative_path", "path")));
        assert!(lines[1].starts_with(&format!("{:<18}  a.csv", "/r/a.csv")));
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn undecodable_bytes_read_as_python_shows_them() {
        let es = [entry(b"/r/caf\xe9.txt", 1)];
        let js = render(Format::JsonLines, &es);
        assert!(js.contains("\"relative_path\": \"caf\\udce9.txt\""), "{js}");
        let js = render(Format::JsonLines, &[entry("/r/é€.txt".as_bytes(), 1)]);
        assert!(js.contains("\\u00e9\\u20ac"), "{js}");
    }

    #[test]
    fn typed_cells_as_python_writes_them() {
        let mut out = Vec::new();
        let mut w = RowWriter::new(&mut out, Format::JsonLines, &["d", "n", "ok", "e"]);
        w.row(&[
            Cell::Text(b"ab"),
            Cell::Int(3),
            Cell::Bool(false),
            Cell::Null,
        ]);
        w.finish().unwrap();
        drop(w);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"d\": \"ab\", \"n\": 3, \"ok\": false, \"e\": null}\n"
        );
        let mut out = Vec::new();
        let mut w = RowWriter::new(&mut out, Format::Table, &["d", "n", "ok", "e"]);
        w.row(&[
            Cell::Text(b"ab"),
            Cell::Int(3),
            Cell::Bool(true),
            Cell::Null,
        ]);
        w.finish().unwrap();
        drop(w);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "d   n  ok    e\nab  3  True\n"
        );
    }

    #[test]
    fn whole_seconds_keep_a_decimal_point() {
        assert_eq!(mtime_text(1_700_000_000_000_000_000), "1700000000.0");
        assert_eq!(mtime_text(1_500_000_000), "1.5");
    }
}
