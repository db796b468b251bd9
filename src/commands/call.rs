//! `hoist build --call=METHOD[,format=json]`: buildx's frontend methods.
//! `build` (the default) builds; `outline` prints the target's build args,
//! secrets and ssh agents; `targets` lists the stages; `subrequests.describe`
//! lists the methods. Text as buildx prints it (Go's tabwriter columns),
//! JSON as BuildKit's subrequest results (`sources` holds the Dockerfile,
//! base64, as Go marshals bytes). Nothing is built, pulled or run.

use anyhow::{Result, bail};
use base64::Engine;
use hoist_dockerfile::outline::{self, Outline, Target};
use hoist_dockerfile::{Ast, BuildOptions, Dockerfile};
use serde::Serialize;

/// A parsed `--call` value; `None` for `build`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Outline,
    Targets,
    Describe,
}

/// The methods this front end answers, as `subrequests.describe` lists them.
const METHODS: [(&str, &str, &str); 3] = [
    (
        "outline",
        "1.0.0",
        "List all parameters current build target supports",
    ),
    (
        "targets",
        "1.0.0",
        "List all targets current build supports",
    ),
    (
        "subrequests.describe",
        "1.0.0",
        "List available subrequest types",
    ),
];

/// Parse `--call` as buildx does: comma-separated, one method name and
/// `format=json|text`; `build` means an ordinary build.
pub fn parse(value: &str) -> Result<Option<Call>> {
    let mut name: Option<&str> = None;
    let mut json = false;
    for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match field.split_once('=') {
            Some(("format", "json")) => json = true,
            Some(("format", "text" | "")) => json = false,
            Some(("format", f)) => bail!("--call: unknown format {f:?} (json or text)"),
            Some(_) => bail!("--call: invalid print field: {field}"),
            None if name.is_some() => bail!("--call: invalid print value: {value}"),
            None => name = Some(field),
        }
    }
    let method = match name.unwrap_or("build") {
        "build" => return Ok(None),
        "outline" => Method::Outline,
        "targets" => Method::Targets,
        "subrequests.describe" => Method::Describe,
        "check" | "lint" => bail!(
            "--call=check: hoist has no build checks yet (they come with the supply-chain work); \
             methods: build, outline, targets, subrequests.describe"
        ),
        other => bail!(
            "--call={other}: unsupported frontend method; methods: build, outline, targets, subrequests.describe"
        ),
    };
    Ok(Some(Call { method, json }))
}

/// Answer `call` for a parsed Dockerfile; the text for stdout.
pub fn answer(
    call: &Call,
    text: &str,
    ast: &Ast,
    df: &Dockerfile,
    opts: &BuildOptions,
) -> Result<String, hoist_dockerfile::Error> {
    let sources = vec![base64::engine::general_purpose::STANDARD.encode(text)];
    Ok(match call.method {
        Method::Outline => {
            let o = outline::outline(ast, df, opts)?;
            if call.json {
                json(&OutlineResult {
                    outline: &o,
                    sources,
                })
            } else {
                outline_text(&o)
            }
        }
        Method::Targets => {
            let targets = outline::targets(ast, df);
            if call.json {
                json(&TargetsResult {
                    targets: &targets,
                    sources,
                })
            } else {
                targets_text(&targets)
            }
        }
        Method::Describe => {
            if call.json {
                let list: Vec<_> = METHODS
                    .iter()
                    .map(|(name, version, description)| {
                        serde_json::json!({
                            "name": format!("frontend.{name}"),
                            "version": version,
                            "type": "type.rpc",
                            "description": description,
                        })
                    })
                    .collect();
                json(&list)
            } else {
                let mut t = Table::new(1);
                t.row(["NAME", "VERSION", "DESCRIPTION"]);
                for (name, version, description) in METHODS {
                    t.row([name, version, description]);
                }
                t.render()
            }
        }
    })
}

#[derive(Serialize)]
struct OutlineResult<'a> {
    #[serde(flatten)]
    outline: &'a Outline,
    sources: Vec<String>,
}

#[derive(Serialize)]
struct TargetsResult<'a> {
    targets: &'a [Target],
    sources: Vec<String>,
}

