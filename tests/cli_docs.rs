//! The help that hoist generates from its clap definition: the Markdown
//! reference in `docs/reference/` must match the CLI (so it cannot go stale
//! when a flag changes), the completion scripts must parse in their shells
//! and complete what `--help` shows, and the man pages must format without
//! warnings and name every flag.
//!
//! Expectations come from `hoist --help` and `hoist build --help`, never from
//! a list written here, so adding a flag needs no change to this file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REGENERATE: &str = "cargo run -- docs-reference --dir docs/reference";

fn hoist(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("hoist runs");
    assert!(
        out.status.success(),
        "hoist {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(args: &[&str]) -> String {
    String::from_utf8(hoist(args).stdout).expect("utf-8 output")
}

/// The long flags that `--help` defines (the spellings at the start of each
/// option line, not flags mentioned in help text such as `RUN --mount`).
fn long_flags(help: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in help.lines().map(str::trim_start) {
        if !line.starts_with('-') {
            continue;
        }
        for word in line.split_whitespace() {
            let word = word.trim_end_matches(',');
            if !word.starts_with('-') {
                break;
            }
            if let Some(long) = word.strip_prefix("--") {
                flags.insert(format!(
                    "--{}",
                    long.split(['=', '[']).next().unwrap_or(long)
                ));
            }
        }
    }
    flags
}

/// The subcommands `hoist --help` lists under `Commands:`.
fn subcommands(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn build_flags() -> BTreeSet<String> {
    let flags = long_flags(&stdout(&["build", "--help"]));
    assert!(
        flags.contains("--tag") && flags.contains("--file"),
        "{flags:?}"
    );
    flags
}

fn top_subcommands() -> BTreeSet<String> {
    let subs = subcommands(&stdout(&["--help"]));
    assert!(
        subs.contains("build") && subs.contains("completion"),
        "{subs:?}"
    );
    subs
}

fn md_pages(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.starts_with("hoist") && n.ends_with(".md"))
        .collect()
}

#[test]
fn reference_matches_the_cli() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference");
    let tmp = tempfile::tempdir().expect("tempdir");
    hoist(&[
        "docs-reference",
        "--dir",
        tmp.path().to_str().expect("utf-8"),
    ]);
    let fresh = md_pages(tmp.path());
    let old = if committed.is_dir() {
        md_pages(&committed)
    } else {
        BTreeSet::new()
    };
    let mut problems = Vec::new();
    for name in fresh.union(&old) {
        let path = format!("docs/reference/{name}");
        match (fresh.contains(name), old.contains(name)) {
            (true, false) => problems.push(format!("{path} is missing")),
            (false, true) => problems.push(format!("{path} is stale (no such subcommand now)")),
            _ => {
                let want = std::fs::read_to_string(tmp.path().join(name)).expect("fresh page");
                let have = std::fs::read_to_string(committed.join(name)).expect("committed page");
                if want != have {
                    let line = want
                        .lines()
                        .zip(have.lines().chain(std::iter::repeat("<end of file>")))
                        .position(|(w, h)| w != h)
                        .map_or(want.lines().count(), |i| i);
                    problems.push(format!(
                        "{path} differs from the CLI from line {}: expected {:?}",
                        line + 1,
                        want.lines().nth(line).unwrap_or("<end of file>")
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/reference is out of date with the CLI:\n  {}\nregenerate it with:\n  {REGENERATE}\nand commit docs/reference/",
        problems.join("\n  ")
    );
}

#[test]
fn reference_documents_every_subcommand_and_build_flag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    hoist(&[
        "docs-reference",
        "--dir",
        tmp.path().to_str().expect("utf-8"),
    ]);
    let index = std::fs::read_to_string(tmp.path().join("hoist.md")).expect("hoist.md");
    for sub in top_subcommands().iter().filter(|s| *s != "help") {
        let page = format!("hoist-{sub}.md");
        assert!(tmp.path().join(&page).is_file(), "no {page}");
        assert!(
            index.contains(&format!("]({page})")),
            "hoist.md does not link {page}"
        );
    }
    let build = std::fs::read_to_string(tmp.path().join("hoist-build.md")).expect("build page");
    for flag in build_flags().iter().filter(|f| *f != "--help") {
        // Each flag is a heading: "### `--tag <TAGS>`" or "### `-t, --tag ...`".
        let heading = build
            .lines()
            .any(|l| l.starts_with("### `") && l.split(['`', ' ', ',']).any(|w| w == flag));
        let global = build.contains(&format!("`{flag} "));
        assert!(heading || global, "hoist-build.md has no {flag}");
    }
    // Defaults and possible values come through.
    assert!(build.contains("- Default: `auto`"), "{build}");
    let pull = std::fs::read_to_string(tmp.path().join("hoist-pull.md")).expect("pull page");
    assert!(
        pull.contains("- Possible values: `true`, `false`"),
        "{pull}"
    );
}

#[test]
fn reference_removes_pages_of_gone_subcommands_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("hoist-gone.md"), "old").expect("write");
    std::fs::write(tmp.path().join("notes.md"), "mine").expect("write");
    hoist(&[
        "docs-reference",
        "--dir",
        tmp.path().to_str().expect("utf-8"),
    ]);
    assert!(!tmp.path().join("hoist-gone.md").exists());
    assert!(tmp.path().join("notes.md").exists());
    assert!(tmp.path().join("hoist-build.md").exists());
}

fn script(shell: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join(format!("hoist.{shell}"));
    std::fs::write(&path, hoist(&["completion", shell]).stdout).expect("write script");
    (tmp, path)
}

fn has_shell(shell: &str) -> bool {
    Command::new(shell)
        .args(["-c", "exit 0"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `shell` with `args`, isolated from the user's config; stdout.
fn run_shell(shell: &str, home: &Path, args: &[&str]) -> String {
    let out = Command::new(shell)
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .output()
        .unwrap_or_else(|e| panic!("{shell} runs: {e}"));
    assert!(
        out.status.success(),
        "{shell} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What bash's completion function offers for `words` (the last is the
/// word being completed).
fn bash_complete(script: &Path, home: &Path, words: &[&str]) -> BTreeSet<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let cur = words[cword];
    let prev = words[cword - 1];
    let code = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; _hoist hoist '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" ")
    );
    run_shell("bash", home, &["-c", &code])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_parses_and_completes_subcommands_and_build_flags() {
    let (tmp, script) = script("bash");
    run_shell("bash", tmp.path(), &["-n", script.to_str().expect("utf-8")]);
    let subs = bash_complete(&script, tmp.path(), &["hoist", ""]);
    let missing: Vec<_> = top_subcommands().difference(&subs).cloned().collect();
    assert!(missing.is_empty(), "bash does not complete {missing:?}");
    assert_eq!(
        bash_complete(&script, tmp.path(), &["hoist", "bu"]),
        BTreeSet::from(["build".to_owned()])
    );
    let flags = bash_complete(&script, tmp.path(), &["hoist", "build", "--"]);
    let missing: Vec<_> = build_flags().difference(&flags).cloned().collect();
    assert!(missing.is_empty(), "bash does not complete {missing:?}");
    let shells = bash_complete(&script, tmp.path(), &["hoist", "completion", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.contains(shell), "{shells:?}");
    }
}

#[test]
fn zsh_completion_parses_and_names_subcommands_and_build_flags() {
    let (tmp, script) = script("zsh");
    let text = std::fs::read_to_string(&script).expect("script");
    assert!(
        text.starts_with("#compdef hoist\n"),
        "{}",
        &text[..80.min(text.len())]
    );
    for sub in top_subcommands() {
        assert!(text.contains(&format!("'{sub}:")), "zsh script lacks {sub}");
    }
    for flag in build_flags() {
        let found = ["'", "'*"].iter().any(|pre| {
            text.contains(&format!("{pre}{flag}=")) || text.contains(&format!("{pre}{flag}["))
        });
        assert!(found, "zsh script lacks {flag}");
    }
    if has_shell("zsh") {
        run_shell("zsh", tmp.path(), &["-n", script.to_str().expect("utf-8")]);
    } else {
        eprintln!("zsh is not installed (Debian package zsh): syntax not checked");
    }
}

#[test]
fn fish_completion_parses_and_completes_subcommands_and_build_flags() {
    let (tmp, script) = script("fish");
    let text = std::fs::read_to_string(&script).expect("script");
    for flag in build_flags() {
        let long = flag.trim_start_matches("--");
        let found = text.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.windows(2).any(|w| w == ["-l", long])
        });
        assert!(found, "fish script lacks {flag}");
    }
    if !has_shell("fish") {
        eprintln!("fish is not installed (Debian package fish): completion not run");
        return;
    }
    let path = script.to_str().expect("utf-8");
    run_shell("fish", tmp.path(), &["-n", path]);
    let complete = |line: &str| -> BTreeSet<String> {
        let code = format!("source '{path}'; complete -C '{line}'");
        run_shell("fish", tmp.path(), &["-c", &code])
            .lines()
            .filter_map(|l| l.split('\t').next().map(str::to_owned))
            .collect()
    };
    let subs = complete("hoist ");
    let missing: Vec<_> = top_subcommands().difference(&subs).cloned().collect();
    assert!(missing.is_empty(), "fish does not complete {missing:?}");
    let flags = complete("hoist build --");
    let missing: Vec<_> = build_flags().difference(&flags).cloned().collect();
    assert!(missing.is_empty(), "fish does not complete {missing:?}");
}

#[test]
fn completion_refuses_an_unknown_shell() {
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["completion", "tcsh"])
        .output()
        .expect("hoist runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tcsh") && err.contains("bash"), "{err}");
}

#[test]
fn man_pages_format_without_warnings_and_name_every_build_flag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("man1");
    hoist(&["man", "--dir", dir.to_str().expect("utf-8")]);
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("man dir")
        .map(|e| e.expect("entry").path())
        .collect();
    pages.sort();
    for sub in top_subcommands().iter().filter(|s| *s != "help") {
        assert!(
            dir.join(format!("hoist-{sub}.1")).is_file(),
            "no hoist-{sub}.1"
        );
    }
    assert!(dir.join("hoist-store-check.1").is_file());
    for page in &pages {
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-z", "-ww"])
            .arg(page)
            .output()
            .expect("groff runs (Debian package groff-base)");
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && warnings.trim().is_empty(),
            "{}: {warnings}",
            page.display()
        );
    }
    let build = std::fs::read_to_string(dir.join("hoist-build.1")).expect("hoist-build.1");
    assert!(
        build.starts_with(".ie") || build.contains(".TH hoist-build 1"),
        "{build}"
    );
    let roff = build.replace("\\-", "-");
    for flag in build_flags() {
        assert!(roff.contains(flag.as_str()), "hoist-build.1 lacks {flag}");
    }
    // man itself reads it (man-db), and without --dir hoist prints hoist.1.
    let out = Command::new("man")
        .arg("-l")
        .arg(dir.join("hoist-build.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .expect("man runs (Debian package man-db)");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && shown.contains("hoist-build"),
        "{shown}"
    );
    let top = stdout(&["man"]);
    assert_eq!(
        top,
        std::fs::read_to_string(dir.join("hoist.1")).expect("hoist.1")
    );
}
