//! The one mapping from vault and store errors to errnos. EIO arms log, because EIO is
//! where data was lost or failed authentication and the caller sees only the number.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::crypto::ChunkId;
use crate::error::Error;
use crate::vault::FsError;

/// Maps an operation's failure to the errno the kernel returns to the caller.
pub fn errno(op: &str, ino: u64, error: FsError) -> i32 {
    match error {
        FsError::Errno(code) => code,
        FsError::Refused { .. } => libc::EPERM,
        FsError::Store(error) => store_errno(op, ino, &error),
    }
}

fn store_errno(op: &str, ino: u64, error: &Error) -> i32 {
    crate::metrics::ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match error {
        Error::Io { source, .. } => match source.raw_os_error() {
            Some(code) => {
                log::warn!("store I/O failed: op={op} ino={ino} error={error}");
                code
            }
            None => {
                log::error!("store I/O failed: op={op} ino={ino} error={error}");
                libc::EIO
            }
        },
        Error::ChunkAuthenticationFailed { chunk, pack, offset } => {
            if first_report(chunk) {
                log::error!("chunk failed authentication: op={op} ino={ino} chunk={chunk} pack={pack:016x} offset={offset}");
            }
            libc::EIO
        }
        Error::ChunkMissing { chunk } => {
            if first_report(chunk) {
                log::error!("chunk missing from every pack: op={op} ino={ino} chunk={chunk}");
            }
            libc::EIO
        }
        Error::PackTruncated { pack, offset } => {
            log::error!("pack truncated: op={op} ino={ino} pack={pack:016x} offset={offset}");
            libc::EIO
        }
        Error::IndexAuthenticationFailed { tree } => {
            log::error!("index entry failed authentication: op={op} ino={ino} tree={tree}");
            libc::EIO
        }
        Error::Index { tree, source } => {
            log::error!("index failed: op={op} ino={ino} tree={tree} error={source}");
            libc::EIO
        }
        Error::Degraded { reason } => {
            log::warn!("write refused on degraded store: op={op} ino={ino} reason={reason}");
            libc::EROFS
        }
        Error::Damaged { .. }
        | Error::WrongPassphrase { .. }
        | Error::NotAStore { .. }
        | Error::UnsupportedVersion { .. }
        | Error::Locked { .. }
        | Error::ChunkTableFull { .. }
        | Error::Invalid { .. } => {
            log::error!("operation failed: op={op} ino={ino} error={error}");
            libc::EIO
        }
    }
}

/// How long repeated failures of one chunk are counted instead of logged.
const REPEAT_WINDOW: Duration = Duration::from_secs(600);

/// Whether a failure of `chunk` should be logged: the kernel retries a failed page
/// read and readahead asks again, so one `read()` reaches the daemon several times.
/// Repeats within [`REPEAT_WINDOW`] are counted and reported with the next log line.
fn first_report(chunk: &ChunkId) -> bool {
    static SEEN: Mutex<Option<HashMap<ChunkId, (Instant, u64)>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let seen = seen.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    seen.retain(|_, (at, _)| now.duration_since(*at) < REPEAT_WINDOW);
    match seen.get_mut(chunk) {
        Some((_, repeats)) => {
            *repeats += 1;
            false
        }
        None => {
            seen.insert(*chunk, (now, 0));
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::Refusal;

    #[test]
    fn refusals_map_to_eperm() {
        let refused = FsError::Refused { op: "unlink", ino: 7, refusal: Refusal::Retained };
        assert_eq!(errno("unlink", 7, refused), libc::EPERM);
    }

    #[test]
    fn os_codes_pass_through() {
        let full = Error::io("failed to append to pack", "/x", std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(errno("write", 7, FsError::Store(full)), libc::ENOSPC);
    }

    #[test]
    fn integrity_failures_map_to_eio() {
        let bad = Error::ChunkAuthenticationFailed { chunk: ChunkId([1; 32]), pack: 2, offset: 3 };
        assert_eq!(errno("read", 7, FsError::Store(bad)), libc::EIO);
        let degraded = Error::Degraded { reason: "fsync failed".into() };
        assert_eq!(errno("write", 7, FsError::Store(degraded)), libc::EROFS);
    }
}
