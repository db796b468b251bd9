//! Memory and CPU limits through cgroups, v2 (unified) or v1 (the
//! `memory` and `cpu` hierarchies), whichever the host mounts at
//! `/sys/fs/cgroup`. The sandbox process moves itself into a fresh group
//! `hoist/<step>` before it forks pid 1, so everything in the step is
//! counted; the engine removes the group once the sandbox is gone
//! ([`remove`]), which works even when the sandbox was killed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::file_error::{FileError, at};
use crate::spec::Limits;

const ROOT: &str = "/sys/fs/cgroup";
/// Docker's CFS period (100 ms).
const PERIOD_US: u64 = 100_000;

/// Where this host keeps cgroups of one kind.
fn dirs(name: &str) -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    if root.join("cgroup.controllers").exists() {
        vec![root.join("hoist").join(name)]
    } else {
        vec![
            root.join("memory/hoist").join(name),
            root.join("cpu/hoist").join(name),
        ]
    }
}

/// Put this process in a new group with `limits`. `Err` says why the host
/// does not allow it (the caller reports it and runs without).
pub(crate) fn enter(name: &str, limits: &Limits) -> Result<(), FileError> {
    if limits.memory.is_none() && limits.cpus.is_none() {
        return Ok(());
    }
    let pid = std::process::id().to_string();
    let root = Path::new(ROOT);
    let write = |p: PathBuf, v: String| fs::write(&p, v).map_err(at(&p));
    if root.join("cgroup.controllers").exists() {
        let parent = root.join("hoist");
        fs::create_dir_all(&parent).map_err(at(&parent))?;
        // The parent hands the memory and cpu controllers down.
        let _ = fs::write(parent.join("cgroup.subtree_control"), "+memory +cpu");
        let _ = fs::write(root.join("cgroup.subtree_control"), "+memory +cpu");
        let dir = parent.join(name);
        fs::create_dir_all(&dir).map_err(at(&dir))?;
        if let Some(m) = limits.memory {
            write(dir.join("memory.max"), m.to_string())?;
            let _ = fs::write(dir.join("memory.swap.max"), "0");
        }
        if let Some(c) = limits.cpus {
            write(dir.join("cpu.max"), format!("{} {PERIOD_US}", quota(c)))?;
        }
        return write(dir.join("cgroup.procs"), pid);
    }
    let memory = root.join("memory/hoist").join(name);
    let cpu = root.join("cpu/hoist").join(name);
    if let Some(m) = limits.memory {
        fs::create_dir_all(&memory).map_err(at(&memory))?;
        write(memory.join("memory.limit_in_bytes"), m.to_string())?;
        let _ = fs::write(memory.join("memory.memsw.limit_in_bytes"), m.to_string());
        write(memory.join("cgroup.procs"), pid.clone())?;
    }
    if let Some(c) = limits.cpus {
        fs::create_dir_all(&cpu).map_err(at(&cpu))?;
        write(cpu.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
        write(cpu.join("cpu.cfs_quota_us"), quota(c).to_string())?;
        write(cpu.join("cgroup.procs"), pid)?;
    }
    Ok(())
}

fn quota(cpus: f64) -> u64 {
    ((cpus * PERIOD_US as f64) as u64).max(1000)
}

/// Remove the step's groups (once no process is left in them).
pub fn remove(name: &str) {
    for dir in dirs(name) {
        let _ = fs::remove_dir(&dir);
    }
}
