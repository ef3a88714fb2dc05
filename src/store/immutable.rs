//! The Linux immutable attribute (`chattr +i`) on sealed store files, so deleting or
//! changing them around the mount fails too. Only root may set or clear it; on
//! filesystems without it (tmpfs, some FUSE and network filesystems) nothing is done.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::Path;

const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;
const FS_IMMUTABLE_FL: libc::c_long = 0x0000_0010;

/// Outcome of a request to change the attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Immutable {
    Changed,
    Unchanged,
    /// The filesystem has no such attribute, or this process may not set it.
    Unsupported,
}

/// Sets or clears the immutable attribute of `path`.
pub fn set_immutable(path: &Path, on: bool) -> std::io::Result<Immutable> {
    let file = File::open(path)?;
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one long into `flags`; the descriptor is open.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return unsupported_or(std::io::Error::last_os_error());
    }
    let wanted = if on { flags | FS_IMMUTABLE_FL } else { flags & !FS_IMMUTABLE_FL };
    if wanted == flags {
        return Ok(Immutable::Unchanged);
    }
    // SAFETY: FS_IOC_SETFLAGS reads one long from `wanted`; the descriptor is open.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_SETFLAGS, &wanted) } != 0 {
        return unsupported_or(std::io::Error::last_os_error());
    }
    Ok(Immutable::Changed)
}

fn unsupported_or(error: std::io::Error) -> std::io::Result<Immutable> {
    match error.raw_os_error() {
        Some(libc::ENOTTY) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(libc::EPERM) | Some(libc::ENOSYS) => {
            Ok(Immutable::Unsupported)
        }
        _ => Err(error),
    }
}

/// Sets the attribute, logging instead of failing: a store on a filesystem without it
/// still works, with retention enforced by the mount alone.
pub fn seal_file(path: &Path) {
    match set_immutable(path, true) {
        Ok(Immutable::Changed) => log::debug!("immutable attribute set: file={}", path.display()),
        Ok(_) => {}
        Err(error) => log::warn!("setting the immutable attribute failed: file={} error={error}", path.display()),
    }
}
