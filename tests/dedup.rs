//! Deduplication: data already in the store is not stored again.

mod common;

use std::fs::File;
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use common::*;

const MIB: usize = 1024 * 1024;
const COPY_MIB: u64 = 256;

/// Writes `COPY_MIB` MiB of incompressible data, identical for every call, in 1 MiB
/// writes, and returns its SHA-256.
fn write_copy(path: &Path) -> String {
    let mut file = File::create(path).unwrap_or_else(|error| panic!("create {}: {error}", path.display()));
    let mut hasher = Sha256::new();
    for piece in 0..COPY_MIB {
        let bytes = random_bytes(MIB, 500 + piece);
        hasher.update(&bytes);
        file.write_all(&bytes).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn second_copy_adds_under_two_percent() {
    let store = TestStore::init("30d");
    let mount = store.mount();
    let digest = write_copy(&mount.join("first.bin"));
    mount.unmount();
    let after_first = tree_bytes(&store.root);

    let mount = store.mount();
    let second_digest = write_copy(&mount.join("second.bin"));
    mount.unmount();
    let after_second = tree_bytes(&store.root);

    let copy_bytes = COPY_MIB * MIB as u64;
    let growth = after_second.saturating_sub(after_first);
    eprintln!("store bytes: {after_first} after the first copy, {after_second} after the second");
    assert!(
        after_first >= copy_bytes,
        "the store holds {after_first} bytes after the first copy, less than the {copy_bytes} bytes of incompressible data"
    );
    assert!(
        growth * 50 < copy_bytes,
        "the second copy grew the store by {growth} bytes ({:.2}% of {copy_bytes}); expected under 2%",
        growth as f64 * 100.0 / copy_bytes as f64
    );

    let mount = store.mount();
    assert_eq!(sha256_file(&mount.join("first.bin")), digest, "SHA-256 of first.bin after remount");
    assert_eq!(sha256_file(&mount.join("second.bin")), second_digest, "SHA-256 of second.bin after remount");
    mount.unmount();
}
