//! The seccomp filter every `RUN` step gets: Docker's default profile
//! (`profiles/docker-default.json`, moby's `profiles/seccomp/default.json`
//! without io_uring, as moby has had it since v25), as runc applies it
//! for BuildKit.
//!
//! The profile is compiled once per build, by the isolation probe, with
//! libseccomp (the library runc, crun and podman compile this very profile
//! with: syscall names resolved for this host's architecture and its
//! companions from the profile's `archMap`, argument masks, a binary-tree
//! filter), for the capabilities the build's steps keep. The BPF travels to
//! every step in its spec; the step's process loads it last before
//! `setresuid` and `execve` ([`load`]), with the capabilities still held as
//! runc does without `noNewPrivileges`, or with `no_new_privs` where the
//! sandbox has no `CAP_SYS_ADMIN` to load it without.
//!
//! Conditions follow moby's `profiles/seccomp/seccomp_linux.go`: a rule
//! whose `includes` names capabilities needs all of them, one whose
//! `excludes` names any it has is left out; `arches` name Go's
//! architectures; `minKernel` is compared with this kernel's release. A name
//! libseccomp does not know is skipped (as runc does): the kernel's answer
//! for it is then the default action's `EPERM`.

use std::io::{Read, Seek};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde::Deserialize;

/// Docker's default profile, as data.
const PROFILE: &str = include_str!("../profiles/docker-default.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<i32>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    syscalls: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Vec<String>,
    action: String,
    errno_ret: Option<i32>,
    #[serde(default)]
    args: Vec<Arg>,
    #[serde(default)]
    includes: Condition,
    #[serde(default)]
    excludes: Condition,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Condition {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    min_kernel: Option<String>,
}

/// Go's name for this architecture (the profile's `arches` use them).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        other => other,
    }
}

/// This kernel's `major.minor`.
fn kernel_version() -> (u32, u32) {
    parse_version(&rustix::system::uname().release().to_string_lossy())
}

fn parse_version(release: &str) -> (u32, u32) {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

impl Rule {
    /// Whether moby would put this rule in a filter for `caps` on `arch`.
    fn applies(&self, caps: &[&str], arch: &str, kernel: (u32, u32)) -> bool {
        let inc = &self.includes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            return false;
        }
        if !inc.caps.iter().all(|c| caps.contains(&c.as_str())) {
            return false;
        }
        if let Some(min) = &inc.min_kernel
            && kernel < parse_version(min)
        {
            return false;
        }
        let exc = &self.excludes;
        if exc.arches.iter().any(|a| a == arch) {
            return false;
        }
        if exc.caps.iter().any(|c| caps.contains(&c.as_str())) {
            return false;
        }
        if let Some(min) = &exc.min_kernel
            && kernel >= parse_version(min)
        {
            return false;
        }
        true
    }
}

/// Why Docker's profile could not be compiled (or a compiled filter read
/// back), naming the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The embedded profile is not the JSON it should be.
    #[error("seccomp profile: {0}")]
    Profile(#[source] serde_json::Error),
    /// An action this compiler does not know.
    #[error("seccomp profile: unsupported action {0}")]
    Action(String),
    /// A comparison operator this compiler does not know.
    #[error("seccomp profile: unsupported operator {0}")]
    Operator(String),
    /// libseccomp refused a step.
    #[error("seccomp: {what}: {source}")]
    Libseccomp {
        what: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// The memfd the filter is exported to could not be made.
    #[error("seccomp: memfd: {0}")]
    Memfd(#[source] rustix::io::Errno),
    /// The exported filter could not be read back.
    #[error("seccomp: read the exported filter: {0}")]
    Read(#[source] std::io::Error),
    /// The exported filter is no whole number of instructions.
    #[error("seccomp: the exported filter has {0} bytes")]
    Exported(usize),
    /// A spec's filter that is not hex.
    #[error("seccomp: the spec's filter is not hex")]
    NotHex,
    /// A spec's filter that is no whole number of instructions.
    #[error("seccomp: a filter of {0} bytes")]
    Size(usize),
}

fn action(name: &str, errno: Option<i32>) -> Result<ScmpAction, SeccompError> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno.unwrap_or(libc::EPERM)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        other => return Err(SeccompError::Action(other.to_owned())),
    })
}

