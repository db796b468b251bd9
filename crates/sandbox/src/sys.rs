//! The raw system calls no safe wrapper covers: `close_range` and
//! `mount_setattr`. Each call's soundness is argued where it is made.

use std::os::fd::{AsRawFd, BorrowedFd};

/// Mark every descriptor from 3 up close-on-exec, so nothing the engine
/// (or whatever started it) left open reaches the step.
pub(crate) fn cloexec_from_3() -> std::io::Result<()> {
    // SAFETY: close_range only changes flags of this process's descriptors;
    // it reads no memory of ours.
    let r = unsafe { libc::close_range(3, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Set `set` (and clear `clear`) mount attributes on the detached tree `fd`
/// and every mount below it.
pub(crate) fn set_tree_attrs(fd: BorrowedFd<'_>, set: u64, clear: u64) -> std::io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `attr` lives across the call and its size is passed; the
    // empty path is a NUL-terminated static string; `fd` is a valid open
    // descriptor borrowed for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
