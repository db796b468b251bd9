//! The id maps of hoist's user namespace ([`crate::rootless`]): which ids
//! the namespace gets, and how the maps are written.
//!
//! Three kinds, strongest first:
//!
//! - **container ids**: hoist started as root without `CAP_SYS_ADMIN` (root
//!   of a container) maps every id its own namespace has, one to one. It
//!   may: `CAP_SETUID` and `CAP_SETGID` in the parent namespace let a
//!   process write any map of the parent's ids.
//! - **subordinate ids**: an ordinary user's `/etc/subuid` and
//!   `/etc/subgid` ranges, written by the setuid helpers `newuidmap` and
//!   `newgidmap` (Debian package `uidmap`): container id 0 is the user,
//!   ids 1..=N the ranges.
//! - **a single id**: the user alone (written directly, after `setgroups`
//!   is denied), when there are no ranges or no helper.

use std::path::PathBuf;
use std::process::Command;

use crate::file_error::{FileError, at};

/// A range of subordinate ids: host ids `start..start + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// How hoist's user namespace was mapped (the value of
/// [`crate::rootless::KIND_ENV`] in the namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// Every id of the namespace hoist was started in, one to one.
    Container,
    /// The user and their `/etc/subuid`/`/etc/subgid` ranges.
    Subids,
    /// The user's own id alone.
    Single,
}

impl MapKind {
    pub fn name(self) -> &'static str {
        match self {
            MapKind::Container => "container ids",
            MapKind::Subids => "subids",
            MapKind::Single => "single id",
        }
    }

    /// The byte the parent sends the child with its answer.
    pub(crate) fn byte(self) -> u8 {
        match self {
            MapKind::Container => b'c',
            MapKind::Subids => b'r',
            MapKind::Single => b's',
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<MapKind> {
        match b {
            b'c' => Some(MapKind::Container),
            b'r' => Some(MapKind::Subids),
            b's' => Some(MapKind::Single),
            _ => None,
        }
    }

    pub fn from_name(name: &str) -> Option<MapKind> {
        [MapKind::Container, MapKind::Subids, MapKind::Single]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// The ranges of `/etc/subuid` or `/etc/subgid` (`contents`) for the user
/// `name` or `id` (shadow accepts either in the first field), in file
/// order. Blank, `#` and malformed lines are skipped.
pub fn parse_subids(contents: &str, name: Option<&str>, id: u32) -> Vec<Range> {
    let id = id.to_string();
    contents
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let mut fields = line.split(':');
            let (owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
            if fields.next().is_some() || (Some(owner) != name && owner != id) {
                return None;
            }
            let (start, count) = (start.trim().parse().ok()?, count.trim().parse().ok()?);
            let range = Range { start, count };
            // The kernel refuses a range that wraps past 2^32 - 1.
            (count > 0 && start.checked_add(count).is_some()).then_some(range)
        })
        .collect()
}

/// The id map arguments for newuidmap/newgidmap: `0 ID 1`, then the
/// ranges from container id 1 on (stopping where container ids would pass
/// 2^32 - 2, the last valid id). A range overlapping the user's id or an
/// earlier range is left out: the kernel refuses the whole map otherwise.
pub(crate) fn map_args(id: u32, ranges: &[Range]) -> Vec<String> {
    let mut args = vec!["0".to_string(), id.to_string(), "1".to_string()];
    let mut used = vec![(u64::from(id), 1u64)];
    let mut next: u32 = 1;
    for r in ranges {
        let (start, end) = (u64::from(r.start), u64::from(r.start) + u64::from(r.count));
        if used.iter().any(|&(s, n)| start < s + n && s < end) {
            continue;
        }
        used.push((start, u64::from(r.count)));
        let count = r.count.min(u32::MAX - next);
        if count == 0 {
            break;
        }
        args.extend([next.to_string(), r.start.to_string(), count.to_string()]);
        next += count;
    }
    args
}

/// The identity map of every id in `own` (a `/proc/self/uid_map` as this
/// process sees it: "inside outside count" lines): each range of inside
/// ids mapped to itself. A map of all 2^32 - 1 ids is cut short by one, so
/// the namespace is still told apart from the host's (whose map is exactly
/// that, `0 0 4294967295`).
pub fn identity_map(own: &str) -> String {
    let mut out = String::new();
    let mut total: u64 = 0;
    for line in own.lines() {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let [inside, _, count] = f[..] else { continue };
        let count = count.min(u64::from(u32::MAX) - 1 - total);
        if count == 0 {
            break;
        }
        total += count;
        out.push_str(&format!("{inside} {inside} {count}\n"));
    }
    out
}

/// uid or gid: the helper, the `/proc` file, the sub-id file.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn tool(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }
    fn proc_file(self) -> &'static str {
        match self {
            Kind::Uid => "uid_map",
            Kind::Gid => "gid_map",
        }
    }
    pub(crate) fn subid_file(self) -> &'static str {
        match self {
            Kind::Uid => "/etc/subuid",
            Kind::Gid => "/etc/subgid",
        }
    }
}

/// Map every id of this process's namespace, one to one, into the child
/// `pid`'s namespace (needs `CAP_SETUID` and `CAP_SETGID` here).
pub(crate) fn write_container_maps(pid: u32) -> Result<(), FileError> {
    for kind in [Kind::Uid, Kind::Gid] {
        let own = PathBuf::from(format!("/proc/self/{}", kind.proc_file()));
        let own = std::fs::read_to_string(&own).map_err(at(&own))?;
        let path = PathBuf::from(format!("/proc/{pid}/{}", kind.proc_file()));
        std::fs::write(&path, identity_map(&own)).map_err(at(&path))?;
    }
    Ok(())
}

