//! Spreadsheets (.xlsx, .xlsm, .xls, .ods) read with calamine straight into typed column
//! buffers laid out as Arrow lays them out (values, validity bitmap, strings as data +
//! offsets), so the Python side builds `pyarrow` arrays without one object per cell.
//!
//! The rows and types are the ones `pandas.read_excel(path, engine="openpyxl")` gives:
//!
//! * a sheet spans from cell A1 (leading empty rows and columns are kept) to its last
//!   non-empty cell; every row is as wide as the widest, trailing empty rows are dropped;
//! * whole numbers are integers, other numbers floats; a number formatted as a date is a
//!   datetime (openpyxl's rules: millisecond rounding, the 1900 leap-year bug, a value in
//!   `[0, 1)` is a time of day), `[h]:mm` formats are durations; error cells are missing;
//! * a column is then typed as pandas' parser types it: every value numeric (numeric text
//!   included) gives int64, or float64 when there is a float or a missing value (booleans
//!   count as 1 and 0 there); only booleans (or `TRUE`/`False`-like text) give bool; text
//!   gives strings; datetimes, times and durations give their own types. The default missing
//!   markers (`""`, `NA`, `N/A`, `null`, `nan`...) are missing values in text cells.
//!
//! A column mixing kinds that pandas keeps as Python objects (numbers and text, say) cannot be
//! one Arrow type: it is returned as text, each value written as Python's `str()` writes it,
//! and flagged `mixed` so the caller can report it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use calamine::{open_workbook_auto, Data, ExcelDateTime, ExcelDateTimeType, Range, Reader};
use rayon::prelude::*;

use crate::error::FileError;
use crate::progress::Progress;

/// Which sheets of a workbook to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SheetSel {
    Index(usize),
    Name(String),
    All,
}

/// How to read each workbook (the subset of `pandas.read_excel` options read natively).
#[derive(Debug, Clone)]
pub struct SheetOptions {
    pub sheet: SheetSel,
    /// The header row, counted after `skiprows`; `None`: no header (columns are numbered).
    pub header: Option<usize>,
    pub skiprows: usize,
    pub nrows: Option<usize>,
    /// Text cells equal to one of these are missing values (with `keep_default_na`, in
    /// addition to pandas' defaults). Numeric markers also match numeric cells.
    pub na_values: Vec<String>,
    pub keep_default_na: bool,
    /// For numeric text, as pandas' `decimal=` / `thousands=` (numbers stored as numbers are
    /// not affected).
    pub decimal: char,
    pub thousands: Option<char>,
}

impl Default for SheetOptions {
    fn default() -> Self {
        Self {
            sheet: SheetSel::Index(0),
            header: Some(0),
            skiprows: 0,
            nrows: None,
            na_values: Vec::new(),
            keep_default_na: true,
            decimal: '.',
            thousands: None,
        }
    }
}

/// pandas' default missing-value markers (`pandas._libs.parsers.STR_NA_VALUES`).
pub const DEFAULT_NA: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// The values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// No value at all (every cell missing, or no rows).
    Null,
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    /// Bit-packed, least significant bit first (Arrow's layout).
    Bool(Vec<u8>),
    /// UTF-8 bytes and `rows + 1` offsets (Arrow's large_string layout).
    Str {
        data: Vec<u8>,
        offsets: Vec<i64>,
    },
    /// Microseconds since 1970-01-01 00:00 (no time zone).
    Timestamp(Vec<i64>),
    /// Microseconds since midnight.
    Time(Vec<i64>),
    /// Microseconds.
    Duration(Vec<i64>),
}

impl Values {
    pub fn type_name(&self) -> &'static str {
        match self {
            Values::Null => "null",
            Values::Int64(_) => "int64",
            Values::Float64(_) => "float64",
            Values::Bool(_) => "bool",
            Values::Str { .. } => "string",
            Values::Timestamp(_) => "timestamp",
            Values::Time(_) => "time",
            Values::Duration(_) => "duration",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub values: Values,
    /// Bit-packed validity (1: present), `None` when no value is missing.
    pub validity: Option<Vec<u8>>,
    /// Numbers, text, dates... mixed in one column: returned as text.
    pub mixed: bool,
}

/// One sheet read into columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub sheet: String,
    /// The header cells as pandas would name them before de-duplication (`None`: a blank
    /// cell, named `Unnamed: <i>` by the caller); empty without a header row.
    pub header: Vec<Option<String>>,
    pub rows: usize,
    pub columns: Vec<Column>,
}

/// Why a workbook could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetError {
    pub error_type: &'static str,
    pub message: String,
}

impl SheetError {
    fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }
}

