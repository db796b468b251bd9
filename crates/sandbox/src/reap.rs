//! Ending a step without a pid namespace: nothing kills its leftovers when
//! its first process exits, so the supervisor (a subreaper, which orphans
//! of the step reparent to) does. It kills the step's process group (the
//! step starts its own session, `exec`), then every child of its own it
//! finds in `/proc` (a process whose parent died came to it) until none
//! is left. A process that left the session while its parent lived, with
//! no `/proc` to find it by (chroot without namespaces), may outlive the
//! step.

use std::fs;

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Kill and reap everything the step `leader` left behind.
pub(crate) fn kill_descendants(leader: u32) {
    let _ = killpg(Pid::from_raw(leader as i32), Signal::SIGKILL);
    let me = std::process::id();
    // Bounded: each round kills every child found; their children come next.
    for _ in 0..1000 {
        reap_exited();
        let children = children_of(me);
        if children.is_empty() {
            break;
        }
        for pid in &children {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
        for pid in children {
            let _ = waitpid(Pid::from_raw(pid as i32), None);
        }
    }
    reap_exited();
}

fn reap_exited() {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// The pids whose parent is `parent`, from `/proc/PID/stat` (empty
/// without a `/proc`).
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name();
        let pid: u32 = name.to_str()?.parse().ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        (parent_in_stat(&stat)? == parent).then_some(pid)
    })
    .collect()
}

/// The 4th field of `/proc/PID/stat`, after the command in parentheses
/// (which may hold spaces and parentheses itself).
fn parent_in_stat(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_parent_follows_the_command_whatever_it_holds() {
        assert_eq!(
            super::parent_in_stat("42 (a) b (c)) S 17 42 42 0 -1"),
            Some(17)
        );
        assert_eq!(super::parent_in_stat("1 (init) S 0 1 1"), Some(0));
        assert_eq!(super::parent_in_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_a_child_of_its_parent() {
        let parent = std::os::unix::process::parent_id();
        assert!(super::children_of(parent).contains(&std::process::id()));
    }
}