fn json(v: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// buildx's `PrintOutline`.
fn outline_text(o: &Outline) -> String {
    let mut out = String::new();
    if !o.name.is_empty() || !o.description.is_empty() {
        let mut t = Table::new(1);
        let name = if o.name.is_empty() {
            "(default)"
        } else {
            &o.name
        };
        t.row(["TARGET:", name]);
        if !o.description.is_empty() {
            t.row(["DESCRIPTION:", &o.description]);
        }
        out.push_str(&t.render());
        out.push('\n');
    }
    if !o.args.is_empty() {
        let mut t = Table::new(3);
        t.row(["BUILD ARG", "VALUE", "DESCRIPTION"]);
        for a in &o.args {
            t.row([&a.name, &a.value, &a.description]);
        }
        out.push_str(&t.render());
        out.push('\n');
    }
    for (head, list) in [("SECRET", &o.secrets), ("SSH", &o.ssh)] {
        if list.is_empty() {
            continue;
        }
        let mut t = Table::new(3);
        t.row([head, "REQUIRED"]);
        for r in list {
            t.row([r.name.as_str(), if r.required { "true" } else { "" }]);
        }
        out.push_str(&t.render());
        out.push('\n');
    }
    out
}

/// buildx's `PrintTargets`.
fn targets_text(targets: &[Target]) -> String {
    let mut t = Table::new(1);
    t.row(["TARGET".to_string(), "DESCRIPTION".to_string()]);
    for target in targets {
        let name = match (target.name.is_empty(), target.default) {
            (true, true) => "(default)".to_string(),
            (false, true) => format!("{} (default)", target.name),
            _ => target.name.clone(),
        };
        t.row([name, target.description.clone()]);
    }
    t.render()
}

/// Columns as Go's `text/tabwriter` with minwidth 0, tabwidth 0 and space
/// padding lays them out for these tables: every cell but a row's last is
/// padded to its column's widest cell plus `padding`; the last is not.
struct Table {
    padding: usize,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(padding: usize) -> Table {
        Table {
            padding,
            rows: Vec::new(),
        }
    }

    fn row<S: AsRef<str>, const N: usize>(&mut self, cells: [S; N]) {
        self.rows
            .push(cells.iter().map(|c| c.as_ref().to_string()).collect());
    }

    fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns.saturating_sub(1))
            .map(|c| {
                self.rows
                    .iter()
                    .filter(|r| r.len() > c + 1)
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
                    + self.padding
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            for (c, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c] - cell.chars().count();
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Ast, Dockerfile) {
        let ast = hoist_dockerfile::parse(text).unwrap();
        let df = Dockerfile::from_ast(&ast).unwrap();
        (ast, df)
    }

    /// buildx's documented `--call=outline` output for the docstring example
    /// (docs/reference/buildx_build.md, "Descriptions"). Go's tabwriter pads
    /// every cell followed by another, so the empty last cells leave spaces.
    #[test]
    fn outline_text_is_buildxs() {
        let text = "# syntax=docker/dockerfile:1\n\n# GO_VERSION sets the Go version for the build\nARG GO_VERSION=1.22\n\n# base-builder is the base stage for building the project\nFROM golang:${GO_VERSION} AS base-builder\n";
        let (ast, df) = load(text);
        let call = parse("outline").unwrap().unwrap();
        let out = answer(&call, text, &ast, &df, &BuildOptions::default()).unwrap();
        assert_eq!(
            out,
            "TARGET:      base-builder\n\
             DESCRIPTION: is the base stage for building the project\n\
             \n\
             BUILD ARG    VALUE   DESCRIPTION\n\
             GO_VERSION   1.22    sets the Go version for the build\n\
             \n"
        );
    }

    /// buildx's documented `--call=targets` layout: one space after the
    /// widest name, `(default)` after the last stage's name.
    #[test]
    fn targets_text_is_buildxs() {
        let text = "# base is the base stage with build dependencies\nFROM scratch AS base\n# validate-upstream validates HTML output for upstream builds\nFROM base AS validate-upstream\n# release is an empty scratch image with only compiled assets\nFROM scratch AS release\n";
        let (ast, df) = load(text);
        let call = parse("targets").unwrap().unwrap();
        let out = answer(&call, text, &ast, &df, &BuildOptions::default()).unwrap();
        assert_eq!(
            out,
            "TARGET            DESCRIPTION\n\
             base              is the base stage with build dependencies\n\
             validate-upstream validates HTML output for upstream builds\n\
             release (default) is an empty scratch image with only compiled assets\n"
        );
    }

    #[test]
    fn call_values_parse_as_buildx_parses_them() {
        assert_eq!(parse("build").unwrap(), None);
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(
            parse("outline,format=json").unwrap(),
            Some(Call {
                method: Method::Outline,
                json: true
            })
        );
        assert!(parse("outline,targets").is_err());
        assert!(parse("outline,colour=red").is_err());
        let err = parse("nope").unwrap_err().to_string();
        assert!(err.contains("outline, targets"), "{err}");
    }

    #[test]
    fn json_results_carry_the_dockerfile_as_sources() {
        let text = "FROM scratch AS a\n";
        let (ast, df) = load(text);
        let call = parse("targets,format=json").unwrap().unwrap();
        let out = answer(&call, text, &ast, &df, &BuildOptions::default()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["targets"][0]["name"], "a");
        assert_eq!(v["targets"][0]["default"], true);
        assert_eq!(v["sources"][0], "RlJPTSBzY3JhdGNoIEFTIGEK");
    }
}