/// Read the selected sheets of every workbook in parallel (the current rayon pool): one
/// result per path, in order. A workbook that cannot be read is a [`FileError`] naming it;
/// the others go on. Stops early (the rest are `Cancelled` errors) when `progress` is
/// cancelled.
pub fn read_workbooks(
    paths: &[PathBuf],
    opts: &SheetOptions,
    progress: &Progress,
) -> Vec<Result<Vec<Table>, FileError>> {
    progress.add_total(paths.len() as u64, 0);
    paths
        .par_iter()
        .map(|p| {
            if progress.is_cancelled() {
                return Err(FileError::new(p, "Cancelled", "cancelled"));
            }
            let out =
                read_workbook(p, opts).map_err(|e| FileError::new(p, e.error_type, e.message));
            if out.is_err() {
                progress.add_error();
            }
            progress.add_items(1);
            out
        })
        .collect()
}

/// Read the selected sheets of one workbook.
pub fn read_workbook(path: &Path, opts: &SheetOptions) -> Result<Vec<Table>, SheetError> {
    if let Err(e) = std::fs::File::open(path) {
        return Err(SheetError::new(
            crate::error::io_error_type(&e),
            e.to_string(),
        ));
    }
    let mut book = open_workbook_auto(path)
        .map_err(|e| SheetError::new("ValueError", format!("not a readable workbook: {e}")))?;
    let names = book.sheet_names();
    let chosen: Vec<String> = match &opts.sheet {
        SheetSel::All => names.clone(),
        SheetSel::Name(n) => {
            if !names.iter().any(|s| s == n) {
                return Err(SheetError::new(
                    "ValueError",
                    format!(
                        "Worksheet named {n:?} not found (sheets: {})",
                        names.join(", ")
                    ),
                ));
            }
            vec![n.clone()]
        }
        SheetSel::Index(i) => match names.get(*i) {
            Some(n) => vec![n.clone()],
            None => {
                return Err(SheetError::new(
                    "IndexError",
                    format!(
                        "Worksheet index {i} is invalid, {} worksheets found",
                        names.len()
                    ),
                ))
            }
        },
    };
    let ctx = Context::new(opts);
    let mut out = Vec::with_capacity(chosen.len());
    for name in chosen {
        let range = book.worksheet_range(&name).map_err(|e| {
            SheetError::new("ValueError", format!("cannot read sheet {name:?}: {e}"))
        })?;
        let mut table = sheet_table(&range, opts, &ctx)?;
        table.sheet = name;
        out.push(table);
    }
    Ok(out)
}

/// Missing-value markers and number syntax, prepared once per call.
struct Context {
    na_text: HashSet<String>,
    na_numbers: Vec<f64>,
    decimal: char,
    thousands: Option<char>,
}

impl Context {
    fn new(opts: &SheetOptions) -> Self {
        let mut na_text: HashSet<String> = HashSet::new();
        if opts.keep_default_na {
            na_text.extend(DEFAULT_NA.iter().map(|s| (*s).to_owned()));
        }
        let mut na_numbers = Vec::new();
        for v in &opts.na_values {
            na_text.insert(v.clone());
            // As pandas' _stringify_na_values / _floatify_na_values: "999" also means
            // "999.0" and the number 999.
            if let Ok(f) = v.trim().parse::<f64>() {
                if !f.is_nan() {
                    na_numbers.push(f);
                    if f == f.trunc() && f.abs() < 9.0e15 {
                        let i = f as i64;
                        na_text.insert(format!("{i}.0"));
                        na_text.insert(i.to_string());
                    }
                }
            }
        }
        Self {
            na_text,
            na_numbers,
            decimal: opts.decimal,
            thousands: opts.thousands,
        }
    }

    fn is_na_number(&self, f: f64) -> bool {
        self.na_numbers.contains(&f)
    }

    /// Numbers equal to a numeric `na_values` marker are missing, except where pandas takes
    /// its integer fast path (the first value an integer and every value an integer or a
    /// boolean: markers are not looked at).
    fn numeric_markers<'a>(&self, mut cells: Vec<Cell<'a>>) -> Vec<Cell<'a>> {
        if self.na_numbers.is_empty() {
            return cells;
        }
        let fast = matches!(cells.first(), Some(Cell::Int(_)))
            && cells
                .iter()
                .all(|c| matches!(c, Cell::Int(_) | Cell::Bool(_)));
        if !fast {
            for c in cells.iter_mut() {
                let hit = match c {
                    Cell::Int(i) => self.is_na_number(*i as f64),
                    Cell::Float(f) => self.is_na_number(*f),
                    _ => false,
                };
                if hit {
                    *c = Cell::Na;
                }
            }
        }
        cells
    }
}

