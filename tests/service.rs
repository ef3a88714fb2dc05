//! Running wormvault as a service: mount(8) with an fstab-style `fuse.wormvault`
//! type, the background daemon, the metrics file, and a clean stop on SIGTERM.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Where mount.fuse3 looks for the `wormvault` command: mount(8) runs helpers with a
/// fixed PATH, so the command must be installed in a system folder.
const INSTALLED_BINARY: &str = "/usr/local/bin/wormvault";

/// Points /usr/local/bin/wormvault at the binary under test, unless another
/// installation is there, and removes the link again on drop.
struct InstalledLink {
    created: bool,
}

impl InstalledLink {
    fn new() -> InstalledLink {
        let path = Path::new(INSTALLED_BINARY);
        match fs::symlink_metadata(path) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let target = fs::read_link(path).unwrap();
                assert!(target.ends_with("wormvault"), "{INSTALLED_BINARY} links to {target:?}");
                fs::remove_file(path).unwrap();
            }
            Ok(_) => panic!("{INSTALLED_BINARY} is an installed wormvault; this test would replace it, so it stops"),
            Err(_) => {}
        }
        std::os::unix::fs::symlink(binary(), path).unwrap();
        InstalledLink { created: true }
    }
}

impl Drop for InstalledLink {
    fn drop(&mut self) {
        if self.created {
            let _ = fs::remove_file(INSTALLED_BINARY);
        }
    }
}

/// The pid recorded in the store's lock file by the daemon that holds it.
fn daemon_pid(store: &TestStore) -> i32 {
    let text = fs::read_to_string(store.root.join("lock")).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// Waits until process `pid` has exited, up to `timeout`.
fn wait_for_exit(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        // SAFETY: signal 0 only checks whether the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn mount_type_wormvault(store: &TestStore, mountpoint: &Path, extra: &str) {
    let options = format!("passphrase_file={},nofail,_netdev{extra}", store.passphrase_file.display());
    let output = Command::new("mount")
        .args(["-t", "fuse.wormvault"])
        .arg(&store.root)
        .arg(mountpoint)
        .args(["-o", &options])
        .env("WORMVAULT_STATE_DIR", store.state_dir())
        .output()
        .expect("running mount");
    assert!(output.status.success(), "mount -t fuse.wormvault failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(is_mounted(mountpoint), "mount returned but {mountpoint:?} is not a FUSE mount");
}

#[test]
fn fstab_type_mounts_and_unmounts() {
    let _link = InstalledLink::new();
    let store = TestStore::init("30d");
    let mountpoint = store.dir.path().join("mnt");
    fs::create_dir(&mountpoint).unwrap();
    let metrics = store.dir.path().join("wormvault.prom");
    mount_type_wormvault(&store, &mountpoint, &format!(",metrics_file={}", metrics.display()));
    let data = random_bytes(2 << 20, 21);
    write_file(&mountpoint.join("a.bson"), &data);
    let pid = daemon_pid(&store);
    let output = Command::new("umount").arg(&mountpoint).output().unwrap();
    assert!(output.status.success(), "umount failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(wait_for_exit(pid, Duration::from_secs(60)), "daemon {pid} still running 60 s after umount");
    let text = fs::read_to_string(&metrics).expect("metrics file written at unmount");
    assert!(text.contains("wormvault_bytes_written_total 2097152\n"), "metrics file:\n{text}");
    assert!(text.contains("wormvault_files_sealed_total 1\n"), "metrics file:\n{text}");

    mount_type_wormvault(&store, &mountpoint, "");
    assert_same_bytes(&fs::read(mountpoint.join("a.bson")).unwrap(), &data, "a.bson after an fstab-style remount");
    let pid = daemon_pid(&store);
    assert!(Command::new("umount").arg(&mountpoint).status().unwrap().success(), "second umount failed");
    assert!(wait_for_exit(pid, Duration::from_secs(60)), "daemon {pid} still running after the second umount");
}

#[test]
fn sigterm_unmounts_and_commits() {
    let store = TestStore::init("30d");
    let mut mount = store.mount_with(&["commit_interval=1h"]);
    let data = random_bytes(1 << 20, 22);
    write_file(&mount.join("a.bson"), &data);
    let pid = mount.pid() as i32;
    // SAFETY: sending SIGTERM to the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "kill -TERM {pid}");
    let status = mount.wait_for_exit(Duration::from_secs(60)).expect("daemon still running 60 s after SIGTERM");
    assert!(status.success(), "daemon exited with {status} after SIGTERM:\n{}", mount.log());
    assert!(!is_mounted(&mount.path), "mount still present after SIGTERM");
    drop(mount);
    let mount = store.mount();
    assert_same_bytes(&fs::read(mount.join("a.bson")).unwrap(), &data, "a.bson after SIGTERM and remount");
    mount.unmount();
}

#[test]
fn mount_replaces_a_dead_mount() {
    let store = TestStore::init("30d");
    let mut mount = store.mount();
    write_file(&mount.join("a.bson"), b"before the kill");
    std::fs::File::open(&mount.path).unwrap().sync_all().unwrap();
    mount.kill_daemon();
    let error = fs::metadata(mount.join("a.bson")).expect_err("a dead mount answered");
    assert_eq!(errno(&error), libc::ENOTCONN, "stat on a dead mount: {error}");
    let again = store.mount();
    let read = fs::read(again.join("a.bson")).unwrap_or_else(|error| panic!("a.bson after remounting: {error}\n{}", again.log()));
    assert_same_bytes(&read, b"before the kill", "a.bson after remounting over a dead mount");
    again.unmount();
    drop(mount);
}
