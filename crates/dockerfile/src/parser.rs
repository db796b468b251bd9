//! BuildKit's line-oriented Dockerfile parser (`parser.Parse`).
//!
//! The text is read line by line. Parser directives are taken from the top
//! ([`crate::directive`]); comment and blank lines are skipped; a line
//! ending in the escape character continues on the next one (comment and
//! blank lines inside a continuation are skipped, the latter with a
//! `NoEmptyContinuation` warning). Each joined line is one instruction: its
//! keyword, its `--flags` and its arguments split by the instruction's line
//! parser ([`crate::line_parsers`]). `RUN`, `COPY` and `ADD` may then take
//! heredoc bodies from the lines that follow ([`crate::heredoc`]).
//!
//! Differences from BuildKit: unknown instructions are rejected here (BuildKit
//! rejects them one layer up), so is an instruction that is nothing but a
//! line continuation; heredocs of an `ONBUILD` trigger are attached to the
//! trigger node (`sub`), not to the `ONBUILD` node, and their `<<-` bodies
//! come with the leading tabs already removed; `ONBUILD` may nest at most 8
//! deep; an indented comment is kept as written after its `#` (BuildKit
//! drops only the first byte of the line); the span of an instruction
//! starts at its keyword, even after a line holding only the escape
//! character; lines have no length limit.

use crate::ast::{Ast, Node, Pos, Span, Warning};
use crate::directive::{self, DirectiveParser};
use crate::error::{Error, Result};
use crate::heredoc;
use crate::line_parsers;

/// The instructions hoist knows (lower case).
pub const INSTRUCTIONS: [&str; 18] = [
    "from",
    "run",
    "cmd",
    "label",
    "maintainer",
    "expose",
    "env",
    "add",
    "copy",
    "entrypoint",
    "volume",
    "user",
    "workdir",
    "arg",
    "onbuild",
    "stopsignal",
    "healthcheck",
    "shell",
];

/// Where a piece of a joined (continued) line came from.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Byte offset in the joined line.
    offset: usize,
    line: usize,
    /// 1-based column (in characters) of the segment's first character.
    column: usize,
}

/// One joined instruction line, with what the line parsers need to know.
pub(crate) struct LineCtx<'a> {
    /// The escape character in force.
    pub escape: char,
    full: &'a str,
    segments: &'a [Segment],
    /// How many `ONBUILD`s enclose the instruction being split.
    nesting: std::cell::Cell<usize>,
}

/// How many `ONBUILD`s may nest (`ONBUILD ONBUILD ...`) before the parser
/// gives up; BuildKit has no limit here, but its next layer rejects any
/// nesting.
const MAX_ONBUILD_NESTING: usize = 8;

impl LineCtx<'_> {
    /// The source position of `part`, a slice of the joined line.
    pub fn pos_of(&self, part: &str) -> Pos {
        let offset = (part.as_ptr() as usize)
            .checked_sub(self.full.as_ptr() as usize)
            .filter(|&o| o <= self.full.len())
            .unwrap_or(0);
        self.pos_at(offset)
    }

    /// The source position of byte `offset` of the joined line.
    pub fn pos_at(&self, offset: usize) -> Pos {
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.offset <= offset)
            .or_else(|| self.segments.first())
            .copied()
            .unwrap_or(Segment {
                offset: 0,
                line: 1,
                column: 1,
            });
        let chars = self
            .full
            .get(seg.offset..offset)
            .map_or(0, |s| s.chars().count());
        Pos {
            line: seg.line,
            column: seg.column + chars,
        }
    }
}

/// `newNodeFromLine`: split one instruction line into a [`Node`]. `line` is
/// a slice of `ctx`'s joined line (for `ONBUILD`, the trigger's part).
pub(crate) fn node_from_line(
    line: &str,
    ctx: &LineCtx<'_>,
    prev_comment: Vec<String>,
) -> Result<Node> {
    let (cmd, flags, rest) = line_parsers::split_command(line, ctx.escape);
    let pos = ctx.pos_of(cmd);
    if cmd.is_empty() {
        return Err(Error::new(
            "empty instruction after a line continuation",
            pos,
        ));
    }
    let keyword = cmd.to_lowercase();
    if !INSTRUCTIONS.contains(&keyword.as_str()) {
        let mut msg = format!("unknown instruction: {cmd}");
        if let Some(best) = crate::flags::suggest(&keyword, INSTRUCTIONS.iter().copied()) {
            msg.push_str(&format!(" (did you mean {}?)", best.to_uppercase()));
        }
        return Err(Error::new(msg, pos));
    }
    if keyword == "onbuild" && ctx.nesting.get() >= MAX_ONBUILD_NESTING {
        return Err(Error::new("ONBUILD nested too deeply", pos));
    }
    ctx.nesting.set(ctx.nesting.get() + 1);
    let parsed = line_parsers::dispatch(&keyword, rest, ctx);
    ctx.nesting.set(ctx.nesting.get().saturating_sub(1));
    let parsed = parsed.map_err(|mut e| {
        if e.pos.line == 0 {
            e.pos = pos;
        }
        e
    })?;
    Ok(Node {
        keyword,
        flags,
        args: parsed.args,
        sub: parsed.sub.map(Box::new),
        json: parsed.json,
        heredocs: Vec::new(),
        original: line.to_string(),
        span: Span {
            start: pos,
            end_line: pos.line,
        },
        prev_comment,
    })
}

