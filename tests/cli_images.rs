//! `hoist images` as `docker images`: the IMAGE ID is the config digest
//! (checked against a real dockerd that loaded the same images), SIZE is
//! docker's (the layers' uncompressed content), `-a` adds `<none>` rows
//! for images no name reaches, and an image ID, whole or a unique prefix,
//! names an image in `inspect`, `tag`, `save`, `push` and `rmi`.

use hoist_test_support::{bin, dockerd, lab};

use lab::Lab;

fn json(lab: &Lab, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&lab.ok(args).0).unwrap()
}

/// (id, size) of each named image, from `hoist images --format json`.
fn listed(lab: &Lab) -> Vec<(String, String, u64)> {
    json(lab, &["images", "--format", "json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["repository"].as_str().unwrap().to_string(),
                i["id"].as_str().unwrap().to_string(),
                i["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn build(lab: &Lab, tag: &str, dockerfile: &str) {
    let ctx = lab.path(&format!("ctx-{}", tag.replace([':', '/'], "-")));
    lab::write(&ctx, &[("Dockerfile", dockerfile)]);
    lab.ok(&["build", "-q", "-t", tag, ctx.to_str().unwrap()]);
}

#[test]
fn id_and_size_columns_are_dockers() {
    let lab = Lab::new(bin!());
    // A file, a second link to it (counted once by docker), a symlink
    // (its target's length) and a deleted file (a whiteout: nothing).
    build(
        &lab,
        "app:1",
        "FROM base:1\nRUN printf hello > /x && ln /x /y && ln -s /x /z && rm /etc/group\n",
    );
    let tar = lab.path("both.tar");
    lab.ok(&["save", "-o", tar.to_str().unwrap(), "base:1", "app:1"]);
    let engine = dockerd::Dockerd::start();
    engine.ok(&["load", "-i", tar.to_str().unwrap()]);

    let ours = listed(&lab);
    assert_eq!(ours.len(), 2, "{ours:?}");
    for (repo, id, size) in &ours {
        let theirs = engine.ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Size}}",
            &format!("{repo}:1"),
        ]);
        assert_eq!(theirs.trim(), format!("{id} {size}"), "{repo}");
    }
    // The table: the same ID column and SIZE words as `docker images`.
    let docker_rows = engine.ok(&["images", "--format", "{{.Repository}} {{.ID}} {{.Size}}"]);
    let table = lab.ok(&["images"]).0;
    let header: Vec<&str> = table.lines().next().unwrap().split("   ").collect();
    assert_eq!(
        header
            .iter()
            .map(|h| h.trim())
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "{table}"
    );
    for row in docker_rows.lines() {
        let cells: Vec<&str> = row.split(' ').collect();
        let (repo, id, size) = (cells[0], cells[1], cells[2]);
        assert!(
            table.lines().any(|l| {
                let ours: Vec<&str> = l.split_whitespace().collect();
                ours.first() == Some(&repo)
                    && ours.get(2) == Some(&id)
                    && ours.last() == Some(&size)
            }),
            "docker's row {row:?} is not in:\n{table}"
        );
    }
    // -q: the short IDs; --no-trunc: whole.
    let q = lab.ok(&["images", "-q"]).0;
    let mut q: Vec<&str> = q.lines().collect();
    q.sort();
    let mut want: Vec<String> = ours
        .iter()
        .map(|(_, id, _)| id[7..19].to_string())
        .collect();
    want.sort();
    assert_eq!(q, want);
    let whole = lab.ok(&["images", "-q", "--no-trunc"]).0;
    assert!(
        ours.iter().all(|(_, id, _)| whole.lines().any(|l| l == id)),
        "{whole}"
    );
    // inspect agrees.
    let inspect = json(&lab, &["inspect", "app:1"]);
    let app = ours.iter().find(|(r, _, _)| r == "app").unwrap();
    assert_eq!(inspect["Id"], app.1.as_str());
    assert_eq!(inspect["Size"], app.2);
}

