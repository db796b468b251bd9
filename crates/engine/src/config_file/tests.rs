use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::*;

fn parse(text: &str) -> Result<Config> {
    Config::parse(text, Path::new("/etc/hoist/config.toml"))
}

/// The error's `(line, column, message)`.
fn error_at(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Err(ConfigError::At {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected a located error, got {other:?}"),
    }
}

#[test]
fn a_full_file_is_read() {
    let config = parse(
        r#"
root = "/srv/hoist"

[registry."Registry.LAN:5000"]
insecure = true
mirrors = ["mirror-a.lan:5000", "mirror-b.lan", "mirror-a.lan:5000"]

[registry."index.docker.io"]
mirrors = ["mirror.gcr.io"]

[build]
platform = "linux/arm64/v8"
network = "none"
compression = "zstd"
allow = ["network.host", "network.host"]
"#,
    )
    .unwrap();
    assert_eq!(config.root, Some(PathBuf::from("/srv/hoist")));
    assert_eq!(config.insecure_registries(), vec!["registry.lan:5000"]);
    let mirrors: BTreeMap<String, Vec<String>> = [
        ("docker.io".to_string(), vec!["mirror.gcr.io".to_string()]),
        (
            "registry.lan:5000".to_string(),
            vec!["mirror-a.lan:5000".to_string(), "mirror-b.lan".to_string()],
        ),
    ]
    .into();
    assert_eq!(
        config.mirrors(),
        mirrors,
        "lower-cased, Hub aliased, deduplicated"
    );
    assert_eq!(
        config.build,
        BuildDefaults {
            platform: Some("linux/arm64/v8".into()),
            network: Some("none".into()),
            compression: Some(Compression::Zstd),
            allow: vec![crate::executor::Entitlement::NetworkHost],
        }
    );
}

#[test]
fn an_empty_file_is_the_default() {
    let config = parse("# nothing here\n").unwrap();
    assert_eq!(config.root, None);
    assert!(config.registries.is_empty());
    assert_eq!(config.build, BuildDefaults::default());
}

#[test]
fn unknown_keys_are_located() {
    let (line, column, message) = error_at("root = \"/x\"\nbogus = 1\n");
    assert_eq!((line, column), (2, 1));
    assert!(message.contains("unknown field `bogus`"), "{message}");
    let (line, column, message) =
        error_at("[registry.\"r.lan\"]\ninsecure = true\n  insecur = true\n");
    assert_eq!((line, column), (3, 3));
    assert!(message.contains("insecur"), "{message}");
    let (line, _, message) = error_at("[build]\npull = true\n");
    assert_eq!(line, 2);
    assert!(message.contains("`pull`"), "{message}");
    let (line, _, _) = error_at("[mirrors]\n");
    assert_eq!(line, 1);
}

#[test]
fn wrong_types_are_located() {
    let (line, column, message) = error_at("[registry.\"r.lan\"]\ninsecure = \"yes\"\n");
    assert_eq!((line, column), (2, 12));
    assert!(message.contains("bool"), "{message}");
    let (line, column, _) = error_at("[registry.\"r.lan\"]\nmirrors = \"m.lan\"\n");
    assert_eq!((line, column), (2, 11));
    let (line, column, _) = error_at("root = 5\n");
    assert_eq!((line, column), (1, 8));
    let (line, _, _) = error_at("registry = 5\n");
    assert_eq!(line, 1);
}

#[test]
fn syntax_errors_are_located() {
    let (line, _, _) = error_at("root = \"/x\"\n[build\n");
    assert_eq!(line, 2);
}

#[test]
fn bad_values_are_located() {
    let cases = [
        ("root = \"relative/dir\"\n", 1, 8, "absolute"),
        (
            "[registry.\"https://r.lan\"]\ninsecure = true\n",
            1,
            11,
            "scheme",
        ),
        (
            "[registry.\"r.lan\"]\nmirrors = [\"ok.lan\", \"m.lan/path\"]\n",
            2,
            22,
            "path",
        ),
        ("[registry.\"r.lan:http\"]\n", 1, 11, "port"),
        (
            "[registry.\"r.lan\"]\nmirrors = [\"R.lan\"]\n",
            2,
            12,
            "itself",
        ),
        (
            "[build]\nnetwork = \"bridge\"\n",
            2,
            11,
            "default, host, none",
        ),
        (
            "[build]\nprogress = \"plain\"\n",
            2,
            1,
            "unknown field `progress`",
        ),
        ("[build]\ncompression = \"lz4\"\n", 2, 15, "zstd"),
        ("[build]\nplatform = \"linux//\"\n", 2, 12, "platform"),
        (
            "[registry.\"docker.io\"]\n[registry.\"index.docker.io\"]\n",
            2,
            11,
            "twice",
        ),
    ];
    for (text, line, column, needle) in cases {
        let (l, c, message) = error_at(text);
        assert_eq!((l, c), (line, column), "{text}: {message}");
        assert!(message.contains(needle), "{text}: {message}");
    }
}

#[test]
fn columns_count_characters_and_the_error_shows_the_line() {
    let text = "# é€\n[build]\nnetwork = \"brïdge\" # ü\n";
    let err = parse(text).unwrap_err();
    let ConfigError::At {
        line,
        column,
        line_text,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*line, *column), (3, 11));
    assert_eq!(line_text, "network = \"brïdge\" # ü");
    assert!(
        err.to_string()
            .starts_with("/etc/hoist/config.toml:3:11: build.network \"brïdge\""),
        "{err}"
    );
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| {
        vars.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| OsString::from(v))
    }
}

