//! The parser's own cases beyond BuildKit's conformance files: heredocs,
//! directives, spans, error positions, CRLF, BOM and warnings. Most render
//! the whole tree (positions included) and compare with an `insta` snapshot.

use hoist_dockerfile::{Ast, Node, parse};
use std::fmt::Write as _;

/// One line per instruction: `line:col-end_line dump`, then its heredocs,
/// comments and (for ONBUILD) the trigger's span; then the file's escape,
/// directives and warnings.
fn render(ast: &Ast) -> String {
    let mut out = String::new();
    for n in &ast.children {
        render_node(&mut out, n, "");
    }
    let _ = writeln!(out, "escape: {}", ast.escape);
    for (k, v) in &ast.directives {
        let _ = writeln!(out, "directive: {k} = {v}");
    }
    for w in &ast.warnings {
        let _ = writeln!(out, "warning: line {} {}: {}", w.line, w.rule, w.message);
    }
    out
}

fn render_node(out: &mut String, n: &Node, indent: &str) {
    let s = n.span;
    let _ = writeln!(
        out,
        "{indent}{}:{}-{} {}",
        s.start.line,
        s.start.column,
        s.end_line,
        n.dump()
    );
    if n.json {
        let _ = writeln!(out, "{indent}  json");
    }
    for c in &n.prev_comment {
        let _ = writeln!(out, "{indent}  comment: {c}");
    }
    for h in &n.heredocs {
        let _ = writeln!(
            out,
            "{indent}  heredoc {:?} expand={} chomp={}: {:?}",
            h.name, h.expand, h.chomp, h.content
        );
    }
    if let Some(sub) = &n.sub {
        render_node(out, sub, &format!("{indent}  sub "));
    }
}

fn ok(text: &str) -> String {
    match parse(text) {
        Ok(ast) => render(&ast),
        Err(e) => panic!(
            "unexpected error at {}:{}: {e}\n{text}",
            e.pos.line, e.pos.column
        ),
    }
}

/// `line:col: message` of the error `text` must produce.
fn err(text: &str) -> String {
    match parse(text) {
        Ok(ast) => panic!("parsed without error:\n{}", render(&ast)),
        Err(e) => format!("{}:{}: {}", e.pos.line, e.pos.column, e.message),
    }
}

