//! `hoist build --progress tty|plain|rawjson`: the views read as buildx's.
//! tty is driven in a real terminal (a private tmux server) and its screen
//! read back; plain and rawjson are read from stderr.

use hoist_test_support::{bin, lab};

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use lab::{Lab, write};
use serde_json::Value;

/// A tmux server of its own (its socket named for this test process and
/// session), killed on drop.
struct Terminal {
    socket: String,
}

impl Terminal {
    /// Run `script` (sh) in a 120x40 terminal.
    fn start(name: &str, script: &str) -> Terminal {
        let t = Terminal {
            socket: format!("hoist-progress-{}-{name}", std::process::id()),
        };
        let status = Command::new("tmux")
            .args(["-L", &t.socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "120", "-y", "40", "sh", "-c", script])
            .status()
            .expect("tmux (Debian's tmux) is installed");
        assert!(status.success(), "tmux new-session failed");
        t
    }

    /// The screen now, as text.
    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-J"])
            .output()
            .unwrap();
        // `-J` joins wrapped lines and keeps trailing blanks: drop them.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect()
    }

    /// Wait until the screen shows `what` (at most two minutes); the screen.
    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let screen = self.screen();
            if screen.contains(what) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, keys: &str) {
        Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", keys])
            .status()
            .unwrap();
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The shell line that runs hoist on the lab's store as `lab::hoist` does.
fn hoist_line(lab: &Lab, args: &str) -> String {
    format!(
        "env -u SOURCE_DATE_EPOCH -u HOIST_ROOT DOCKER_CONFIG='{}' '{}' --root '{}' {args}",
        lab.root.join("docker-config").display(),
        env!("CARGO_BIN_EXE_hoist"),
        lab.root.display(),
    )
}

/// The screen line that names `step`.
fn line_of<'a>(screen: &'a str, step: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(step))
        .unwrap_or_else(|| panic!("no line for {step:?} on the screen:\n{screen}"))
}

/// Whether `word` is seconds as the views print them (`0.0s`, `12.3s`).
fn is_seconds(word: &str) -> bool {
    word.strip_suffix('s')
        .and_then(|n| n.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.len() == 1
        })
}

#[test]
fn tty_keeps_each_finished_step_and_a_failed_steps_output_on_screen() {
    // buildx's tty view: every step keeps a line, `CACHED` or done with its
    // time; a failed one is `ERROR`, and its output is printed again after
    // the frame (buildx's `------ > [step]: … ------` report).
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    write(&ctx, &[("Dockerfile", "FROM base:1\nRUN echo warm-up\n")]);
    lab.ok(&["build", "--progress", "plain", ctx.to_str().unwrap()]);
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1\n\
             RUN echo warm-up\n\
             RUN for i in 1 2 3 4 5; do echo \"many line $i\"; done\n\
             RUN echo first words; echo \"the reason\" >&2; exit 3\n",
        )],
    );
    let script = format!(
        "{}; echo EXIT=$?; sleep 600",
        hoist_line(&lab, &format!("build --progress tty '{}'", ctx.display()))
    );
    let term = Terminal::start("fail", &script);
    let screen = term.wait_for("EXIT=");
    assert!(screen.contains("EXIT=1"), "the build fails:\n{screen}");

    let from = line_of(&screen, "[stage-0] FROM docker.io/library/base:1");
    assert!(from.starts_with(" => "), "{screen}");
    assert!(from.contains(" DONE "), "{screen}");
    let cached = line_of(&screen, "[stage-0] RUN echo warm-up");
    assert!(
        cached.starts_with(" => CACHED [stage-0] RUN echo warm-up"),
        "{screen}"
    );
    assert!(
        is_seconds(cached.split_whitespace().last().unwrap()),
        "{screen}"
    );
    let done = line_of(&screen, "[stage-0] RUN for i in");
    let words: Vec<&str> = done.split_whitespace().collect();
    assert_eq!(words[words.len() - 2], "DONE", "{screen}");
    assert!(is_seconds(words[words.len() - 1]), "{screen}");
    let failed = line_of(&screen, "RUN echo first words");
    assert!(
        failed.starts_with(" => ERROR [stage-0] RUN echo first words"),
        "{screen}"
    );
    assert!(
        is_seconds(failed.split_whitespace().last().unwrap()),
        "{screen}"
    );
    // Finished steps show no output; the failed step's stays on screen.
    assert!(!screen.contains("# many line"), "{screen}");
    let report = screen
        .split_once(" > [stage-0] RUN echo first words")
        .unwrap_or_else(|| panic!("no error report:\n{screen}"))
        .1;
    let report = report.split("------").next().unwrap();
    let lines: Vec<&str> = report.lines().skip(1).collect();
    assert!(
        lines.iter().any(|l| l.ends_with(" first words")),
        "{screen}"
    );
    assert!(lines.iter().any(|l| l.ends_with(" the reason")), "{screen}");
}

