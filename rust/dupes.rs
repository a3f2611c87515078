//! Duplicate files, the way the best finders work: group by size, then by a hash of the head
//! and tail, then by a full hash only where those still agree, all in parallel. Hard links to
//! one inode are links, not copies (reported apart, never reclaimable), and symbolic links are
//! never copies at all: deleting "the extra copy" must not delete a link's target.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::FileError;
use crate::hash::{self, Algorithm, Span};
use crate::progress::Progress;
use crate::scan::{self, ScanError, ScanOptions};

/// How duplicates are looked for.
#[derive(Debug, Clone, Copy)]
pub struct DupOptions {
    pub algorithm: Algorithm,
    /// Empty files are all "equal"; they are left out unless asked for.
    pub include_empty: bool,
    /// Bytes hashed from each end in the cheap second stage.
    pub partial_bytes: u64,
}

/// One file of a duplicate group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DupRow {
    pub group: u64,
    pub size: u64,
    /// The full digest (None for a group made only of hard links: nothing was hashed).
    pub digest: Option<String>,
    pub path: PathBuf,
    /// The group member this file is a hard link of (same inode), if it is one.
    pub hardlink_of: Option<PathBuf>,
}

#[derive(Debug, Default)]
pub struct Duplicates {
    /// Groups by size (largest first) then digest; members by path, each followed by its links.
    pub rows: Vec<DupRow>,
    /// What removing all but one copy of each group would free.
    pub reclaimable: u64,
    /// What could not be listed or read.
    pub errors: Vec<FileError>,
    /// Symbolic links to files that were left out.
    pub links_skipped: u64,
}

