//! `hoist build --call=outline|targets[,format=json]` (buildx's frontend
//! methods, issue 12 item 4 and the plan issue): answered from the
//! Dockerfile alone, before anything is pulled, built or stored, and on
//! stdout only, so `hoist build -q --call=outline . > args.txt` is a
//! script's input.

use hoist_test_support::{bin, lab};

use lab::Lab;

const DOCKERFILE: &str = "\
# VERSION is the release to build
ARG VERSION=1.0
# build compiles the tool
FROM unreachable.invalid/toolchain:${VERSION} AS build
# OPT optimisation level
ARG OPT=2
RUN --mount=type=secret,id=token,required make
# release is the shipped image
FROM scratch AS release
COPY --from=build /out /
";

#[test]
fn outline_and_targets_read_the_dockerfile_and_build_nothing() {
    let lab = Lab::empty(bin!());
    let ctx = lab.path("ctx");
    lab::write(&ctx, &[("Dockerfile", DOCKERFILE)]);
    let ctx = ctx.to_str().unwrap();

    // The base is unreachable: a build would fail; the outline does not pull.
    let (out, err) = lab.ok(&["build", "-q", "--call=outline", "--build-arg", "OPT=3", ctx]);
    assert_eq!(
        out,
        "TARGET:      release\n\
         DESCRIPTION: is the shipped image\n\
         \n\
         BUILD ARG   VALUE   DESCRIPTION\n\
         VERSION     1.0     is the release to build\n\
         OPT         3       optimisation level\n\
         \n\
         SECRET   REQUIRED\n\
         token    true\n\
         \n",
        "stderr: {err}"
    );

    let (out, _) = lab.ok(&["build", "--call", "targets", ctx]);
    assert_eq!(
        out,
        "TARGET            DESCRIPTION\n\
         build             compiles the tool\n\
         release (default) is the shipped image\n"
    );

    let (out, _) = lab.ok(&[
        "build",
        "--call=outline,format=json",
        "--target",
        "build",
        ctx,
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "build");
    assert_eq!(v["args"][0]["name"], "VERSION");
    assert_eq!(v["args"][1]["location"]["ranges"][0]["start"]["line"], 6);
    assert_eq!(v["secrets"][0]["required"], true);
    assert!(v["sources"][0].is_string());

    // Nothing was stored: no image, no blob.
    let (images, _) = lab.ok(&["images", "-q"]);
    assert_eq!(images.trim(), "");
}

#[test]
fn call_errors_name_the_method_and_the_line() {
    let lab = Lab::empty(bin!());
    let ctx = lab.path("ctx");
    lab::write(&ctx, &[("Dockerfile", DOCKERFILE)]);
    let ctx = ctx.to_str().unwrap();
    let out = lab.hoist(&["build", "--call=outlines", ctx]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--call=outlines") && err.contains("outline, targets"),
        "{err}"
    );

    let out = lab.hoist(&["build", "--call=outline", "--target", "relase", ctx]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("did you mean release?"), "{err}");

    lab::write(
        &lab.path("bad"),
        &[(
            "Dockerfile",
            "FROM scratch\nARG A=\"unterminated\nRUN true\n",
        )],
    );
    let out = lab.hoist(&["build", "--call=outline", lab.path("bad").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Dockerfile:2:"), "{err}");
}
