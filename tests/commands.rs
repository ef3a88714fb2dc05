//! Commands on bad input give one clear line and exit 1; `retain` and `hold` change
//! retention of whole trees through the mount.

mod common;

use std::fs;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a failed command: status 1 and one line on stderr containing `needle`.
#[track_caller]
fn assert_one_line_failure(output: &Output, needle: &str, what: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(1), "{what}: status {:?}, stderr: {stderr}", output.status);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: expected one line, got:\n{stderr}");
    assert!(stderr.contains(needle), "{what}: {needle:?} not in {stderr:?}");
}

fn mount_output(store: &TestStore) -> Output {
    store.mount_background_output()
}

#[test]
fn damaged_config_rejected_in_one_line() {
    let store = TestStore::init("30d");
    let config = store.root.join("config");
    clear_immutable(&config);
    let mut bytes = fs::read(&config).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&config, &bytes).unwrap();
    assert_one_line_failure(&mount_output(&store), "config failed authentication", "mount with a damaged config");
}

#[test]
fn newer_format_rejected_in_one_line() {
    let store = TestStore::init("30d");
    let config = store.root.join("config");
    clear_immutable(&config);
    let mut bytes = fs::read(&config).unwrap();
    bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
    fs::write(&config, &bytes).unwrap();
    assert_one_line_failure(&mount_output(&store), "newer than this wormvault supports", "mount of a newer format");
}

#[test]
fn damaged_key_slot_rejected_in_one_line() {
    let store = TestStore::init("30d");
    let slot = fs::read_dir(store.root.join("keys")).unwrap().next().unwrap().unwrap().path();
    clear_immutable(&slot);
    let bytes = fs::read(&slot).unwrap();
    fs::write(&slot, &bytes[..100]).unwrap();
    assert_one_line_failure(&mount_output(&store), "key slot is 100 bytes", "mount with a truncated key slot");
}

#[test]
fn missing_store_rejected_in_one_line() {
    let store = TestStore::init("30d");
    let output = Command::new(binary())
        .args(["stats"])
        .arg(store.dir.path().join("no-such-store"))
        .arg("--passphrase-file")
        .arg(&store.passphrase_file)
        .output()
        .unwrap();
    assert_one_line_failure(&output, "is not a wormvault store", "stats of a missing store");
}

#[test]
fn bad_arguments_rejected_in_one_line() {
    let store = TestStore::init("30d");
    let init = Command::new(binary())
        .arg("init")
        .arg(store.dir.path().join("other"))
        .args(["--retention", "5w", "--passphrase-file"])
        .arg(&store.passphrase_file)
        .output()
        .unwrap();
    assert_one_line_failure(&init, "invalid duration", "init with an unknown unit");
    let again = store.command(&["init"]);
    assert_one_line_failure(&again, "is not empty", "init over an existing store");
    let mountpoint = store.dir.path().join("mnt");
    fs::create_dir_all(&mountpoint).unwrap();
    let mount = Command::new(binary())
        .arg("mount")
        .arg(&store.root)
        .arg(&mountpoint)
        .args(["-o", "bogus=1", "--passphrase-file"])
        .arg(&store.passphrase_file)
        .output()
        .unwrap();
    assert_one_line_failure(&mount, "unknown mount option", "mount with an unknown option");
}

fn xattr(path: &std::path::Path, name: &str) -> String {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let c_name = std::ffi::CString::new(name).unwrap();
    let mut buffer = [0u8; 64];
    // SAFETY: getxattr writes at most buffer.len() bytes.
    let len = unsafe { libc::getxattr(c_path.as_ptr(), c_name.as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) };
    assert!(len >= 0, "getxattr {name} on {path:?}: {}", std::io::Error::last_os_error());
    String::from_utf8_lossy(&buffer[..len as usize]).into_owned()
}

fn run(args: &[&str], paths: &[&std::path::Path]) -> Output {
    Command::new(binary()).args(args).args(paths).output().unwrap()
}

#[test]
fn retain_extends_a_whole_tree() {
    let store = TestStore::init("30d");
    let mount = store.mount();
    fs::create_dir_all(mount.join("dump/db")).unwrap();
    write_file(&mount.join("dump/db/a.bson"), b"a");
    write_file(&mount.join("dump/b.json"), b"b");
    let output = run(&["retain", "-R", "--until", "2100-01-01T00:00:00Z"], &[&mount.join("dump")]);
    assert!(output.status.success(), "retain -R: {}", stderr_of(&output));
    for file in ["dump/db/a.bson", "dump/b.json"] {
        assert_eq!(xattr(&mount.join(file), "user.wormvault.retain_until"), "2100-01-01T00:00:00Z", "{file}");
    }
    let shorter = run(&["retain", "--until", "2099-01-01T00:00:00Z"], &[&mount.join("dump/b.json")]);
    assert_one_line_failure(&shorter, "can only be extended", "retain to an earlier time");
    assert_eq!(xattr(&mount.join("dump/b.json"), "user.wormvault.retain_until"), "2100-01-01T00:00:00Z", "after the refused shortening");
    let folder = run(&["retain", "--until", "90d"], &[&mount.join("dump")]);
    assert_one_line_failure(&folder, "add -R", "retain on a folder without -R");
    mount.unmount();
}

