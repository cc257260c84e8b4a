//! The README's quickstart is `examples/quickstart.rs`, word for word (the
//! README block is a doctest, the example a program to run), and the program
//! prints what its comments say.

#[test]
fn the_readme_quickstart_is_the_example() {
    let example = include_str!("../examples/quickstart.rs");
    let code = &example[example.find("use std::time::Duration;").unwrap()..];
    let readme = include_str!("../../README.md");
    assert!(readme.contains(code), "README.md's quickstart differs from cacheback/examples/quickstart.rs");
}

#[test]
fn the_example_prints_what_its_comments_say() {
    let example = include_str!("../examples/quickstart.rs");
    let promised: Vec<&str> = example
        .lines()
        .skip_while(|l| *l != "//! ```text")
        .skip(1)
        .take_while(|l| *l != "//! ```")
        .map(|l| l.trim_start_matches("//! "))
        .collect();
    assert_eq!(promised.len(), 4);
    let output = std::process::Command::new(env!("CARGO"))
        .args(["run", "--quiet", "-p", "cacheback", "--all-features", "--example", "quickstart"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(printed.lines().collect::<Vec<_>>(), promised);
}
