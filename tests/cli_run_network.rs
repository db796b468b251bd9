//! The network of a `RUN` step (docs/network.md), with real parts: real
//! pasta and slirp4netns processes, a network namespace and veth pair made
//! here with `ip netns add` (addresses of 198.18.0.0/15, the benchmarking
//! range, inside it and on its host side only), servers on the host's
//! loopback and abstract unix sockets, and a real unprivileged user for the
//! rootless runs (as tests/cli_rootless.rs). The step's probes are
//! `testdata/net/nettool.c`, compiled here with `gcc -static`.
//!
//! Each check has its positive control: the same probe with `--network
//! host --allow network.host` does reach what the default network must
//! not, so a probe that saw nothing proves something.
//!
//! Root only (network namespaces, users); skipped otherwise.

use hoist_test_support::users::{self, TestUser, is_root};

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const STACKS: [&str; 2] = ["pasta", "slirp4netns"];

fn skip() -> bool {
    if !is_root() {
        eprintln!("skipped: network namespaces and users need root");
        return true;
    }
    false
}

/// A store with `net:1`: busybox and `/bin/nettool`, readable by anyone.
struct NetLab {
    dir: tempfile::TempDir,
}

impl NetLab {
    fn new() -> NetLab {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let lab = NetLab { dir };
        let bin = lab.path("base/rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(lab.path("base/rootfs/tmp")).unwrap();
        std::fs::create_dir_all(lab.path("base/rootfs/etc")).unwrap();
        let cc = Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(bin.join("nettool"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/net/nettool.c"))
            .output()
            .expect("gcc runs");
        assert!(
            cc.status.success(),
            "gcc -static nettool.c: {}",
            String::from_utf8_lossy(&cc.stderr)
        );
        std::fs::copy("/bin/busybox", bin.join("busybox"))
            .expect("/bin/busybox (Debian busybox-static) is installed");
        for applet in ["sh", "ls", "cat", "sleep", "true"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        std::fs::write(
            lab.path("base/Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\n",
        )
        .unwrap();
        // The hoist binary where an unprivileged user may run it.
        let exe = lab.path("hoist");
        if std::fs::hard_link(env!("CARGO_BIN_EXE_hoist"), &exe).is_err() {
            std::fs::copy(env!("CARGO_BIN_EXE_hoist"), &exe).unwrap();
        }
        chmod_r(lab.dir.path());
        lab
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A build context whose Dockerfile is `FROM net:1` and `body`.
    fn context(&self, name: &str, body: &str) -> PathBuf {
        let ctx = self.path(name);
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), format!("FROM net:1\n{body}\n")).unwrap();
        chmod_r(&ctx);
        ctx
    }
}

/// Everything readable (and directories enterable) by the test user.
fn chmod_r(p: &Path) {
    let out = Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(p)
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// Who runs hoist: root, or a real unprivileged user (rootless).
#[derive(Clone, Copy, PartialEq, Debug)]
enum As {
    Root,
    User,
}

const USER: &str = "hoist-rootless-test";

/// The rootless user with its subordinate ids (the user and range of
/// tests/cli_rootless.rs), and a `/dev/net/tun` it may open: distributions
/// make it 0666 (udev's default); this VM's is 0600.
fn rootless_user() {
    users::make(
        &[TestUser::new(USER).subids(200_000, 65_536)],
        "chmod 0666 /dev/net/tun",
    );
}

/// `hoist ARGS` as `who`, its store in the lab (one per user).
fn hoist_cmd(lab: &NetLab, who: As, stack: Option<&str>, args: &[&str]) -> Command {
    let store = lab.path(match who {
        As::Root => "store-root",
        As::User => "home/store",
    });
    let mut c = match who {
        As::Root => Command::new(lab.path("hoist")),
        As::User => {
            let home = lab.path("home");
            if !home.exists() {
                std::fs::create_dir(&home).unwrap();
                let out = Command::new("chown")
                    .arg(format!("{USER}:{USER}"))
                    .arg(&home)
                    .output()
                    .unwrap();
                assert!(out.status.success());
            }
            let mut c = Command::new("setpriv");
            c.args(["--reuid", USER, "--regid", USER, "--init-groups", "--"])
                .arg(lab.path("hoist"));
            c.env("HOME", home);
            c
        }
    };
    c.arg("--root")
        .arg(store)
        .args(args)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env_remove("HOIST_ROOT")
        .env_remove("SOURCE_DATE_EPOCH")
        .current_dir(lab.dir.path());
    match stack {
        Some(s) => c.env("HOIST_NETWORK_STACK", s),
        None => c.env_remove("HOIST_NETWORK_STACK"),
    };
    c
}

fn run(lab: &NetLab, who: As, stack: Option<&str>, args: &[&str]) -> Output {
    hoist_cmd(lab, who, stack, args)
        .output()
        .expect("hoist runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Build `net:1` for `who` once per lab.
fn base(lab: &NetLab, who: As) {
    let out = run(
        lab,
        who,
        None,
        &[
            "build",
            "-q",
            "-t",
            "net:1",
            lab.path("base").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "base: {}", text(&out));
}

/// Build the step `body` (uncached), which must succeed; the output.
fn step(lab: &NetLab, who: As, stack: Option<&str>, body: &str, extra: &[&str]) -> String {
    let ctx = lab.context(&format!("ctx-{}", unique()), body);
    let mut args = vec!["build", "--no-cache", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = run(lab, who, stack, &args);
    let t = text(&out);
    assert!(out.status.success(), "hoist {args:?} as {who:?}:\n{t}");
    t
}

fn unique() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

const HOST: [&str; 4] = ["--network", "host", "--allow", "network.host"];

/// A TCP server on the host's 127.0.0.1 and an abstract unix socket,
/// both accepting until the test ends.
fn host_services() -> (u16, String) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in tcp.incoming() {
            drop(c);
        }
    });
    let name = format!("hoist-net-test-{}", unique());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let unix = UnixListener::bind_addr(&addr).unwrap();
    std::thread::spawn(move || {
        for c in unix.incoming() {
            drop(c);
        }
    });
    (port, name)
}

fn loopback_and_abstract(who: As) {
    let lab = NetLab::new();
    base(&lab, who);
    let (port, name) = host_services();
    let probe = format!("RUN nettool tcp 127.0.0.1 {port} && nettool abstract {name}");
    for stack in STACKS {
        let out = step(&lab, who, Some(stack), &probe, &[]);
        assert!(
            out.contains(&format!("network: private ({stack})")),
            "the line names the stack:\n{out}"
        );
        assert!(
            out.contains("tcp error Connection refused"),
            "{stack}: the host's 127.0.0.1:{port} is out of reach:\n{out}"
        );
        assert!(
            out.contains("abstract error Connection refused"),
            "{stack}: the host's abstract socket @{name} is out of reach:\n{out}"
        );
    }
    // The control: the host's network reaches both.
    let out = step(&lab, who, None, &probe, &HOST);
    assert!(out.contains("tcp connected"), "{out}");
    assert!(out.contains("abstract connected"), "{out}");
}

/// The report: root and rootless steps connected to the host's
/// abstract unix sockets and its loopback services. A default step has a
/// network namespace of its own, and neither stack maps the host's
/// loopback into it (pasta `-T none -U none --no-map-gw`, slirp4netns
/// `--disable-host-loopback`).
#[test]
fn default_step_cannot_reach_host_loopback_or_abstract_sockets() {
    if skip() {
        return;
    }
    loopback_and_abstract(As::Root);
}

#[test]
fn rootless_default_step_cannot_reach_host_loopback_or_abstract_sockets() {
    if skip() {
        return;
    }
    rootless_user();
    loopback_and_abstract(As::User);
}

/// The report: a root step opened an `AF_PACKET` socket and read
/// traffic between two host processes on `lo`. The step's probe sees its
/// own datagrams (so it does capture) and none of the host's, which flow
/// on the host's `lo` from before the step starts until after it ends.
#[test]
fn af_packet_in_a_default_step_sees_nothing_of_the_host() {
    if skip() {
        return;
    }
    let lab = NetLab::new();
    base(&lab, As::Root);
    let own = format!("own-mark-{}", unique());
    let host = format!("host-mark-{}", unique());
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (stop, host) = (stop.clone(), host.clone());
        std::thread::spawn(move || {
            let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
            let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
            while !stop.load(Ordering::SeqCst) {
                tx.send_to(host.as_bytes(), rx.local_addr().unwrap())
                    .unwrap();
                let mut buf = [0u8; 64];
                let _ = rx.recv(&mut buf);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let probe = format!("RUN nettool packet {own} {host}");
    for stack in STACKS {
        let out = step(&lab, As::Root, Some(stack), &probe, &[]);
        assert!(
            out.contains("packet own=1 host=0"),
            "{stack}: AF_PACKET sees its own loopback, not the host's:\n{out}"
        );
    }
    let out = step(&lab, As::Root, None, &probe, &HOST);
    stop.store(true, Ordering::SeqCst);
    sender.join().unwrap();
    assert!(
        out.contains("packet own=1 host=1"),
        "the control: on the host's network the probe sees the host's traffic:\n{out}"
    );
}

/// A network namespace made here with a veth pair to the host
/// (198.18.N.1 on the host's side, 198.18.N.2 inside) and an HTTP server
/// inside serving `hello.txt`; removed on drop.
struct TestNet {
    name: String,
    host_if: String,
    addr: String,
    server: std::process::Child,
    _www: tempfile::TempDir,
}

impl TestNet {
    fn new(n: u8, body: &str) -> TestNet {
        let name = format!("hoist-test-{n}-{}", std::process::id());
        let (host_if, ns_if) = (format!("hnt{n}h"), format!("hnt{n}n"));
        let addr = format!("198.18.{n}.2");
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("ip runs");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        // Left over by a killed run of this test.
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        ip(&["netns", "add", &name]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &name]);
        ip(&["addr", "add", &format!("198.18.{n}.1/24"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &ns_if,
        ]);
        ip(&["-n", &name, "link", "set", &ns_if, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        let www = tempfile::tempdir().unwrap();
        std::fs::write(www.path().join("hello.txt"), body).unwrap();
        let server = Command::new("ip")
            .args([
                "netns",
                "exec",
                &name,
                "python3",
                "-m",
                "http.server",
                "8080",
            ])
            .args(["--bind", &addr, "--directory"])
            .arg(www.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 http.server");
        let net = TestNet {
            name,
            host_if,
            addr,
            server,
            _www: www,
        };
        // Ready once it answers from the host's side (a wait, not a
        // measurement: the deadline only ends a broken run).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = std::net::TcpStream::connect((net.addr.as_str(), 8080)).and_then(|mut s| {
                s.write_all(b"GET /hello.txt HTTP/1.0\r\n\r\n")?;
                let mut r = String::new();
                s.read_to_string(&mut r)?;
                Ok(r)
            });
            if got.is_ok_and(|r| r.contains(body)) {
                break;
            }
            assert!(Instant::now() < deadline, "the test server never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        net
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

fn outbound(who: As, n: u8) {
    let lab = NetLab::new();
    base(&lab, who);
    let body = format!("hello from the test namespace {}", unique());
    let net = TestNet::new(n, &body);
    let probe = format!(
        "RUN ls /sys/class/net && nettool http {} 8080 /hello.txt",
        net.addr
    );
    for stack in STACKS {
        let out = step(&lab, who, Some(stack), &probe, &[]);
        assert!(
            out.contains(&body),
            "{stack}: a default step reaches a server on the network:\n{out}"
        );
    }
    // --network none: loopback only, nothing reachable.
    let none = format!("RUN ls /sys/class/net && nettool tcp {} 8080", net.addr);
    let out = step(&lab, who, None, &none, &["--network", "none"]);
    assert!(
        out.contains("tcp error Network is unreachable"),
        "--network none reaches nothing:\n{out}"
    );
    assert!(!out.contains("network: private"), "{out}");
}

/// BuildKit's default network: outbound access from a namespace of the
/// step's own. The server is in a namespace this test made, reached
/// through the host's routes, as a registry or mirror on the network is.
#[test]
fn outbound_http_to_a_test_namespace_works_from_a_default_step() {
    if skip() {
        return;
    }
    outbound(As::Root, 41);
}

#[test]
fn rootless_outbound_http_to_a_test_namespace_works_from_a_default_step() {
    if skip() {
        return;
    }
    rootless_user();
    outbound(As::User, 42);
}

/// BuildKit's entitlement: `--network host` and `RUN --network=host` need
/// `network.host` (buildx `--allow network.host`); without it the build is
/// refused with BuildKit's message before any step runs.
#[test]
fn network_host_needs_the_entitlement() {
    if skip() {
        return;
    }
    let lab = NetLab::new();
    base(&lab, As::Root);
    let ctx = lab.context("plain", "RUN true");
    let out = run(
        &lab,
        As::Root,
        None,
        &["build", "--network", "host", ctx.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("network.host is not allowed"), "{t}");
    assert!(
        t.contains("--allow network.host"),
        "says how to grant it: {t}"
    );
    assert!(!t.contains("#1 "), "refused before the build starts: {t}");

    let ctx = lab.context("run-host", "RUN --network=host cat /proc/net/dev");
    let out = run(&lab, As::Root, None, &["build", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("network.host is not allowed"), "{t}");
    // Granted, the step sees the host's interfaces.
    let out = run(
        &lab,
        As::Root,
        None,
        &[
            "build",
            "--progress",
            "plain",
            "--allow",
            "network.host",
            ctx.to_str().unwrap(),
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let host_ifs = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert!(host_ifs > 1);
    for e in std::fs::read_dir("/sys/class/net").unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            t.contains(&format!("{name}:")),
            "{name} in the step's /proc/net/dev:\n{t}"
        );
    }

    let bad = run(
        &lab,
        As::Root,
        None,
        &["build", "--allow", "network.hots", ctx.to_str().unwrap()],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("unknown entitlement network.hots"),
        "{}",
        text(&bad)
    );
}

/// The stack dies with the step, and with a killed hoist: it is a child
/// of the sandbox process with a parent-death signal.
#[test]
fn a_killed_hoist_leaves_no_stack_running() {
    if skip() {
        return;
    }
    let lab = NetLab::new();
    base(&lab, As::Root);
    for stack in STACKS {
        let ctx = lab.context(&format!("sleep-{stack}"), "RUN sleep 1000");
        let mut child = hoist_cmd(
            &lab,
            As::Root,
            Some(stack),
            &[
                "build",
                "--no-cache",
                "--progress",
                "plain",
                ctx.to_str().unwrap(),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let hoist = child.id();
        let deadline = Instant::now() + Duration::from_secs(120);
        let helper = loop {
            if let Some(pid) = stack_of(hoist, stack) {
                break pid;
            }
            assert!(
                Instant::now() < deadline,
                "{stack} never started under hoist {hoist}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while alive(helper) {
            assert!(
                Instant::now() < deadline,
                "{stack} (pid {helper}) outlived the hoist that was killed"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The pid of `stack` whose parent's parent is `hoist` (hoist → sandbox
/// process → stack).
fn stack_of(hoist: u32, stack: &str) -> Option<u32> {
    let ppid = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        rest.split(' ').nth(1)?.parse().ok()
    };
    for e in std::fs::read_dir("/proc").ok()? {
        let Some(pid) = e
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        if argv0.ends_with(stack.as_bytes()) && ppid(pid).and_then(ppid) == Some(hoist) {
            return Some(pid);
        }
    }
    None
}

/// Running (a zombie is dead; init reaps it).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            rest.chars().next()
        })
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// Never the host's network in its place: where no stack is installed
/// (here: a `PATH` without them), a default step gets loopback only and
/// the build says so; a stack asked for by name that is not there fails.
#[test]
fn without_a_stack_a_default_step_gets_loopback_only_and_says_so() {
    if skip() {
        return;
    }
    let lab = NetLab::new();
    base(&lab, As::Root);
    let empty = lab.path("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let ctx = lab.context("no-stack", "RUN ls /sys/class/net");
    let out = hoist_cmd(
        &lab,
        As::Root,
        None,
        &[
            "build",
            "--no-cache",
            "--progress",
            "plain",
            ctx.to_str().unwrap(),
        ],
    )
    .env("PATH", &empty)
    .output()
    .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(
            "network: none, loopback only: neither pasta nor slirp4netns is installed \
             (apt-get install passt gives steps outbound access)"
        ),
        "{t}"
    );
    let ifs: Vec<&str> = t
        .lines()
        .filter_map(|l| l.strip_prefix("#2 "))
        // Output lines carry the step's seconds: `#2 0.213 lo`.
        .filter_map(|l| l.split_once(' '))
        .filter(|(seconds, _)| seconds.parse::<f64>().is_ok())
        .map(|(_, text)| text)
        .filter(|l| !l.contains(' ') && !l.contains(':'))
        .collect();
    assert_eq!(ifs, ["lo"], "only loopback:\n{t}");

    let out = hoist_cmd(
        &lab,
        As::Root,
        Some("pasta"),
        &["build", "--no-cache", ctx.to_str().unwrap()],
    )
    .env("PATH", &empty)
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("HOIST_NETWORK_STACK=pasta: pasta is not installed"),
        "{}",
        text(&out)
    );
}

/// A host whose resolver is a stub on its loopback (systemd-resolved's
/// 127.0.0.53; here a test server on 127.0.0.77:53, put in place for
/// hoist alone by a bind mount over `/etc/resolv.conf` in a mount
/// namespace of its own): a default step's resolv.conf names the stack's
/// DNS forwarder, which asks the stub from the host's side.
#[test]
fn a_loopback_stub_resolver_is_reached_through_the_stacks_forwarder() {
    if skip() {
        return;
    }
    let lab = NetLab::new();
    base(&lab, As::Root);
    let mut dnsd = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/net/dnsd.py"))
        .args(["127.0.0.77", "198.18.99.99"])
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let resolv = lab.path("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.77\noptions edns0\n").unwrap();
    let ctx = lab.context(
        "dns",
        "RUN cat /etc/resolv.conf && nettool dns example.test",
    );
    for (stack, forwarder) in [("pasta", "169.254.1.1"), ("slirp4netns", "10.0.2.3")] {
        // The server is up once it answers (a wait; the deadline only ends
        // a broken run).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dig_local() {
            assert!(
                Instant::now() < deadline,
                "the test DNS server never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let script = format!(
            "mount --bind {} /etc/resolv.conf && exec {} --root {} build --no-cache \
             --progress plain {}",
            resolv.display(),
            lab.path("hoist").display(),
            lab.path("store-root").display(),
            ctx.display()
        );
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("HOIST_NETWORK_STACK", stack)
            .output()
            .unwrap();
        let t = text(&out);
        assert!(out.status.success(), "{stack}:\n{t}");
        assert!(
            t.contains(&format!("nameserver {forwarder}\n")) && t.contains("options edns0"),
            "{stack}: the forwarder in place of the stub:\n{t}"
        );
        assert!(
            t.contains(&format!("dns via {forwarder}: 198.18.99.99")),
            "{stack}: the stub answered through the forwarder:\n{t}"
        );
        assert!(
            !t.contains("nameserver address"),
            "{stack}: the stack's own warnings stay out of the step's output:\n{t}"
        );
    }
    let _ = dnsd.kill();
    let _ = dnsd.wait();
}

/// One A query to 127.0.0.77:53 answered.
fn dig_local() -> bool {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let query =
        b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01x\x04test\x00\x00\x01\x00\x01";
    if sock.send_to(query, "127.0.0.77:53").is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    sock.recv(&mut buf).is_ok_and(|n| n > query.len())
}
