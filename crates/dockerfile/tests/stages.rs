//! Stages, ARG scoping and expansion, each case mirroring a BuildKit rule
//! (`frontend/dockerfile/dockerfile2llb/convert.go` unless said otherwise).

use hoist_dockerfile::instruction::{Command, Healthcheck};
use hoist_dockerfile::{BuildOptions, Dockerfile, GlobalScope, Platform, StageScope, load};

fn opts(args: &[(&str, &str)]) -> BuildOptions {
    BuildOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        target_platform: Platform::parse("linux/arm64").unwrap(),
        target: None,
    }
}

/// Run every instruction of `stage` through a scope; return the expanded
/// instructions and the scope's final variables.
type Vars = Vec<(String, String)>;

fn walk(df: &Dockerfile, stage: usize, o: &BuildOptions) -> (Vec<Command>, Vars, Vars) {
    let globals = GlobalScope::new(df, o).unwrap();
    let mut scope = StageScope::new(df, &globals, o, &[("PATH".into(), "/usr/bin".into())]);
    let cmds = df.stages[stage]
        .instructions
        .iter()
        .map(|i| scope.apply(i).unwrap().command)
        .collect();
    (cmds, scope.vars().to_vec(), scope.args().to_vec())
}

fn env_of(cmds: &[Command], key: &str) -> Option<String> {
    cmds.iter().rev().find_map(|c| match c {
        Command::Env { env } => env
            .iter()
            .rev()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.clone()),
        _ => None,
    })
}

fn from_base(df: &Dockerfile, o: &BuildOptions, i: usize) -> String {
    let g = GlobalScope::new(df, o).unwrap();
    hoist_dockerfile::stage::resolve_from(df, &df.stages[i], &g)
        .unwrap()
        .base
}

#[test]
fn global_args_are_seen_by_from_lines() {
    let df = load("ARG TAG=3.19\nARG IMG=alpine:${TAG}\nFROM $IMG\n").unwrap();
    assert_eq!(from_base(&df, &opts(&[]), 0), "alpine:3.19");
    assert_eq!(from_base(&df, &opts(&[("TAG", "edge")]), 0), "alpine:edge");
    assert_eq!(from_base(&df, &opts(&[("IMG", "busybox")]), 0), "busybox");
}

#[test]
fn global_args_are_not_seen_in_a_stage_unless_redeclared() {
    let df = load("ARG V=1\nFROM scratch\nENV A=x$V\nARG V\nENV B=x$V\n").unwrap();
    let (cmds, _, args) = walk(&df, 0, &opts(&[]));
    assert_eq!(env_of(&cmds[..1], "A").as_deref(), Some("x"));
    assert_eq!(
        env_of(&cmds, "B").as_deref(),
        Some("x1"),
        "ARG V without default takes the global value"
    );
    assert_eq!(args, vec![("V".to_string(), "1".to_string())]);
}

#[test]
fn build_args_override_defaults_in_stages() {
    let df = load("FROM scratch\nARG V=default\nENV A=$V\n").unwrap();
    let (cmds, _, _) = walk(&df, 0, &opts(&[("V", "given")]));
    assert_eq!(env_of(&cmds, "A").as_deref(), Some("given"));
    let (cmds, _, _) = walk(&df, 0, &opts(&[]));
    assert_eq!(env_of(&cmds, "A").as_deref(), Some("default"));
}

#[test]
fn undeclared_build_args_are_invisible() {
    let df = load("FROM scratch\nENV A=[$V]\n").unwrap();
    let (cmds, _, args) = walk(&df, 0, &opts(&[("V", "given")]));
    assert_eq!(env_of(&cmds, "A").as_deref(), Some("[]"));
    assert!(args.is_empty());
}

#[test]
fn env_after_arg_shadows_it() {
    let df = load("FROM scratch\nARG V=arg\nENV V=env\nENV A=$V\n").unwrap();
    let (cmds, _, _) = walk(&df, 0, &opts(&[("V", "buildarg")]));
    assert_eq!(env_of(&cmds, "A").as_deref(), Some("env"));
}

#[test]
fn arg_after_env_wins_for_expansion_as_in_buildkit() {
    // BuildKit's dispatchArg adds the ARG to the state's env, replacing an
    // earlier ENV of the same name for later expansion (the image config
    // keeps the ENV value).
    let df = load("FROM scratch\nENV V=env\nARG V=arg\nENV A=$V\n").unwrap();
    let globals = GlobalScope::new(&df, &opts(&[])).unwrap();
    let o = opts(&[]);
    let mut scope = StageScope::new(&df, &globals, &o, &[]);
    for i in &df.stages[0].instructions {
        scope.apply(i).unwrap();
    }
    let get = |vars: &[(String, String)], k: &str| {
        vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    };
    assert_eq!(get(scope.vars(), "A").as_deref(), Some("arg"));
    assert_eq!(get(scope.config_env(), "V").as_deref(), Some("env"));
}

