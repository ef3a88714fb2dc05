//! `wormvault check` and `wormvault repair --rebuild-index` against damaged stores:
//! each kind of damage is detected and named, and a lost index is rebuilt from packs.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;

/// Makes a store with three sealed files and unmounts it.
fn filled_store() -> (TestStore, Vec<(String, Vec<u8>)>) {
    let store = TestStore::init("30d");
    let files: Vec<(String, Vec<u8>)> =
        (0..3).map(|number| (format!("dir/file{number}.bson"), random_bytes(300_000 + number * 1000, 40 + number as u64))).collect();
    let mount = store.mount();
    fs::create_dir(mount.join("dir")).unwrap();
    for (name, bytes) in &files {
        write_file(&mount.join(name), bytes);
    }
    mount.unmount();
    (store, files)
}

fn packs(store: &TestStore) -> Vec<PathBuf> {
    let mut packs: Vec<PathBuf> = fs::read_dir(store.root.join("packs")).unwrap().map(|entry| entry.unwrap().path()).collect();
    packs.sort();
    packs
}

/// Runs `check` and returns (success, stdout + stderr).
fn check(store: &TestStore, read_data: bool) -> (bool, String) {
    let args: &[&str] = if read_data { &["check", "--read-data"] } else { &["check"] };
    let output = store.command(args);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Frame offsets of chunk frames in a pack: (offset of the frame header, sealed length).
fn chunk_frames(pack: &Path) -> Vec<(u64, u32)> {
    let bytes = fs::read(pack).unwrap();
    let mut frames = Vec::new();
    let mut offset = 40usize;
    while offset + 40 <= bytes.len() {
        let sealed_len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap());
        if bytes[offset + 4] == 1 {
            frames.push((offset as u64, sealed_len));
        }
        offset += 40 + sealed_len as usize;
    }
    frames
}

#[test]
fn intact_store_passes_check() {
    let (store, _) = filled_store();
    let (ok, text) = check(&store, true);
    assert!(ok, "check of an intact store failed:\n{text}");
    assert!(text.contains("is intact"), "{text}");
}

#[test]
fn flipped_byte_is_named_by_check() {
    let (store, _) = filled_store();
    let pack = packs(&store).remove(0);
    let (offset, _) = chunk_frames(&pack)[0];
    clear_immutable(&pack);
    let file = fs::OpenOptions::new().read(true).write(true).open(&pack).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset + 40 + 30).unwrap();
    file.write_all_at(&[byte[0] ^ 0x20], offset + 40 + 30).unwrap();
    let (ok, structure) = check(&store, false);
    assert!(ok, "a flipped byte inside a sealed chunk is invisible to the structure check:\n{structure}");
    let (ok, text) = check(&store, true);
    assert!(!ok, "check --read-data passed a flipped byte:\n{text}");
    assert!(text.contains("failed authentication"), "{text}");
    assert!(text.contains(&format!("at offset {offset}")), "offset {offset} not named:\n{text}");
    assert!(text.contains("damaged file: /dir/file0.bson"), "file path not named:\n{text}");
}

#[test]
fn truncated_pack_is_named_by_check() {
    let (store, _) = filled_store();
    let pack = packs(&store).remove(0);
    let frames = chunk_frames(&pack);
    let (offset, _) = frames[frames.len() / 2];
    clear_immutable(&pack);
    fs::OpenOptions::new().write(true).open(&pack).unwrap().set_len(offset + 100).unwrap();
    let (ok, text) = check(&store, false);
    assert!(!ok, "check passed a truncated pack:\n{text}");
    assert!(text.contains("is damaged at offset"), "{text}");
    assert!(text.contains("damaged file:"), "no damaged file named:\n{text}");
}

#[test]
fn swapped_chunks_are_named_by_check() {
    let store = TestStore::init("30d");
    let mount = store.mount();
    write_file(&mount.join("x.bson"), &random_bytes(3000, 1));
    write_file(&mount.join("y.bson"), &random_bytes(3000, 2));
    mount.unmount();
    let pack = packs(&store).remove(0);
    let frames = chunk_frames(&pack);
    let ((x, x_len), (y, y_len)) = (frames[0], frames[1]);
    assert_eq!(x_len, y_len, "two 3000-byte random chunks seal to the same length");
    clear_immutable(&pack);
    let file = fs::OpenOptions::new().read(true).write(true).open(&pack).unwrap();
    let mut x_bytes = vec![0u8; x_len as usize];
    let mut y_bytes = vec![0u8; y_len as usize];
    file.read_exact_at(&mut x_bytes, x + 40).unwrap();
    file.read_exact_at(&mut y_bytes, y + 40).unwrap();
    file.write_all_at(&y_bytes, x + 40).unwrap();
    file.write_all_at(&x_bytes, y + 40).unwrap();
    let (ok, text) = check(&store, true);
    assert!(!ok, "check --read-data passed swapped chunks:\n{text}");
    assert!(text.contains("damaged file: /x.bson"), "{text}");
    assert!(text.contains("damaged file: /y.bson"), "{text}");
}

