//! `--chown`: `user`, `user:group`, `uid:gid` and mixes, resolved as
//! BuildKit does (`llb.WithUser` + `readUser`): `root` and numbers pass
//! through, names are looked up in the destination image's `/etc/passwd`
//! and `/etc/group` (found through symlinks inside the image root), a user
//! given alone brings its primary group (a numeric one brings gid = uid),
//! and an empty group (`user:`) is gid 0.
//!
//! Deliberate difference: BuildKit silently uses id 0 for a name it cannot
//! find; here that is an error naming it.

use std::io::Read;

use super::FileOpError;
use super::vfs::{Key, Vfs};
use super::view::ViewFile;

/// BuildKit's limit on `/etc/passwd` and `/etc/group`.
const MAX_USER_FILE: u64 = 10 << 20;

/// `root` or a decimal id.
fn numeric(s: &str) -> Option<u32> {
    if s == "root" {
        return Some(0);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Resolves a `--chown` value against the image whose root `vfs` views.
pub(crate) fn resolve_chown(
    op: &'static str,
    value: &str,
    vfs: &Vfs,
) -> Result<(u32, u32), FileOpError> {
    let (user, group) = match value.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (value, None),
    };
    let (uid, mut gid) = if user.is_empty() {
        (0, 0)
    } else if let Some(id) = numeric(user) {
        (id, id)
    } else {
        let rows = read_db(op, value, vfs, "/etc/passwd")?;
        let Some(fields) = rows.iter().find(|f| f.first().is_some_and(|n| n == user)) else {
            return Err(FileOpError::UnknownUser {
                op,
                value: value.to_string(),
                kind: "user",
                name: user.to_string(),
                file: "/etc/passwd",
            });
        };
        (field_id(fields, 2), field_id(fields, 3))
    };
    if let Some(group) = group {
        gid = if group.is_empty() {
            0
        } else if let Some(id) = numeric(group) {
            id
        } else {
            let rows = read_db(op, value, vfs, "/etc/group")?;
            let Some(fields) = rows.iter().find(|f| f.first().is_some_and(|n| n == group)) else {
                return Err(FileOpError::UnknownUser {
                    op,
                    value: value.to_string(),
                    kind: "group",
                    name: group.to_string(),
                    file: "/etc/group",
                });
            };
            field_id(fields, 2)
        };
    }
    Ok((uid, gid))
}

/// Go's `strconv.Atoi` with the error ignored, as moby/sys/user parses.
fn field_id(fields: &[String], i: usize) -> u32 {
    fields
        .get(i)
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

/// The lines of a user database split at `:`; a missing file is empty.
fn read_db(
    op: &'static str,
    value: &str,
    vfs: &Vfs,
    file: &'static str,
) -> Result<Vec<Vec<String>>, FileOpError> {
    let fail = |path: std::path::PathBuf, source| FileOpError::UserDb {
        op,
        value: value.to_string(),
        path,
        source,
    };
    let Ok(key) = vfs.resolve(&Key::root(), file.as_bytes(), true) else {
        return Ok(Vec::new());
    };
    let path = vfs.shown_path(&key);
    let f = match vfs.view_open(&key) {
        Ok(ViewFile::File(f, _)) => f,
        Ok(ViewFile::Missing) => return Ok(Vec::new()),
        Ok(ViewFile::NotFile) => {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "not a regular file");
            return Err(fail(path, e));
        }
        Err(e) => return Err(fail(path, e)),
    };
    let mut raw = Vec::new();
    f.take(MAX_USER_FILE + 1)
        .read_to_end(&mut raw)
        .map_err(|e| fail(path.clone(), e))?;
    if raw.len() as u64 > MAX_USER_FILE {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "larger than 10 MiB");
        return Err(fail(path, e));
    }
    Ok(String::from_utf8_lossy(&raw)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect())
}

/// `O_NOFOLLOW` for `OpenOptionsExt::custom_flags`.
pub(crate) fn libc_nofollow() -> i32 {
    i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0)
}