#[test]
fn env_values_expand_with_the_values_before_the_instruction() {
    // `ENV a=1 b=$a` sees the old `a` (one expansion pass per instruction).
    let df = load("FROM scratch\nENV a=old\nENV a=new b=$a\n").unwrap();
    let (cmds, _, _) = walk(&df, 0, &opts(&[]));
    assert_eq!(env_of(&cmds, "b").as_deref(), Some("old"));
}

#[test]
fn arg_defaults_see_earlier_args_on_the_same_line() {
    let df = load("FROM scratch\nARG A=1 B=${A}2\nENV C=$B\n").unwrap();
    let (cmds, _, _) = walk(&df, 0, &opts(&[]));
    assert_eq!(env_of(&cmds, "C").as_deref(), Some("12"));
}

#[test]
fn base_image_env_is_in_scope() {
    let df = load("FROM scratch\nENV PATH=/opt/bin:$PATH\n").unwrap();
    let (cmds, _, _) = walk(&df, 0, &opts(&[]));
    assert_eq!(env_of(&cmds, "PATH").as_deref(), Some("/opt/bin:/usr/bin"));
}

#[test]
fn predefined_platform_args() {
    let text = "FROM --platform=$BUILDPLATFORM busybox:$TARGETARCH AS b\nENV BEFORE=[$TARGETARCH]\nARG TARGETARCH TARGETPLATFORM BUILDOS\nENV A=$TARGETARCH P=$TARGETPLATFORM O=$BUILDOS\n";
    let df = load(text).unwrap();
    let o = opts(&[]);
    let g = GlobalScope::new(&df, &o).unwrap();
    let from = hoist_dockerfile::stage::resolve_from(&df, &df.stages[0], &g).unwrap();
    assert_eq!(from.base, "busybox:arm64");
    assert_eq!(from.platform.unwrap().to_string(), "linux/amd64");
    let (cmds, _, _) = walk(&df, 0, &o);
    assert_eq!(
        env_of(&cmds[..1], "BEFORE").as_deref(),
        Some("[]"),
        "predefined args need ARG in a stage"
    );
    assert_eq!(env_of(&cmds, "A").as_deref(), Some("arm64"));
    assert_eq!(env_of(&cmds, "P").as_deref(), Some("linux/arm64"));
    assert_eq!(env_of(&cmds, "O").as_deref(), Some("linux"));
}

#[test]
fn target_stage_arg() {
    let df = load("ARG TARGETSTAGE\nFROM scratch AS one\nARG TARGETSTAGE\nENV T=$TARGETSTAGE\nFROM scratch AS two\n").unwrap();
    let mut o = opts(&[]);
    let (cmds, _, _) = walk(&df, 0, &o);
    assert_eq!(env_of(&cmds, "T").as_deref(), Some("two"));
    o.target = Some("one".into());
    let (cmds, _, _) = walk(&df, 0, &o);
    assert_eq!(env_of(&cmds, "T").as_deref(), Some("one"));
}

