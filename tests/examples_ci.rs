//! The examples users start from (`examples/ci/github-actions.yml`,
//! `examples/ci/gitlab-ci.yml`, `examples/kubernetes/job.yaml`), read as
//! their platform reads them and then run.
//!
//! Each file must parse as YAML and have its platform's shape (GitHub:
//! `jobs.<id>.steps` with `run:`; GitLab: a job with `script:`; Kubernetes:
//! a `Job` whose pod is non-root, cannot escalate, has the runtime's default
//! seccomp profile and adds no capability). Then every `hoist` command line
//! is extracted and executed as written, by `sh` (Kubernetes: the
//! container's `command` + `args` with `$(VAR)` expanded), with the
//! environment the platform would give it (`env:`/`variables:` with
//! `${{ … }}` or `$CI_…` filled in, `$REGISTRY` pointing at a real
//! `docker-registry` with htpasswd auth on 127.0.0.1), in a context made
//! here: `FROM` a busybox base (Debian's busybox-static, pushed to that
//! registry), `COPY` and `RUN`. Each pipeline runs twice with a fresh store:
//! the first builds everything and exports the registry cache, the second
//! runs no step and gives the same image; the pushed image holds what the
//! build wrote.
//!
//! Run as root (CI), the platforms' conditions are reproduced with a real
//! user and real capability sets: GitHub's steps run as an ordinary user
//! with `/etc/subuid` ranges (rootless, store in `~/.local/share/hoist`);
//! GitLab's as root of an unprivileged container (Docker's default
//! capabilities, no `CAP_SYS_ADMIN`, no user namespace); the Kubernetes Job
//! as the user with `no_new_privs` (`allowPrivilegeEscalation: false`) and
//! no user namespace, its ConfigMap and Secret laid out with the kubelet's
//! `..data` symlinks. `HOIST_IN_USERNS=1` keeps hoist out of a user
//! namespace where a container's seccomp profile would refuse one.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use serde_norway::Value;

#[path = "examples_ci/support.rs"]
mod support;
use support::{Area, REG_PASSWORD, REG_USER, Runner, SHA, log_of, twice};

/// Top-level keys of a `.gitlab-ci.yml` that are not jobs.
const GITLAB_KEYWORDS: [&str; 8] = [
    "stages",
    "variables",
    "default",
    "include",
    "workflow",
    "image",
    "services",
    "cache",
];

fn example(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The documents of a YAML stream (serde_norway reads one at a time).
fn yaml_docs(text: &str) -> Vec<Value> {
    text.split("\n---\n")
        .map(|doc| serde_norway::from_str(doc).expect("valid YAML"))
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a string: {other:?}"),
    }
}

fn mapping(v: &Value) -> Vec<(String, &Value)> {
    v.as_mapping()
        .map(|m| m.iter().map(|(k, v)| (text(k), v)).collect())
        .unwrap_or_default()
}

/// Every key and string in `v`.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Mapping(m) => m.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        _ => {}
    }
}

/// The logical lines of a shell script (continuations joined) in which
/// some command of a pipeline or list is `hoist`.
fn hoist_lines(script: &str) -> Vec<String> {
    script
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.split(['|', ';', '&'])
                .any(|cmd| cmd.split_whitespace().next() == Some("hoist"))
        })
        .map(str::to_string)
        .collect()
}

