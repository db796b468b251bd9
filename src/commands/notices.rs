//! What `hoist build` and `hoist export` say besides build events: the
//! engine's [`Notice`]s on stderr, and standard output for `dest=-`.

use std::io::{IsTerminal, Write};

use hoist_engine::request::Notice;

/// Print `notice` on stderr; `quiet` (`-q`, rawjson) keeps only warnings
/// and what an engine said when it loaded the image.
/// [`Notice::StepsDone`] is the caller's (it ends the progress view).
pub fn print(notice: Notice, quiet: bool) {
    match notice {
        Notice::StepsDone => {}
        Notice::CacheUnreadable(e) => eprintln!("warning: {e} (building without it)"),
        Notice::UnpackWarning(w) => eprintln!("warning: {w:?}"),
        Notice::Loaded { engine, lines } => {
            for line in &lines {
                eprintln!("{line}");
            }
            eprintln!("loading image into {engine} done");
        }
        _ if quiet => {}
        Notice::CacheImported { name, records } => {
            eprintln!("importing cache {name}: {records} step records")
        }
        Notice::Pushed { name, digest } => eprintln!("pushing manifest for {name}@{digest} done"),
        Notice::PushedLazily { name, report } => eprintln!(
            "pushed {name} {} ({} blobs uploaded, {} mounted, {} already there; not named in the local store: its layers stay in the registry)",
            report.digest,
            report.uploaded.len(),
            report.mounted.len(),
            report.skipped.len()
        ),
        Notice::CacheExported { cache, report } => eprintln!(
            "exporting cache {cache}: {} step records, {} layers, {} cache mounts done",
            report.steps, report.layers, report.mounts
        ),
    }
}

/// Standard output for a tarball (`dest=-`), never a terminal.
pub fn stdout() -> std::io::Result<Box<dyn Write + 'static>> {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        return Err(std::io::Error::other(
            "refusing to write a tarball to a terminal; use dest=FILE or redirect",
        ));
    }
    Ok(Box::new(std::io::BufWriter::new(stdout.lock())))
}
