//! Write ordering under injected faults: the Nth write or fsync of a small workload
//! fails, for every N, either alone (`fail`) or with every later one (`stop`, as if
//! the machine died there). The store is then reopened without a clean shutdown and
//! must open, pass `check --read-data`, and hold every file whose commit returned.
//!
//! After a `stop`, packs are cut back to their length at their last fsync, as a power
//! cut would leave them.
//! NOTE: sled's own unflushed writes are not dropped that way; the index is trusted to
//! recover to a prefix of its flushed state, as sled promises.

use std::path::Path;

use wormvault::crypto::KdfParams;
use wormvault::store::failpoint;
use wormvault::tree::ROOT_INO;
use wormvault::unlock::{init_store, unlock_store, InitOptions, DEFAULT_CHUNKER};
use wormvault::vault::check::check_store;
use wormvault::vault::{MountSettings, Vault};

const PASSPHRASE: &[u8] = b"fault injection";

fn settings(state_dir: &Path) -> MountSettings {
    MountSettings { worker_threads: 1, state_dir: Some(state_dir.to_path_buf()), reserve_bytes: Some(0), ..MountSettings::default() }
}

fn content(number: u64) -> Vec<u8> {
    let mut bytes = format!("file {number} ").into_bytes().repeat(4000);
    bytes.extend((0..70_000u64).map(|index| (index.wrapping_mul(2654435761).wrapping_add(number) >> 13) as u8));
    bytes
}

/// Writes four files, committing after the second and the fourth. Returns the files
/// whose commit succeeded. Stops at the first error, as a daemon would keep serving
/// but a crash would not.
fn workload(vault: &mut Vault) -> Vec<u64> {
    let mut durable = Vec::new();
    let mut written = Vec::new();
    for number in 0..4u64 {
        let name = format!("file{number}.bson");
        let Ok((inode, fh)) = vault.create(ROOT_INO, name.as_bytes(), 0o644, libc::O_RDWR | libc::O_CREAT, 0, 0) else {
            return durable;
        };
        let bytes = content(number);
        if vault.write(inode.ino, 0, &bytes).is_err() || vault.flush(inode.ino, fh).is_err() || vault.release(inode.ino, fh).is_err() {
            return durable;
        }
        written.push(number);
        if number % 2 == 1 {
            if vault.commit().is_err() {
                return durable;
            }
            durable = written.clone();
        }
    }
    durable
}

fn read_file(vault: &mut Vault, number: u64) -> Vec<u8> {
    let name = format!("file{number}.bson");
    let inode = vault.lookup(ROOT_INO, name.as_bytes()).unwrap_or_else(|error| panic!("{name} missing: {error:?}"));
    let fh = vault.open(inode.ino, libc::O_RDONLY).unwrap();
    let bytes = vault.read(inode.ino, fh, 0, inode.size as u32).unwrap();
    vault.release(inode.ino, fh).unwrap();
    bytes
}

fn run_case(nth: i64, stop: bool) -> u64 {
    failpoint::record_synced();
    failpoint::take_synced();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let options = InitOptions { retention_seconds: 3600, chunker: DEFAULT_CHUNKER, kdf: KdfParams { memory_kib: 64, passes: 1, lanes: 1 } };
    init_store(&root, PASSPHRASE, &options).unwrap();
    let mut vault = Vault::open_store(unlock_store(&root, PASSPHRASE).unwrap(), settings(dir.path()), "faults").unwrap();
    failpoint::arm(nth, stop);
    let durable = workload(&mut vault);
    let calls = failpoint::calls();
    drop(vault);
    failpoint::disarm();
    if stop {
        cut_to_synced_lengths(&root);
    }

    let case = format!("failure at call {nth} (stop={stop})");
    let mut vault = Vault::open_store(unlock_store(&root, PASSPHRASE).unwrap(), settings(dir.path()), "faults")
        .unwrap_or_else(|error| panic!("{case}: the store does not open again: {error}"));
    for number in &durable {
        assert_eq!(read_file(&mut vault, *number), content(*number), "{case}: file{number}.bson after reopening");
    }
    drop(vault);
    let report = check_store(&root, PASSPHRASE, true, &mut |_, _| {}).unwrap_or_else(|error| panic!("{case}: check failed: {error}"));
    assert!(report.is_clean(), "{case}: check found {:?}", report.problems);
    clear_immutable_tree(&root);
    calls
}

/// Cuts every pack back to its length at its last fsync, and empties packs never
/// fsynced, dropping what a power cut would lose of them.
fn cut_to_synced_lengths(root: &Path) {
    let synced = failpoint::take_synced();
    for entry in std::fs::read_dir(root.join("packs")).unwrap().flatten() {
        let path = entry.path();
        let durable = synced.iter().find(|(known, _)| *known == path).map_or(0, |(_, len)| *len);
        let _ = wormvault::store::immutable::set_immutable(&path, false);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        if file.metadata().unwrap().len() > durable {
            file.set_len(durable).unwrap();
        }
    }
}

/// Clears the immutable attribute of the store's files so the folder can be removed.
fn clear_immutable_tree(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            clear_immutable_tree(&path);
        } else {
            let _ = wormvault::store::immutable::set_immutable(&path, false);
        }
    }
}

#[test]
fn every_failing_write_or_fsync_leaves_a_consistent_store() {
    // A run that never fails counts the calls the workload makes.
    let total = run_case(i64::MAX, false);
    assert!(total > 10, "the workload made only {total} writes and fsyncs; the test would check little");
    eprintln!("the workload makes {total} writes and fsyncs; each one fails in turn");
    for stop in [false, true] {
        for nth in 1..=total as i64 {
            run_case(nth, stop);
        }
    }
}