fn compare(arg: &Arg) -> Result<ScmpArgCompare, SeccompError> {
    let op = match arg.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        // The OCI spec's (and Docker's) order: `value` is the mask.
        "SCMP_CMP_MASKED_EQ" => {
            return Ok(ScmpArgCompare::new(
                arg.index,
                ScmpCompareOp::MaskedEqual(arg.value),
                arg.value_two,
            ));
        }
        other => return Err(SeccompError::Operator(other.to_owned())),
    };
    Ok(ScmpArgCompare::new(arg.index, op, arg.value))
}

/// Docker's default profile compiled for the capabilities `plan` leaves a
/// step (what the probe gives the engine for every step of a build).
pub fn compile_for(plan: &crate::isolation::Plan) -> Result<String, SeccompError> {
    let caps = crate::caps::default_names(!plan.namespaces, plan.pid_ns || plan.signal_scope);
    compile_default(&caps)
}

/// Docker's default profile for a process keeping `caps` (`CAP_…` names),
/// compiled for this host: the filter as the kernel takes it (an array of
/// `struct sock_filter`), hex-encoded for a spec.
pub fn compile_default(caps: &[&str]) -> Result<String, SeccompError> {
    let bpf = compile(PROFILE, caps)?;
    Ok(bpf.iter().map(|b| format!("{b:02x}")).collect())
}

