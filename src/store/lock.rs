//! The store lock: one process at a time owns a store. The lock file holds the
//! holder's pid and mountpoint so the refusal can name them.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::error::{Error, Result};

/// An exclusive `flock` on the store's lock file, released when dropped (or when the
/// process dies, so a killed daemon never leaves a stale lock).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Takes the lock for `purpose` (a mountpoint, or a command name).
    pub fn acquire(store: &Path, lock_path: &Path, purpose: &str) -> Result<StoreLock> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(lock_path)
            .map_err(|source| Error::io("failed to open lock file", lock_path, source))?;
        // SAFETY: flock on a file descriptor owned by `file`.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let mut parts = holder.trim().splitn(2, ' ');
            let pid = parts.next().and_then(|pid| pid.parse().ok()).unwrap_or(0);
            let mountpoint = parts.next().unwrap_or("unknown").to_string();
            return Err(Error::Locked { store: store.to_path_buf(), pid, mountpoint });
        }
        let record = format!("{} {}\n", std::process::id(), purpose);
        file.set_len(0).map_err(|source| Error::io("failed to write lock file", lock_path, source))?;
        file.rewind().map_err(|source| Error::io("failed to write lock file", lock_path, source))?;
        file.write_all(record.as_bytes()).map_err(|source| Error::io("failed to write lock file", lock_path, source))?;
        Ok(StoreLock { _file: file })
    }
}
