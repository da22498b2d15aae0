//! The layering rules, checked on the source so that a change breaking
//! them fails here rather than in review: the edge (`src/http/`) never
//! imports `store` (the rate limiter's Redis pool is the one exception),
//! `src/domain/` does no I/O and imports no other layer, and no module of
//! `src/http/` imports one that imports it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The one `store` import the edge may make, and why: the rate limiter
/// counts in Redis directly, on the hot path of every login.
const EDGE_MAY_IMPORT: (&str, &str) = ("rate_limit.rs", "crate::store::redis");

fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("source folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source file");
                files.push((path, code_of(&text)));
            }
        }
    }
    files.sort();
    files
}

/// The file without comments and without its unit tests.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn name(path: &Path) -> String {
    path.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_edge_imports_no_store_but_the_rate_limiters_pool() {
    let mut found = Vec::new();
    for (path, code) in sources("src/http") {
        for (at, _) in code.match_indices("crate::store") {
            let rest = &code[at..];
            let allowed = name(&path) == EDGE_MAY_IMPORT.0 && rest.starts_with(EDGE_MAY_IMPORT.1);
            if !allowed {
                let line = code[..at].lines().count();
                found.push(format!("{}:{line}", name(&path)));
            }
        }
    }
    assert!(
        found.is_empty(),
        "src/http/ imports crate::store at {found:?}: speak through the owning actor's messages and types"
    );
}

#[test]
fn the_domain_does_no_io_and_imports_no_other_layer() {
    const FORBIDDEN: [&str; 9] = [
        "crate::store",
        "crate::actors",
        "crate::http",
        "sqlx",
        "actix",
        "tokio",
        "redis",
        "reqwest",
        "std::fs",
    ];
    let mut found = BTreeSet::new();
    for (path, code) in sources("src/domain") {
        for word in FORBIDDEN {
            if code.contains(word) {
                found.insert(format!("{} uses {word}", name(&path)));
            }
        }
    }
    assert!(found.is_empty(), "{found:?}");
}

/// The sibling modules of `src/http/` a file names (`super::x::…`,
/// `crate::http::x::…`, or each of `super::{x, y}`).
fn http_imports(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut named = BTreeSet::new();
    for prefix in ["super::", "crate::http::"] {
        for (at, _) in code.match_indices(prefix) {
            let rest = &code[at + prefix.len()..];
            let items: Vec<String> = match rest.strip_prefix('{') {
                Some(inner) => inner[..inner.find('}').unwrap_or(inner.len())]
                    .split(',')
                    .map(ident)
                    .collect(),
                None => vec![ident(rest)],
            };
            named.extend(items.into_iter().filter(|m| modules.contains(m)));
        }
    }
    named
}

#[test]
fn no_module_of_the_edge_imports_one_that_imports_it_back() {
    let files: Vec<_> = sources("src/http")
        .into_iter()
        .filter(|(path, _)| name(path) != "mod.rs")
        .collect();
    let modules: BTreeSet<String> = files
        .iter()
        .map(|(path, _)| name(path).trim_end_matches(".rs").to_owned())
        .collect();
    let graph: BTreeMap<String, BTreeSet<String>> = files
        .iter()
        .map(|(path, code)| {
            let me = name(path).trim_end_matches(".rs").to_owned();
            let mut imports = http_imports(code, &modules);
            imports.remove(&me);
            (me, imports)
        })
        .collect();
    let mut loops = Vec::new();
    for (a, imports) in &graph {
        for b in imports {
            if a < b && graph[b].contains(a) {
                loops.push(format!("{a} <-> {b}"));
            }
        }
    }
    // Longer loops: a module reachable from itself.
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = graph[start].iter().collect();
        while let Some(next) = stack.pop() {
            if next == start {
                loops.push(format!("{start} reaches itself"));
                break;
            }
            if seen.insert(next) {
                stack.extend(graph[next].iter());
            }
        }
    }
    loops.sort();
    loops.dedup();
    assert!(loops.is_empty(), "import loops in src/http/: {loops:?}");
}