/// One cell as pandas' parser sees it.
#[derive(Debug, Clone, PartialEq)]
enum Cell<'a> {
    Na,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(Cow<'a, str>),
    Datetime(i64),
    Time(i64),
    Duration(i64),
}

fn is_blank(d: &Data) -> bool {
    match d {
        Data::Empty => true,
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.is_empty(),
        _ => false,
    }
}

/// A number as openpyxl hands it to pandas: whole floats become integers.
fn number(f: f64) -> Cell<'static> {
    if f.is_nan() {
        Cell::Na
    } else if f == f.trunc() && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        Cell::Int(f as i64)
    } else {
        Cell::Float(f)
    }
}

/// The raw value of a cell (before missing-value markers are applied).
fn raw<'a>(d: &'a Data) -> Cell<'a> {
    match d {
        Data::Empty => Cell::Text(Cow::Borrowed("")),
        Data::Int(i) => Cell::Int(*i),
        Data::Float(f) => number(*f),
        Data::String(s) => Cell::Text(Cow::Borrowed(s.as_str())),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(dt) => excel_datetime(dt),
        Data::DateTimeIso(s) => iso_datetime(s).unwrap_or(Cell::Text(Cow::Borrowed(s))),
        Data::DurationIso(s) => iso_duration(s).unwrap_or(Cell::Text(Cow::Borrowed(s))),
        Data::Error(_) => Cell::Na,
    }
}

impl Context {
    /// A data cell: missing-value markers applied, numeric text rewritten for `decimal` and
    /// `thousands` as pandas' python parser rewrites it.
    fn cell<'a>(&self, d: &'a Data) -> Cell<'a> {
        match raw(d) {
            Cell::Text(s) => {
                if self.na_text.contains(s.as_ref()) {
                    return Cell::Na;
                }
                Cell::Text(self.rewrite_number(s))
            }
            c => c, // numbers equal to a marker: see `numeric_markers`
        }
    }

    fn rewrite_number<'a>(&self, s: Cow<'a, str>) -> Cow<'a, str> {
        let mut s = s;
        if let Some(t) = self.thousands {
            if s.contains(t) && self.num_like(s.trim()) {
                s = Cow::Owned(s.replace(t, ""));
            }
        }
        if self.decimal != '.' && s.contains(self.decimal) && self.num_like(s.trim()) {
            s = Cow::Owned(s.replace(self.decimal, "."));
        }
        s
    }

    /// pandas' `PythonParser.num` pattern, written out.
    fn num_like(&self, s: &str) -> bool {
        let b: Vec<char> = s.chars().collect();
        let mut i = 0;
        if i < b.len() && (b[i] == '-' || b[i] == '+') {
            i += 1;
        }
        let digit = |c: char| c.is_ascii_digit();
        match self.thousands {
            None => {
                // [0-9]*(D[0-9]*)?([0-9]?(E|e)-?[0-9]+)?
                while i < b.len() && digit(b[i]) {
                    i += 1;
                }
                if i < b.len() && b[i] == self.decimal {
                    i += 1;
                    while i < b.len() && digit(b[i]) {
                        i += 1;
                    }
                }
            }
            Some(t) => {
                // (?:[0-9]+(?:T[0-9]+)*T?)?(D[0-9]*)?
                if i < b.len() && digit(b[i]) {
                    while i < b.len() && digit(b[i]) {
                        i += 1;
                    }
                    loop {
                        if i + 1 < b.len() && b[i] == t && digit(b[i + 1]) {
                            i += 1;
                            while i < b.len() && digit(b[i]) {
                                i += 1;
                            }
                        } else {
                            break;
                        }
                    }
                    if i < b.len() && b[i] == t {
                        i += 1;
                    }
                }
                if i < b.len() && b[i] == self.decimal {
                    i += 1;
                    while i < b.len() && digit(b[i]) {
                        i += 1;
                    }
                }
            }
        }
        if i == b.len() {
            return true;
        }
        // exponent: (E|e)-?[0-9]+ (the no-thousands pattern also allows one more digit first,
        // which the digit loop above has already taken)
        if b[i] == 'e' || b[i] == 'E' {
            i += 1;
            if i < b.len() && b[i] == '-' {
                i += 1;
            }
            let start = i;
            while i < b.len() && digit(b[i]) {
                i += 1;
            }
            return i > start && i == b.len();
        }
        false
    }
}

