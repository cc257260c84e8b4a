//! The workspace's modules form no import cycle: reading the code of
//! `cacheback/src` and `sandbox/src`, every `crate::` path a module names
//! (directly, or an item the root re-exports) is an edge, and the graph of
//! top-level modules must be acyclic. `docs/contributing.md` lists the
//! library's modules in that order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`queue/sidekiq/worker.rs` → `queue`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The identifiers that follow each `crate::` in code (not in comments).
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in code.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let after = after.trim_start_matches('{');
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
            rest = &rest[at + 1..];
        }
        // `use crate::{a::X, b::Y}`: every name after a `{` or `,` in a crate-rooted group.
        if let Some(group) = line.strip_prefix("use crate::{") {
            for part in group.split(',') {
                let name: String =
                    part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        }
    }
    out
}

/// The edges between the top-level modules of the crate whose sources are `src`.
fn module_graph(src: &Path) -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut modules = BTreeSet::new();
    let mut reexported: BTreeMap<String, String> = BTreeMap::new();
    for line in lib.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("mod ").or_else(|| line.strip_prefix("pub mod ")) {
            modules.insert(name.trim_end_matches(';').to_owned());
        }
        if let Some(rest) = line.strip_prefix("pub use self::") {
            let (module, items) = rest.split_once("::").unwrap();
            for item in items.trim_matches(|c| "{};".contains(c)).split(',') {
                reexported.insert(item.trim().to_owned(), module.to_owned());
            }
        }
    }
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| f.file_name().unwrap() != "lib.rs") {
        let from = module_of(src, file);
        let code = std::fs::read_to_string(file).unwrap();
        for name in crate_paths(&code) {
            let to = if modules.contains(&name) { Some(name) } else { reexported.get(&name).cloned() };
            if let Some(to) = to.filter(|to| *to != from) {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    (modules, edges)
}

/// A cycle of the graph, if it has one.
fn find_cycle(modules: &BTreeSet<String>, edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // Depth-first search for a path that comes back to where it started.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    modules.iter().find_map(|module| visit(module, edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_of_the_library_form_no_cycle() {
    let (modules, edges) = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(edges.get("handle").is_some_and(|to| to.contains("engine")), "the graph was read: {edges:?}");
    assert!(edges.get("register").is_some_and(|to| to.contains("engine")), "re-exports count: {edges:?}");
    if let Some(cycle) = find_cycle(&modules, &edges) {
        panic!("import cycle among the modules of cacheback/src: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_modules_of_the_sandbox_form_no_cycle() {
    let (modules, edges) = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../sandbox/src"));
    assert!(
        edges.get("controllers").is_some_and(|to| to.contains("models")),
        "the graph was read: {edges:?}"
    );
    if let Some(cycle) = find_cycle(&modules, &edges) {
        panic!("import cycle among the modules of sandbox/src: {}", cycle.join(" -> "));
    }
}

#[test]
fn a_cycle_is_found() {
    let modules: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&modules, &edges), None);
    edges.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&modules, &edges).unwrap(), ["a", "b", "c", "a"]);
}
