//! The layout rule of `tests/` (tests/README.md), read from the files
//! themselves: three tier binaries, test modules that hold tests only,
//! every module under 500 lines.

use std::path::{Path, PathBuf};

/// The tier binaries: `tests/<tier>/main.rs`.
pub const TIERS: [&str; 4] = ["edge", "adapters", "cluster", "alone"];

/// The longest a test module may be.
pub const MAX_LINES: usize = 500;

/// Functions a test module may define besides tests, each with its reason.
/// Keep it tiny: a helper belongs in `tests/common/`.
pub const ALLOWED: &[(&str, &str, &str)] = &[];

/// Every `.rs` file below `dir`, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every `.rs` file of every tier binary under the repository `root`.
pub fn tier_files(root: &Path) -> Vec<PathBuf> {
    TIERS
        .iter()
        .flat_map(|t| rust_files(&root.join("tests").join(t)))
        .collect()
}

/// The name of the function a line declares, if it declares one.
pub fn declared_fn(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let name = rest.strip_prefix("fn ")?;
    let end = name
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    Some(&name[..end])
}

/// Whether the attributes above line `i` (up to the previous code line)
/// mark a test.
pub fn is_test(lines: &[&str], i: usize) -> bool {
    lines[..i]
        .iter()
        .rev()
        .map(|l| l.trim())
        .take_while(|l| l.starts_with("#[") || l.starts_with("//") || l.ends_with(")]"))
        .any(|l| l.starts_with("#[test]") || l.starts_with("#[tokio::test"))
}

/// `path:line name` of every function in `file` that is not a test and
/// not allowed.
pub fn helpers_in(root: &Path, file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(root)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = declared_fn(line) else {
            continue;
        };
        let allowed = ALLOWED.iter().any(|(f, n, _)| *f == rel && *n == name);
        if !is_test(&lines, i) && !allowed {
            found.push(format!("{rel}:{} {name}", i + 1));
        }
    }
    found
}
