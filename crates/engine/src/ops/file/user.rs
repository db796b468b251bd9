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

use hoist_userdb::{Kind, MAX_FILE_BYTES, UserDb};

use super::FileOpError;
use super::vfs::{Key, Vfs};
use super::view::ViewFile;

/// Resolves a `--chown` value against the image whose root `vfs` views:
/// the databases a name needs are read through the view (symlinks
/// followed inside the image root only), then `hoist_userdb` decides.
pub(crate) fn resolve_chown(
    op: &'static str,
    value: &str,
    vfs: &Vfs,
) -> Result<(u32, u32), FileOpError> {
    let (user, group) = value.split_once(':').unwrap_or((value, ""));
    let needs = |part: &str| UserDb::chown_needs_lookup(part);
    let passwd = if needs(user) {
        read_db(op, value, vfs, Kind::User.file())?
    } else {
        Vec::new()
    };
    let group = if needs(group) {
        read_db(op, value, vfs, Kind::Group.file())?
    } else {
        Vec::new()
    };
    UserDb::parse(&passwd, &group)
        .chown(value)
        .map_err(|u| FileOpError::UnknownUser {
            op,
            value: value.to_string(),
            kind: match u.kind {
                Kind::User => "user",
                Kind::Group => "group",
            },
            name: u.name,
            file: u.kind.file(),
        })
}

/// The bytes of a user database; a missing file is empty.
fn read_db(
    op: &'static str,
    value: &str,
    vfs: &Vfs,
    file: &'static str,
) -> Result<Vec<u8>, FileOpError> {
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
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| fail(path.clone(), e))?;
    if raw.len() as u64 > MAX_FILE_BYTES {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "larger than 10 MiB");
        return Err(fail(path, e));
    }
    Ok(raw)
}

/// `O_NOFOLLOW` for `OpenOptionsExt::custom_flags`.
pub(crate) fn libc_nofollow() -> i32 {
    i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0)
}