/// Find duplicate files under `roots`.
pub fn find_duplicates(
    roots: &[PathBuf],
    opts: &ScanOptions,
    dup: &DupOptions,
    progress: &Progress,
) -> Result<Duplicates, ScanError> {
    let mut opts = opts.clone();
    opts.with_metadata = true;
    opts.include_special = false;
    let scanned = scan::scan(roots, &opts, &Progress::new())?;
    let mut out = Duplicates {
        errors: scanned.errors,
        ..Duplicates::default()
    };
    let mut files = Vec::with_capacity(scanned.files.len());
    for e in scanned.files {
        if e.link {
            out.links_skipped += 1;
        } else if e.size > 0 || dup.include_empty {
            files.push(e);
        }
    }
    // 1. sizes shared by files on more than one inode
    let mut by_size: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, e) in files.iter().enumerate() {
        by_size.entry(e.size).or_default().push(i);
    }
    by_size.retain(|_, g| g.len() > 1);
    // one file per inode is hashed; the other names of that inode are its links
    let mut first_of_inode: HashMap<(u64, u64), usize> = HashMap::new();
    let mut reps: Vec<usize> = Vec::new();
    let mut links_only: Vec<Vec<usize>> = Vec::new();
    let mut sizes: Vec<u64> = by_size.keys().copied().collect();
    sizes.sort_unstable();
    for size in sizes {
        let group = by_size.get_mut(&size).expect("a listed size");
        // the name that comes first by path stands for its inode (the same every run)
        group.sort_unstable_by(|&a, &b| files[a].path.cmp(&files[b].path));
        let group = &by_size[&size];
        let distinct: std::collections::HashSet<(u64, u64)> = group
            .iter()
            .map(|&i| (files[i].dev, files[i].ino))
            .collect();
        if distinct.len() == 1 {
            links_only.push(group.clone());
            continue;
        }
        for &i in group {
            first_of_inode
                .entry((files[i].dev, files[i].ino))
                .or_insert_with(|| {
                    reps.push(i);
                    i
                });
        }
    }
    let total: u64 = reps.iter().map(|&i| files[i].size).sum();
    progress.add_total(0, total);
    // 2. head + tail where the whole file is larger than both ends; small files go straight
    //    to the full hash (the partial one would read the same bytes)
    let partial_span = Span::HeadTail(dup.partial_bytes.max(1));
    let (small, large): (Vec<usize>, Vec<usize>) = reps
        .iter()
        .partition(|&&i| files[i].size <= 2 * dup.partial_bytes.max(1));
    let digests = |idx: &[usize], span: Span| -> Vec<(usize, Result<String, FileError>)> {
        let paths: Vec<PathBuf> = idx.iter().map(|&i| files[i].path.clone()).collect();
        let sizes: Vec<u64> = idx.iter().map(|&i| files[i].size).collect();
        hash::hash_files(&paths, Some(&sizes), dup.algorithm, span, progress)
            .into_iter()
            .zip(idx)
            .map(|(h, &i)| {
                let got = match (h.digest, h.error) {
                    (Some(d), _) => Ok(d),
                    (None, Some(e)) => Err(e),
                    (None, None) => Err(FileError::new(&h.path, "OSError", "not read")),
                };
                (i, got)
            })
            .collect()
    };
    let mut full_todo: Vec<usize> = small;
    let mut by_partial: HashMap<(u64, String), Vec<usize>> = HashMap::new();
    for (i, d) in digests(&large, partial_span) {
        match d {
            Ok(d) => by_partial.entry((files[i].size, d)).or_default().push(i),
            Err(e) => out.errors.push(e),
        }
    }
    full_todo.extend(by_partial.into_values().filter(|g| g.len() > 1).flatten());
    // 3. the full hash, only where size (and head + tail) still agree
    let mut by_full: HashMap<(u64, String), Vec<usize>> = HashMap::new();
    for (i, d) in digests(&full_todo, Span::Whole) {
        match d {
            Ok(d) => by_full.entry((files[i].size, d)).or_default().push(i),
            Err(e) => out.errors.push(e),
        }
    }
    let mut groups: Vec<((u64, String), Vec<usize>)> =
        by_full.into_iter().filter(|(_, g)| g.len() > 1).collect();
    groups.sort_unstable_by(|a, b| b.0 .0.cmp(&a.0 .0).then_with(|| a.0 .1.cmp(&b.0 .1)));
    // every name of an inode, for the links rows
    let mut names: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for group in by_size.values() {
        for &i in group {
            names
                .entry((files[i].dev, files[i].ino))
                .or_default()
                .push(i);
        }
    }
    let path_of = |i: usize| -> &Path { &files[i].path };
    let mut group_no = 0u64;
    for ((size, digest), mut members) in groups {
        out.reclaimable += size * (members.len() as u64 - 1);
        members.sort_unstable_by(|&a, &b| path_of(a).cmp(path_of(b)));
        for i in members {
            out.rows.push(DupRow {
                group: group_no,
                size,
                digest: Some(digest.clone()),
                path: files[i].path.clone(),
                hardlink_of: None,
            });
            let mut links: Vec<usize> = names[&(files[i].dev, files[i].ino)]
                .iter()
                .copied()
                .filter(|&j| j != i)
                .collect();
            links.sort_unstable_by(|&a, &b| path_of(a).cmp(path_of(b)));
            for j in links {
                out.rows.push(DupRow {
                    group: group_no,
                    size,
                    digest: Some(digest.clone()),
                    path: files[j].path.clone(),
                    hardlink_of: Some(files[i].path.clone()),
                });
            }
        }
        group_no += 1;
    }
    // names of one inode and nothing else: links, no space to reclaim
    links_only.sort_unstable_by(|a, b| {
        (files[b[0]].size.cmp(&files[a[0]].size))
            .then_with(|| files[a[0]].path.cmp(&files[b[0]].path))
    });
    for mut g in links_only {
        g.sort_unstable_by(|&a, &b| path_of(a).cmp(path_of(b)));
        let first = g[0];
        for (k, &i) in g.iter().enumerate() {
            out.rows.push(DupRow {
                group: group_no,
                size: files[i].size,
                digest: None,
                path: files[i].path.clone(),
                hardlink_of: (k > 0).then(|| files[first].path.clone()),
            });
        }
        group_no += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(p: &Path, data: &[u8]) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    fn run(root: &Path) -> Duplicates {
        find_duplicates(
            &[root.to_path_buf()],
            &ScanOptions::default(),
            &DupOptions {
                algorithm: Algorithm::Blake3,
                include_empty: false,
                partial_bytes: 16,
            },
            &Progress::new(),
        )
        .unwrap()
    }

    #[test]
    fn copies_links_and_near_misses() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let big: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut other = big.clone();
        other[500] ^= 1; // same size, head and tail: only the full hash tells them apart
        write(&r.join("a/big1"), &big);
        write(&r.join("b/big2"), &big);
        write(&r.join("c/near"), &other);
        write(&r.join("small1"), b"hello");
        write(&r.join("small2"), b"hello");
        write(&r.join("unique"), b"unique!");
        write(&r.join("empty1"), b"");
        write(&r.join("empty2"), b"");
        std::fs::hard_link(r.join("a/big1"), r.join("a/big1.hardlink")).unwrap();
        symlink(r.join("small1"), r.join("small.symlink")).unwrap();
        write(&r.join("lonely"), b"lonely-content");
        std::fs::hard_link(r.join("lonely"), r.join("lonely.link")).unwrap();
        let d = run(r);
        let rows: Vec<(u64, String, Option<String>)> = d
            .rows
            .iter()
            .map(|x| {
                (
                    x.group,
                    x.path.strip_prefix(r).unwrap().display().to_string(),
                    x.hardlink_of
                        .as_ref()
                        .map(|p| p.strip_prefix(r).unwrap().display().to_string()),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (0, "a/big1".into(), None),
                (0, "a/big1.hardlink".into(), Some("a/big1".into())),
                (0, "b/big2".into(), None),
                (1, "small1".into(), None),
                (1, "small2".into(), None),
                (2, "lonely".into(), None),
                (2, "lonely.link".into(), Some("lonely".into())),
            ]
        );
        assert_eq!(d.reclaimable, 1000 + 5);
        assert_eq!(d.links_skipped, 1, "a symbolic link is never a copy");
        assert_eq!(
            d.rows[0].digest.as_deref(),
            Some(hash::hash_bytes(Algorithm::Blake3, &big).as_str())
        );
        assert!(d.rows[5].digest.is_none(), "links only: nothing hashed");
    }
}