/// The physical lines of the text, line endings kept, numbered from 1.
struct Lines<'a> {
    iter: std::str::SplitInclusive<'a, char>,
    number: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let line = self.iter.next()?;
        self.number += 1;
        Some((self.number, line))
    }
}

/// BuildKit's `trimNewline`.
fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// BuildKit's `isComment`: `#` after optional white space.
fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// BuildKit's `trimContinuationCharacter`: a line ending in the escape
/// character (then optional blanks) continues, unless the escape character
/// is itself escaped. Returns the line without it, and whether the
/// instruction ends here.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    let Some(before) = t.strip_suffix(escape) else {
        return (line, true);
    };
    match before.chars().last() {
        None => ("", false),
        Some(c) if c == escape => (line, true),
        Some(_) => (before, false),
    }
}

/// Parse Dockerfile text into its untyped syntax tree.
///
/// Positions are 1-based lines and character columns. Errors name the
/// offending line and column; an empty file (or one with only comments) is
/// `file with no instructions` with no position.
pub fn parse(text: &str) -> Result<Ast> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = Lines {
        iter: text.split_inclusive('\n'),
        number: 0,
    };
    let mut directives = DirectiveParser::new();
    let mut ast = Ast {
        children: Vec::new(),
        escape: '\\',
        directives: Vec::new(),
        warnings: Vec::new(),
    };
    let mut comments: Vec<String> = Vec::new();

    while let Some((number, raw)) = lines.next() {
        let trimmed = trim_newline(raw);
        let lead = trimmed.trim_start();
        let column = trimmed[..trimmed.len() - lead.len()].chars().count() + 1;
        let here = Pos {
            line: number,
            column,
        };
        if let Some(comment) = lead.strip_prefix('#') {
            let comment = comment.trim();
            if comment.is_empty() {
                comments.clear();
            } else {
                comments.push(comment.to_string());
            }
        }
        if !directives.is_done() {
            match directives.parse_line(lead) {
                Err(e) => return Err(Error::new(e.to_string(), here)),
                Ok(Some(d)) => {
                    if d.name == "escape" {
                        ast.escape = directive::escape_token(&d.value)
                            .map_err(|e| Error::new(e.to_string(), here))?;
                    }
                    if d.name == "syntax" && !directive::is_builtin_syntax(&d.value) {
                        ast.warnings.push(Warning {
                            rule: "UnsupportedSyntax",
                            message: format!(
                                "ignoring syntax directive '{}': hoist always uses its built-in Dockerfile front end",
                                d.value
                            ),
                            line: number,
                        });
                    }
                    ast.directives.push((d.name, d.value));
                    comments.pop();
                }
                Ok(None) => {}
            }
        }
        if lead.starts_with('#') {
            continue;
        }
        let (first, mut ended) = trim_continuation(lead, ast.escape);
        if ended && first.is_empty() {
            continue;
        }

        let mut joined = first.to_string();
        let mut segments = vec![Segment {
            offset: 0,
            line: number,
            column,
        }];
        let mut end_line = number;
        let mut empty_continuation = None;
        while !ended {
            let Some((n, raw)) = lines.next() else { break };
            end_line = n;
            let t = trim_newline(raw);
            if is_comment(t) {
                continue;
            }
            if t.trim_start().is_empty() {
                empty_continuation.get_or_insert(n);
                continue;
            }
            let (part, e) = trim_continuation(t, ast.escape);
            segments.push(Segment {
                offset: joined.len(),
                line: n,
                column: 1,
            });
            joined.push_str(part);
            ended = e;
        }
        if let Some(line) = empty_continuation {
            ast.warnings.push(Warning {
                rule: "NoEmptyContinuation",
                message: "empty continuation line (empty continuation lines will become errors in a future release)"
                    .to_string(),
                line,
            });
        }

        let ctx = LineCtx {
            escape: ast.escape,
            full: &joined,
            segments: &segments,
            nesting: std::cell::Cell::new(0),
        };
        let mut node = node_from_line(&joined, &ctx, std::mem::take(&mut comments))?;
        if joined.contains("<<")
            && let Some(target) = heredoc::heredoc_target(&mut node)
        {
            let markers = heredoc::heredocs_from_line(&joined)
                .map_err(|e| Error::new(e.to_string(), here))?;
            for marker in markers {
                let mut doc = marker.heredoc;
                let mut terminated = false;
                for (n, raw) in lines.by_ref() {
                    end_line = n;
                    if heredoc::is_terminator(raw, &doc) {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(raw);
                }
                if !terminated {
                    let message = format!(
                        "unterminated heredoc: no line {} ends it",
                        crate::ast::go_quote(&doc.name)
                    );
                    return Err(Error::new(message, ctx.pos_at(marker.offset)));
                }
                if doc.chomp {
                    doc.content = heredoc::chomp_content(&doc.content);
                }
                target.heredocs.push(doc);
            }
        }
        node.span.end_line = end_line;
        if let Some(sub) = node.sub.as_deref_mut() {
            sub.span.end_line = end_line;
        }
        ast.children.push(node);
    }

    if ast.children.is_empty() {
        return Err(Error::whole_file("file with no instructions"));
    }
    Ok(ast)
}