#[test]
fn all_shows_none_rows_for_images_no_name_reaches() {
    let lab = Lab::new(bin!());
    build(&lab, "app:1", "FROM base:1\nRUN echo one > /v\n");
    let first = lab.ok(&["images", "-q"]).0;
    build(&lab, "app:1", "FROM base:1\nRUN echo two > /v\n");
    let plain = lab.ok(&["images"]).0;
    assert!(!plain.contains("<none>"), "{plain}");
    let all = lab.ok(&["images", "-a"]).0;
    let none: Vec<&str> = all
        .lines()
        .filter(|l| l.starts_with("<none>   ") && l.split_whitespace().nth(1) == Some("<none>"))
        .collect();
    assert_eq!(none.len(), 1, "{all}");
    // The earlier app:1, which the tag left: one of the IDs before.
    let old_id = none[0].split_whitespace().nth(2).unwrap();
    assert!(first.lines().any(|l| l == old_id), "{first} / {all}");
    // docker images -f dangling=true -q: just that one; =false: the named.
    assert_eq!(
        lab.ok(&["images", "-q", "-f", "dangling=true"]).0,
        format!("{old_id}\n")
    );
    let named = lab.ok(&["images", "--filter", "dangling=false"]).0;
    assert!(
        !named.contains("<none>") && named.contains("app "),
        "{named}"
    );
    let out = lab.hoist(&["images", "-f", "label=x"]);
    assert!(!out.status.success(), "an unknown filter is refused");
    // Its ID names it: inspect, then tag it back.
    assert_eq!(
        json(&lab, &["inspect", old_id])["Id"].as_str().unwrap()[7..19],
        *old_id
    );
    lab.ok(&["tag", old_id, "app:old"]);
    let all = lab.ok(&["images", "-a"]).0;
    assert!(!all.contains("<none>"), "{all}");
    // An image no name reaches has no name to remove: said, not silent.
    build(&lab, "app:1", "FROM base:1\nRUN echo three > /v\n");
    let dangling = lab.ok(&["images", "-a"]).0;
    let id = dangling
        .lines()
        .find(|l| l.starts_with("<none>"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_string();
    let out = lab.hoist(&["rmi", &id]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hoist prune"),
        "{out:?}"
    );
    lab.ok(&["prune", "--force"]);
    assert!(!lab.ok(&["images", "-a"]).0.contains("<none>"));
}

#[test]
fn short_ids_name_images_in_every_command() {
    let lab = Lab::new(bin!());
    let registry = hoist_engine::testing::Registry::start(None).unwrap();
    build(&lab, "app:1", "FROM base:1\nRUN echo hi > /v\n");
    let full = json(&lab, &["inspect", "app:1"])["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let short = full[7..19].to_string();
    let hex = full[7..].to_string();
    // Every spelling of the ID: 12 hex, a shorter prefix, whole hex,
    // sha256:whole, sha256:prefix.
    for given in [
        &short,
        &short[..5],
        &hex,
        &full,
        &format!("sha256:{}", &hex[..8]),
    ] {
        assert_eq!(
            json(&lab, &["inspect", given])["Id"],
            full.as_str(),
            "{given}"
        );
    }
    lab.ok(&["tag", &short, "app:2"]);
    lab.ok(&["tag", &short[..6], "app:3"]);
    assert_eq!(
        json(&lab, &["inspect", &short])["RepoTags"],
        serde_json::json!(["app:1", "app:2", "app:3"])
    );
    // save by ID: docker saves it without a name; load gives the same ID.
    let tar = lab.path("by-id.tar");
    lab.ok(&["save", "-o", tar.to_str().unwrap(), &short]);
    let other = Lab::empty(bin!());
    other.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(
        other
            .ok(&["images", "-a", "-q"])
            .0
            .lines()
            .any(|l| l == short)
    );
    // push by ID needs a destination; with one, it lands there.
    let out = lab.hoist(&["push", &short]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("give the destination"),
        "{out:?}"
    );
    let dest = format!("{}/team/app:1", registry.addr());
    lab.ok(&["push", "-q", &short, &dest]);
    other.ok(&["pull", "-q", &dest]);
    assert_eq!(
        json(&other, &["inspect", &dest])["Id"],
        full.as_str(),
        "the pushed image keeps its ID"
    );
    // rmi by ID: every name, in one repository without --force.
    lab.ok(&["rmi", &dest]);
    lab.ok(&["tag", "app:1", "elsewhere/app:1"]);
    let out = lab.hoist(&["rmi", &short]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
        )),
        "{out:?}"
    );
    lab.ok(&["rmi", "elsewhere/app:1"]);
    let (removed, _) = lab.ok(&["rmi", &short]);
    assert_eq!(
        removed,
        "Untagged: docker.io/library/app:1\nUntagged: docker.io/library/app:2\nUntagged: docker.io/library/app:3\n"
    );
    assert!(!lab.ok(&["images"]).0.contains("app "));
}

#[test]
fn an_ambiguous_prefix_names_the_candidates() {
    let lab = Lab::new(bin!());
    // Images until two IDs share a first hex digit (17 always do).
    let mut ids: Vec<String> = Vec::new();
    let clash = (0..17)
        .find_map(|i| {
            build(
                &lab,
                &format!("img:{i}"),
                &format!("FROM base:1\nLABEL n={i}\n"),
            );
            let id = json(&lab, &["inspect", &format!("img:{i}")])["Id"]
                .as_str()
                .unwrap()[7..]
                .to_string();
            let found = ids.iter().find(|o| o[..1] == id[..1]).cloned();
            ids.push(id.clone());
            found.map(|o| (o, id))
        })
        .unwrap();
    let prefix = &clash.0[..1];
    for cmd in [
        &["inspect", prefix][..],
        &["rmi", prefix],
        &["tag", prefix, "x:1"],
    ] {
        let out = lab.hoist(cmd);
        assert!(!out.status.success(), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{prefix:?} is ambiguous")), "{err}");
        assert!(
            err.contains(&clash.0[..12]) && err.contains(&clash.1[..12]),
            "names both candidates: {err}"
        );
    }
    // A name wins over an ID: `tag` to a name that is also hex.
    lab.ok(&["tag", "img:0", prefix]);
    assert_eq!(
        json(&lab, &["inspect", prefix])["Id"].as_str().unwrap()[7..],
        ids[0]
    );
    // Nothing by that ID: said as docker's "No such image".
    let out = lab.hoist(&["inspect", "0000000000ab"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no image \"0000000000ab\" in the store"),
        "{out:?}"
    );
}

#[test]
fn load_takes_a_layout_tarred_with_its_root_entry() {
    // `tar -C layout -cf x.tar .` writes `./` first; docker load takes it.
    let lab = Lab::new(bin!());
    let layout = lab.path("layout");
    lab.ok(&[
        "export",
        "base:1",
        "-o",
        &format!("type=oci,tar=false,dest={}", layout.display()),
    ]);
    let tar = lab.path("dot.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let other = Lab::empty(bin!());
    other.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(
        other.ok(&["images", "-q"]).0,
        lab.ok(&["images", "-q"]).0,
        "the same image, by ID"
    );
}
