//! The layering of `src/` as a checked rule (see `docs/architecture.md`).
//!
//! Each top-level module sits on one floor. A module may use modules on
//! lower floors; on its own floor only where the floor says so; never one
//! above. The top-level graph and, inside each folder module, the graph of
//! sibling files must have no loop. The rule is read from the source text
//! (`crate::x` and `super::x` paths), so it holds for code the compiler
//! never sees together (test-only code is left out).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Floors from the ground up, and whether modules on one floor may use
/// each other.
const FLOORS: &[(&str, bool, &[&str])] = &[
    (
        "ground: pure helpers and data, no I/O of their own",
        true,
        &[
            "api_version",
            "credentials",
            "duration",
            "manifest",
            "names",
            "policy",
            "redact",
            "template",
        ],
    ),
    (
        "catalog: services, plans and their settings, as data",
        false,
        &["catalog"],
    ),
    (
        "core: the OSB lifecycle rules, over ports",
        false,
        &["broker"],
    ),
    (
        "adapters: one outside system each",
        true,
        &[
            "charts", "cluster", "dbusers", "helm", "metrics", "releases", "store", "tls",
            "upstream",
        ],
    ),
    (
        "edge: HTTP, process wiring, the CLI",
        true,
        &["main", "osb", "reload", "runtime", "server", "ui"],
    ),
];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS
        .iter()
        .position(|(_, _, mods)| mods.contains(&module))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`, test-only files left out.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "tests" {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" {
            out.push(path);
        }
    }
}

/// The file's code without comments and without its inline test module
/// (by convention last): a doc link is not an import.
fn production_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text,
    };
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers that follow `prefix` in `text` (`crate::` → `broker`).
fn paths_after<'a>(text: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.match_indices(prefix).filter_map(move |(i, _)| {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        let rest = &text[i + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        Some(&rest[..end]).filter(|s| !s.is_empty())
    })
}

/// Top-level module of a file under `src/` (`broker/bind.rs` → `broker`).
fn top_module(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

fn top_level_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = top_module(file.strip_prefix(&root).unwrap());
        if module == "lib" || module == "layers" {
            continue;
        }
        let text = production_text(&file);
        let used = graph.entry(module.clone()).or_default();
        for target in paths_after(&text, "crate::") {
            if target != module {
                used.insert(target.to_owned());
            }
        }
    }
    graph
}

/// A loop in `graph`, if there is one, as the path around it.
fn find_loop(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn every_module_sits_on_a_floor_and_uses_nothing_above_it() {
    let mut wrong = Vec::new();
    for (module, used) in top_level_graph() {
        let Some(floor) = floor_of(&module) else {
            wrong.push(format!(
                "{module} is on no floor: add it to FLOORS in src/layers.rs"
            ));
            continue;
        };
        for target in used {
            let Some(to) = floor_of(&target) else {
                continue;
            };
            let same_floor_ok = FLOORS[floor].1;
            if to > floor || (to == floor && !same_floor_ok) {
                wrong.push(format!(
                    "{module} ({}) uses {target} ({})",
                    FLOORS[floor].0, FLOORS[to].0
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports up a layer:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn top_level_modules_have_no_import_loop() {
    if let Some(cycle) = find_loop(&top_level_graph()) {
        panic!("import loop: {}", cycle.join(" -> "));
    }
}

#[test]
fn sibling_files_have_no_import_loop() {
    let root = src();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut by_dir: BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        if stem == "mod" || file.parent() == Some(root.as_path()) {
            continue;
        }
        let dir = file.parent().unwrap().to_path_buf();
        let text = production_text(file);
        let dir_rel = dir
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('/', "::");
        let crate_prefix = format!("crate::{dir_rel}::");
        let mut used: BTreeSet<String> = paths_after(&text, "super::")
            .chain(paths_after(&text, &crate_prefix))
            .filter(|t| *t != stem)
            .map(str::to_owned)
            .collect();
        used.retain(|t| dir.join(format!("{t}.rs")).exists() || dir.join(t).is_dir());
        by_dir.entry(dir).or_default().insert(stem, used);
    }
    for (dir, graph) in by_dir {
        if let Some(cycle) = find_loop(&graph) {
            panic!("import loop in {}: {}", dir.display(), cycle.join(" -> "));
        }
    }
}

#[test]
fn the_checker_sees_a_loop_and_a_path() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("a".into());
    assert_eq!(find_loop(&g).unwrap(), ["a", "b", "a"]);
    let found: Vec<_> = paths_after("use crate::broker::x; crate::names", "crate::").collect();
    assert_eq!(found, ["broker", "names"]);
    assert_eq!(paths_after("notcrate::x", "crate::").count(), 0);
}
