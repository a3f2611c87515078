//! Entry names: any bytes, any UTF-8 flag, any host, any archive-wide rule. Whatever the name
//! decodes and normalises to, a name the checks accept is a plain relative path whose every
//! component is a normal one (no `..`, `.`, root, drive, backslash or NUL), so joining it to the
//! target folder can only land inside it.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use parallel_file_processor::extract::{check_name, entry_name, NameRules};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, raw)) = data.split_first() else {
        return;
    };
    let utf8 = flags & 1 != 0;
    let windows = flags & 2 != 0;
    let rules = NameRules {
        no_slash: flags & 4 != 0,
    };
    let Ok(name) = entry_name(raw, utf8, windows, rules) else {
        assert!(utf8, "only a flagged name can fail to decode");
        return;
    };
    let Ok((parts, is_dir)) = check_name(&name) else {
        return;
    };
    assert!(!parts.is_empty());
    assert_eq!(is_dir, name.ends_with('/'));
    for part in &parts {
        assert!(
            !part.is_empty() && *part != "." && *part != "..",
            "{name:?}"
        );
        assert!(!part.contains(['/', '\\', '\0']), "{name:?}");
    }
    let b = name.as_bytes();
    assert!(
        !(b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'),
        "{name:?}"
    );
    let rel: std::path::PathBuf = parts.iter().collect();
    assert!(
        rel.components().all(|c| matches!(c, Component::Normal(_))),
        "{name:?}"
    );
    let root = Path::new("/target");
    assert!(root.join(&rel).starts_with(root), "{name:?}");
    // A backslash is only ever a separator in ASCII or flagged UTF-8 names.
    if raw.contains(&b'\\') && !utf8 && !raw.is_ascii() {
        unreachable!("a legacy name with a backslash was accepted: {name:?}");
    }
});