#[test]
fn tty_shows_the_last_lines_of_a_running_step() {
    // buildx shows a running step's last lines under it (` => => # …`);
    // the step here prints and waits, so the screen can be read while it
    // runs, then the build is interrupted.
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1\n\
             RUN for i in 1 2 3 4 5 6 7 8 9; do echo \"tail line $i\"; done; sleep 300\n",
        )],
    );
    // The shell outlives the interrupt (its trap), to say hoist's status.
    let script = format!(
        "trap 'echo INT' INT; {}; echo EXIT=$?; sleep 600",
        hoist_line(&lab, &format!("build --progress tty '{}'", ctx.display()))
    );
    let term = Terminal::start("running", &script);
    let screen = term.wait_for(" => => # tail line 9");
    let lines: Vec<&str> = screen.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("[stage-0] RUN for i in"))
        .unwrap_or_else(|| panic!("no running step:\n{screen}"));
    assert!(
        !lines[at].contains("DONE") && !lines[at].contains("ERROR"),
        "{screen}"
    );
    // Its last six lines, in order, right under it.
    let tail: Vec<String> = (4..=9).map(|i| format!(" => => # tail line {i}")).collect();
    assert_eq!(lines[at + 1..at + 7].to_vec(), tail, "{screen}");
    assert!(!screen.contains("tail line 3"), "{screen}");
    term.keys("C-c");
    let screen = term.wait_for("EXIT=");
    assert!(screen.contains("EXIT=130"), "interrupted: {screen}");
    // buildx marks an interrupted step CANCELED and reports no output.
    assert!(
        line_of(&screen, "RUN for i in").starts_with(" => CANCELED [stage-0] RUN for i in"),
        "{screen}"
    );
    assert!(!screen.contains(" > [stage-0] RUN for i in"), "{screen}");
}

#[test]
fn plain_prints_each_output_line_with_the_steps_elapsed_seconds_and_expanded_names() {
    // BuildKit's plain printer: `#N 0.213 LINE`; steps named as BuildKit
    // names them, variables expanded (quotes kept) and `FROM ${BASE}` as
    // the image it resolves, fully qualified.
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "ARG BASE=base:1\n\
             FROM ${BASE}\n\
             ENV WHO=world\n\
             RUN echo \"hello $WHO\"; echo second line\n",
        )],
    );
    let c = ctx.to_str().unwrap();
    let (_, log) = lab.ok(&["build", "--progress", "plain", c]);
    assert!(
        log.lines()
            .any(|l| l == "#1 [stage-0] FROM docker.io/library/base:1"),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l == "#2 [stage-0] RUN echo \"hello world\"; echo second line"),
        "{log}"
    );
    let output: Vec<(&str, &str)> = log
        .lines()
        .filter_map(|l| l.strip_prefix("#2 "))
        .filter_map(|l| l.split_once(' '))
        .filter(|(t, _)| t.parse::<f64>().is_ok())
        .collect();
    let texts: Vec<&str> = output.iter().map(|(_, text)| *text).collect();
    assert!(texts.ends_with(&["hello world", "second line"]), "{log}");
    for (seconds, _) in &output {
        let (_, decimals) = seconds.split_once('.').unwrap();
        assert_eq!(decimals.len(), 3, "three decimals under 10 s: {log}");
    }
    assert!(log.lines().any(|l| l.starts_with("#2 DONE ")), "{log}");

    // Again: the step is CACHED, and BuildKit says no DONE after it.
    let (_, log) = lab.ok(&["build", "--progress", "plain", c]);
    assert!(log.lines().any(|l| l == "#2 CACHED"), "{log}");
    assert!(!log.contains("#2 DONE"), "{log}");
    assert!(!log.contains("hello world\n"), "{log}");
}