#[test]
fn deleted_pack_is_named_by_check() {
    let (store, _) = filled_store();
    let mount = store.mount();
    write_file(&mount.join("later.bson"), &random_bytes(200_000, 77));
    mount.unmount();
    let all = packs(&store);
    assert!(all.len() >= 2, "expected packs from two mounts, found {all:?}");
    clear_immutable(&all[0]);
    fs::remove_file(&all[0]).unwrap();
    let (ok, text) = check(&store, false);
    assert!(!ok, "check passed a deleted pack:\n{text}");
    assert!(text.contains("is missing"), "{text}");
    assert!(text.contains("damaged file: /dir/file0.bson"), "{text}");
}

#[test]
fn removed_index_is_rebuilt() {
    let (store, files) = filled_store();
    clear_immutable_tree(&store.root.join("index"));
    fs::remove_dir_all(store.root.join("index")).unwrap();
    let (ok, text) = check(&store, true);
    assert!(ok, "check after removing the index failed:\n{text}");
    assert!(text.contains("index was missing and has been rebuilt"), "{text}");
    let mount = store.mount();
    for (name, bytes) in &files {
        assert_same_bytes(&fs::read(mount.join(name)).unwrap(), bytes, name);
    }
    mount.unmount();
}

#[test]
fn rebuild_index_restores_every_file() {
    let (store, files) = filled_store();
    let output = store.command(&["repair", "--rebuild-index"]);
    assert!(output.status.success(), "repair failed: {}", String::from_utf8_lossy(&output.stderr));
    let mount = store.mount();
    for (name, bytes) in &files {
        assert_same_bytes(&fs::read(mount.join(name)).unwrap(), bytes, name);
    }
    mount.unmount();
}

/// Copies a folder tree (sled's files) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn older_index_copy_rolls_forward() {
    let (store, files) = filled_store();
    let saved = store.dir.path().join("index-copy");
    copy_tree(&store.root.join("index"), &saved);
    let mount = store.mount();
    write_file(&mount.join("newer.bson"), &random_bytes(100_000, 99));
    mount.unmount();
    fs::remove_dir_all(store.root.join("index")).unwrap();
    copy_tree(&saved, &store.root.join("index"));
    let mount = store.mount();
    assert_same_bytes(&fs::read(mount.join("newer.bson")).unwrap(), &random_bytes(100_000, 99), "newer.bson after an index rollback");
    for (name, bytes) in &files {
        assert_same_bytes(&fs::read(mount.join(name)).unwrap(), bytes, name);
    }
    mount.unmount();
}

#[test]
fn store_rollback_refuses_mount() {
    let (store, _) = filled_store();
    let saved = store.dir.path().join("store-copy");
    copy_tree(&store.root, &saved);
    let mount = store.mount();
    write_file(&mount.join("newer.bson"), &random_bytes(1000, 5));
    mount.unmount();
    clear_immutable_tree(&store.root);
    fs::remove_dir_all(&store.root).unwrap();
    copy_tree(&saved, &store.root);
    let mountpoint = store.dir.path().join("mnt");
    let output = store.mount_background_output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "mount of a rolled-back store: {stderr}");
    assert!(stderr.contains("rollback detected"), "{stderr}");
    assert!(!is_mounted(&mountpoint), "a rolled-back store was mounted");
    let (ok, text) = check(&store, false);
    assert!(!ok, "check passed a rolled-back store:\n{text}");
}

/// Emptied chunk-table slots lose no data, because the packs still contain every chunk:
/// check reports the damage as index-only and points to the rebuild, which brings every
/// file back.
#[test]
fn damaged_chunk_table_points_to_rebuild() {
    let (store, files) = filled_store();
    let table = store.root.join("index").join("chunk-table");
    let length = fs::metadata(&table).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(&table).unwrap();
    // The 4096-byte header stays, so the table opens but names no chunk.
    file.write_all_at(&vec![0u8; (length - 4096) as usize], 4096).unwrap();
    drop(file);

    let (ok, text) = check(&store, false);
    assert!(!ok, "check passed an emptied chunk table:\n{text}");
    assert!(text.contains("all in the index"), "index-only damage not told apart:\n{text}");
    assert!(text.contains("repair --rebuild-index"), "no rebuild advice:\n{text}");

    let output = store.command(&["repair", "--rebuild-index"]);
    assert!(output.status.success(), "repair failed: {}", String::from_utf8_lossy(&output.stderr));
    let (ok, text) = check(&store, true);
    assert!(ok, "check after the rebuild failed:\n{text}");
    let mount = store.mount();
    for (name, bytes) in &files {
        assert_same_bytes(&fs::read(mount.join(name)).unwrap(), bytes, name);
    }
    mount.unmount();
}
