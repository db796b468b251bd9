//! "Errors name file/line/cause": library code returns typed errors, never
//! `Result<_, String>`. A `String` error cannot be matched on, carries no
//! source, and invites `format!` at every layer; a `thiserror` type named
//! for what failed keeps the message and the cause.
//!
//! This test reads every `.rs` file under `crates/*/src` and fails, naming
//! `file:line`, on a `Result<…, String>` (however its type arguments nest or
//! wrap lines) outside `#[cfg(test)]` code. `ALLOWED` lists what is left to
//! convert, with exact counts: a new one fails, and so does a count that
//! went down without the list being lowered (so the list only shrinks).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Files still allowed some `Result<_, String>`, and how many. Each is a
/// conversion not done yet, not a rule: shrink this list, never grow it.
const ALLOWED: &[(&str, usize)] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources(dir: &Path) -> Vec<PathBuf> {
    hoist_test_support::sources::rust_files(dir)
}

/// One source file read for this check: its code with comments, string
/// and char literals blanked (lines kept), the `#[cfg(test)]` items
/// blanked too, and the files its `#[cfg(test)] mod name;` items load.
struct Scanned {
    code: String,
    test_files: Vec<PathBuf>,
}

/// `text` with comments and the contents of string and char literals
/// replaced by spaces, newlines kept, so braces and angle brackets in them
/// do not count.
fn blank_literals(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |c: u8| if c == b'\n' { b'\n' } else { b' ' };
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if b[i] == b'r' && (b[i + 1..].starts_with(b"\"") || b[i + 1..].starts_with(b"#"))
            // A raw string: r"…" or r#"…"#, not an identifier ending in r.
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let mut j = i + 1;
            while j < b.len() && b[j] == b'#' {
                j += 1;
            }
            if j >= b.len() || b[j] != b'"' {
                out.push(b[i]);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            let mut end = b"\"".to_vec();
            end.extend(std::iter::repeat_n(b'#', hashes));
            out.extend(std::iter::repeat_n(b' ', j + 1 - i));
            i = j + 1;
            while i < b.len() && !b[i..].starts_with(&end) {
                out.push(blank(b[i]));
                i += 1;
            }
            out.extend(std::iter::repeat_n(b' ', end.len().min(b.len() - i)));
            i += end.len();
        } else if b[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                let n = if b[i] == b'\\' { 2 } else { 1 };
                for k in 0..n {
                    if let Some(&c) = b.get(i + k) {
                        out.push(blank(c));
                    }
                }
                i += n;
            }
            out.push(b' ');
            i += 1;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|p| i + 2 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) if e - i < 12 => {
                    out.extend(std::iter::repeat_n(b' ', e + 1 - i));
                    i = e + 1;
                }
                _ => {
                    out.push(b'\'');
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out.truncate(text.len());
    String::from_utf8_lossy(&out).into_owned()
}