/// pandas' `floatify` on text: the number and, for integer syntax, the integer.
fn floatify(s: &str) -> Option<(f64, Option<i64>)> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{0b}');
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    let mut is_int = true;
    if i < b.len() && b[i] == b'.' {
        is_int = false;
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - f;
    }
    if digits > 0 && i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        is_int = false;
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return None;
        }
    }
    if digits == 0 || i != b.len() {
        // inf / infinity, signed or not, as the whole (untrimmed) text
        let l = s.to_ascii_lowercase();
        return match l.as_str() {
            "inf" | "+inf" | "infinity" | "+infinity" => Some((f64::INFINITY, None)),
            "-inf" | "-infinity" => Some((f64::NEG_INFINITY, None)),
            _ => None,
        };
    }
    let f: f64 = t.parse().ok()?;
    if is_int {
        match t.parse::<i64>() {
            Ok(v) => Some((f, Some(v))),
            Err(_) => Some((f, None)), // beyond int64: pandas gives uint64 or floats
        }
    } else {
        Some((f, None))
    }
}

const DAY_US: i64 = 86_400_000_000;
/// Days from 0001-01-01 to 1970-01-01, and to the day after 9999-12-31 (Python's range).
const MIN_DAY: i64 = -719_162;
const END_DAY: i64 = 2_932_897;

/// An Excel date serial as openpyxl converts it (`openpyxl.utils.datetime.from_excel`).
fn excel_datetime(dt: &ExcelDateTime) -> Cell<'static> {
    let v = dt.as_f64();
    if !v.is_finite() {
        return Cell::Na;
    }
    if dt.is_duration() {
        // timedelta(days=v), then rounded to milliseconds
        let total = (v * 86_400_000_000.0).round_ties_even();
        if total.abs() > 9.0e18 {
            return Cell::Na;
        }
        let total = total as i64;
        let secs = total.div_euclid(1_000_000);
        let us = total.rem_euclid(1_000_000);
        let ms = round_half_even_div(us, 1000);
        return Cell::Duration(secs * 1_000_000 + ms * 1000);
    }
    let is_1904 = *dt == ExcelDateTime::new(v, ExcelDateTimeType::DateTime, true);
    let day = v.floor();
    let fraction = v - day;
    let ms = (fraction * 86400.0 * 1000.0).round_ties_even() as i64;
    if (0.0..1.0).contains(&v) && ms < 86_400_000 {
        return Cell::Time(ms * 1000);
    }
    let mut day = day;
    if !is_1904 && 0.0 < v && v < 60.0 {
        day += 1.0;
    }
    let epoch = if is_1904 { -24_107 } else { -25_569 };
    let days = epoch as f64 + day;
    if !(MIN_DAY as f64..END_DAY as f64).contains(&days) {
        return Cell::Na; // openpyxl cannot make a datetime of it: an error cell
    }
    let us = days as i64 * DAY_US + ms * 1000;
    if us >= END_DAY * DAY_US {
        return Cell::Na;
    }
    Cell::Datetime(us)
}

fn round_half_even_div(v: i64, d: i64) -> i64 {
    let q = v.div_euclid(d);
    let r = v.rem_euclid(d);
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Fractional seconds ("05.123") as microseconds.
fn seconds_us(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut us = digits(whole)? * 1_000_000;
    if !frac.is_empty() {
        let mut f = String::from(frac);
        if !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        f.truncate(6);
        while f.len() < 6 {
            f.push('0');
        }
        us += f.parse::<i64>().ok()?;
    }
    Some(us)
}

/// An OpenDocument date value ("2024-01-02" or "2024-01-02T03:04:05.5").
fn iso_datetime(s: &str) -> Option<Cell<'static>> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.splitn(3, '-');
    let y = digits(parts.next()?)?;
    let m = digits(parts.next()?)?;
    let d = digits(parts.next()?)?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut us = days_from_civil(y, m, d) * DAY_US;
    if let Some(t) = time {
        let t = t.trim_end_matches('Z');
        let mut hms = t.splitn(3, ':');
        let h = digits(hms.next()?)?;
        let mi = digits(hms.next()?)?;
        let sec = match hms.next() {
            Some(x) => seconds_us(x)?,
            None => 0,
        };
        us += (h * 3600 + mi * 60) * 1_000_000 + sec;
    }
    Some(Cell::Datetime(us))
}

/// An OpenDocument time value ("PT13H02M03S"): a time of day when under 24 hours, as pandas'
/// odf reader gives it, else a duration.
fn iso_duration(s: &str) -> Option<Cell<'static>> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let rest = rest.strip_prefix('P')?;
    let (days_part, time_part) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut us: i64 = 0;
    if !days_part.is_empty() {
        us += digits(days_part.strip_suffix('D')?)? * DAY_US;
    }
    let mut num = String::new();
    for c in time_part.chars() {
        match c {
            'H' => {
                us += digits(&num)? * 3_600_000_000;
                num.clear();
            }
            'M' => {
                us += digits(&num)? * 60_000_000;
                num.clear();
            }
            'S' => {
                us += seconds_us(&num)?;
                num.clear();
            }
            _ => num.push(c),
        }
    }
    if !num.is_empty() {
        return None;
    }
    if !neg && us < DAY_US {
        Some(Cell::Time(us))
    } else {
        Some(Cell::Duration(if neg { -us } else { us }))
    }
}