#[test]
fn plain_ends_a_failed_step_with_its_error_and_last_lines() {
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    write(
        &ctx,
        &[("Dockerfile", "FROM base:1\nRUN echo before; exit 3\n")],
    );
    let out = lab.hoist(&["build", "--progress", "plain", ctx.to_str().unwrap()]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.lines().any(|l| l
            == "#2 ERROR: process \"/bin/sh -c echo before; exit 3\" did not complete successfully: exit code: 3"),
        "{log}"
    );
    let report = log
        .split_once("------\n > [stage-0] RUN echo before; exit 3:\n")
        .unwrap_or_else(|| panic!("no error report:\n{log}"))
        .1;
    let report = report.split("------").next().unwrap();
    assert!(
        report.lines().any(|l| l
            .split_once(' ')
            .is_some_and(|(t, text)| t.parse::<f64>().is_ok() && text == "before")),
        "{log}"
    );
}

/// Every line of a rawjson stream as a `SolveStatus`; panics on one that
/// is not.
fn statuses(stream: &str) -> Vec<Value> {
    stream
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\nin:\n{stream}"));
            let o = v
                .as_object()
                .unwrap_or_else(|| panic!("not an object: {l}"));
            assert!(!o.is_empty(), "{l}");
            for key in o.keys() {
                assert!(
                    ["vertexes", "statuses", "logs", "warnings"].contains(&key.as_str()),
                    "not a SolveStatus field: {key} in {l}"
                );
            }
            v
        })
        .collect()
}

fn all<'a>(statuses: &'a [Value], field: &str) -> Vec<&'a Value> {
    statuses
        .iter()
        .filter_map(|s| s.get(field).and_then(Value::as_array))
        .flatten()
        .collect()
}

/// Whether `v` is an RFC 3339 UTC time as Go marshals one.
fn is_time(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|t| {
        t.len() >= 20
            && t.as_bytes()[10] == b'T'
            && t.ends_with('Z')
            && t[..4].parse::<u32>().is_ok()
    })
}

fn decoded_logs(logs: &[&Value], vertex: &str) -> String {
    logs.iter()
        .filter(|l| l["vertex"] == vertex)
        .map(|l| {
            assert!(is_time(l.get("timestamp")), "{l}");
            assert_eq!(l["stream"], 1, "{l}");
            let data = base64::engine::general_purpose::STANDARD
                .decode(l["data"].as_str().unwrap())
                .unwrap();
            String::from_utf8(data).unwrap()
        })
        .collect()
}