#[test]
fn heredoc_basic_and_quoted() {
    insta::assert_snapshot!(ok(r#"FROM alpine
RUN <<EOF
echo $HOME
EOF
RUN <<"EOF"
echo $HOME
EOF
RUN <<'EOF' sh -x
echo '$HOME'
EOF
RUN <<E"O"F
x
EOF
RUN <<EMPTY
EMPTY
RUN 3<<FD cat
x
FD
"#));
}

#[test]
fn heredoc_chomp() {
    insta::assert_snapshot!(ok(
        "FROM alpine\nRUN <<-EOT\n\techo a\n\t\techo b\n  echo c\n\tEOT\nRUN <<EOT\n\tkept\nEOT\n"
    ));
}

#[test]
fn heredoc_several_on_one_line() {
    insta::assert_snapshot!(ok(
        "FROM alpine\nCOPY <<A <<-'B' /dest/\nbody a\nA\n\tbody b\n\tB\nCOPY <<X <<Y /d\nY\nX\nX\nY\nRUN echo done\n"
    ));
}

#[test]
fn heredoc_in_onbuild() {
    insta::assert_snapshot!(ok(
        "FROM alpine\nONBUILD RUN <<EOF\necho built\nEOF\nONBUILD COPY --chmod=644 <<cfg /etc/app.cfg\nk=v\ncfg\n"
    ));
}

#[test]
fn heredoc_only_where_allowed() {
    // JSON-form RUN and quoted markers take no body: the next lines are instructions.
    insta::assert_snapshot!(ok(
        "FROM alpine\nRUN [\"cat\", \"<<EOF\"]\nRUN echo '<<EOF'\nRUN echo \"<<EOF\"\nLABEL a=<<EOF\n"
    ));
    // USER takes no heredoc, so the "body" is read as an instruction.
    assert_eq!(
        err("FROM a\nUSER <<INVALID\nINVALID\n"),
        "3:1: unknown instruction: INVALID"
    );
}

#[test]
fn heredoc_after_continuation_and_spans() {
    insta::assert_snapshot!(ok(
        "FROM alpine\nRUN --mount=type=cache,target=/c \\\n    <<EOF\nline 1\nline 2\nEOF\n  RUN echo after\nRUN <<A cat && \\\n  echo <<B\na\nA\nb\nB\nCMD x\n"
    ));
}

#[test]
fn heredoc_missing_terminator() {
    assert_eq!(
        err("FROM a\nRUN <<EOF\necho hi\nEOF \n"),
        "2:5: unterminated heredoc: no line \"EOF\" ends it"
    );
    assert_eq!(
        err("FROM a\nCOPY <<A \\\n  <<B /x\na\nA\n"),
        "3:3: unterminated heredoc: no line \"B\" ends it"
    );
    assert_eq!(
        err("FROM a\nRUN <<EOF"),
        "2:5: unterminated heredoc: no line \"EOF\" ends it"
    );
    assert_eq!(
        err("FROM a\nONBUILD   RUN <<EOF\n"),
        "2:15: unterminated heredoc: no line \"EOF\" ends it"
    );
    // A tab-indented terminator only ends a `<<-` heredoc.
    assert!(parse("FROM a\nRUN <<EOF\n\tEOF\n").is_err());
    // A malformed marker word is an error, as in BuildKit.
    assert!(
        parse("FROM a\nRUN <<EOF\"\n").is_ok(),
        "unbalanced quote: not a heredoc line"
    );
}

#[test]
fn heredoc_crlf() {
    let ast = parse("FROM a\r\nRUN <<EOF\r\necho hi\r\nEOF\r\nCMD x\r\n").unwrap();
    assert_eq!(ast.children.len(), 3);
    assert_eq!(ast.children[1].heredocs[0].content, "echo hi\r\n");
    assert_eq!(ast.children[1].span.end_line, 4);
    assert_eq!(ast.children[2].span.start.line, 5);
}

#[test]
fn directives() {
    insta::assert_snapshot!(ok(
        "# SYNTAX = docker/dockerfile:1.7\n#Escape=`\n  # check=skip=JSONArgsRecommended;error=true\n\nFROM `\n  alpine\nRUN dir c:\\ `\n  && echo \\\n"
    ));
}

#[test]
fn directive_scanning_stops() {
    // After an ordinary comment.
    let ast = parse("# hello\n# escape=`\nFROM a\nRUN a \\\nb\n").unwrap();
    assert!(ast.directives.is_empty());
    assert_eq!(ast.escape, '\\');
    assert_eq!(ast.children[1].args, ["a b"]);
    assert_eq!(ast.children[0].prev_comment, ["hello", "escape=`"]);
    // After an instruction.
    let ast = parse("FROM a\n# escape=`\nRUN a `\nCMD b\n").unwrap();
    assert!(ast.directives.is_empty());
    assert_eq!(
        ast.children[1].args,
        ["a `"],
        "` does not continue the line"
    );
    assert_eq!(ast.children.len(), 3);
    // After a blank line.
    let ast = parse("\n# escape=`\nFROM a\n").unwrap();
    assert_eq!(ast.escape, '\\');
    // After an unknown directive.
    let ast = parse("# foo=bar\n# escape=`\nFROM a\n").unwrap();
    assert!(ast.directives.is_empty());
    // Directives are not comments of the first instruction.
    let ast = parse("# escape=\\\n# a comment\nFROM a\n").unwrap();
    assert_eq!(ast.directives, [("escape".to_string(), "\\".to_string())]);
    assert_eq!(ast.children[0].prev_comment, ["a comment"]);
}

#[test]
fn directive_errors() {
    assert_eq!(
        err("# escape=`\n# ESCAPE=\\\nFROM a\n"),
        "2:1: only one escape parser directive can be used"
    );
    assert_eq!(
        err("# syntax=a\n #syntax=b\nFROM a\n"),
        "2:2: only one syntax parser directive can be used"
    );
    assert_eq!(
        err("# escape=x\nFROM a\n"),
        "1:1: invalid escape token 'x' does not match ` or \\"
    );
}

#[test]
fn syntax_warning() {
    let ast = parse("# syntax=example.com/custom/frontend:2\nFROM a\n").unwrap();
    assert_eq!(ast.warnings.len(), 1);
    assert_eq!(ast.warnings[0].rule, "UnsupportedSyntax");
    assert_eq!(ast.warnings[0].line, 1);
    assert!(
        parse("# syntax=docker/dockerfile:1\nFROM a\n")
            .unwrap()
            .warnings
            .is_empty()
    );
}

#[test]
fn spans_and_comments() {
    insta::assert_snapshot!(ok(
        "# leading\n\n# about from\nFROM alpine AS build\n\t# tabbed comment\n\tRUN echo a \\\n  # skipped inside\n    b \\\n    c\n    ONBUILD   run   echo é\nHEALTHCHECK --interval=5s \\\n  CMD [\"true\"]\n"
    ));
}

#[test]
fn error_positions() {
    assert_eq!(
        err("FROM a\n  FOO bar\n"),
        "2:3: unknown instruction: FOO (did you mean FROM?)"
    );
    assert_eq!(
        err("FROM a\nRUN a \\\n  b\n\tFOO\n"),
        "4:2: unknown instruction: FOO (did you mean FROM?)"
    );
    assert_eq!(
        err("FROM a\nONBUILD  BOGUS x\n"),
        "2:10: unknown instruction: BOGUS"
    );
    assert_eq!(
        err("FROM a\nONBUILD \\\n   BOGUS x\n"),
        "3:4: unknown instruction: BOGUS"
    );
    assert_eq!(err("éé\n"), "1:1: unknown instruction: éé");
    assert_eq!(
        err("FROM busybox\n\n ENV PATH\n"),
        "3:2: ENV must have two arguments"
    );
    assert_eq!(
        err("FROM a\nLABEL a=b c\n"),
        "2:1: syntax error - can't find = in \"c\". must be of the form: name=value"
    );
    assert_eq!(
        err("FROM a\nCMD [\"a\", [\"b\"]]\n"),
        "2:1: when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!(
        err("FROM a\n\\\n"),
        "2:1: empty instruction after a line continuation"
    );
    assert_eq!(err(""), "0:0: file with no instructions");
    assert_eq!(err("\n# only\n  \n"), "0:0: file with no instructions");
    assert_eq!(err("\u{feff}"), "0:0: file with no instructions");
}

#[test]
fn crlf_line_endings() {
    let crlf = "# escape=`\r\nFROM alpine\r\nRUN echo a `\r\n  b\r\n\r\nENV A=1 `\r\n    B=2\r\n";
    let lf = crlf.replace("\r\n", "\n");
    let (a, b) = (parse(crlf).unwrap(), parse(&lf).unwrap());
    assert_eq!(a.dump(), b.dump());
    assert_eq!(a.escape, '`');
    assert_eq!(
        a.children
            .iter()
            .map(|n| (n.span.start.line, n.span.end_line))
            .collect::<Vec<_>>(),
        [(2, 2), (3, 4), (6, 7)]
    );
    assert_eq!(
        a.dump(),
        "(from \"alpine\")\n(run \"echo a   b\")\n(env \"A\" \"1\" \"=\" \"B\" \"2\" \"=\")"
    );
}

#[test]
fn byte_order_mark() {
    let ast = parse("\u{feff}# escape=`\nFROM a\nRUN x `\ny\n").unwrap();
    assert_eq!(ast.escape, '`');
    assert_eq!(ast.children[1].args, ["x y"]);
    let ast = parse("\u{feff}FROM a\n").unwrap();
    assert_eq!(
        (
            ast.children[0].span.start.line,
            ast.children[0].span.start.column
        ),
        (1, 1)
    );
    assert_eq!(ast.children[0].keyword, "from");
}

#[test]
fn empty_continuation_warnings() {
    insta::assert_snapshot!(ok(
        "FROM alpine:3.6\n\nRUN valid \\\n    continuation\n\nRUN something \\\n\n    following \\\n\n    more\n\nRUN another \\\n\n    thing\n\nRUN non-indented \\\n# this is a comment\n   after-comment\n\nRUN indented \\\n    # this is an indented comment\n    comment\n"
    ));
}

#[test]
fn non_ascii_and_odd_input() {
    let ast = parse(
        "FROM ü\nLABEL ключ=значение 키=\"값 값\"\nRUN echo 한국어 \\\n  ☃\nWORKDIR /données\n",
    )
    .unwrap();
    assert_eq!(
        ast.dump(),
        "(from \"ü\")\n(label \"ключ\" \"значение\" \"=\" \"키\" \"\\\"값 값\\\"\" \"=\")\n(run \"echo 한국어   ☃\")\n(workdir \"/données\")"
    );
    // A line that is only the escape character continues; trailing blanks after it are allowed.
    let ast = parse("FROM a\nRUN x \\  \t\n\\\ny\n").unwrap();
    assert_eq!(ast.children[1].args, ["x y"]);
    // Flags stop at the first word without `--`, and `--` itself is dropped.
    let ast = parse("FROM --platform=$BUILDPLATFORM a AS b\nCOPY --from=b -- --odd /x\n").unwrap();
    assert_eq!(ast.children[0].flags, ["--platform=$BUILDPLATFORM"]);
    assert_eq!(ast.children[1].flags, ["--from=b"]);
    assert_eq!(ast.children[1].args, ["--odd", "/x"]);
}

#[test]
fn deep_nesting_is_bounded() {
    // ONBUILD chains parse (the typed layer rejects them) up to a limit.
    let ast = parse("FROM a\nONBUILD ONBUILD RUN x\n").unwrap();
    assert_eq!(ast.children[1].dump(), "(onbuild (onbuild (run \"x\")))");
    let deep = format!("FROM a\n{}RUN x\n", "ONBUILD ".repeat(100_000));
    assert_eq!(err(&deep), "2:65: ONBUILD nested too deeply");
    // Absurdly nested `${` on a heredoc line: no crash, and no heredoc.
    let deep = format!("FROM a\nRUN <<EOF {}\nCMD x\n", "${a:-".repeat(100_000));
    assert_eq!(parse(&deep).unwrap().children[1].heredocs, []);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Spans stay inside the text and never run backwards.
    fn check_spans(text: &str, ast: &Ast) {
        let lines = text.split_inclusive('\n').count().max(1);
        let mut last = 0;
        for n in &ast.children {
            let s = n.span;
            assert!(s.start.line >= 1 && s.start.column >= 1, "{s:?}");
            assert!(
                s.start.line <= s.end_line && s.end_line <= lines,
                "{s:?} of {lines} lines"
            );
            assert!(s.start.line > last, "instructions overlap: {s:?}");
            last = s.end_line;
        }
    }

    fn run(text: &str) {
        if let Ok(ast) = parse(text) {
            check_spans(text, &ast);
            let _ = ast.dump();
        }
    }

    /// Pieces of Dockerfile syntax for the structured fuzz case.
    const PIECES: &[&str] = &[
        "FROM a\n",
        "RUN ",
        "COPY ",
        "ONBUILD ",
        "ENV ",
        "HEALTHCHECK ",
        "<<EOF",
        "<<-'E'",
        "EOF\n",
        "\tE\n",
        "\\\n",
        "`\n",
        "# escape=`\n",
        "# syntax=x\n",
        "#\n",
        "--f=\"a b\" ",
        "-- ",
        "[\"a\", \"b\"]",
        "[1]",
        "${",
        "$x",
        "'",
        "\"",
        "=",
        " ",
        "\r\n",
        "\n",
        "é",
        "\u{feff}",
        "\u{a0}",
        "k=v",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            run(&s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            run(&String::from_utf8_lossy(&b));
        }

        #[test]
        fn dockerfile_like_text_never_panics(
            parts in proptest::collection::vec(proptest::sample::select(PIECES), 0..40)
        ) {
            run(&parts.concat());
        }
    }
}