/// Python's `repr(float)`.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let e = format!("{:e}", f.abs());
    let (mant, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let n = digits.len() as i32;
    let decpt = exp + 1;
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4 < decpt && decpt <= 16) {
        let m = if n > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let es = if exp < 0 { "-" } else { "+" };
        return format!("{sign}{m}e{es}{:02}", exp.abs());
    }
    if decpt <= 0 {
        format!("{sign}0.{}{}", "0".repeat((-decpt) as usize), digits)
    } else if decpt >= n {
        format!("{sign}{}{}.0", digits, "0".repeat((decpt - n) as usize))
    } else {
        let (a, b) = digits.split_at(decpt as usize);
        format!("{sign}{a}.{b}")
    }
}

fn py_time(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 {
        format!("{h:02}:{m:02}:{s:02}.{frac:06}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

fn py_datetime(us: i64) -> String {
    let days = us.div_euclid(DAY_US);
    let (y, mo, d) = civil_from_days(days);
    format!("{y:04}-{mo:02}-{d:02} {}", py_time(us.rem_euclid(DAY_US)))
}

fn py_timedelta(us: i64) -> String {
    let days = us.div_euclid(DAY_US);
    let rest = us.rem_euclid(DAY_US);
    let secs = rest / 1_000_000;
    let frac = rest % 1_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if days != 0 {
        let plural = if days.abs() != 1 { "s" } else { "" };
        out.push_str(&format!("{days} day{plural}, "));
    }
    out.push_str(&format!("{h}:{m:02}:{s:02}"));
    if frac != 0 {
        out.push_str(&format!(".{frac:06}"));
    }
    out
}

/// A value as Python's `str()` writes it (`None` for a missing value).
fn py_str(c: &Cell<'_>) -> Option<String> {
    Some(match c {
        Cell::Na => return None,
        Cell::Int(i) => i.to_string(),
        Cell::Float(f) => py_float(*f),
        Cell::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        Cell::Text(s) => s.to_string(),
        Cell::Datetime(us) => py_datetime(*us),
        Cell::Time(us) => py_time(*us),
        Cell::Duration(us) => py_timedelta(*us),
    })
}

/// A sheet's cells addressed from A1, as openpyxl yields them to pandas.
struct Grid<'r> {
    rows: Vec<&'r [Data]>,
    r0: usize,
    c0: usize,
    height: usize,
    width: usize,
}

const EMPTY: Data = Data::Empty;

impl<'r> Grid<'r> {
    fn new(range: &'r Range<Data>) -> Self {
        let Some((r0, c0)) = range.start() else {
            return Self {
                rows: Vec::new(),
                r0: 0,
                c0: 0,
                height: 0,
                width: 0,
            };
        };
        let (r0, c0) = (r0 as usize, c0 as usize);
        let rows: Vec<&[Data]> = range.rows().collect();
        let mut height = 0;
        let mut width = 0;
        for (i, row) in rows.iter().enumerate() {
            if let Some(j) = row.iter().rposition(|d| !is_blank(d)) {
                height = r0 + i + 1;
                width = width.max(c0 + j + 1);
            }
        }
        Self {
            rows,
            r0,
            c0,
            height,
            width,
        }
    }

    fn get(&self, r: usize, c: usize) -> &'r Data {
        if r < self.r0 || c < self.c0 {
            return &EMPTY;
        }
        self.rows
            .get(r - self.r0)
            .and_then(|row| row.get(c - self.c0))
            .unwrap_or(&EMPTY)
    }
}

/// The name pandas gives a header cell (`None`: blank, named `Unnamed: <i>` later).
fn header_name(d: &Data) -> Option<String> {
    if is_blank(d) {
        return None;
    }
    match raw(d) {
        Cell::Na => Some("nan".into()),
        c => py_str(&c),
    }
}

fn sheet_table(
    range: &Range<Data>,
    opts: &SheetOptions,
    ctx: &Context,
) -> Result<Table, SheetError> {
    let grid = Grid::new(range);
    let mut table = Table {
        sheet: String::new(),
        header: Vec::new(),
        rows: 0,
        columns: Vec::new(),
    };
    if grid.height == 0 {
        return Ok(table); // an empty sheet: no columns (pandas: an empty DataFrame)
    }
    let first = opts.skiprows;
    let data_start = match opts.header {
        Some(h) => {
            let hr = first + h;
            if hr >= grid.height {
                if first >= grid.height {
                    return Ok(table); // nothing left after skiprows
                }
                return Err(SheetError::new(
                    "ValueError",
                    format!(
                        "header={h} but the sheet has only {} row(s) after skiprows={first}",
                        grid.height - first
                    ),
                ));
            }
            table.header = (0..grid.width)
                .map(|c| header_name(grid.get(hr, c)))
                .collect();
            hr + 1
        }
        None => {
            if first >= grid.height {
                return Ok(table);
            }
            first
        }
    };
    let mut end = grid.height;
    if let Some(n) = opts.nrows {
        end = end.min(data_start + n);
    }
    let rows = end.saturating_sub(data_start);
    table.rows = rows;
    table.columns = (0..grid.width)
        .map(|c| {
            let cells: Vec<Cell<'_>> = (data_start..end)
                .map(|r| ctx.cell(grid.get(r, c)))
                .collect();
            build_column(ctx.numeric_markers(cells), rows)
        })
        .collect();
    Ok(table)
}

/// Bit-packed booleans, least significant bit first.
struct Bits {
    bytes: Vec<u8>,
    len: usize,
    zeros: usize,
}

impl Bits {
    fn with_capacity(n: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(n.div_ceil(8)),
            len: 0,
            zeros: 0,
        }
    }

    fn push(&mut self, bit: bool) {
        if self.len % 8 == 0 {
            self.bytes.push(0);
        }
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 1 << (self.len % 8);
        } else {
            self.zeros += 1;
        }
        self.len += 1;
    }

    /// As a validity bitmap: `None` when every value is present.
    fn validity(self) -> Option<Vec<u8>> {
        (self.zeros > 0).then_some(self.bytes)
    }
}

