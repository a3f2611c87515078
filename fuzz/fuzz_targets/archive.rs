//! Any bytes as a ZIP archive: listed, then extracted into a folder inside a sandbox. Nothing
//! may panic, hang or be written anywhere but under the target, and every link left there must
//! resolve inside it.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use parallel_file_processor::extract::{
    extract_all, list_entries, ExtractOptions, IfExists, Job, Limits, Status,
};
use parallel_file_processor::progress::Progress;

struct Sandbox {
    _root: tempfile::TempDir,
    /// Holds the archive and the output folder; nothing else may appear in it.
    work: PathBuf,
    /// Beside `work`: must stay empty.
    canary: PathBuf,
}

fn sandbox() -> &'static Sandbox {
    static S: OnceLock<Sandbox> = OnceLock::new();
    S.get_or_init(|| {
        let root = tempfile::Builder::new()
            .prefix("pfp-fuzz-")
            .tempdir_in(std::env::var_os("PFP_FUZZ_TMP").unwrap_or_else(|| "/dev/shm".into()))
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        let work = root.path().join("work");
        let canary = root.path().join("canary");
        fs::create_dir(&work).unwrap();
        fs::create_dir(&canary).unwrap();
        Sandbox {
            work,
            canary,
            _root: root,
        }
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        out.push(p.clone());
        if m.is_dir() {
            walk(&p, out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let s = sandbox();
    let archive = s.work.join("in.zip");
    let out = s.work.join("out");
    let target = out.join("x");
    fs::write(&archive, data).unwrap();
    fs::create_dir_all(&out).unwrap();
    let _ = list_entries(&archive);
    let opts = ExtractOptions {
        limits: Limits {
            max_total_bytes: 32 << 20,
            max_ratio: 200.0,
            max_entries: 10_000,
        },
        if_exists: IfExists::Error,
        ..Default::default()
    };
    let job = Job {
        archive: archive.clone(),
        target: target.clone(),
    };
    let report = &extract_all(&[job], &opts, &Progress::new())[0];

    // Nothing outside the output folder.
    assert_eq!(fs::read_dir(&s.canary).unwrap().count(), 0);
    let mut top: Vec<_> = fs::read_dir(&s.work)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(top, ["in.zip", "out"]);
    let mut found = Vec::new();
    walk(&out, &mut found);
    if report.status == Status::Extracted {
        // The target and what is in it, no temporary folder left.
        for p in &found {
            assert!(p.starts_with(&target), "{p:?} written outside the target");
            if fs::symlink_metadata(p).unwrap().file_type().is_symlink() {
                let link = fs::read_link(p).unwrap();
                let mut at = p.parent().unwrap().to_path_buf();
                for c in link.components() {
                    match c {
                        std::path::Component::ParentDir => {
                            assert!(at.pop() && at.starts_with(&target), "{p:?} -> {link:?}")
                        }
                        std::path::Component::Normal(n) => at.push(n),
                        std::path::Component::CurDir => {}
                        _ => panic!("{p:?} -> {link:?} is absolute"),
                    }
                }
                if let Ok(real) = fs::canonicalize(p) {
                    let base = fs::canonicalize(&target).unwrap();
                    assert!(
                        real.starts_with(&base),
                        "{p:?} -> {real:?} leaves the target"
                    );
                }
            }
        }
        fs::remove_dir_all(&target).unwrap();
    } else {
        // A failed archive leaves nothing at all.
        assert!(found.is_empty(), "{:?} left {found:?}", report.error);
    }
});
