//! An image's user database (`/etc/passwd`, `/etc/group`) and the ids a
//! `USER` or `--chown` value resolves to. Pure: the caller reads the two
//! files (the engine through its fd-safe view of the image, so a symlinked
//! `/etc/passwd` cannot lead outside the image root; the sandbox inside
//! the step's own root) and hands over their bytes.
//!
//! Two rule sets, as BuildKit has two:
//! - [`UserDb::exec_user`] and [`UserDb::supplementary`]: `USER` for `RUN`
//!   and `WORKDIR` (runc's `GetExecUser` + BuildKit's additional gids): a
//!   numeric user takes its primary group from its passwd entry, if any.
//! - [`UserDb::chown`]: `COPY/ADD --chown` (BuildKit's `readUser`): `root`
//!   and numbers pass through, a numeric user alone brings gid = uid, an
//!   empty group is 0. Deliberate difference: BuildKit silently uses id 0
//!   for a name it cannot find; here that is an error naming it.

// Only the CLI prints.
#![deny(clippy::print_stdout, clippy::print_stderr)]

/// BuildKit's limit on `/etc/passwd` and `/etc/group`.
pub const MAX_FILE_BYTES: u64 = 10 << 20;

/// Which database a name was looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    /// The file the name was looked for in.
    pub fn file(self) -> &'static str {
        match self {
            Kind::User => "/etc/passwd",
            Kind::Group => "/etc/group",
        }
    }
}

/// A name that is in neither the user nor the group database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub kind: Kind,
    pub name: String,
}

impl std::fmt::Display for Unknown {
    /// runc's wording, which BuildKit passes on.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, file) = match self.kind {
            Kind::User => ("user", "passwd"),
            Kind::Group => ("group", "group"),
        };
        write!(
            f,
            "unable to find {what} {}: no matching entries in {file} file",
            self.name
        )
    }
}

impl std::error::Error for Unknown {}

/// The two files, split into lines of `:`-separated fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDb {
    passwd: Vec<Vec<String>>,
    group: Vec<Vec<String>>,
}

/// The lines of a database, trimmed, blank ones skipped, split at `:`
/// (moby/sys/user's parser).
fn rows(bytes: &[u8]) -> Vec<Vec<String>> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

/// Go's `strconv.Atoi` with the error ignored, as moby/sys/user parses ids.
fn id(fields: &[String], i: usize) -> Option<u32> {
    fields
        .get(i)
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|v| u32::try_from(v).ok())
}