/// The kinds of value a column holds, as pandas' parser tells them apart.
#[derive(Default)]
struct Seen {
    /// Some value is present.
    value: bool,
    /// `lib.maybe_convert_numeric` would give floats / integers / booleans.
    float: bool,
    int: bool,
    boolean: bool,
    /// Some value is not numeric (`lib.maybe_convert_numeric` fails).
    not_numeric: bool,
    text: bool,
    text_not_bool: bool,
    number: bool,
    datetime: bool,
    time: bool,
    duration: bool,
}

fn text_bool(s: &str) -> Option<bool> {
    match s {
        "True" | "TRUE" | "true" => Some(true),
        "False" | "FALSE" | "false" => Some(false),
        _ => None,
    }
}

fn build_column(cells: Vec<Cell<'_>>, rows: usize) -> Column {
    let mut seen = Seen::default();
    for c in &cells {
        if *c != Cell::Na {
            seen.value = true;
        }
        match c {
            Cell::Na => seen.float = true, // missing values make floats
            Cell::Int(_) => {
                seen.int = true;
                seen.number = true;
            }
            Cell::Float(_) => {
                seen.float = true;
                seen.number = true;
            }
            Cell::Bool(_) => seen.boolean = true,
            Cell::Text(s) => {
                seen.text = true;
                if text_bool(s).is_none() {
                    seen.text_not_bool = true;
                }
                match floatify(s) {
                    Some((_, Some(_))) => seen.int = true,
                    Some(_) => seen.float = true,
                    None => seen.not_numeric = true,
                }
            }
            Cell::Datetime(_) => {
                seen.datetime = true;
                seen.not_numeric = true;
            }
            Cell::Time(_) => {
                seen.time = true;
                seen.not_numeric = true;
            }
            Cell::Duration(_) => {
                seen.duration = true;
                seen.not_numeric = true;
            }
        }
    }
    if rows == 0 || !seen.value {
        // no value at all: pandas gives float64 NaN (object when there are no rows); the
        // caller decides once the files are merged
        return Column {
            values: Values::Null,
            validity: None,
            mixed: false,
        };
    }
    let mut valid = Bits::with_capacity(rows);
    let mut mixed = false;
    let values = if !seen.not_numeric {
        // every value numeric (numeric text included): lib.maybe_convert_numeric
        if seen.float {
            let mut v = Vec::with_capacity(rows);
            for c in cells {
                let x = match c {
                    Cell::Int(i) => Some(i as f64),
                    Cell::Float(f) => Some(f),
                    Cell::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
                    Cell::Text(s) => floatify(&s).map(|(f, _)| f),
                    _ => None,
                };
                valid.push(x.is_some());
                v.push(x.unwrap_or(0.0));
            }
            Values::Float64(v)
        } else if seen.int {
            Values::Int64(
                cells
                    .into_iter()
                    .map(|c| match c {
                        Cell::Int(i) => i,
                        Cell::Bool(b) => b as i64,
                        Cell::Text(s) => floatify(&s).and_then(|(_, i)| i).unwrap_or(0),
                        _ => 0,
                    })
                    .collect(),
            )
        } else {
            let mut bits = Bits::with_capacity(rows);
            for c in cells {
                bits.push(matches!(c, Cell::Bool(true)));
            }
            Values::Bool(bits.bytes)
        }
    } else if !seen.text_not_bool && !seen.number && !seen.datetime && !seen.time && !seen.duration
    {
        // lib.maybe_convert_bool: booleans and TRUE/False text (missing values allowed)
        let mut bits = Bits::with_capacity(rows);
        for c in cells {
            let b = match &c {
                Cell::Bool(b) => Some(*b),
                Cell::Text(s) => text_bool(s),
                _ => None,
            };
            valid.push(b.is_some());
            bits.push(b.unwrap_or(false));
        }
        Values::Bool(bits.bytes)
    } else {
        let kinds = [
            seen.text,
            seen.boolean,
            seen.number,
            seen.datetime,
            seen.time,
            seen.duration,
        ];
        let single = kinds.iter().filter(|k| **k).count() == 1;
        if single && seen.datetime {
            Values::Timestamp(temporal(cells, rows, &mut valid))
        } else if single && seen.time {
            Values::Time(temporal(cells, rows, &mut valid))
        } else if single && seen.duration {
            Values::Duration(temporal(cells, rows, &mut valid))
        } else {
            mixed = !single;
            let mut data = Vec::new();
            let mut offsets = Vec::with_capacity(rows + 1);
            offsets.push(0i64);
            for c in cells {
                let s = match c {
                    Cell::Text(s) => Some(s),
                    other => py_str(&other).map(Cow::Owned),
                };
                valid.push(s.is_some());
                if let Some(s) = s {
                    data.extend_from_slice(s.as_bytes());
                }
                offsets.push(data.len() as i64);
            }
            Values::Str { data, offsets }
        }
    };
    Column {
        values,
        validity: valid.validity(),
        mixed,
    }
}

