//! Fault injection for crash-ordering tests: every write and fsync of the store passes
//! a check that, once armed, fails the Nth call (and in `stop` mode every later one,
//! as if the machine had died there). Disarmed, a check is one atomic load.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Calls left before the injected failure; negative when disarmed.
static COUNTDOWN: AtomicI64 = AtomicI64::new(-1);
static STOP_AFTER: AtomicBool = AtomicBool::new(false);
static STOPPED: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Fails the `nth` check from now on (1 is the next one). With `stop`, every check
/// after it fails too.
pub fn arm(nth: i64, stop: bool) {
    STOP_AFTER.store(stop, Ordering::SeqCst);
    STOPPED.store(false, Ordering::SeqCst);
    CALLS.store(0, Ordering::SeqCst);
    COUNTDOWN.store(nth, Ordering::SeqCst);
}

/// Turns injection off.
pub fn disarm() {
    COUNTDOWN.store(-1, Ordering::SeqCst);
    STOPPED.store(false, Ordering::SeqCst);
}

/// Checks passed since the last [`arm`].
pub fn calls() -> u64 {
    CALLS.load(Ordering::SeqCst)
}

/// Length of each pack at its last successful fsync while armed, so a test can cut
/// packs back to it and so drop what a power cut would have lost.
static SYNCED: Mutex<Vec<(PathBuf, u64)>> = Mutex::new(Vec::new());

/// Records that `path` was durable up to `len` bytes, once [`record_synced`] was
/// called in this process.
pub fn note_synced(path: &Path, len: u64) {
    if !RECORDING.load(Ordering::Relaxed) {
        return;
    }
    let mut synced = SYNCED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    synced.retain(|(known, _)| known != path);
    synced.push((path.to_path_buf(), len));
}

static RECORDING: AtomicBool = AtomicBool::new(false);

/// Starts recording pack lengths at each fsync, for [`take_synced`].
pub fn record_synced() {
    RECORDING.store(true, Ordering::SeqCst);
}

/// Takes the recorded durable lengths.
pub fn take_synced() -> Vec<(PathBuf, u64)> {
    std::mem::take(&mut *SYNCED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// Returns the injected error at the armed call, `Ok` otherwise.
pub fn check(site: &'static str) -> io::Result<()> {
    if COUNTDOWN.load(Ordering::Relaxed) < 0 && !STOPPED.load(Ordering::Relaxed) {
        return Ok(());
    }
    CALLS.fetch_add(1, Ordering::SeqCst);
    if STOPPED.load(Ordering::SeqCst) {
        return Err(io::Error::other(format!("injected stop before {site}")));
    }
    if COUNTDOWN.fetch_sub(1, Ordering::SeqCst) == 1 {
        if STOP_AFTER.load(Ordering::SeqCst) {
            STOPPED.store(true, Ordering::SeqCst);
        }
        log::debug!("injected failure: site={site}");
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(())
}