/// `root` or a decimal id (BuildKit's `--chown` shortcut).
fn numeric(s: &str) -> Option<u32> {
    if s == "root" {
        return Some(0);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl UserDb {
    /// The database from the two files' bytes (either may be empty: a
    /// missing file is an empty one).
    pub fn parse(passwd: &[u8], group: &[u8]) -> UserDb {
        UserDb {
            passwd: rows(passwd),
            group: rows(group),
        }
    }

    fn user_by_name(&self, name: &str) -> Option<&Vec<String>> {
        self.passwd
            .iter()
            .find(|e| e.first().map(String::as_str) == Some(name))
    }

    fn user_by_uid(&self, uid: u32) -> Option<&Vec<String>> {
        self.passwd.iter().find(|e| id(e, 2) == Some(uid))
    }

    fn group_by_name(&self, name: &str) -> Option<u32> {
        self.group
            .iter()
            .find(|e| e.first().map(String::as_str) == Some(name))
            .map(|e| id(e, 2).unwrap_or(0))
    }

    /// `USER` (`uid[:gid]`, `name[:group]`) → (uid, gid), as runc's
    /// `GetExecUser`: a user without a group gets its passwd entry's
    /// primary group (0 for a bare uid with no entry).
    pub fn exec_user(&self, user: &str) -> Result<(u32, u32), Unknown> {
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        let (uid, primary) = match u.parse::<u32>() {
            Ok(n) => (n, self.user_by_uid(n).and_then(|e| id(e, 3))),
            Err(_) => {
                let e = self.user_by_name(u).ok_or_else(|| Unknown {
                    kind: Kind::User,
                    name: u.to_string(),
                })?;
                (id(e, 2).unwrap_or(0), id(e, 3))
            }
        };
        let gid = match g {
            None => primary.unwrap_or(0),
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => self.group_by_name(g).ok_or_else(|| Unknown {
                    kind: Kind::Group,
                    name: g.to_string(),
                })?,
            },
        };
        Ok((uid, gid))
    }

    /// The supplementary groups of `user` for `RUN`, as BuildKit gives
    /// them (runc's `GetExecUser`, then `ensureAdditionalGids`): with an
    /// explicit group, just that group; otherwise every group listing the
    /// user's name; the primary gid always among them. Sorted, unique.
    pub fn supplementary(&self, user: &str) -> Vec<u32> {
        let primary = self.exec_user(user).map(|(_, g)| g).unwrap_or(0);
        let mut gids = Vec::new();
        if let (name, None) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        } {
            // A numeric user with a passwd entry has that entry's name.
            let name = match name.parse::<u32>() {
                Ok(uid) => self.user_by_uid(uid).and_then(|e| e.first().cloned()),
                Err(_) => Some(name.to_string()),
            };
            if let Some(name) = name {
                gids = self
                    .group
                    .iter()
                    .filter(|e| {
                        e.get(3)
                            .is_some_and(|members| members.split(',').any(|m| m.trim() == name))
                    })
                    .filter_map(|e| id(e, 2))
                    .collect();
            }
        }
        gids.push(primary);
        gids.sort_unstable();
        gids.dedup();
        gids
    }

    /// `--chown` (`user`, `user:group`, `uid:gid` and mixes) → (uid, gid),
    /// as BuildKit's `readUser`.
    pub fn chown(&self, value: &str) -> Result<(u32, u32), Unknown> {
        let (user, group) = match value.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (value, None),
        };
        let (uid, mut gid) = if user.is_empty() {
            (0, 0)
        } else if let Some(n) = numeric(user) {
            (n, n)
        } else {
            let e = self.user_by_name(user).ok_or_else(|| Unknown {
                kind: Kind::User,
                name: user.to_string(),
            })?;
            (id(e, 2).unwrap_or(0), id(e, 3).unwrap_or(0))
        };
        if let Some(group) = group {
            gid = if group.is_empty() {
                0
            } else if let Some(n) = numeric(group) {
                n
            } else {
                self.group_by_name(group).ok_or_else(|| Unknown {
                    kind: Kind::Group,
                    name: group.to_string(),
                })?
            };
        }
        Ok((uid, gid))
    }

    /// Whether resolving `value` with [`chown`](Self::chown) reads a
    /// database at all (names do; `root`, numbers and empties do not), so
    /// a caller can skip reading the files.
    pub fn chown_needs_lookup(value: &str) -> bool {
        value
            .split(':')
            .any(|part| !part.is_empty() && numeric(part).is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> UserDb {
        UserDb::parse(
            b"root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
            b"root:x:0:\nstaff:x:50:app,other\nwheel:x:10:app\nnone:x:7:\n",
        )
    }

    #[test]
    fn exec_user_follows_runc() {
        let db = db();
        assert_eq!(UserDb::default().exec_user("1000:1000"), Ok((1000, 1000)));
        assert_eq!(UserDb::default().exec_user("42"), Ok((42, 0)));
        assert_eq!(db.exec_user("app"), Ok((1000, 1001)));
        assert_eq!(db.exec_user("1000"), Ok((1000, 1001)));
        assert_eq!(db.exec_user("app:staff"), Ok((1000, 50)));
        assert_eq!(
            db.exec_user("nobody").unwrap_err().to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert_eq!(
            db.exec_user("app:nogroup").unwrap_err().to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
    }

    #[test]
    fn supplementary_groups_follow_buildkit() {
        let db = db();
        assert_eq!(db.supplementary("app"), vec![10, 50, 1001]);
        assert_eq!(db.supplementary("1000"), vec![10, 50, 1001]);
        assert_eq!(db.supplementary("1000:staff"), vec![50]);
        assert_eq!(db.supplementary("root"), vec![0]);
        assert_eq!(db.supplementary("2000"), vec![0]);
    }

    #[test]
    fn chown_follows_buildkits_read_user() {
        let db = db();
        assert_eq!(db.chown("root"), Ok((0, 0)));
        assert_eq!(db.chown("42"), Ok((42, 42)));
        assert_eq!(db.chown("app"), Ok((1000, 1001)));
        assert_eq!(db.chown("app:"), Ok((1000, 0)));
        assert_eq!(db.chown(":staff"), Ok((0, 50)));
        assert_eq!(db.chown("7:wheel"), Ok((7, 10)));
        assert_eq!(
            db.chown("ghost:staff"),
            Err(Unknown {
                kind: Kind::User,
                name: "ghost".into()
            })
        );
        assert_eq!(db.chown("app:ghosts").unwrap_err().kind, Kind::Group);
        assert!(!UserDb::chown_needs_lookup("1:2"));
        assert!(!UserDb::chown_needs_lookup("root:"));
        assert!(UserDb::chown_needs_lookup("1:staff"));
    }

    #[test]
    fn lines_are_trimmed_and_blank_ones_skipped() {
        let db = UserDb::parse(b"\n  app:x:5:6::/:/bin/sh  \n\n", b"");
        assert_eq!(db.exec_user("app"), Ok((5, 6)));
    }
}