fn scan(file: &Path) -> Scanned {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let code = blank_literals(&text);
    let b = code.as_bytes();
    let mut out = b.to_vec();
    let mut test_files = Vec::new();
    let dir = file.parent().unwrap();
    // Where `mod name;` looks: beside a mod.rs/lib.rs/main.rs, else in a
    // directory named for the file.
    let stem = file.file_stem().unwrap().to_str().unwrap();
    let mod_dir = if matches!(stem, "mod" | "lib" | "main") {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    let mut from = 0;
    while let Some(p) = code[from..].find("#[cfg(test)]") {
        let start = from + p;
        // The attributes after it, then the item.
        let mut i = start + "#[cfg(test)]".len();
        let mut path_attr = None;
        loop {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if !code[i..].starts_with("#[") {
                break;
            }
            let close = code[i..].find(']').map_or(b.len(), |c| i + c + 1);
            let attr = &text[i..close];
            if let Some(v) = attr.strip_prefix("#[path = \"") {
                path_attr = v.strip_suffix("\"]").map(str::to_string);
            }
            i = close;
        }
        let semi = code[i..].find(';').map(|s| i + s);
        let brace = code[i..].find('{').map(|s| i + s);
        let end = match (semi, brace) {
            (Some(s), brace) if brace.is_none_or(|b| s < b) => {
                // `mod name;`: the file it loads is test code.
                let item = code[i..s].trim();
                if let Some(name) = item
                    .strip_prefix("pub(crate) mod ")
                    .or_else(|| item.strip_prefix("mod "))
                {
                    test_files.push(match &path_attr {
                        Some(p) => dir.join(p),
                        None if mod_dir.join(format!("{name}.rs")).exists() => {
                            mod_dir.join(format!("{name}.rs"))
                        }
                        None => mod_dir.join(name).join("mod.rs"),
                    });
                }
                s + 1
            }
            (_, Some(open)) => {
                let mut depth = 0usize;
                let mut j = open;
                loop {
                    match b.get(j) {
                        Some(b'{') => depth += 1,
                        Some(b'}') => {
                            depth -= 1;
                            if depth == 0 {
                                break j + 1;
                            }
                        }
                        None => break b.len(),
                        _ => {}
                    }
                    j += 1;
                }
            }
            _ => b.len(),
        };
        for c in &mut out[start..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    Scanned {
        code: String::from_utf8(out).unwrap(),
        test_files,
    }
}

/// The 1-based lines of `code` where a `Result<…, String>` starts.
fn string_results(code: &str) -> Vec<usize> {
    let b = code.as_bytes();
    let mut lines = Vec::new();
    let mut from = 0;
    while let Some(p) = code[from..].find("Result<") {
        let at = from + p;
        from = at + "Result<".len();
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_') {
            continue; // IoResult<…>, MyResult<…>: another type.
        }
        // The last top-level type argument.
        let mut depth = 1;
        let mut last = from;
        let mut j = from;
        while j < b.len() && depth > 0 {
            match b[j] {
                b'<' | b'(' | b'[' => depth += 1,
                b'>' if b[j - 1] != b'-' => depth -= 1,
                b')' | b']' => depth -= 1,
                b',' if depth == 1 => last = j + 1,
                _ => {}
            }
            j += 1;
        }
        if last == from {
            continue; // one argument: an alias with its own error type.
        }
        let err: String = code[last..j - 1]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if matches!(
            err.as_str(),
            "String" | "std::string::String" | "alloc::string::String"
        ) {
            lines.push(code[..at].matches('\n').count() + 1);
        }
    }
    lines
}

/// `file → lines` of every `Result<…, String>` outside test code under
/// `crates/*/src`, paths relative to the workspace root.
fn findings() -> BTreeMap<String, Vec<usize>> {
    let root = root();
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            files.extend(sources(&src));
        }
    }
    let scanned: Vec<(PathBuf, Scanned)> = files.iter().map(|f| (f.clone(), scan(f))).collect();
    let test_files: Vec<&PathBuf> = scanned.iter().flat_map(|(_, s)| &s.test_files).collect();
    let mut found = BTreeMap::new();
    for (file, s) in &scanned {
        if test_files.contains(&file) {
            continue;
        }
        let lines = string_results(&s.code);
        if !lines.is_empty() {
            let rel = file.strip_prefix(&root).unwrap().display().to_string();
            found.insert(rel, lines);
        }
    }
    found
}

#[test]
fn library_code_returns_no_string_errors() {
    let found = findings();
    let allowed: BTreeMap<&str, usize> = ALLOWED.iter().copied().collect();
    let mut new = Vec::new();
    let mut stale = Vec::new();
    for (file, lines) in &found {
        let may = allowed.get(file.as_str()).copied().unwrap_or(0);
        if lines.len() > may {
            for l in lines {
                new.push(format!("{file}:{l}: Result<_, String>"));
            }
            if may > 0 {
                new.push(format!(
                    "  ({file} is allowed {may}, has {}: which one is new?)",
                    lines.len()
                ));
            }
        } else if lines.len() < may {
            stale.push(format!("(\"{file}\", {}),", lines.len()));
        }
    }
    for (file, may) in &allowed {
        if !found.contains_key(*file) {
            stale.push(format!("(\"{file}\", 0) -- remove it, was {may}"));
        }
    }
    assert!(
        new.is_empty(),
        "library code returns a String error; use a thiserror type named for what failed:\n{}",
        new.join("\n")
    );
    assert!(
        stale.is_empty(),
        "tests/invariants_errors.rs ALLOWED is stale (fewer String errors are left): lower it to\n{}",
        stale.join("\n")
    );
}

/// The scanner sees through what it must: nested and wrapped type
/// arguments, and not test code, comments or other `*Result` types.
#[test]
fn the_scanner_finds_what_it_must() {
    let code = blank_literals(
        "fn a() -> Result<(), String> {}\n\
         fn b() -> Result<Vec<Option<u8>>,\n    String> {}\n\
         // fn c() -> Result<(), String>\n\
         fn d() -> io::Result<()> {}\n\
         fn e() -> IoResult<u8, String> {}\n\
         fn f(x: impl Fn() -> u8) -> Result<u8, Error> {}\n\
         fn g() -> Result<u8, std::string::String> { \"Result<(), String>\"; '{' }\n\
         fn h() -> Result<(), String> {}\n",
    );
    assert_eq!(string_results(&code), vec![1, 2, 8, 9]);
}
