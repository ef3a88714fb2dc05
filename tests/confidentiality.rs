//! Confidentiality: no plaintext of file contents or names reaches the backing disk.
//! A marker string, random per run, is written into contents, file names, folder
//! names and a symbolic link target, and every byte of every file under the store
//! folder (sled's files included) is searched for it.

mod common;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use common::*;

/// Makes a marker unlikely to occur by chance: "WVMARK" and 24 random hex digits.
fn new_marker() -> String {
    let digits: String = (0..12).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    format!("WVMARK{digits}")
}

/// Finds the files under `dir` that contain `needle`, each with the offset of its
/// first occurrence.
fn find_in_tree(dir: &Path, needle: &[u8]) -> Vec<(PathBuf, usize)> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|error| panic!("list {}: {error}", dir.display())) {
        let path = entry.unwrap().path();
        let metadata = fs::symlink_metadata(&path).unwrap();
        if metadata.is_dir() {
            found.extend(find_in_tree(&path, needle));
        } else if metadata.is_file() {
            let bytes = fs::read(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
            if let Some(offset) = bytes.windows(needle.len()).position(|window| window == needle) {
                found.push((path, offset));
            }
        }
    }
    found
}

/// Makes compressible text with the marker on every line.
fn text_with_marker(marker: &str, lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for line in 0..lines {
        out.extend_from_slice(
            format!("{{\"_id\": {line}, \"note\": \"customer {marker} ordered item {}\"}}\n", line % 97).as_bytes(),
        );
    }
    out
}

#[test]
fn marker_absent_from_store_bytes() {
    let marker = new_marker();
    let store = TestStore::init("30d");
    let mount = store.mount();

    let folder = mount.join(&format!("folder-{marker}"));
    fs::create_dir(&folder).expect("mkdir with the marker in its name");
    let text = text_with_marker(&marker, 50_000);
    write_file(&folder.join("records.json"), &text);
    write_file(&mount.join(&format!("{marker}.txt")), b"a file whose name holds the marker\n");
    let mut noise = random_bytes(2 << 20, 77);
    noise[1_000_003..1_000_003 + marker.len()].copy_from_slice(marker.as_bytes());
    write_file(&mount.join("noise.bin"), &noise);
    std::os::unix::fs::symlink(format!("target-{marker}"), mount.join("link")).expect("symlink with the marker in its target");

    // fsync on the mount root commits the whole store.
    File::open(&mount.path).unwrap().sync_all().expect("fsync of the mount root");
    let found = find_in_tree(&store.root, marker.as_bytes());
    assert!(found.is_empty(), "marker {marker} found in the store while mounted: {found:?}");

    mount.unmount();
    let found = find_in_tree(&store.root, marker.as_bytes());
    assert!(found.is_empty(), "marker {marker} found in the store after unmount: {found:?}");

    // The search finds a marker that is there, and the contents did reach the packs.
    let control = store.dir.path().join("control");
    fs::create_dir(&control).unwrap();
    fs::write(control.join("plain.bin"), &noise).unwrap();
    assert_eq!(find_in_tree(&control, marker.as_bytes()).len(), 1, "marker search in a plain copy of noise.bin");
    let pack_bytes = tree_bytes(&store.root.join("packs"));
    assert!(pack_bytes >= noise.len() as u64, "packs hold {pack_bytes} bytes, less than the {} bytes of noise.bin", noise.len());

    let mount = store.mount();
    let read = fs::read(mount.join(&format!("folder-{marker}/records.json"))).expect("read records.json after remount");
    assert_same_bytes(&read, &text, "records.json after remount");
    let read = fs::read(mount.join("noise.bin")).expect("read noise.bin after remount");
    assert_same_bytes(&read, &noise, "noise.bin after remount");
    mount.unmount();
}