fn temporal(cells: Vec<Cell<'_>>, rows: usize, valid: &mut Bits) -> Vec<i64> {
    let mut v = Vec::with_capacity(rows);
    for c in cells {
        let x = match c {
            Cell::Datetime(us) | Cell::Time(us) | Cell::Duration(us) => Some(us),
            _ => None,
        };
        valid.push(x.is_some());
        v.push(x.unwrap_or(0));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        for (f, s) in [
            (1.5, "1.5"),
            (2.0, "2.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (123456.789, "123456.789"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.2345678901234567e20, "1.2345678901234567e+20"),
        ] {
            assert_eq!(py_float(f), s);
        }
    }

    #[test]
    fn numeric_text_as_pandas_floatify() {
        assert_eq!(floatify("12"), Some((12.0, Some(12))));
        assert_eq!(floatify(" 7 "), Some((7.0, Some(7))));
        assert_eq!(floatify("3.5"), Some((3.5, None)));
        assert_eq!(floatify("1."), Some((1.0, None)));
        assert_eq!(floatify(".5"), Some((0.5, None)));
        assert_eq!(floatify("1e3"), Some((1000.0, None)));
        assert_eq!(floatify("-inf"), Some((f64::NEG_INFINITY, None)));
        assert_eq!(floatify("abc"), None);
        assert_eq!(floatify("."), None);
        assert_eq!(floatify("1e"), None);
        assert_eq!(floatify("1_000"), None);
    }

    #[test]
    fn dates_as_openpyxl() {
        let dt =
            |v: f64| excel_datetime(&ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false));
        let day = |y, m, d| days_from_civil(y, m, d) * DAY_US;
        assert_eq!(dt(0.5), Cell::Time(12 * 3_600_000_000));
        assert_eq!(dt(1.0), Cell::Datetime(day(1900, 1, 1)));
        assert_eq!(dt(59.0), Cell::Datetime(day(1900, 2, 28)));
        assert_eq!(dt(60.0), Cell::Datetime(day(1900, 2, 28)));
        assert_eq!(dt(61.0), Cell::Datetime(day(1900, 3, 1)));
        // 45000.123456789 -> 2023-03-15 02:57:46.667 (milliseconds, as openpyxl rounds)
        assert_eq!(
            dt(45000.123456789),
            Cell::Datetime(day(2023, 3, 15) + ((2 * 3600 + 57 * 60 + 46) * 1000 + 667) * 1000)
        );
        let d1904 = excel_datetime(&ExcelDateTime::new(1.0, ExcelDateTimeType::DateTime, true));
        assert_eq!(d1904, Cell::Datetime(day(1904, 1, 2)));
        let dur = excel_datetime(&ExcelDateTime::new(
            1.25,
            ExcelDateTimeType::TimeDelta,
            false,
        ));
        assert_eq!(dur, Cell::Duration(30 * 3_600_000_000));
        assert_eq!(civil_from_days(day(2024, 2, 29) / DAY_US), (2024, 2, 29));
        assert_eq!(
            py_datetime(day(2024, 1, 2) + 5_000_123),
            "2024-01-02 00:00:05.000123"
        );
        assert_eq!(
            py_timedelta(30 * 3_600_000_000 + 500_000),
            "1 day, 6:00:00.500000"
        );
    }

    #[test]
    fn opendocument_values() {
        let day = |y, m, d| days_from_civil(y, m, d) * DAY_US;
        assert_eq!(
            iso_datetime("2024-01-02"),
            Some(Cell::Datetime(day(2024, 1, 2)))
        );
        assert_eq!(
            iso_datetime("2024-01-02T03:04:05.5"),
            Some(Cell::Datetime(day(2024, 1, 2) + 11_045_500_000))
        );
        assert_eq!(iso_duration("PT01H02M03S"), Some(Cell::Time(3_723_000_000)));
        assert_eq!(
            iso_duration("PT30H"),
            Some(Cell::Duration(30 * 3_600_000_000))
        );
        assert_eq!(iso_duration("soon"), None);
    }

    fn column(cells: Vec<Cell<'static>>) -> Column {
        let n = cells.len();
        build_column(cells, n)
    }

    #[test]
    fn column_types_follow_pandas() {
        let t = |s: &'static str| Cell::Text(Cow::Borrowed(s));
        assert_eq!(
            column(vec![Cell::Int(1), Cell::Int(2)]).values,
            Values::Int64(vec![1, 2])
        );
        let c = column(vec![Cell::Int(1), Cell::Na]);
        assert_eq!(c.values, Values::Float64(vec![1.0, 0.0]));
        assert_eq!(c.validity, Some(vec![0b01]));
        // booleans with a gap are floats, as pandas makes them
        assert_eq!(
            column(vec![Cell::Bool(true), Cell::Na, Cell::Bool(false)]).values,
            Values::Float64(vec![1.0, 0.0, 0.0])
        );
        assert_eq!(
            column(vec![Cell::Bool(true), Cell::Bool(false)]).values,
            Values::Bool(vec![1])
        );
        assert_eq!(
            column(vec![t("12"), t("3.5")]).values,
            Values::Float64(vec![12.0, 3.5])
        );
        assert_eq!(
            column(vec![t("TRUE"), t("false")]).values,
            Values::Bool(vec![1])
        );
        let mixed = column(vec![Cell::Int(1), t("x"), Cell::Float(2.5)]);
        assert!(mixed.mixed);
        assert_eq!(
            mixed.values,
            Values::Str {
                data: b"1x2.5".to_vec(),
                offsets: vec![0, 1, 2, 5]
            }
        );
        let text = column(vec![t("a"), Cell::Na]);
        assert!(!text.mixed);
        assert_eq!(text.validity, Some(vec![0b01]));
        assert_eq!(column(vec![Cell::Na, Cell::Na]).values, Values::Null);
        assert_eq!(
            column(vec![Cell::Datetime(5), Cell::Na]).values,
            Values::Timestamp(vec![5, 0])
        );
    }

    #[test]
    fn missing_markers_and_european_numbers() {
        let opts = SheetOptions {
            na_values: vec!["-999".into()],
            decimal: ',',
            thousands: Some('.'),
            ..SheetOptions::default()
        };
        let ctx = Context::new(&opts);
        assert_eq!(ctx.cell(&Data::String("NA".into())), Cell::Na);
        assert_eq!(ctx.cell(&Data::String("-999.0".into())), Cell::Na);
        // numeric markers: not on pandas' integer fast path, else missing
        let ints = vec![Cell::Int(1), Cell::Int(-999)];
        assert_eq!(ctx.numeric_markers(ints.clone()), ints);
        assert_eq!(
            ctx.numeric_markers(vec![Cell::Float(0.5), Cell::Int(-999)]),
            vec![Cell::Float(0.5), Cell::Na]
        );
        assert_eq!(
            ctx.cell(&Data::String("1.234,5".into())),
            Cell::Text(Cow::Owned("1234.5".into()))
        );
        assert_eq!(
            ctx.cell(&Data::String("a.b".into())),
            Cell::Text(Cow::Borrowed("a.b"))
        );
    }
}