/// The map of one kind, applied to the child `pid`: through the setuid
/// helper when there are ranges, else (or when it fails) the single id
/// written directly. `Ok(Some(why))` when only the single id is mapped.
pub(crate) fn write_map(
    kind: Kind,
    pid: u32,
    id: u32,
    ranges: &[Range],
) -> Result<Option<String>, FileError> {
    let why = if ranges.is_empty() {
        format!("no ranges in {}", kind.subid_file())
    } else {
        match Command::new(kind.tool())
            .arg(pid.to_string())
            .args(map_args(id, ranges))
            .output()
        {
            Ok(out) if out.status.success() => return Ok(None),
            Ok(out) => format!(
                "{} failed: {}",
                kind.tool(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("{} not found (Debian package uidmap)", kind.tool())
            }
            Err(e) => format!("{}: {e}", kind.tool()),
        }
    };
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if let Kind::Gid = kind {
        // An unprivileged gid map needs setgroups(2) denied first.
        let path = proc.join("setgroups");
        std::fs::write(&path, "deny").map_err(at(&path))?;
    }
    let path = proc.join(kind.proc_file());
    std::fs::write(&path, format!("0 {id} 1\n")).map_err(at(&path))?;
    Ok(Some(why))
}

/// A uid map as a person reads it: `0→1000, 1-65536→100000-165535`.
pub fn describe_map(map: &str) -> String {
    let parts: Vec<String> = map
        .lines()
        .filter_map(|line| {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            let [inside, outside, count] = f[..] else {
                return None;
            };
            Some(if count == 1 {
                format!("{inside}→{outside}")
            } else {
                format!(
                    "{inside}-{}→{outside}-{}",
                    inside + count - 1,
                    outside + count - 1
                )
            })
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# a comment
alice:100000:65536
1001:300000:1000
bob:165536:65536
alice:500000:10

alice:bad:5
alice:1:0
alice:4294967295:2
alice:1:2:3
";

    #[test]
    fn subids_by_name_and_by_uid_in_file_order() {
        let alice = parse_subids(FILE, Some("alice"), 1001);
        assert_eq!(
            alice,
            vec![
                Range {
                    start: 100000,
                    count: 65536
                },
                Range {
                    start: 300000,
                    count: 1000
                },
                Range {
                    start: 500000,
                    count: 10
                },
            ],
            "name lines and uid lines both count; bad, empty and overflowing ranges are skipped"
        );
        assert_eq!(
            parse_subids(FILE, Some("bob"), 1002),
            vec![Range {
                start: 165536,
                count: 65536
            }]
        );
        assert_eq!(parse_subids(FILE, None, 1001).len(), 1, "by uid only");
        assert!(parse_subids(FILE, Some("carol"), 1003).is_empty());
        assert!(parse_subids("", Some("alice"), 1001).is_empty());
    }

    #[test]
    fn map_args_put_the_user_at_0_and_ranges_from_1() {
        let ranges = [
            Range {
                start: 100000,
                count: 65536,
            },
            Range {
                start: 300000,
                count: 10,
            },
        ];
        assert_eq!(
            map_args(1000, &ranges),
            [
                "0", "1000", "1", "1", "100000", "65536", "65537", "300000", "10"
            ]
        );
        assert_eq!(map_args(1000, &[]), ["0", "1000", "1"]);
        let overlapping = [
            ranges[0],
            Range {
                start: 165535,
                count: 65536,
            },
            Range {
                start: 999,
                count: 2,
            },
            ranges[1],
        ];
        assert_eq!(
            map_args(1000, &overlapping),
            map_args(1000, &ranges),
            "ranges overlapping an earlier one or the user's own id are left out"
        );
        // Every host id but the user's: container ids 1..=4294967294 (the
        // last valid one), nothing more.
        let all = [
            Range { start: 0, count: 7 },
            Range {
                start: 8,
                count: u32::MAX - 8,
            },
        ];
        assert_eq!(
            map_args(7, &all),
            [
                "0",
                "7",
                "1",
                "1",
                "0",
                "7",
                "8",
                "8",
                &(u32::MAX - 8).to_string()
            ],
        );
    }

    #[test]
    fn identity_map_keeps_the_containers_ids_and_is_never_the_hosts() {
        // Root of a rootless podman container: its own map, seen inside.
        let podman = "         0       1004          1\n         1     300000     131072\n";
        assert_eq!(identity_map(podman), "0 0 1\n1 1 131072\n");
        // Root of a rootful docker container: the host's map, which a
        // child namespace must not copy exactly (it would look like the host).
        assert_eq!(
            identity_map("         0          0 4294967295\n"),
            "0 0 4294967294\n"
        );
        assert_eq!(identity_map(""), "");
    }

    #[test]
    fn maps_read_as_ranges() {
        assert_eq!(
            describe_map("0 1004 1\n1 300000 131072\n"),
            "0→1004, 1-131072→300000-431071"
        );
        assert_eq!(describe_map("0 0 4294967294"), "0-4294967293→0-4294967293");
        for k in [MapKind::Container, MapKind::Subids, MapKind::Single] {
            assert_eq!(MapKind::from_byte(k.byte()), Some(k));
            assert_eq!(MapKind::from_name(k.name()), Some(k));
        }
    }
}