#[test]
fn rawjson_is_buildkits_solve_status_and_nothing_else() {
    // `buildx build --progress rawjson`: one `client.SolveStatus` a line
    // (vertexes, statuses, logs with base64 data), nothing else on stderr.
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "ARG BASE=base:1\nFROM ${BASE}\nLABEL a=1 \\\n\n  b=2\nRUN echo one; echo two >&2\nCOPY Dockerfile /\n",
        )],
    );
    let (stdout, stderr) = lab.ok(&[
        "build",
        "--progress",
        "rawjson",
        "-t",
        "json:1",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(stdout, "", "nothing on stdout without -q");
    let all_statuses = statuses(&stderr);
    let vertexes = all(&all_statuses, "vertexes");
    let by_name = |name: &str| -> Vec<&Value> {
        vertexes
            .iter()
            .copied()
            .filter(|v| v["name"] == name)
            .collect()
    };
    let run = by_name("[stage-0] RUN echo one; echo two >&2");
    assert!(run.len() >= 2, "started, then completed: {stderr}");
    let digest = run[0]["digest"].as_str().unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert!(run.iter().all(|v| v["digest"] == digest), "{stderr}");
    assert!(is_time(run[0].get("started")), "{stderr}");
    assert!(run[0].get("completed").is_none(), "{stderr}");
    let last = run.last().unwrap();
    assert!(is_time(last.get("completed")), "{stderr}");
    assert!(last.get("error").is_none(), "{stderr}");
    assert!(
        last.get("cached").is_none(),
        "a first build runs it: {stderr}"
    );
    // The FROM it follows is its input, named as the image it resolved.
    let from = by_name("[stage-0] FROM docker.io/library/base:1");
    assert!(!from.is_empty(), "{stderr}");
    assert_eq!(last["inputs"], serde_json::json!([from[0]["digest"]]));
    assert_eq!(
        decoded_logs(&all(&all_statuses, "logs"), digest)
            .lines()
            .filter(|l| !l.contains(": "))
            .collect::<Vec<_>>(),
        ["one", "two"],
        "the RUN's output (besides hoist's isolation and network notes): {stderr}"
    );
    // The image written and named: an `exporting to image` vertex's
    // statuses, as BuildKit's exporter reports them.
    let export = by_name("exporting to image");
    assert!(is_time(export.last().unwrap().get("completed")), "{stderr}");
    let ids: Vec<&str> = all(&all_statuses, "statuses")
        .iter()
        .filter(|s| s["vertex"] == export[0]["digest"])
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"naming to docker.io/library/json:1"),
        "{ids:?}"
    );

    // The Dockerfile's warning (an empty continuation line) is a
    // `warnings` entry, as BuildKit reports its lint warnings.
    let warned: Vec<String> = all(&all_statuses, "warnings")
        .iter()
        .map(|w| {
            let short = base64::engine::general_purpose::STANDARD
                .decode(w["short"].as_str().unwrap())
                .unwrap();
            String::from_utf8(short).unwrap()
        })
        .collect();
    assert!(
        warned
            .iter()
            .any(|w| w.starts_with("NoEmptyContinuation: ")),
        "{warned:?}"
    );

    // Again: every step cached.
    let (_, stderr) = lab.ok(&["build", "--progress", "rawjson", ctx.to_str().unwrap()]);
    let again = statuses(&stderr);
    let vertexes = all(&again, "vertexes");
    let run: Vec<&&Value> = vertexes
        .iter()
        .filter(|v| v["name"] == "[stage-0] RUN echo one; echo two >&2")
        .collect();
    assert_eq!(run.last().unwrap()["cached"], true, "{stderr}");
    assert_eq!(run.last().unwrap()["digest"], digest, "stable: {stderr}");
}

#[test]
fn rawjson_marks_a_failed_step_with_its_error() {
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    write(
        &ctx,
        &[("Dockerfile", "FROM base:1\nRUN echo why; exit 4\n")],
    );
    let out = lab.hoist(&["build", "--progress", "rawjson", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The stream, then the build's own error, as buildx ends with `ERROR: …`.
    let (stream, error) = stderr
        .split_once("\nerror: ")
        .unwrap_or_else(|| panic!("no error after the stream:\n{stderr}"));
    assert!(error.contains("exit code: 4"), "{stderr}");
    let parsed = statuses(stream);
    let failed = all(&parsed, "vertexes")
        .into_iter()
        .rfind(|v| v["name"] == "[stage-0] RUN echo why; exit 4")
        .unwrap();
    assert_eq!(
        failed["error"],
        "process \"/bin/sh -c echo why; exit 4\" did not complete successfully: exit code: 4"
    );
    assert!(is_time(failed.get("completed")), "{stderr}");
    let digest = failed["digest"].as_str().unwrap();
    assert!(
        decoded_logs(&all(&parsed, "logs"), digest).ends_with("why\n"),
        "{stderr}"
    );
}
