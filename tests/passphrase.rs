//! `wormvault mount` failures before the mount: wrong passphrase, unsafe passphrase
//! file, a folder that is not a store, a store already mounted. Each must exit with
//! status 1, print one line on stderr and leave nothing mounted. Also the
//! WORMVAULT_PASSPHRASE variable as the passphrase source.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `command` with stdin closed, killing it after `timeout` (a mount that wrongly
/// succeeds in the foreground would otherwise never exit).
fn run_bounded(mut command: Command, timeout: Duration) -> Output {
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning wormvault");
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Detaches a mount left at `path` by a test that failed, when dropped.
struct UnmountGuard(PathBuf);

impl Drop for UnmountGuard {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(&self.0).status();
        }
    }
}

fn mount_command(store: &Path, mountpoint: &Path, foreground: bool) -> Command {
    let mut command = Command::new(binary());
    command.arg("mount").arg(store).arg(mountpoint);
    if foreground {
        command.arg("-f");
    }
    command
}

fn new_mountpoint(store: &TestStore, name: &str) -> PathBuf {
    let path = store.dir.path().join(name);
    fs::create_dir_all(&path).unwrap();
    path
}

fn private_file(path: &Path, contents: &str, mode: u32) -> PathBuf {
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    path.to_path_buf()
}

/// Asserts exit status 1 and exactly one line on stderr containing `expected`.
#[track_caller]
fn assert_one_line_failure(output: &Output, expected: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{what}: exit status; stderr:\n{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: stderr lines:\n{stderr}");
    assert!(stderr.contains(expected), "{what}: stderr lacks {expected:?}:\n{stderr}");
}

fn check_wrong_passphrase(foreground: bool) {
    let store = TestStore::init("30d");
    let mountpoint = new_mountpoint(&store, "mnt");
    let _guard = UnmountGuard(mountpoint.clone());
    let wrong = private_file(&store.dir.path().join("wrong"), "not the passphrase", 0o600);
    let mut command = mount_command(&store.root, &mountpoint, foreground);
    command.arg("--passphrase-file").arg(&wrong);
    let output = run_bounded(command, Duration::from_secs(30));
    let mode = if foreground { "with -f" } else { "without -f" };
    assert_one_line_failure(&output, "wrong passphrase", &format!("mount {mode} and a wrong passphrase"));
    assert!(!is_mounted(&mountpoint), "mount {mode} and a wrong passphrase left a mount at {}", mountpoint.display());
}

#[test]
fn wrong_passphrase_foreground_fails_cleanly() {
    check_wrong_passphrase(true);
}

#[test]
fn wrong_passphrase_background_fails_cleanly() {
    check_wrong_passphrase(false);
}

#[test]
fn readable_passphrase_file_rejected() {
    let store = TestStore::init("30d");
    let mountpoint = new_mountpoint(&store, "mnt");
    let _guard = UnmountGuard(mountpoint.clone());
    let readable = private_file(&store.dir.path().join("readable"), PASSPHRASE, 0o644);
    let mut command = mount_command(&store.root, &mountpoint, true);
    command.arg("--passphrase-file").arg(&readable);
    let output = run_bounded(command, Duration::from_secs(30));
    assert_one_line_failure(&output, "chmod 600", "mount with a passphrase file of mode 0644");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&readable.display().to_string()), "the message does not name the passphrase file:\n{stderr}");
    assert!(!is_mounted(&mountpoint), "mount with a passphrase file of mode 0644 left a mount");
}

#[test]
fn environment_passphrase_mounts_store() {
    let store = TestStore::init("30d");
    let mountpoint = new_mountpoint(&store, "mnt");
    let mut command = mount_command(&store.root, &mountpoint, true);
    command.env("WORMVAULT_PASSPHRASE", PASSPHRASE);
    let mount = Mount::spawn(command, &mountpoint);
    let data = random_bytes(100_000, 5);
    write_file(&mount.join("env.bin"), &data);
    mount.unmount();

    let mount = store.mount();
    let read = fs::read(mount.join("env.bin")).expect("read env.bin after a mount with the passphrase file");
    assert_same_bytes(&read, &data, "env.bin");
    mount.unmount();
}

#[test]
fn environment_passphrase_hidden_from_proc() {
    let store = TestStore::init("30d");
    let mountpoint = new_mountpoint(&store, "mnt");
    let mut command = mount_command(&store.root, &mountpoint, true);
    command.env("WORMVAULT_PASSPHRASE", PASSPHRASE);
    let mount = Mount::spawn(command, &mountpoint);
    let environ = fs::read(format!("/proc/{}/environ", mount.pid())).expect("read the daemon's /proc environ");
    let passphrase_visible = environ.windows(PASSPHRASE.len()).any(|window| window == PASSPHRASE.as_bytes());
    mount.unmount();
    assert!(!passphrase_visible, "the daemon's /proc/PID/environ still shows the passphrase");
}

#[test]
fn non_store_folder_rejected() {
    let store = TestStore::init("30d");
    let mountpoint = new_mountpoint(&store, "mnt");
    let _guard = UnmountGuard(mountpoint.clone());
    let folder = store.dir.path().join("not-a-store");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("notes.txt"), "plain file").unwrap();
    let mut command = mount_command(&folder, &mountpoint, true);
    command.arg("--passphrase-file").arg(&store.passphrase_file);
    let output = run_bounded(command, Duration::from_secs(30));
    assert_one_line_failure(&output, "not a wormvault store", "mount of a folder that is not a store");
    assert!(!is_mounted(&mountpoint), "mount of a folder that is not a store left a mount");
}

#[test]
fn second_mount_names_holder_pid() {
    let store = TestStore::init("30d");
    let mount = store.mount();
    let second = new_mountpoint(&store, "mnt2");
    let _guard = UnmountGuard(second.clone());
    let mut command = mount_command(&store.root, &second, true);
    command.arg("--passphrase-file").arg(&store.passphrase_file);
    let output = run_bounded(command, Duration::from_secs(30));
    assert_one_line_failure(&output, &format!("pid {}", mount.pid()), "second mount of a mounted store");
    assert!(!is_mounted(&second), "the second mount of a mounted store left a mount");
    assert!(is_mounted(&mount.path), "the first mount went away after the second attempt");
    mount.unmount();
}