#[test]
fn hold_blocks_deletion_of_a_tree() {
    let store = TestStore::init("1s");
    let mount = store.mount();
    fs::create_dir(mount.join("dump")).unwrap();
    write_file(&mount.join("dump/a.bson"), b"held");
    let output = run(&["hold", "-R"], &[&mount.join("dump")]);
    assert!(output.status.success(), "hold -R: {}", stderr_of(&output));
    assert_eq!(xattr(&mount.join("dump/a.bson"), "user.wormvault.hold"), "1");
    std::thread::sleep(Duration::from_millis(2100));
    assert_errno(fs::remove_file(mount.join("dump/a.bson")), libc::EPERM, "unlink under a legal hold after retention");
    let output = run(&["hold", "-R", "--release"], &[&mount.join("dump")]);
    assert!(output.status.success(), "hold --release: {}", stderr_of(&output));
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(error) = fs::remove_file(mount.join("dump/a.bson")) {
        assert!(Instant::now() < deadline, "unlink after the hold was lifted: {error}");
        std::thread::sleep(Duration::from_millis(100));
    }
    mount.unmount();
}

fn key_command(store: &TestStore, args: &[&str], new_passphrase: Option<&str>) -> Output {
    let mut command = Command::new(binary());
    command.arg("key").arg(args[0]).arg(&store.root).args(&args[1..]);
    if args[0] != "list" {
        command.arg("--passphrase-file").arg(&store.passphrase_file);
    }
    if let Some(passphrase) = new_passphrase {
        command.env("WORMVAULT_NEW_PASSPHRASE", passphrase);
    }
    command.output().unwrap()
}

fn slot_ids(store: &TestStore) -> Vec<String> {
    let output = key_command(store, &["list"], None);
    assert!(output.status.success(), "key list: {}", stderr_of(&output));
    String::from_utf8_lossy(&output.stdout).lines().map(|line| line.split_whitespace().next().unwrap().to_string()).collect()
}

fn unlocks_with(store: &TestStore, passphrase: &str) -> bool {
    let output = Command::new(binary()).arg("stats").arg(&store.root).env("WORMVAULT_PASSPHRASE", passphrase).output().unwrap();
    output.status.success()
}

#[test]
fn key_slots_add_list_remove() {
    let store = TestStore::init("30d");
    let mount = store.mount();
    write_file(&mount.join("a.bson"), b"data under the old key");
    mount.unmount();
    let original = slot_ids(&store);
    assert_eq!(original.len(), 1, "a new store has one key slot");

    let output = key_command(&store, &["add"], Some("second passphrase"));
    assert!(output.status.success(), "key add: {}", stderr_of(&output));
    assert_eq!(slot_ids(&store).len(), 2, "slots after key add");
    assert!(unlocks_with(&store, "second passphrase"), "the added passphrase does not unlock");
    assert!(unlocks_with(&store, PASSPHRASE), "the first passphrase stopped working");

    let output = key_command(&store, &["remove", &original[0]], None);
    assert!(output.status.success(), "key remove: {}", stderr_of(&output));
    assert!(!unlocks_with(&store, PASSPHRASE), "a removed passphrase still unlocks");
    let remaining = slot_ids(&store);
    assert_eq!(remaining.len(), 1, "slots after key remove");

    let last = Command::new(binary())
        .args(["key", "remove"])
        .arg(&store.root)
        .arg(&remaining[0])
        .env("WORMVAULT_PASSPHRASE", "second passphrase")
        .output()
        .unwrap();
    assert_one_line_failure(&last, "last key", "removing the last key slot");
    assert!(unlocks_with(&store, "second passphrase"), "the last slot was removed after all");

    let mut mount_env = Command::new(binary());
    mount_env
        .arg("mount")
        .arg(&store.root)
        .arg(store.dir.path().join("mnt"))
        .arg("-f")
        .env("WORMVAULT_PASSPHRASE", "second passphrase")
        .env("WORMVAULT_STATE_DIR", store.state_dir());
    let mount = Mount::spawn(mount_env, &store.dir.path().join("mnt"));
    assert_same_bytes(&fs::read(mount.join("a.bson")).unwrap(), b"data under the old key", "a.bson under the new key");
    mount.unmount();
}

#[test]
fn key_passwd_replaces_the_passphrase() {
    let store = TestStore::init("30d");
    let output = key_command(&store, &["passwd"], Some("replacement"));
    assert!(output.status.success(), "key passwd: {}", stderr_of(&output));
    assert_eq!(slot_ids(&store).len(), 1, "slots after passwd");
    assert!(unlocks_with(&store, "replacement"), "the new passphrase does not unlock");
    assert!(!unlocks_with(&store, PASSPHRASE), "the old passphrase still unlocks");
}
