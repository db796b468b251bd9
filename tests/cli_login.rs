//! `hoist login` as `docker login`, against a real `docker-registry` with
//! htpasswd auth: on a terminal (a real one, a tmux pane) it asks for the
//! username and, without echo, the password; `--password-stdin` reads the
//! secret; `-p` works with docker's warning; without a terminal, a missing
//! secret is docker's error, not a prompt that waits forever.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hoist_test_support::registry::{AuthRegistry, PASSWORD as REG_PASSWORD, USER as REG_USER};

const HOIST: &str = env!("CARGO_BIN_EXE_hoist");

/// hoist with its own Docker config dir and store, `stdin` fed.
fn login(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(HOIST)
        .arg("login")
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env("HOIST_ROOT", config.join("store"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        std::io::Write::write_all(&mut input, text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// The `auth` docker's config.json holds for `addr`, decoded.
fn stored_auth(config: &Path, addr: &str) -> Option<String> {
    let text = std::fs::read_to_string(config.join("config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    base64_decode(json["auths"][addr]["auth"].as_str()?)
}

/// Standard base64, enough for the test (no crate for one string).
fn base64_decode(text: &str) -> Option<String> {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        bits = (bits << 6) | ABC.iter().position(|&a| a == c)? as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8(out).ok()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn password_stdin_and_password_flag_as_docker() {
    let registry = AuthRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("docker");
    let addr = registry.addr();

    // --password-stdin: one trailing newline is not part of the secret.
    let out = login(
        &config,
        &["-u", REG_USER, "--password-stdin", addr],
        Some(&format!("{REG_PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Login Succeeded\n");
    assert_eq!(
        stored_auth(&config, addr).as_deref(),
        Some(format!("{REG_USER}:{REG_PASSWORD}").as_str())
    );

    // Neither username nor password: the stored ones, as docker.
    let out = login(&config, &[addr], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "Authenticating with existing credentials...\nLogin Succeeded\n"
    );

    // -p: works, with docker's warning, also when stderr is no terminal.
    let out = login(&config, &["-u", REG_USER, "-p", REG_PASSWORD, addr], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
    );

    // A wrong secret is refused by the registry and not stored.
    let other = dir.path().join("other");
    let out = login(
        &other,
        &["-u", REG_USER, "--password-stdin", addr],
        Some("nope\n"),
    );
    assert!(!out.status.success());
    assert_eq!(stored_auth(&other, addr), None);

    // docker's refusals.
    let out = login(
        &other,
        &["-u", REG_USER, "-p", "x", "--password-stdin", addr],
        Some("x"),
    );
    assert!(
        text(&out.stderr).contains("--password and --password-stdin are mutually exclusive"),
        "{}",
        text(&out.stderr)
    );
    let out = login(&other, &["--password-stdin", addr], Some("x"));
    assert!(
        text(&out.stderr).contains("Must provide --username with --password-stdin"),
        "{}",
        text(&out.stderr)
    );
    // No terminal and nothing to read the secret from: an error, not a hang.
    for args in [&["-u", REG_USER, addr][..], &[addr]] {
        let out = login(&other, args, None);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("Cannot perform an interactive login from a non TTY device"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

/// A tmux server of this test's own (its socket in a temp dir), killed on
/// drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux (Debian package tmux) is installed")
    }

    /// Start `command` in a new detached session `name`.
    fn start(socket: PathBuf, name: &str, command: &str) -> Tmux {
        let tmux = Tmux { socket };
        let out = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "200",
            "-y",
            "50",
            command,
        ]);
        assert!(out.status.success(), "tmux: {}", text(&out.stderr));
        tmux
    }

    fn screen(&self, name: &str) -> String {
        text(&self.cmd(&["capture-pane", "-p", "-t", name]).stdout)
    }

    /// Wait until the pane shows `what`; the screen then.
    fn wait_for(&self, name: &str, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen(name);
            if screen.contains(what) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never showed {what:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend(keys);
        assert!(self.cmd(&args).status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn on_a_terminal_it_asks_for_username_and_password_without_echo() {
    let registry = AuthRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("docker");
    let addr = registry.addr();
    let shell = |args: &str| {
        format!(
            "env DOCKER_CONFIG={} HOIST_ROOT={} {HOIST} login {args}; echo EXIT=$?; sleep 600",
            config.display(),
            dir.path().join("store").display()
        )
    };
    let tmux = Tmux::start(dir.path().join("tmux.sock"), "both", &shell(addr));
    tmux.wait_for("both", "Username:");
    tmux.keys("both", &[REG_USER, "Enter"]);
    tmux.wait_for("both", "Password:");
    tmux.keys("both", &[REG_PASSWORD, "Enter"]);
    let screen = tmux.wait_for("both", "EXIT=");
    assert!(
        screen.contains("Login Succeeded") && screen.contains("EXIT=0"),
        "{screen}"
    );
    assert!(screen.contains(REG_USER), "the username echoes: {screen}");
    assert!(
        !screen.contains(REG_PASSWORD),
        "the password must not echo: {screen}"
    );
    assert_eq!(
        stored_auth(&config, addr).as_deref(),
        Some(format!("{REG_USER}:{REG_PASSWORD}").as_str())
    );

    // Stored credentials that no longer work: said, then the prompt offers
    // the stored username (Enter keeps it) and asks for the password.
    let wrong = Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s' '{REG_USER}:stale' | base64"))
        .output()
        .unwrap();
    let auth = text(&wrong.stdout).trim().to_string();
    std::fs::write(
        config.join("config.json"),
        serde_json::json!({"auths": {addr: {"auth": auth}}}).to_string(),
    )
    .unwrap();
    tmux.cmd(&["new-session", "-d", "-s", "stale", &shell(addr)]);
    let screen = tmux.wait_for("stale", &format!("Username ({REG_USER}):"));
    assert!(
        screen.contains("Authenticating with existing credentials...")
            && screen.contains("Login did not succeed"),
        "{screen}"
    );
    tmux.keys("stale", &["Enter"]);
    tmux.wait_for("stale", "Password:");
    tmux.keys("stale", &[REG_PASSWORD, "Enter"]);
    let screen = tmux.wait_for("stale", "EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_eq!(
        stored_auth(&config, addr).as_deref(),
        Some(format!("{REG_USER}:{REG_PASSWORD}").as_str())
    );

    // -u given: only the password is asked for; a wrong one fails.
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "wrong",
        &shell(&format!("-u {REG_USER} {addr}")),
    ]);
    assert!(out.status.success());
    let screen = tmux.wait_for("wrong", "Password:");
    assert!(!screen.contains("Username:"), "{screen}");
    tmux.keys("wrong", &["not-the-password", "Enter"]);
    let screen = tmux.wait_for("wrong", "EXIT=");
    assert!(screen.contains("EXIT=1"), "{screen}");
    assert!(!screen.contains("not-the-password"), "{screen}");
}
