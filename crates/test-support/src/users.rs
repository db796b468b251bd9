//! Real unprivileged users for the rootless tests: made with `useradd`
//! (never given sub-ids by it), their `/etc/subuid` and `/etc/subgid`
//! lines set to exactly the range each test wants. Test processes run in
//! parallel, so every edit of those files happens under one lock,
//! [`LOCK`], and rewrites only the named users' lines.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

/// The lock every test that edits `/etc/passwd`, `/etc/subuid` or
/// `/etc/subgid` takes (`flock`).
pub const LOCK: &str = "/run/lock/hoist-subid-test.lock";

/// One test user.
#[derive(Clone, Copy, Debug)]
pub struct TestUser<'a> {
    pub name: &'a str,
    /// Its subordinate ids (start, count) in both files; `None`: no line
    /// (a rootless build then maps one id).
    pub subids: Option<(u32, u32)>,
    /// `useradd -m` (a home directory) rather than `-M`.
    pub home: bool,
}

impl<'a> TestUser<'a> {
    /// A user with a home directory and no sub-ids.
    pub fn new(name: &'a str) -> TestUser<'a> {
        TestUser {
            name,
            subids: None,
            home: true,
        }
    }

    /// The same user with the range `start`, `count`.
    pub fn subids(self, start: u32, count: u32) -> TestUser<'a> {
        TestUser {
            subids: Some((start, count)),
            ..self
        }
    }

    /// The same user without a home directory (`useradd -M`).
    pub fn no_home(self) -> TestUser<'a> {
        TestUser {
            home: false,
            ..self
        }
    }
}

/// Whether this process runs as root (only root can make users).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Make `users` (idempotent), set their sub-id lines, then run the shell
/// commands `then` (may be empty), all under [`LOCK`]. Panics with the
/// script's stderr when any of it fails.
pub fn make(users: &[TestUser<'_>], then: &str) {
    let mut script = String::from("set -e\n");
    for u in users {
        let home = if u.home { "-m" } else { "-M" };
        script.push_str(&format!(
            "id -u {0} >/dev/null 2>&1 || useradd {home} -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 {0}\n",
            u.name
        ));
    }
    script.push_str(&subid_script(users, "/etc/subuid /etc/subgid"));
    script.push_str(then);
    let out = Command::new("flock")
        .args([LOCK, "sh", "-c", &script])
        .output()
        .expect("flock runs");
    let names: Vec<&str> = users.iter().map(|u| u.name).collect();
    assert!(
        out.status.success(),
        "making the test users {names:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shell lines that make each of `files` (space-separated) hold
/// exactly `users`' ranges among their lines, others' lines kept; a file
/// already right is not rewritten.
fn subid_script(users: &[TestUser<'_>], files: &str) -> String {
    let names: Vec<&str> = users.iter().map(|u| u.name).collect();
    let pattern = format!("^({}):", names.join("|"));
    let lines: Vec<String> = users
        .iter()
        .filter_map(|u| {
            u.subids
                .map(|(start, count)| format!("{}:{start}:{count}", u.name))
        })
        .collect();
    let want = lines.join("\n");
    let append: String = lines.iter().map(|l| format!("{l}\n")).collect();
    format!(
        r#"for f in {files}; do
  touch "$f"
  if [ "$(grep -E '{pattern}' "$f")" != '{want}' ]; then
    grep -vE '{pattern}' "$f" > "$f.hoist-test" || true
    printf '%s' '{append}' >> "$f.hoist-test"
    chmod 644 "$f.hoist-test"
    mv "$f.hoist-test" "$f"
  fi
done
"#
    )
}

/// `id FLAG USER` (`-u` or `-g`) as a number.
pub fn id(user: &str, flag: &str) -> u32 {
    let out = Command::new("id").args([flag, user]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("id {flag} {user}: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_lines_become_exactly_the_users_ranges_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("subuid");
        std::fs::write(
            &f,
            "ranged:1:2\nother:100000:65536\nnoids:5:5\nranged:7:7\n",
        )
        .unwrap();
        let users = [
            TestUser::new("ranged").subids(200_000, 65_536),
            TestUser::new("noids"),
        ];
        let script = subid_script(&users, &f.display().to_string());
        let run = || {
            let out = Command::new("sh").args(["-c", &script]).output().unwrap();
            assert!(out.status.success(), "{out:?}");
            std::fs::read_to_string(&f).unwrap()
        };
        let want = "other:100000:65536\nranged:200000:65536\n";
        assert_eq!(run(), want);
        // Already right: left as it is (not rewritten).
        let before = std::fs::metadata(&f).unwrap().ino();
        assert_eq!(run(), want);
        assert_eq!(std::fs::metadata(&f).unwrap().ino(), before);
    }
}