/// Expands `${{ expr }}` (GitHub), `$(NAME)` (Kubernetes) or `$NAME` and
/// `${NAME}` (GitLab) from `vars`; an unknown name fails the test.
fn expand(s: &str, open: &str, close: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(open) {
        out.push_str(&rest[..i]);
        let after = &rest[i + open.len()..];
        let (name, len) = match close {
            "" => {
                let after = after.strip_prefix('{').unwrap_or(after);
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                let braced = rest[i + open.len()..].starts_with('{');
                (&after[..end], end + 2 * usize::from(braced))
            }
            _ => {
                let end = after.find(close).expect("closed reference");
                (after[..end].trim(), end + close.len())
            }
        };
        let value = vars.get(name);
        out.push_str(value.unwrap_or_else(|| panic!("{name:?} in {s:?} is not defined")));
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

fn sh(lines: &[String]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|l| vec!["sh".into(), "-euc".into(), l.clone()])
        .collect()
}

fn check_ci_lines(lines: &[String], what: &str) {
    let login: Vec<_> = lines.iter().filter(|l| l.contains("hoist login")).collect();
    assert_eq!(login.len(), 1, "{what}: one hoist login: {lines:?}");
    assert!(
        login[0].contains("--password-stdin"),
        "{what}: {}",
        login[0]
    );
    let build: Vec<_> = lines.iter().filter(|l| l.contains("hoist build")).collect();
    assert_eq!(build.len(), 1, "{what}: one hoist build: {lines:?}");
    for part in [
        "--cache-from \"type=registry,ref=$REGISTRY/$IMAGE:buildcache\"",
        "--cache-to \"type=registry,ref=$REGISTRY/$IMAGE:buildcache,mode=max\"",
        "-t \"$REGISTRY/$IMAGE:$SHA\"",
        "--push",
    ] {
        assert!(
            build[0].contains(part),
            "{what}: {part} missing in {}",
            build[0]
        );
    }
    assert!(
        lines.iter().all(|l| !l.contains("sudo")),
        "{what}: hoist runs without sudo"
    );
}

#[test]
fn github_actions_workflow_builds_rootless_and_hits_the_registry_cache() {
    let wf = yaml_docs(&example("ci/github-actions.yml")).remove(0);
    assert!(wf["on"].is_mapping(), "triggers under on:");
    let jobs = mapping(&wf["jobs"]);
    assert!(!jobs.is_empty(), "jobs.<id>");
    let area = Area::new();
    let exprs: BTreeMap<String, String> = [
        ("github.repository", "octo-org/app"),
        ("github.sha", SHA),
        ("github.actor", REG_USER),
        ("secrets.GITHUB_TOKEN", REG_PASSWORD),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into();
    let env_of = |v: &Value, env: &mut BTreeMap<String, String>| {
        for (k, v) in mapping(&v["env"]) {
            env.insert(k, expand(&text(v), "${{", "}}", &exprs));
        }
    };
    let (mut commands, mut lines, mut env) = (Vec::new(), Vec::new(), BTreeMap::new());
    for (id, job) in &jobs {
        assert!(job["runs-on"].is_string(), "jobs.{id}.runs-on");
        let steps = job["steps"].as_sequence().expect("jobs.<id>.steps");
        for step in steps {
            assert!(
                step["run"].is_string() || step["uses"].is_string(),
                "{step:?}"
            );
            let step_lines = hoist_lines(step["run"].as_str().unwrap_or(""));
            if step_lines.is_empty() {
                continue;
            }
            // Each step has its own env; here they share one, so a name
            // must mean the same in every step.
            let mut step_env = BTreeMap::new();
            [&wf, job, step]
                .iter()
                .for_each(|v| env_of(v, &mut step_env));
            for (k, v) in step_env {
                assert!(
                    env.insert(k.clone(), v.clone()).is_none_or(|old| old == v),
                    "{k}"
                );
            }
            commands.extend(sh(&step_lines));
            lines.extend(step_lines);
        }
    }
    check_ci_lines(&lines, "github-actions.yml");
    assert!(
        env.insert("REGISTRY".into(), area.reg().to_string())
            .is_some()
    );
    let ctx = area.ci_context();
    let cache = format!("{}/octo-org/app:buildcache", area.reg());
    let logs = twice(&area, Runner::User, &ctx, &cache, |run| {
        // A fresh runner: an empty home, so an empty store and no login.
        let home = area.fresh(&format!("gh-home-{run}"));
        let mut env = env.clone();
        env.insert("HOME".into(), home.display().to_string());
        (commands.clone(), env)
    });
    if area.root {
        let rootless = "isolation: rootless (user namespace, subids";
        assert!(logs[0].contains(rootless), "{}", logs[0]);
        for run in 0..2 {
            let home = area.base.join(format!("gh-home-{run}"));
            assert!(
                home.join(".local/share/hoist/blobs").is_dir(),
                "the user's store"
            );
            assert!(
                home.join(".docker/config.json").is_file(),
                "hoist login wrote it"
            );
        }
    }
    let image = format!("{}/octo-org/app:{SHA}", area.reg());
    let (greeting, _) = area.pulled_file(&image, "/app/greeting.txt");
    assert!(
        greeting.starts_with("hello from CI\nbuilt as uid 0\n"),
        "{greeting:?}"
    );
}

#[test]
fn gitlab_ci_job_builds_in_an_unprivileged_container_and_hits_the_registry_cache() {
    let doc = yaml_docs(&example("ci/gitlab-ci.yml")).remove(0);
    let mut words = Vec::new();
    strings(&doc, &mut words);
    let forbidden = |w: &String| w.contains("dind") || w == "DOCKER_HOST" || w == "privileged";
    assert!(
        !words.iter().any(forbidden),
        "no docker-in-docker: {words:?}"
    );
    let area = Area::new();
    let ctx = area.ci_context();
    let mut vars: BTreeMap<String, String> = [
        ("CI_REGISTRY", area.reg()),
        ("CI_PROJECT_PATH", "group/app"),
        ("CI_COMMIT_SHA", SHA),
        ("CI_REGISTRY_USER", REG_USER),
        ("CI_REGISTRY_PASSWORD", REG_PASSWORD),
        ("CI_PROJECT_DIR", ctx.to_str().unwrap()),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into();
    let define = |v: &Value, vars: &mut BTreeMap<String, String>| {
        for (k, v) in mapping(&v["variables"]) {
            let v = expand(&text(v), "$", "", vars);
            vars.insert(k, v);
        }
    };
    define(&doc, &mut vars);
    let jobs: Vec<_> = mapping(&doc)
        .into_iter()
        .filter(|(k, v)| !GITLAB_KEYWORDS.contains(&k.as_str()) && v.is_mapping())
        .collect();
    assert!(!jobs.is_empty(), "a job");
    let mut lines = Vec::new();
    for (id, job) in &jobs {
        assert!(job["script"].is_sequence(), "{id}.script");
        assert!(job["image"].is_string(), "{id} runs in a container image");
        assert!(
            job["services"].is_null(),
            "{id}: no services (docker-in-docker)"
        );
        define(job, &mut vars);
        for part in ["before_script", "script", "after_script"] {
            for entry in job[part].as_sequence().into_iter().flatten() {
                lines.extend(hoist_lines(
                    entry.as_str().expect("script lines are strings"),
                ));
            }
        }
    }
    check_ci_lines(&lines, "gitlab-ci.yml");
    assert!(
        lines.iter().any(|l| l.contains("--isolation=chroot")),
        "{lines:?}"
    );
    assert!(
        !vars.contains_key("HOIST_ROOT"),
        "the store stays root's default"
    );
    let cache = format!("{}/group/app:buildcache", area.reg());
    let logs = twice(&area, Runner::ContainerRoot, &ctx, &cache, |run| {
        // A fresh job container; HOIST_ROOT only keeps this test off the
        // machine's /var/lib/hoist.
        let dir = area.fresh(&format!("gl-{run}"));
        let mut env = vars.clone();
        env.insert("HOME".into(), dir.display().to_string());
        env.insert("HOIST_ROOT".into(), dir.join("store").display().to_string());
        (sh(&lines), env)
    });
    if area.root {
        assert!(logs[0].contains("isolation: chroot (uid 0"), "{}", logs[0]);
        assert!(logs[0].contains("copy snapshotter"), "{}", logs[0]);
    }
    let image = format!("{}/group/app:{SHA}", area.reg());
    let (greeting, _) = area.pulled_file(&image, "/app/greeting.txt");
    assert!(
        greeting.starts_with("hello from CI\nbuilt as uid 0\n"),
        "{greeting:?}"
    );
}

/// A ConfigMap or Secret volume as the kubelet lays it out: the files in a
/// timestamped dir, `..data` pointing at it, each name a symlink through it.
fn k8s_volume(dir: &Path, files: &[(String, String)]) {
    let stamp = dir.join("..2026_11_22_05_00_00.123456789");
    std::fs::create_dir_all(&stamp).unwrap();
    for (name, body) in files {
        std::fs::write(stamp.join(name), body).unwrap();
        symlink(format!("..data/{name}"), dir.join(name)).unwrap();
    }
    symlink(stamp.file_name().unwrap(), dir.join("..data")).unwrap();
    Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(dir)
        .status()
        .unwrap();
}

#[test]
fn kubernetes_job_builds_as_a_restricted_pod_and_hits_the_registry_cache() {
    let docs = yaml_docs(&example("kubernetes/job.yaml"));
    let kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"].as_str() == Some(k))
            .expect("kind")
    };
    let (job, config_map) = (kind("Job"), kind("ConfigMap"));
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let seccomp = pod["securityContext"]["seccompProfile"]["type"].as_str();
    assert_eq!(seccomp, Some("RuntimeDefault"));
    assert!(pod["hostPID"].is_null() && pod["hostNetwork"].is_null() && pod["hostUsers"].is_null());
    let containers = pod["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert!(sc["privileged"].is_null() && sc["capabilities"]["add"].is_null());
    assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"));
    let dockerfile = text(&config_map["data"]["Dockerfile"]);
    let (from, rest) = dockerfile.split_once('\n').unwrap();
    assert!(from.starts_with("FROM "), "{from}");
    assert!(
        !rest.lines().any(|l| l.starts_with("RUN")),
        "no RUN under RuntimeDefault"
    );

    let area = Area::new();
    let mut env = BTreeMap::new();
    for e in c["env"].as_sequence().expect("env") {
        let value = expand(
            e["value"].as_str().expect("literal values"),
            "$(",
            ")",
            &env,
        );
        env.insert(text(&e["name"]), value);
    }
    assert!(
        env.insert("REGISTRY".into(), area.reg().to_string())
            .is_some()
    );
    let image = format!("{}/{}:{}", area.reg(), env["IMAGE"], env["SHA"]);
    let cache = format!("{}/{}:buildcache", area.reg(), env["IMAGE"]);
    let argv: Vec<String> = [&c["command"], &c["args"]]
        .iter()
        .flat_map(|v| v.as_sequence().expect("command and args"))
        .map(|a| expand(&text(a), "$(", ")", &env))
        .collect();
    assert_eq!(argv[..2], ["hoist", "build"]);

    // The pod's volumes at their mount paths, made afresh for each run: the
    // ConfigMap (its Dockerfile FROM the test registry's base), the
    // registry Secret (the config.json `hoist login` wrote), emptyDirs.
    let volumes: BTreeMap<String, &Value> = pod["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .map(|v| (text(&v["name"]), v))
        .collect();
    let auth = std::fs::read_to_string(area.base.join("admin-docker/config.json")).unwrap();
    let pod_run = |run: &str, dockerfile: &str| {
        let mut paths = Vec::new();
        for m in c["volumeMounts"].as_sequence().expect("volumeMounts") {
            let (mount, v) = (text(&m["mountPath"]), volumes[&text(&m["name"])]);
            let dir = area.fresh(&format!("k8s-{run}{}", mount.replace('/', "-")));
            if v["configMap"].is_mapping() {
                assert_eq!(v["configMap"]["name"], config_map["metadata"]["name"]);
                let mut files: Vec<_> = mapping(&config_map["data"])
                    .into_iter()
                    .map(|(k, v)| (k, text(v)))
                    .collect();
                files
                    .iter_mut()
                    .filter(|f| f.0 == "Dockerfile")
                    .for_each(|f| f.1 = dockerfile.into());
                k8s_volume(&dir, &files);
            } else if v["secret"].is_mapping() {
                let item = &v["secret"]["items"][0];
                assert_eq!(item["key"].as_str(), Some(".dockerconfigjson"));
                k8s_volume(&dir, &[(text(&item["path"]), auth.clone())]);
            } else {
                assert!(
                    v["emptyDir"].is_mapping(),
                    "only configMap, secret, emptyDir"
                );
            }
            paths.push((mount, dir));
        }
        let map = |s: &String| {
            let hit = paths
                .iter()
                .find(|(m, _)| s == m || s.starts_with(&format!("{m}/")));
            hit.map_or(s.clone(), |(m, dir)| {
                format!("{}{}", dir.display(), &s[m.len()..])
            })
        };
        let env = env.iter().map(|(k, v)| (k.clone(), map(v))).collect();
        (vec![argv.iter().map(map).collect()], env)
    };
    let base = format!("FROM {}/base/busybox:1\n", area.reg());
    let logs = twice(&area, Runner::RestrictedPod, &area.base, &cache, |run| {
        pod_run(&run.to_string(), &format!("{base}{rest}"))
    });
    assert!(
        !logs[0].contains("isolation:"),
        "no RUN, no sandbox:\n{}",
        logs[0]
    );
    // The ConfigMap's files are symlinks through ..data: COPY follows a
    // named source, so the image holds the files themselves.
    let (index, meta) = area.pulled_file(&image, "/srv/www/index.html");
    assert!(meta.is_file(), "a file, not the volume's symlink");
    assert_eq!(index, text(&config_map["data"]["index.html"]));

    // What README.md beside the Job says: under this pod's profile RUN
    // cannot have the namespaces it needs, hoist says so and why, and
    // --isolation=chroot is no way out (it needs CAP_SYS_CHROOT).
    let (commands, env) = pod_run("with-run", &format!("{base}RUN echo hi\n"));
    let mut chroot = commands[0].clone();
    chroot.insert(2, "--isolation=chroot".into());
    for (argv, refused) in [
        (
            &commands[0],
            "RUN needs a mount namespace, and making one was refused",
        ),
        (
            &chroot,
            "--isolation=chroot without namespaces (making them was refused",
        ),
    ] {
        let out = area.run(Runner::RestrictedPod, argv, &env, &area.base);
        let log = log_of(&out);
        if area.root {
            assert!(!out.status.success() && log.contains(refused), "{log}");
        }
    }
}
