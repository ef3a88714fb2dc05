//! Crash consistency: the daemon is killed with SIGKILL at random moments while files
//! are written; after a remount, every file that was durable reads back identical,
//! `check --read-data` passes, and every other file is either absent, complete, or
//! sealed incomplete holding a prefix of its bytes.
//!
//! `WORMVAULT_CRASH_ITERATIONS` sets the number of kills (default 4);
//! `scripts/crash-test` runs 30.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// Content of file `number`: deterministic, mixing compressible text and random bytes,
/// sized from a few bytes to about 3 MiB.
fn content(number: u64) -> Vec<u8> {
    let len = match number % 5 {
        0 => 37,
        1 => 5000 + number as usize * 311 % 20_000,
        2 => 200_000,
        3 => 1_100_000,
        _ => 3 << 20,
    };
    let mut bytes = random_bytes(len / 2, number);
    bytes.extend(format!("{{\"doc\": {number}, \"name\": \"collection entry\"}}\n").bytes().cycle().take(len - len / 2));
    bytes
}

/// What the writer thread knew when the daemon died.
#[derive(Default)]
struct Progress {
    /// Files that were closed and then followed by a successful fsync of the root.
    durable: Vec<PathBuf>,
    /// Every file the writer started, with the number that names its content.
    started: HashMap<PathBuf, u64>,
}

/// Writes files with 4 KiB writes (mongodump's buffer size), fsyncing the mount root
/// after every third file, until an error (the daemon died) or `stop`.
fn write_until_failure(root: PathBuf, first: u64, progress: Arc<Mutex<Progress>>, stop: Arc<AtomicBool>) {
    let mut closed = Vec::new();
    for number in first.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let path = root.join(format!("db{}/coll{number}.bson", number % 3));
        if fs::create_dir_all(path.parent().unwrap()).is_err() {
            return;
        }
        progress.lock().unwrap().started.insert(path.clone(), number);
        let Ok(mut file) = fs::File::create(&path) else { return };
        for piece in content(number).chunks(4096) {
            if file.write_all(piece).is_err() {
                return;
            }
        }
        if file.flush().is_err() {
            return;
        }
        drop(file);
        closed.push(path);
        if number % 3 == 2 {
            let Ok(dir) = fs::File::open(&root) else { return };
            if dir.sync_all().is_err() {
                return;
            }
            progress.lock().unwrap().durable.append(&mut closed);
        }
    }
}

fn xattr(path: &Path, name: &str) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    let mut buffer = [0u8; 64];
    // SAFETY: getxattr writes at most buffer.len() bytes into the buffer.
    let len = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) };
    (len >= 0).then(|| String::from_utf8_lossy(&buffer[..len as usize]).into_owned())
}

/// Returns a seed from the clock, printed so a failing run can be repeated.
fn seed() -> u64 {
    let seed = std::env::var("WORMVAULT_CRASH_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    eprintln!("crash test seed {seed} (set WORMVAULT_CRASH_SEED to repeat)");
    seed
}

#[test]
fn killed_daemon_keeps_durable_files() {
    let iterations: u64 = std::env::var("WORMVAULT_CRASH_ITERATIONS").ok().and_then(|value| value.parse().ok()).unwrap_or(4);
    let mut rng = seed();
    let store = TestStore::init("30d");
    let mut all_durable: Vec<(PathBuf, u64)> = Vec::new();
    let mut next_file = 0u64;
    for iteration in 0..iterations {
        let mount = store.mount();
        let progress = Arc::new(Mutex::new(Progress::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (root, progress, stop) = (mount.path.clone(), progress.clone(), stop.clone());
            let first = next_file;
            std::thread::spawn(move || write_until_failure(root, first, progress, stop))
        };
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_millis(100 + rng % 1400);
        std::thread::sleep(delay);
        let mount_path = mount.path.clone();
        let mut mount = mount;
        mount.kill_daemon();
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        mount.kill();
        let progress = progress.lock().unwrap();
        next_file += progress.started.len() as u64 + 1;
        eprintln!(
            "iteration {iteration}: killed after {delay:?}, {} files started, {} durable",
            progress.started.len(),
            progress.durable.len()
        );
        let relative = |path: &Path| path.strip_prefix(&mount_path).unwrap().to_path_buf();
        for path in &progress.durable {
            all_durable.push((relative(path), progress.started[path]));
        }

        let mount = store.mount();
        for (path, number) in &all_durable {
            let read = fs::read(mount.path.join(path)).unwrap_or_else(|error| panic!("durable file {path:?} unreadable: {error}"));
            assert_same_bytes(&read, &content(*number), &format!("durable file {path:?} after kill {iteration}"));
        }
        for (path, number) in progress.started.iter() {
            let in_mount = mount.path.join(relative(path));
            let Ok(read) = fs::read(&in_mount) else { continue };
            let expected = content(*number);
            assert!(read.len() <= expected.len(), "{in_mount:?} is longer than what was written");
            assert_same_bytes(&read, &expected[..read.len()], &format!("{in_mount:?} must hold a prefix of its bytes"));
            if read.len() < expected.len() {
                assert_eq!(xattr(&in_mount, "user.wormvault.incomplete").as_deref(), Some("1"), "short file {in_mount:?} is not marked incomplete");
            }
        }
        mount.unmount();
        let check = store.command(&["check", "--read-data"]);
        assert!(
            check.status.success(),
            "check --read-data failed after kill {iteration}:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    assert!(!all_durable.is_empty(), "no file became durable in any iteration; the test checked nothing");
}
