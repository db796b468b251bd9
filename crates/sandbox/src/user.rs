//! `USER` values to numeric ids, from the image's own `/etc/passwd` and
//! `/etc/group` (as BuildKit resolves them for `WORKDIR` and `RUN`). Pure:
//! the engine uses it on a snapshot, the sandbox on its new root.

use std::path::Path;

/// `uid[:gid]` or `name[:group]` → (uid, gid). A user without a group
/// gets its primary group from `/etc/passwd` (or 0 for a bare uid with no entry).
pub fn resolve(user: &str, root: Option<&Path>) -> Result<(u32, u32), String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = root
        .and_then(|r| std::fs::read_to_string(r.join("etc/passwd")).ok())
        .unwrap_or_default();
    let group = root
        .and_then(|r| std::fs::read_to_string(r.join("etc/group")).ok())
        .unwrap_or_default();
    let entries = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split(':').map(str::to_string).collect())
            .collect()
    };
    let users = entries(&passwd);
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (
            n,
            users
                .iter()
                .find(|e| e.get(2).and_then(|v| v.parse().ok()) == Some(n))
                .and_then(|e| e.get(3)?.parse().ok()),
        ),
        Err(_) => {
            let e = users
                .iter()
                .find(|e| e.first().map(String::as_str) == Some(u))
                .ok_or_else(|| {
                    format!("unable to find user {u}: no matching entries in passwd file")
                })?;
            let uid = e
                .get(2)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("bad passwd entry for {u}"))?;
            (uid, e.get(3).and_then(|v| v.parse().ok()))
        }
    };
    let gid = match g {
        None => primary.unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => entries(&group)
                .iter()
                .find(|e| e.first().map(String::as_str) == Some(g))
                .and_then(|e| e.get(2)?.parse().ok())
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        },
    };
    Ok((uid, gid))
}

/// The supplementary groups of `user`, as BuildKit gives them (runc's
/// `GetExecUser`, then `ensureAdditionalGids`): with an explicit group, just
/// that group; otherwise every group in `/etc/group` listing the user's
/// name; the primary gid always among them.
pub fn supplementary(user: &str, root: Option<&Path>) -> Vec<u32> {
    let primary = resolve(user, root).map(|(_, g)| g).unwrap_or(0);
    let (name, explicit_group) = match user.split_once(':') {
        Some((u, _)) => (u, true),
        None => (user, false),
    };
    let mut gids = Vec::new();
    if !explicit_group {
        let read = |f: &str| {
            root.and_then(|r| std::fs::read_to_string(r.join(f)).ok())
                .unwrap_or_default()
        };
        let passwd = read("etc/passwd");
        // A numeric user with a passwd entry has that entry's name.
        let name = match name.parse::<u32>() {
            Ok(uid) => passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|e| e.get(2).and_then(|v| v.parse::<u32>().ok()) == Some(uid))
                .and_then(|e| e.first().map(|s| s.to_string())),
            Err(_) => Some(name.to_string()),
        };
        if let Some(name) = name {
            gids = read("etc/group")
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(|l| l.split(':').collect::<Vec<_>>())
                .filter(|e| {
                    e.get(3)
                        .is_some_and(|members| members.split(',').any(|m| m.trim() == name))
                })
                .filter_map(|e| e.get(2)?.parse().ok())
                .collect();
        }
    }
    gids.push(primary);
    gids.sort_unstable();
    gids.dedup();
    gids
}

#[cfg(test)]
mod tests {
    use super::{resolve, supplementary};

    #[test]
    fn numeric_and_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let r = Some(dir.path());
        assert_eq!(resolve("1000:1000", None), Ok((1000, 1000)));
        assert_eq!(resolve("42", None), Ok((42, 0)));
        assert_eq!(resolve("app", r), Ok((1000, 1001)));
        assert_eq!(resolve("1000", r), Ok((1000, 1001)));
        assert_eq!(resolve("app:staff", r), Ok((1000, 50)));
        assert!(
            resolve("nobody", r)
                .unwrap_err()
                .contains("unable to find user nobody")
        );
        assert!(resolve("app:nogroup", r).is_err());
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nstaff:x:50:app,other\nwheel:x:10:app\nnone:x:7:\n",
        )
        .unwrap();
        // BuildKit: membership plus the primary gid; an explicit group alone.
        assert_eq!(supplementary("app", r), vec![10, 50, 1001]);
        assert_eq!(supplementary("1000", r), vec![10, 50, 1001]);
        assert_eq!(supplementary("1000:staff", r), vec![50]);
        assert_eq!(supplementary("root", r), vec![0]);
        assert_eq!(supplementary("2000", r), vec![0]);
    }
}
