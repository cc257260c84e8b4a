//! docs/installation.md quotes this app's files; this test fails when a
//! quote and the file it quotes drift apart.
//!
//! A fenced block right after an HTML comment (invisible when the page is
//! rendered) is checked against the file that comment names, relative to the
//! repository's root:
//!
//! * `<!-- quote: PATH -->`: the block is the whole file;
//! * `<!-- excerpt: PATH -->`: the block is pieces of the file, in the file's
//!   order, separated by lines that are only `// ...` (Rust) or `# ...`
//!   (YAML, TOML) and stand for what is left out. Each piece is lines of the
//!   file as they are there, indentation included.
//!
//! In a Rust block, rustdoc's hidden lines (`# ...`, `#` alone) are not part
//! of the quote: a block can be a doctest (its stand-ins hidden) and a quote.
//!
//! Comparing text (rather than compiling the guide's blocks on their own, as
//! the other pages' doctests do) keeps the page readable as plain Markdown,
//! and the code it shows is compiled and tested for real here, in the app
//! `loco new` generates.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A quote of `path` at `line` (1-based) of the page.
struct Quote {
    line: usize,
    path: String,
    whole: bool,
    block: Vec<String>,
}

/// Every marked block of `page`.
fn quotes(page: &str) -> Vec<Quote> {
    let lines: Vec<&str> = page.lines().collect();
    let mut quotes = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let marker = line.trim();
        let (whole, rest) = if let Some(rest) = marker.strip_prefix("<!-- quote:") {
            (true, rest)
        } else if let Some(rest) = marker.strip_prefix("<!-- excerpt:") {
            (false, rest)
        } else {
            continue;
        };
        let path = rest
            .strip_suffix("-->")
            .unwrap_or_else(|| panic!("line {}: `-->` on the marker's line", i + 1));
        let fence = lines.get(i + 1).copied().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "line {}: a marker must be followed by a fenced block, found {fence:?}",
            i + 1
        );
        let end = (i + 2..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .unwrap_or_else(|| panic!("line {}: the block never closes", i + 2));
        let rust = fence.trim_start_matches('`').starts_with("rust");
        quotes.push(Quote {
            line: i + 3,
            path: path.trim().to_owned(),
            whole,
            block: lines[i + 2..end]
                .iter()
                .filter(|line| !(rust && is_hidden(line)))
                .map(|l| (*l).to_owned())
                .collect(),
        });
    }
    quotes
}

/// A line rustdoc compiles but does not show.
fn is_hidden(line: &str) -> bool {
    let line = line.trim_start();
    line == "#" || line.starts_with("# ")
}

fn is_omission(line: &str) -> bool {
    matches!(line.trim(), "// ..." | "# ...")
}

/// Why `quote` does not match `file`; `None` when it does.
fn mismatch(quote: &Quote, file: &str) -> Option<String> {
    let file: Vec<&str> = file.lines().collect();
    if quote.whole {
        let differs = (0..quote.block.len().max(file.len()))
            .find(|&n| quote.block.get(n).map(String::as_str) != file.get(n).copied())?;
        return Some(format!(
            "line {} of the block is {:?}, the file's line {} is {:?}",
            differs + 1,
            quote.block.get(differs),
            differs + 1,
            file.get(differs)
        ));
    }
    let mut from = 0;
    for piece in quote
        .block
        .split(|line| is_omission(line))
        .filter(|piece| !piece.is_empty())
    {
        let found = (from..file.len()).find(|&start| {
            start + piece.len() <= file.len()
                && piece.iter().zip(&file[start..]).all(|(a, b)| a == b)
        });
        match found {
            Some(start) => from = start + piece.len(),
            None => {
                return Some(format!(
                    "these lines are not in the file (as consecutive lines, after the block's previous piece):\n{}",
                    piece.join("\n")
                ));
            }
        }
    }
    None
}

#[test]
fn installation_md_quotes_this_app_as_it_is() {
    let page = std::fs::read_to_string(root().join("docs/installation.md")).unwrap();
    let quotes = quotes(&page);
    let mut failures = Vec::new();
    for quote in &quotes {
        let file = std::fs::read_to_string(root().join(&quote.path)).unwrap_or_else(|err| {
            panic!(
                "docs/installation.md:{} quotes {}: {err}",
                quote.line, quote.path
            )
        });
        if let Some(why) = mismatch(quote, &file) {
            failures.push(format!(
                "docs/installation.md:{} (quoting {}): {why}",
                quote.line, quote.path
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "the guide no longer shows these files as they are:\n\n{}",
        failures.join("\n\n")
    );

    // The files the guide walks a newcomer through are all quoted.
    for path in [
        "examples/loco-app/src/app.rs",
        "examples/loco-app/src/controllers/report.rs",
        "examples/loco-app/config/development.yaml",
    ] {
        assert!(
            quotes.iter().any(|q| q.path == path),
            "docs/installation.md no longer quotes {path}"
        );
    }
}

/// The guide's dependency line (a git dependency) asks for the features this
/// app's path dependency has.
#[test]
fn installation_md_asks_for_this_apps_cacheback_features() {
    let page = std::fs::read_to_string(root().join("docs/installation.md")).unwrap();
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let features = |text: &str, start: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line `{start}..`"));
        let from = line
            .find("features = [")
            .unwrap_or_else(|| panic!("no features in {line}"));
        line[from..=from + line[from..].find(']').unwrap()].to_owned()
    };
    assert_eq!(
        features(&page, "cacheback = { git = "),
        features(&manifest, "cacheback = { path = "),
        "docs/installation.md's `cacheback = ...` line and examples/loco-app/Cargo.toml's"
    );
}

#[test]
fn an_excerpt_is_pieces_of_the_file_in_order() {
    let file = "a\nb\nc\nd\n";
    let quote = |block: &[&str]| Quote {
        line: 1,
        path: String::new(),
        whole: false,
        block: block.iter().map(|l| (*l).to_owned()).collect(),
    };
    assert!(mismatch(&quote(&["a", "// ...", "c", "d"]), file).is_none());
    assert!(
        mismatch(&quote(&["a", "c"]), file).is_some(),
        "not consecutive"
    );
    assert!(
        mismatch(&quote(&["c", "# ...", "a"]), file).is_some(),
        "out of order"
    );
    assert!(
        mismatch(&quote(&[" a"]), file).is_some(),
        "indentation counts"
    );
    let whole = Quote {
        whole: true,
        ..quote(&["a", "b", "c"])
    };
    assert!(mismatch(&whole, file).is_some(), "a line short");
}