#[test]
fn the_file_is_looked_for_in_order() {
    let all = env(&[
        ("HOIST_CONFIG", "/env/config.toml"),
        ("XDG_CONFIG_HOME", "/xdg"),
        ("HOME", "/home/u"),
    ]);
    let flag = Path::new("/flag.toml");
    let got = locate_with(Some(flag), &all, Runner::User).unwrap();
    assert_eq!((got.path.as_path(), got.source), (flag, ConfigSource::Flag));
    let got = locate_with(None, &all, Runner::Root).unwrap();
    assert_eq!(got.path, Path::new("/env/config.toml"));
    assert_eq!(got.source, ConfigSource::Env);
    let no_env = env(&[
        ("HOIST_CONFIG", ""),
        ("XDG_CONFIG_HOME", "/xdg"),
        ("HOME", "/home/u"),
    ]);
    let at = |runner| locate_with(None, &no_env, runner).unwrap().path;
    assert_eq!(at(Runner::Root), Path::new("/etc/hoist/config.toml"));
    assert_eq!(at(Runner::User), Path::new("/xdg/hoist/config.toml"));
    assert_eq!(at(Runner::Rootless), Path::new("/xdg/hoist/config.toml"));
    let relative_xdg = env(&[("XDG_CONFIG_HOME", "xdg"), ("HOME", "/home/u")]);
    assert_eq!(
        locate_with(None, &relative_xdg, Runner::User).unwrap().path,
        Path::new("/home/u/.config/hoist/config.toml")
    );
    assert_eq!(locate_with(None, env(&[]), Runner::User), None);
}

#[test]
fn a_missing_file_is_an_error_only_when_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let located = |source| {
        Some(Located {
            path: missing.clone(),
            source,
        })
    };
    assert_eq!(
        Config::from_located(located(ConfigSource::Default)).unwrap(),
        Config::default()
    );
    for source in [ConfigSource::Flag, ConfigSource::Env] {
        let err = Config::from_located(located(source)).unwrap_err();
        assert!(
            matches!(err, ConfigError::Missing { .. }),
            "{source:?}: {err:?}"
        );
        assert!(err.to_string().contains("nope.toml"), "{err}");
        assert!(err.to_string().contains(source.name()), "{err}");
    }
    std::fs::write(&missing, "[build]\nnetwork = \"none\"\n").unwrap();
    let config = Config::from_located(located(ConfigSource::Default)).unwrap();
    assert_eq!(config.build.network.as_deref(), Some("none"));
    assert_eq!(config.path.as_deref(), Some(missing.as_path()));
}

#[test]
fn store_root_precedence() {
    let with_root = Config {
        root: Some("/cfg/root".into()),
        ..Config::default()
    };
    let none = Config::default();
    let vars = env(&[("HOIST_ROOT", "/env/root"), ("HOME", "/home/u")]);
    let flag = Some(Path::new("/flag/root"));
    let root = |flag, config, env, runner| store_root_with(flag, config, env, runner).unwrap();
    assert_eq!(
        root(flag, &with_root, &vars, Runner::User),
        Path::new("/flag/root")
    );
    assert_eq!(
        root(None, &with_root, &vars, Runner::User),
        Path::new("/env/root")
    );
    let no_env = env(&[("HOME", "/home/u")]);
    assert_eq!(
        root(None, &with_root, &no_env, Runner::Root),
        Path::new("/cfg/root")
    );
    assert_eq!(
        root(None, &none, &no_env, Runner::Root),
        Path::new("/var/lib/hoist")
    );
    assert_eq!(
        root(None, &none, &no_env, Runner::User),
        Path::new("/home/u/.local/share/hoist")
    );
    // Rootless: the default the parent handed down does not beat the file,
    // a $HOIST_ROOT of the user's own does.
    let handed = env(&[
        ("HOIST_ROOT", "/home/u/.local/share/hoist"),
        ("HOME", "/home/u"),
    ]);
    assert_eq!(
        root(None, &with_root, &handed, Runner::Rootless),
        Path::new("/cfg/root")
    );
    assert_eq!(
        root(None, &none, &handed, Runner::Rootless),
        Path::new("/home/u/.local/share/hoist")
    );
    assert_eq!(
        root(None, &with_root, &vars, Runner::Rootless),
        Path::new("/env/root")
    );
    assert_eq!(
        root(None, &with_root, &handed, Runner::Root),
        Path::new("/home/u/.local/share/hoist")
    );
}

#[test]
fn an_unknown_entitlement_is_located() {
    let (line, column, message) = error_at("[build]\nallow = [\"network.hots\"]\n");
    assert_eq!((line, column), (2, 10));
    assert!(
        message.starts_with("build.allow: unknown entitlement network.hots"),
        "{message}"
    );
}
