//! The suite's own layout (tests/README.md): tests live in the three tier
//! binaries, test modules define no helpers (those go in `tests/common/`,
//! where the next test finds them), and no module grows past 500 lines.

use crate::common::layout::{MAX_LINES, TIERS, helpers_in, rust_files, tier_files};
use crate::common::repo;

#[test]
fn test_modules_define_no_helpers() {
    let root = repo();
    let found: Vec<String> = tier_files(&root)
        .iter()
        .flat_map(|f| helpers_in(&root, f))
        .collect();
    assert!(
        found.is_empty(),
        "helpers defined outside tests/common (move them there, or reuse \
         what is there):\n{}",
        found.join("\n")
    );
}

#[test]
fn every_test_file_is_a_module_of_a_tier() {
    let tests = repo().join("tests");
    let mut strays = Vec::new();
    for entry in std::fs::read_dir(&tests).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let binary = p.extension().is_some_and(|e| e == "rs") || p.join("main.rs").is_file();
        if binary && !TIERS.contains(&name.as_str()) {
            strays.push(name);
        }
    }
    assert!(
        strays.is_empty(),
        "test binaries outside the tiers (make each a module of \
         tests/edge, tests/adapters or tests/cluster): {strays:?}"
    );
}

#[test]
fn test_modules_stay_under_500_lines() {
    let root = repo();
    // The helpers in tests/common too: they are modules of the same binaries.
    let long: Vec<String> = tier_files(&root)
        .into_iter()
        .chain(rust_files(&root.join("tests/common")))
        .filter_map(|f| {
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by topic: {long:?}");
}
