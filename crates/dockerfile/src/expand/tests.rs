//! Unit tests for the expander: every operator and error, the options, the
//! variable bookkeeping, and property tests that no input panics.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;

use super::*;

fn env() -> Vec<(String, String)> {
    [
        ("V", "value"),
        ("EMPTY", ""),
        ("PATHS", "/usr/local/bin/tool.tar.gz"),
        ("SPACED", "  a  b "),
        ("KOREAN", "한국어"),
        ("STAR", "*"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn word(input: &str) -> String {
    match ShellLex::new('\\').process_word(input, &env()) {
        Ok(word) => word,
        Err(e) => panic!("{input:?} failed: {e}"),
    }
}

fn words(input: &str) -> Vec<String> {
    match ShellLex::new('\\').process_words(input, &env()) {
        Ok(words) => words,
        Err(e) => panic!("{input:?} failed: {e}"),
    }
}

fn error(input: &str) -> String {
    match ShellLex::new('\\').process_word(input, &env()) {
        Ok(word) => panic!("{input:?} should fail, gave {word:?}"),
        Err(e) => e.message,
    }
}

#[test]
fn plain_variables() {
    assert_eq!(word("$V"), "value");
    assert_eq!(word("${V}"), "value");
    assert_eq!(word("a${V}b"), "avalueb");
    assert_eq!(word("$Vx"), "");
    assert_eq!(word("$V.x"), "value.x");
    assert_eq!(word("$UNSET"), "");
    assert_eq!(word("$"), "$");
    assert_eq!(word("$.$-x"), "$.x");
    assert_eq!(word("$KOREAN/$KOREAN"), "한국어/한국어");
}

#[test]
fn default_operators() {
    assert_eq!(word("${UNSET:-d}"), "d");
    assert_eq!(word("${EMPTY:-d}"), "d");
    assert_eq!(word("${V:-d}"), "value");
    assert_eq!(word("${UNSET-d}"), "d");
    assert_eq!(word("${EMPTY-d}"), "");
    assert_eq!(word("${V-d}"), "value");
    assert_eq!(word("${UNSET:-${ALSO:-${V}}}"), "value");
    assert_eq!(word("${UNSET:-'a b' \"$V\"}"), "a b value");
}

#[test]
fn alternative_operators() {
    assert_eq!(word("${UNSET:+a}"), "");
    assert_eq!(word("${EMPTY:+a}"), "");
    assert_eq!(word("${V:+a}"), "a");
    assert_eq!(word("${UNSET+a}"), "");
    assert_eq!(word("${EMPTY+a}"), "a");
    assert_eq!(word("${V+a$V}"), "avalue");
}

#[test]
fn required_operators() {
    assert_eq!(word("${V:?msg}"), "value");
    assert_eq!(word("${V?msg}"), "value");
    assert_eq!(word("${EMPTY?msg}"), "");
    assert_eq!(
        error("${UNSET:?custom $V here}"),
        "failed to process \"${UNSET:?custom $V here}\": UNSET: custom value here"
    );
    assert!(error("${EMPTY:?custom}").ends_with("EMPTY: custom"));
    assert!(error("${UNSET?custom}").ends_with("UNSET: custom"));
    assert!(error("${UNSET?}").ends_with("UNSET: is not allowed to be unset"));
    assert!(error("${UNSET:?}").ends_with("UNSET: is not allowed to be unset"));
    assert!(error("${EMPTY:?}").ends_with("EMPTY: is not allowed to be empty"));
}

#[test]
fn prefix_and_suffix_removal() {
    assert_eq!(word("${PATHS#*/}"), "usr/local/bin/tool.tar.gz");
    assert_eq!(word("${PATHS##*/}"), "tool.tar.gz");
    assert_eq!(word("${PATHS%.*}"), "/usr/local/bin/tool.tar");
    assert_eq!(word("${PATHS%%.*}"), "/usr/local/bin/tool");
    assert_eq!(word("${PATHS#/usr}"), "/local/bin/tool.tar.gz");
    assert_eq!(word("${PATHS#nomatch}"), "/usr/local/bin/tool.tar.gz");
    assert_eq!(word("${PATHS#}"), "/usr/local/bin/tool.tar.gz");
    assert_eq!(word("${PATHS%?z}"), "/usr/local/bin/tool.tar.");
    assert_eq!(word("${KOREAN#?}"), "국어");
    assert_eq!(word("${KOREAN%?}"), "한국");
    assert_eq!(word("${UNSET#x}"), "");
    // Escaped wildcards are literal; brackets always are.
    assert_eq!(word("${STAR#\\*}"), "");
    assert_eq!(word("${STAR#\\?}"), "*");
    assert_eq!(word("${PATHS#[/]}"), "/usr/local/bin/tool.tar.gz");
    // A pattern from a variable is a pattern.
    assert_eq!(word("${PATHS##$STAR/}"), "tool.tar.gz");
}

#[test]
fn replacement() {
    assert_eq!(word("${PATHS/o/0}"), "/usr/l0cal/bin/tool.tar.gz");
    assert_eq!(word("${PATHS//o/0}"), "/usr/l0cal/bin/t00l.tar.gz");
    assert_eq!(word("${PATHS//\\//:}"), ":usr:local:bin:tool.tar.gz");
    assert_eq!(word("${PATHS/*\\//}"), "tool.tar.gz");
    assert_eq!(word("${PATHS/nomatch/x}"), "/usr/local/bin/tool.tar.gz");
    assert_eq!(word("${V///}"), "value");
    assert_eq!(word("${UNSET/x/y}"), "");
    assert_eq!(word("${KOREAN/국/-}"), "한-어");
    // BuildKit quirks: the replacement keeps its escapes, and in the `//`
    // form `$0` (spelled so it survives expansion) is the match.
    assert_eq!(word("${V/a/\\b}"), "v\\blue");
    assert_eq!(word("${V//a/<'$0'>}"), "v<a>lue");
    assert_eq!(word("${V/a/<'$0'>}"), "v<$0>lue");
}

#[test]
fn syntax_errors() {
    let cases = [
        ("${", "syntax error: missing '}'"),
        ("${V", "syntax error: missing '}'"),
        ("${V:-x", "syntax error: missing '}'"),
        ("${V:", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${:-x}", "syntax error: bad substitution"),
        ("${{V}", "syntax error: bad substitution"),
        ("${.}", "unsupported modifier (.) in substitution"),
        ("${V=x}", "unsupported modifier (=) in substitution"),
        ("${V:=x}", "unsupported modifier (:=) in substitution"),
        ("${V:#x}", "unsupported modifier (:#) in substitution"),
        ("${V:%x}", "unsupported modifier (:%) in substitution"),
        ("${V/x", "syntax error: missing '/' in ${}"),
        ("${V//}", "syntax error: missing '/' in ${}"),
        ("${V/x/y", "syntax error: missing '}'"),
        (
            "${V#\\q}",
            "invalid pattern (\\q) in substitution: invalid escape '\\q'",
        ),
        (
            "'abc",
            "unexpected end of statement while looking for matching single-quote",
        ),
        (
            "\"abc",
            "unexpected end of statement while looking for matching double-quote",
        ),
        (
            "\"abc\\",
            "unexpected end of statement while looking for matching double-quote",
        ),
        // Inside `${...}`, running off the end always reads as a missing `}`.
        ("${V:-'x}", "syntax error: missing '}'"),
        ("${V:-\"x}\"", "syntax error: missing '}'"),
    ];
    for (input, reason) in cases {
        let message = error(input);
        let prefix = format!("failed to process {}: ", unicode::go_quote(input));
        assert_eq!(
            message.strip_prefix(&prefix),
            Some(reason),
            "{input:?}: {message}"
        );
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let ok = format!(
        "{}x{}",
        "${U:-".repeat(MAX_NESTING),
        "}".repeat(MAX_NESTING)
    );
    assert_eq!(word(&ok), "x");
    let deep = format!("{}x{}", "${U:-".repeat(100_000), "}".repeat(100_000));
    assert!(error(&deep).contains("nested more than"));
    let quoted = "\"${U:-".repeat(100_000);
    assert!(ShellLex::new('\\').process_words(&quoted, &env()).is_err());
}

#[test]
fn quotes_and_escapes() {
    assert_eq!(word("'$V \\x'"), "$V \\x");
    assert_eq!(word("\"$V \\x \\$V \\\" \\\\\""), "value \\x $V \" \\");
    assert_eq!(word("a\\ b\\$V\\'"), "a b$V'");
    assert_eq!(word("trailing\\"), "trailing");
    assert_eq!(word("\"it's\"'\"'"), "it's\"");
    let tick = ShellLex::new('`');
    assert_eq!(tick.process_word("a`$V`\\b", &env()).unwrap(), "a$V\\b");
    assert_eq!(
        tick.process_word("\"`\"`$V\\x\"", &env()).unwrap(),
        "\"$V\\x"
    );
}

#[test]
fn special_and_positional_parameters() {
    for p in [
        "$0", "$1", "$9", "$10", "$001", "$@", "$*", "$#", "$?", "$-", "$$", "$!",
    ] {
        assert_eq!(word(p), "", "{p}");
    }
    assert_eq!(word("$10x"), "x");
    assert_eq!(word("$@@"), "@");
    assert_eq!(word("${1:-one}"), "one");
    assert_eq!(word("${#:-count}"), "count");
    let positional = vec![("1".to_owned(), "first".to_owned())];
    assert_eq!(
        ShellLex::new('\\')
            .process_word("$1${1}", &positional)
            .unwrap(),
        "firstfirst"
    );
}

#[test]
fn word_splitting() {
    assert_eq!(words("a  b\tc\n d"), ["a", "b", "c", "d"]);
    assert_eq!(words("x$SPACED"), ["x", "a", "b"]);
    assert_eq!(words("x\"$SPACED\"y"), ["x  a  b y"]);
    assert_eq!(words("a \"\" b ''"), ["a", "b"]);
    assert_eq!(words("a\\ b 'c d'"), ["a b", "c d"]);
    assert_eq!(words("   "), Vec::<String>::new());
    assert_eq!(words("<< EOF x <<-\tE"), ["<< EOF", "x", "<<-", "E"]);
    // Text before an operator expansion stays in its word (BuildKit loses it).
    assert_eq!(words("a${UNSET:-b}c d"), ["abc", "d"]);
    assert_eq!(word("a  b"), "a  b");
}

#[test]
fn options() {
    let e = env();
    let raw_quotes = ShellLex::new('\\').raw_quotes(true);
    assert_eq!(
        raw_quotes.process_word("'a'\"$V\"", &e).unwrap(),
        "'a'\"value\""
    );
    let raw_escapes = ShellLex::new('\\').raw_escapes(true);
    assert_eq!(
        raw_escapes.process_word("a\\ b\\$V", &e).unwrap(),
        "a\\ b\\$V"
    );
    let skip = ShellLex::new('\\').skip_unset_env(true);
    assert_eq!(
        skip.process_word("$U ${U} ${U:-$V} ${U#x} ${U//a/b} $V ${V:-x}", &e)
            .unwrap(),
        "$U ${U} ${U:-value} ${U#x} ${U//a/b} value value"
    );
    assert_eq!(skip.process_word("${U:=x}", &e).unwrap(), "${U:=x}");
    assert!(skip.process_word("${EMPTY:?}", &e).is_err());
    let no_quotes = ShellLex::new('\\').skip_process_quotes(true);
    assert_eq!(
        no_quotes.process_word("'$V' \"\\$V\"", &e).unwrap(),
        "'value' \"$V\""
    );
    assert_eq!(ShellLex::default().escape(), '\\');
}

#[test]
fn matches_are_reported() {
    let e = env();
    let lex = ShellLex::new('\\');
    let m = lex
        .process_word_with_matches("$V ${UNSET:-$EMPTY} ${V:+$OTHER} x", &e)
        .unwrap();
    assert_eq!(m.result, "value   x");
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(m.used, set(&["EMPTY", "V"]));
    assert_eq!(m.unmatched, set(&["OTHER", "UNSET"]));
    let none = lex.process_word_with_matches("plain", &e).unwrap();
    assert!(none.used.is_empty() && none.unmatched.is_empty());
}

#[test]
fn lookups() {
    let lex = ShellLex::new('\\');
    let list = vec![
        ("A".to_owned(), "1".to_owned()),
        ("A".to_owned(), "2".to_owned()),
    ];
    assert_eq!(lex.process_word("$A", &list).unwrap(), "2");
    assert_eq!(lex.process_word("$A", list.as_slice()).unwrap(), "2");
    let map: BTreeMap<String, String> = list.iter().cloned().collect();
    assert_eq!(lex.process_word("$A", &map).unwrap(), "2");
    let hash: HashMap<String, String> = list.iter().cloned().collect();
    assert_eq!(lex.process_word("$A", &hash).unwrap(), "2");
    assert_eq!(lex.process_word("$A", &&map).unwrap(), "2");
}

#[test]
fn non_ascii_and_bom() {
    assert_eq!(
        word("안녕\\t하세요 ${KOREAN:+$KOREAN}"),
        "안녕t하세요 한국어"
    );
    assert_eq!(word("${한:-기본}"), "기본");
    assert_eq!(word("\u{feff}$V"), "value");
    assert_eq!(word("a\u{feff}"), "a\u{feff}");
    assert!(error("\"\u{0}\n").starts_with("failed to process \"\\\"\\x00\\n\": "));
}

/// Strings biased toward the characters the lexer cares about.
fn shellish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("$".to_owned()),
        Just("${".to_owned()),
        Just("}".to_owned()),
        Just("{".to_owned()),
        Just("V".to_owned()),
        Just("KOREAN".to_owned()),
        Just("EMPTY".to_owned()),
        Just("1".to_owned()),
        Just("\\".to_owned()),
        Just("`".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("<<".to_owned()),
        Just(" ".to_owned()),
        Just("한".to_owned()),
        "[:#%/?*+=@!-]{1,2}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

fn lexers() -> impl Strategy<Value = ShellLex> {
    (prop_oneof![Just('\\'), Just('`')], any::<[bool; 4]>()).prop_map(|(escape, [q, e, s, p])| {
        ShellLex::new(escape)
            .raw_quotes(q)
            .raw_escapes(e)
            .skip_unset_env(s)
            .skip_process_quotes(p)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>(), lex in lexers()) {
        let e = env();
        let one = lex.process_word(&input, &e);
        let many = lex.process_words(&input, &e);
        prop_assert_eq!(one.is_ok(), many.is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), lex in lexers()) {
        let input = String::from_utf8_lossy(&bytes);
        let e = env();
        let _ = lex.process_word(&input, &e);
        let _ = lex.process_words(&input, &e);
    }

    #[test]
    fn shellish_strings_never_panic(input in shellish(), lex in lexers()) {
        let e = env();
        let one = lex.process_word_with_matches(&input, &e);
        let many = lex.process_words(&input, &e);
        prop_assert_eq!(one.is_ok(), many.is_ok());
    }

    #[test]
    fn the_literal_shortcut_agrees_with_the_processor(input in shellish(), lex in lexers()) {
        if let Some(shortcut) = super::lexer::literal(&lex, &input) {
            let e = env();
            let outcome = super::lexer::run(&lex, &input, &e);
            prop_assert_eq!(outcome.result.map(|(word, _)| word), Ok(shortcut));
        }
    }

    #[test]
    fn plain_text_is_unchanged(input in "[^$'\"\\\\<\u{feff}]*") {
        let e = env();
        let lex = ShellLex::new('\\');
        prop_assert_eq!(lex.process_word(&input, &e).ok(), Some(input.clone()));
        let split: Vec<String> = input.split_whitespace().map(str::to_owned).collect();
        prop_assert_eq!(lex.process_words(&input, &e).ok(), Some(split));
    }
}
