//! Usage errors in the docker CLI's words. Where clap would say
//! "unexpected argument '--foo' found" and tip `-- --foo`, hoist says what
//! `docker buildx build --foo` says (cobra's `unknown flag: --foo` and
//! `See 'docker buildx build --help'.`), with clap's did-you-mean when a
//! flag is close. Exit code 2, as every other usage error.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Exit code of a usage error (clap's, kept for every usage error).
pub const EXIT: i32 = 2;

/// The message for an unknown flag, or `None` when the error is another
/// kind (clap's own message is then printed).
pub fn unknown_flag(err: &clap::Error) -> Option<String> {
    if err.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let arg = match err.get(ContextKind::InvalidArg)? {
        ContextValue::String(s) => s.clone(),
        _ => return None,
    };
    let flag = arg.split_once('=').map_or(arg.as_str(), |(f, _)| f);
    let mut msg = if flag.starts_with("--") && flag.len() > 2 {
        format!("error: unknown flag: {flag}\n")
    } else if let Some(short) = flag.strip_prefix('-').filter(|s| !s.is_empty()) {
        // cobra: `unknown shorthand flag: 'x' in -x`.
        let first = short.chars().next().unwrap_or('-');
        format!("error: unknown shorthand flag: '{first}' in {flag}\n")
    } else {
        // A stray positional argument: clap's words are right.
        return None;
    };
    let suggestion = match err.get(ContextKind::SuggestedArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::StyledStr(s)) => Some(s.to_string()),
        Some(ContextValue::Strings(list)) => list.first().cloned(),
        _ => None,
    };
    if let Some(s) = suggestion {
        msg.push_str(&format!("did you mean {s}?\n"));
    }
    msg.push_str(&format!("See '{} --help'.", command_path(err)));
    Some(msg)
}

/// `hoist build` from clap's usage line (`Usage: hoist build [OPTIONS] …`).
fn command_path(err: &clap::Error) -> String {
    let usage = match err.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(s)) => s.to_string(),
        _ => return "hoist".to_string(),
    };
    let line = usage.lines().next().unwrap_or("");
    let line = line.trim().strip_prefix("Usage:").unwrap_or(line).trim();
    let words: Vec<&str> = line
        .split_whitespace()
        .take_while(|w| {
            !w.starts_with(['[', '<', '-'])
                && w.chars().any(|c| c.is_ascii_lowercase())
                && !w.contains("...")
        })
        .collect();
    if words.is_empty() {
        "hoist".to_string()
    } else {
        words.join(" ")
    }
}