#[test]
fn expands_exactly_what_buildkit_expands() {
    let text = "FROM scratch\nARG D=/dst U=app S=SIGTERM P=80 F=file\n\
        COPY --chown=$U --chmod=755 $F ${D}/\n\
        ADD --checksum=sha256:$F $F $D\n\
        WORKDIR $D\nUSER $U\nSTOPSIGNAL $S\nVOLUME $D\nEXPOSE $P 443\nLABEL k=$U\n\
        RUN echo $U\nCMD echo $U\nENTRYPOINT [\"$U\"]\n";
    let df = load(text).unwrap();
    let (cmds, _, _) = walk(&df, 0, &opts(&[]));
    match &cmds[1] {
        Command::Copy(c) => {
            assert_eq!(c.chown.as_deref(), Some("app"));
            assert_eq!(c.files.sources, vec!["file"]);
            assert_eq!(c.files.dest, "/dst/");
        }
        other => panic!("{other:?}"),
    }
    match &cmds[2] {
        Command::Add(a) => assert_eq!(a.checksum.as_deref(), Some("sha256:file")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(&cmds[3], Command::Workdir { path } if path == "/dst"));
    assert!(matches!(&cmds[4], Command::User { user } if user == "app"));
    assert!(matches!(&cmds[5], Command::Stopsignal { signal } if signal == "SIGTERM"));
    assert!(matches!(&cmds[6], Command::Volume { volumes } if volumes == &["/dst"]));
    // BuildKit sorts the words as written ("$P" < "443"), then expands.
    assert!(matches!(&cmds[7], Command::Expose { ports } if ports == &["80", "443"]));
    assert!(matches!(&cmds[8], Command::Label { labels } if labels[0].value == "app"));
    // RUN, CMD and ENTRYPOINT bodies are left to the shell.
    assert!(matches!(&cmds[9], Command::Run(r) if r.command.args == ["echo $U"]));
    assert!(matches!(&cmds[10], Command::Cmd(c) if c.args == ["echo $U"]));
    assert!(matches!(&cmds[11], Command::Entrypoint(c) if c.args == ["$U"]));
}

#[test]
fn copy_heredoc_bodies_expand_unless_quoted() {
    let text = "FROM scratch\nARG NAME=world\nCOPY <<A <<\"B\" /dst/\nhello $NAME \"q\"\nA\nraw $NAME\nB\n";
    let df = load(text).unwrap();
    let (cmds, _, _) = walk(&df, 0, &opts(&[]));
    let Command::Copy(c) = &cmds[1] else {
        panic!("{:?}", cmds[1])
    };
    assert_eq!(c.files.inline[0].data, "hello world \"q\"\n");
    assert_eq!(c.files.inline[1].data, "raw $NAME\n");
}

#[test]
fn run_mounts_expand_per_stage() {
    let df = load(
        "FROM scratch\nARG CACHE=/root/.cache\nRUN --mount=type=cache,target=$CACHE,id=pip true\n",
    )
    .unwrap();
    let o = opts(&[]);
    let g = GlobalScope::new(&df, &o).unwrap();
    let mut scope = StageScope::new(&df, &g, &o, &[]);
    scope.apply(&df.stages[0].instructions[0]).unwrap();
    let Command::Run(run) = scope.apply(&df.stages[0].instructions[1]).unwrap().command else {
        panic!()
    };
    let mounts = run.mounts(&mut |w| scope.expand_word(w)).unwrap();
    assert_eq!(mounts[0].target.as_deref(), Some("/root/.cache"));
    assert_eq!(mounts[0].id.as_deref(), Some("pip"));
}

#[test]
fn typed_instructions() {
    let df = load(
        "FROM --platform=linux/amd64 busybox AS Build\n\
         HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/\n\
         HEALTHCHECK NONE\n\
         ONBUILD RUN echo hi\n\
         SHELL [\"/bin/bash\", \"-c\"]\n\
         ADD --keep-git-dir=true --unpack=false --exclude=*.md --link a.tar /x/\n\
         COPY --parents --exclude=a --exclude=b x y /z/\n",
    )
    .unwrap();
    let s = &df.stages[0];
    assert_eq!(s.name(), Some("build"), "stage names are lower-cased");
    assert_eq!(s.from.platform.as_deref(), Some("linux/amd64"));
    let c: Vec<&Command> = s.instructions.iter().map(|i| &i.command).collect();
    match c[0] {
        Command::Healthcheck(Healthcheck::Cmd {
            test,
            interval_ns,
            retries,
            ..
        }) => {
            assert_eq!(test, &["CMD-SHELL", "curl -f http://x/"]);
            assert_eq!(*interval_ns, 5_000_000_000);
            assert_eq!(*retries, 3);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(c[1], Command::Healthcheck(Healthcheck::None)));
    match c[2] {
        Command::Onbuild(o) => {
            assert_eq!(o.expression, "RUN echo hi");
            assert!(matches!(o.trigger.command, Command::Run(_)));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(c[3], Command::Shell { shell } if shell == &["/bin/bash", "-c"]));
    match c[4] {
        Command::Add(a) => {
            assert_eq!(a.keep_git_dir, Some(true));
            assert_eq!(a.unpack, Some(false));
            assert!(a.link);
            assert_eq!(a.exclude, vec!["*.md"]);
        }
        other => panic!("{other:?}"),
    }
    match c[5] {
        Command::Copy(cp) => {
            assert!(cp.parents);
            assert_eq!(cp.exclude, vec!["a", "b"]);
            assert_eq!(cp.files.sources, vec!["x", "y"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn instruction_errors_name_the_problem_and_the_line() {
    let cases: &[(&str, &str, usize)] = &[
        (
            "FROM scratch\nCOPY --form=x a b\n",
            "unknown flag: --form for COPY (did you mean from?)",
            2,
        ),
        (
            "FROM scratch\nRUN --network=bridge true\n",
            "invalid network mode \"bridge\"",
            2,
        ),
        (
            "FROM scratch\nRUN --security=root true\n",
            "security \"root\" is not valid",
            2,
        ),
        (
            "FROM scratch\nRUN --mount=type=nfs,target=/x true\n",
            "unsupported mount type \"nfs\"",
            2,
        ),
        (
            "FROM scratch\nCOPY onlyone\n",
            "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
            2,
        ),
        (
            "FROM scratch AS 1st\n",
            "invalid name for build stage: \"1st\", name can't start with a number or contain symbols",
            1,
        ),
        (
            "FROM a b\n",
            "FROM requires either one or three arguments",
            1,
        ),
        (
            "FROM scratch\nSHELL /bin/sh -c\n",
            "SHELL requires the arguments to be in JSON form, got: SHELL /bin/sh -c",
            2,
        ),
        (
            "FROM scratch\nHEALTHCHECK --interval=1us CMD true\n",
            "Interval \"interval\" cannot be less than 1ms",
            2,
        ),
        (
            "FROM scratch\nHEALTHCHECK --retries=-1 CMD true\n",
            "--retries cannot be negative (-1)",
            2,
        ),
        (
            "FROM scratch\nHEALTHCHECK CONNECT x\n",
            "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)",
            2,
        ),
        (
            "FROM scratch\nONBUILD FROM x\n",
            "FROM isn't allowed as an ONBUILD trigger",
            2,
        ),
        (
            "FROM scratch\nONBUILD ONBUILD RUN x\n",
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            2,
        ),
        (
            "FROM scratch\nUSER\n",
            "USER requires exactly one argument",
            2,
        ),
        ("FROM scratch\nARG =x\n", "ARG names can not be blank", 2),
        (
            "FROM scratch\nWORKDIR --bogus /x\n",
            "unknown flag: --bogus for WORKDIR",
            2,
        ),
        (
            "RUN true\n",
            "no build stage in current context: RUN must come after a FROM",
            1,
        ),
        ("ARG A\n", "dockerfile contains no stages to build", 0),
        (
            "FROM scratch AS a\nFROM scratch AS A\n",
            "duplicate stage name \"a\": first defined on line 1",
            2,
        ),
    ];
    let mut failures = Vec::new();
    for (text, want, line) in cases {
        match load(text) {
            Ok(_) => failures.push(format!("{text:?}: parsed, want error {want:?}")),
            Err(e) if e.message != *want || e.pos.line != *line => failures.push(format!(
                "{text:?}: got {:?} at line {}, want {want:?} at line {line}",
                e.message, e.pos.line
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn steps_are_displayed_as_buildkit_names_run_vertices() {
    // dispatchRun's name: `processCmdEnv` with RawQuotes and SkipUnsetEnv,
    // the keyword upper-cased.
    let df =
        load("FROM scratch\nENV WHO=world\nARG N=3\nrun echo \"hi $WHO\" $N $UNSET\n").unwrap();
    let globals = GlobalScope::new(&df, &opts(&[])).unwrap();
    let o = opts(&[]);
    let mut scope = StageScope::new(&df, &globals, &o, &[]);
    let mut shown = Vec::new();
    for i in &df.stages[0].instructions {
        scope.apply(i).unwrap();
        shown.push(scope.display_text(i.original.trim()));
    }
    assert_eq!(shown.last().unwrap(), "RUN echo \"hi world\" 3 $UNSET");
}

#[test]
fn a_step_name_that_could_expand_huge_is_shown_as_written() {
    // `RUN $A$A…` with a long A would cost its expansion just to be shown.
    let long = "x".repeat(64 * 1024);
    let refs = "$A".repeat(32);
    let text = format!("FROM scratch\nENV A={long}\nRUN echo {refs}\nRUN echo $A\n");
    let df = load(&text).unwrap();
    let globals = GlobalScope::new(&df, &opts(&[])).unwrap();
    let o = opts(&[]);
    let mut scope = StageScope::new(&df, &globals, &o, &[]);
    let mut shown = Vec::new();
    for i in &df.stages[0].instructions {
        scope.apply(i).unwrap();
        shown.push(scope.display_text(i.original.trim()));
    }
    assert_eq!(shown[1], format!("RUN echo {refs}"));
    assert_eq!(shown[2], format!("RUN echo {long}"));
}
