//! Stores on a small loop-mounted ext4 image: the immutable attribute protects sealed
//! packs below the mount, and a full disk gives ENOSPC without losing sealed files.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A loop-mounted ext4 filesystem in a temporary image, unmounted on drop.
struct LoopExt4 {
    _dir: tempfile::TempDir,
    mountpoint: PathBuf,
}

impl LoopExt4 {
    fn new(size_mib: u64) -> LoopExt4 {
        let dir = tempfile::Builder::new().prefix("wormvault-ext4-").tempdir().unwrap();
        let image = dir.path().join("disk.img");
        let mountpoint = dir.path().join("disk");
        fs::create_dir(&mountpoint).unwrap();
        fs::File::create(&image).unwrap().set_len(size_mib << 20).unwrap();
        run(Command::new("mkfs.ext4").args(["-q", "-F", "-m", "0"]).arg(&image));
        run(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&mountpoint));
        LoopExt4 { _dir: dir, mountpoint }
    }
}

impl Drop for LoopExt4 {
    fn drop(&mut self) {
        clear_immutable_tree(&self.mountpoint);
        let _ = Command::new("umount").arg("-l").arg(&self.mountpoint).status();
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Makes a store inside `disk` and returns it with a passphrase file beside it.
fn store_on(disk: &LoopExt4) -> (PathBuf, PathBuf, PathBuf) {
    let root = disk.mountpoint.join("store");
    let passphrase = disk.mountpoint.join("passphrase");
    fs::write(&passphrase, PASSPHRASE).unwrap();
    fs::set_permissions(&passphrase, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let output = Command::new(binary()).arg("init").arg(&root).arg("--passphrase-file").arg(&passphrase).output().unwrap();
    assert!(output.status.success(), "init: {}", String::from_utf8_lossy(&output.stderr));
    let mountpoint = disk.mountpoint.join("mnt");
    fs::create_dir(&mountpoint).unwrap();
    (root, passphrase, mountpoint)
}

fn mount_at(root: &Path, passphrase: &Path, mountpoint: &Path, options: &str) -> Mount {
    let mut command = Command::new(binary());
    command.arg("mount").arg(root).arg(mountpoint).arg("-f").arg("-v").arg("--passphrase-file").arg(passphrase);
    command.env("WORMVAULT_STATE_DIR", root.with_file_name("state"));
    if !options.is_empty() {
        command.arg("-o").arg(options);
    }
    Mount::spawn(command, mountpoint)
}

fn first_pack(root: &Path) -> PathBuf {
    let mut packs: Vec<PathBuf> = fs::read_dir(root.join("packs")).unwrap().map(|entry| entry.unwrap().path()).collect();
    packs.sort();
    packs.into_iter().next().expect("the store has a pack")
}

#[test]
fn sealed_pack_removal_fails_below_mount() {
    let disk = LoopExt4::new(64);
    let (root, passphrase, mountpoint) = store_on(&disk);
    let mount = mount_at(&root, &passphrase, &mountpoint, "reserve=4M");
    write_file(&mount.join("a.bson"), &random_bytes(1 << 20, 5));
    mount.unmount();
    let pack = first_pack(&root);
    assert_errno(fs::remove_file(&pack), libc::EPERM, "rm of a sealed pack");
    assert_errno(fs::OpenOptions::new().write(true).open(&pack), libc::EPERM, "opening a sealed pack for writing");
    let slot = fs::read_dir(root.join("keys")).unwrap().next().unwrap().unwrap().path();
    assert_errno(fs::remove_file(&slot), libc::EPERM, "rm of a key slot");
    assert_errno(fs::remove_file(root.join("config")), libc::EPERM, "rm of the config");
    let mount = mount_at(&root, &passphrase, &mountpoint, "reserve=4M");
    assert_same_bytes(&fs::read(mount.join("a.bson")).unwrap(), &random_bytes(1 << 20, 5), "a.bson after the refusals");
    mount.unmount();
}

#[test]
fn full_disk_gives_enospc_and_recovers() {
    let disk = LoopExt4::new(96);
    let filler = disk.mountpoint.join("filler");
    fs::write(&filler, vec![1u8; 24 << 20]).unwrap();
    let (root, passphrase, mountpoint) = store_on(&disk);
    let mount = mount_at(&root, &passphrase, &mountpoint, "reserve=8M");
    let sealed = random_bytes(4 << 20, 11);
    write_file(&mount.join("sealed.bson"), &sealed);

    // Incompressible data until the store refuses it, on write() or on close().
    let mut file = fs::File::create(mount.join("big.bson")).unwrap();
    let piece = |number: u64| random_bytes(1 << 20, 1000 + number);
    let mut failure = None;
    for number in 0..200 {
        if let Err(error) = file.write_all(&piece(number)) {
            failure = Some(error);
            break;
        }
    }
    let close = file.sync_all().and_then(|_| {
        drop(file);
        Ok(())
    });
    let error = failure.or(close.err()).expect("96 MiB filled without an error");
    assert_eq!(errno(&error), libc::ENOSPC, "error of a write to a full disk: {error}");

    assert_errno(fs::File::create(mount.join("next.bson")), libc::ENOSPC, "create below the reserve");
    assert_same_bytes(&fs::read(mount.join("sealed.bson")).unwrap(), &sealed, "sealed.bson on a full disk");

    fs::remove_file(&filler).unwrap();
    let after = random_bytes(2 << 20, 13);
    write_file(&mount.join("after.bson"), &after);
    mount.unmount();

    let mount = mount_at(&root, &passphrase, &mountpoint, "reserve=8M");
    assert_same_bytes(&fs::read(mount.join("sealed.bson")).unwrap(), &sealed, "sealed.bson after remount");
    assert_same_bytes(&fs::read(mount.join("after.bson")).unwrap(), &after, "after.bson after remount");
    let big = fs::read(mount.join("big.bson")).unwrap();
    assert!(big.len() < 200 << 20, "big.bson kept more than was written");
    for (number, chunk) in big.chunks(1 << 20).enumerate() {
        assert!(piece(number as u64).starts_with(chunk), "big.bson MiB {number} holds bytes that were never written");
    }
    mount.unmount();
}