fn compile(profile: &str, caps: &[&str]) -> Result<Vec<u8>, SeccompError> {
    let e = |what: &str| {
        let what = what.to_string();
        move |source: libseccomp::error::SeccompError| SeccompError::Libseccomp { what, source }
    };
    let profile: Profile = serde_json::from_str(profile).map_err(SeccompError::Profile)?;
    let default = action(&profile.default_action, profile.default_errno_ret)?;
    let mut ctx = ScmpFilterContext::new(default).map_err(e("new filter"))?;
    // Not libseccomp's to set: the sandbox decides (`load`).
    ctx.set_ctl_nnp(false)
        .map_err(e("no_new_privs attribute"))?;
    let _ = ctx.set_ctl_optimize(2);
    let native = ScmpArch::native();
    for map in &profile.arch_map {
        let Ok(arch) = map.architecture.parse::<ScmpArch>() else {
            continue;
        };
        if arch != native {
            continue;
        }
        for sub in map.sub_architectures.iter().flatten() {
            if let Ok(sub) = sub.parse::<ScmpArch>() {
                ctx.add_arch(sub).map_err(e(&format!("add {sub:?}")))?;
            }
        }
    }
    let arch = go_arch();
    let kernel = kernel_version();
    for rule in &profile.syscalls {
        if !rule.applies(caps, arch, kernel) {
            continue;
        }
        let act = action(&rule.action, rule.errno_ret)?;
        if act == default {
            continue;
        }
        let cmps = rule
            .args
            .iter()
            .map(compare)
            .collect::<Result<Vec<_>, _>>()?;
        for name in &rule.names {
            // Unknown to this libseccomp: skipped, as runc does.
            let Ok(call) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let added = if cmps.is_empty() {
                ctx.add_rule(act, call)
            } else {
                ctx.add_rule_conditional(act, call, &cmps)
            };
            added.map_err(e(&format!("rule for {name}")))?;
        }
    }
    let memfd = rustix::fs::memfd_create("hoist-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(SeccompError::Memfd)?;
    let mut file = std::fs::File::from(memfd);
    ctx.export_bpf(&file).map_err(e("export"))?;
    let mut bpf = Vec::new();
    file.rewind()
        .and_then(|()| file.read_to_end(&mut bpf))
        .map_err(SeccompError::Read)?;
    if bpf.is_empty() || bpf.len() % size_of::<libc::sock_filter>() != 0 {
        return Err(SeccompError::Exported(bpf.len()));
    }
    Ok(bpf)
}

/// A compiled filter, ready to load between fork and exec.
pub(crate) struct Program {
    filter: Vec<libc::sock_filter>,
}

impl Program {
    /// From [`compile_default`]'s hex.
    pub(crate) fn from_hex(hex: &str) -> Result<Program, SeccompError> {
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or(SeccompError::NotHex)?;
        let size = size_of::<libc::sock_filter>();
        if bytes.is_empty() || bytes.len() % size != 0 {
            return Err(SeccompError::Size(bytes.len()));
        }
        let filter = bytes
            .chunks_exact(size)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Program { filter })
    }

    /// Install the filter on this thread (the process is single-threaded:
    /// between fork and exec, or the probe's child). With `nnp`, sets
    /// `no_new_privs` first (needed without `CAP_SYS_ADMIN`). No allocation.
    pub(crate) fn load(&self, nnp: bool) -> std::io::Result<()> {
        if nnp {
            // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) takes integers only.
            let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        let prog = libc::sock_fprog {
            len: self.filter.len() as u16,
            filter: self.filter.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `self.filter`, alive for the call; the
        // kernel copies the program and does not write through the pointer.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOSYS) {
            return Err(e);
        }
        // Kernels before 3.17 (or a profile that refuses seccomp(2) only).
        // SAFETY: as above.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
                0,
                0,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// Whether this process has `CAP_SYS_ADMIN` in its user namespace (then a
/// filter loads without `no_new_privs`).
pub(crate) fn can_load_without_nnp() -> bool {
    rustix::thread::capabilities(None).is_ok_and(|c| {
        c.effective
            .contains(rustix::thread::CapabilitySet::SYS_ADMIN)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_compiles_for_docker_default_caps() {
        let caps = crate::caps::default_names(false, true);
        let hex = compile_default(&caps).unwrap();
        let prog = Program::from_hex(&hex).unwrap();
        assert!(prog.filter.len() > 50, "{} instructions", prog.filter.len());
    }

    #[test]
    fn rules_follow_mobys_conditions() {
        let rule = |json: &str| serde_json::from_str::<Rule>(json).unwrap();
        let admin = rule(
            r#"{"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}"#,
        );
        assert!(!admin.applies(&["CAP_CHOWN"], "amd64", (6, 1)));
        assert!(admin.applies(&["CAP_SYS_ADMIN"], "amd64", (6, 1)));
        let clone3 = rule(
            r#"{"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38,"excludes":{"caps":["CAP_SYS_ADMIN"]}}"#,
        );
        assert!(clone3.applies(&["CAP_CHOWN"], "amd64", (6, 1)));
        assert!(!clone3.applies(&["CAP_SYS_ADMIN"], "amd64", (6, 1)));
        let arm = rule(
            r#"{"names":["set_tls"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm","arm64"]}}"#,
        );
        assert!(!arm.applies(&[], "amd64", (6, 1)));
        assert!(arm.applies(&[], "arm64", (6, 1)));
        let new = rule(
            r#"{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}}"#,
        );
        assert!(!new.applies(&[], "amd64", (4, 4)));
        assert!(new.applies(&[], "amd64", (4, 8)));
        assert!(new.applies(&[], "amd64", (6, 18)));
    }

    #[test]
    fn kernel_releases_parse() {
        assert_eq!(parse_version("6.18.44-fc-v1300"), (6, 18));
        assert_eq!(parse_version("4.8"), (4, 8));
        assert_eq!(parse_version("5.15.0-91-generic"), (5, 15));
    }

    #[test]
    fn hex_that_is_not_a_filter_is_refused() {
        assert!(Program::from_hex("zz").is_err());
        assert!(Program::from_hex("0102").is_err());
        assert!(Program::from_hex("").is_err());
    }
}
