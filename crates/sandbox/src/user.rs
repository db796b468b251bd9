//! `USER` values to numeric ids inside the step's root (its own
//! `/etc/passwd` and `/etc/group`, read after `pivot_root`, so the paths
//! are the image's), with `hoist_userdb`'s rules.

use std::io::Read;
use std::path::Path;

use hoist_userdb::{MAX_FILE_BYTES, UserDb};

/// The user database under `root` (`/` inside the sandbox); a file that is
/// missing or unreadable is empty, one larger than 10 MiB is cut there.
pub fn load(root: &Path) -> UserDb {
    let read = |name: &str| {
        let mut out = Vec::new();
        if let Ok(f) = std::fs::File::open(root.join(name)) {
            let _ = f.take(MAX_FILE_BYTES).read_to_end(&mut out);
        }
        out
    };
    UserDb::parse(&read("etc/passwd"), &read("etc/group"))
}
