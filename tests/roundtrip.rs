//! Round trips through the kernel: files written through a mount read back the same
//! bytes after unmount (which runs the final commit) and a fresh mount.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;

use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use common::*;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Sizes at and around the chunker's minimum (4 KiB), average (16 KiB) and maximum
/// (128 KiB) chunk lengths, and around 1 MiB, the largest FUSE write.
const BOUNDARY_SIZES: [usize; 14] = [
    0,
    1,
    4 * KIB - 1,
    4 * KIB,
    4 * KIB + 1,
    16 * KIB - 1,
    16 * KIB,
    16 * KIB + 1,
    128 * KIB - 1,
    128 * KIB,
    128 * KIB + 1,
    MIB - 1,
    MIB,
    MIB + 1,
];

/// Makes compressible bytes: numbered lines of text.
fn text_bytes(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut line = 0u64;
    while out.len() < len {
        out.extend_from_slice(format!("line {line:08}: the quick brown fox jumps over the lazy dog\n").as_bytes());
        line += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn boundary_sizes_round_trip() {
    let store = TestStore::init("30d");
    let mut expected = Vec::new();
    let mount = store.mount();
    for (number, size) in BOUNDARY_SIZES.iter().copied().enumerate() {
        for (kind, bytes) in [("random", random_bytes(size, 100 + number as u64)), ("text", text_bytes(size))] {
            let name = format!("{kind}-{size}.bin");
            write_file(&mount.join(&name), &bytes);
            expected.push((name, size as u64, sha256(&bytes)));
        }
    }
    mount.unmount();

    let mount = store.mount();
    for (name, size, digest) in &expected {
        let path = mount.join(name);
        let length = fs::metadata(&path).unwrap_or_else(|error| panic!("stat {name}: {error}")).len();
        assert_eq!(length, *size, "size of {name} after remount");
        assert_eq!(sha256_file(&path), *digest, "SHA-256 of {name} after remount");
    }
    mount.unmount();
}

#[test]
fn one_gib_file_round_trips() {
    const PIECES: u64 = 1024;
    let store = TestStore::init("30d");
    let mount = store.mount();
    let path = mount.join("big.bin");
    let mut file = File::create(&path).expect("create big.bin");
    let mut hasher = Sha256::new();
    for piece in 0..PIECES {
        let bytes = random_bytes(MIB, 7_000 + piece);
        hasher.update(&bytes);
        file.write_all(&bytes).unwrap_or_else(|error| panic!("write piece {piece} of big.bin: {error}"));
    }
    drop(file);
    let written: String = hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    mount.unmount();

    let mount = store.mount();
    let path = mount.join("big.bin");
    assert_eq!(fs::metadata(&path).unwrap().len(), PIECES * MIB as u64, "size of big.bin after remount");
    assert_eq!(sha256_file(&path), written, "SHA-256 of big.bin after remount");
    mount.unmount();
}

#[test]
fn random_preads_return_written_bytes() {
    let store = TestStore::init("30d");
    let size = 5 * MIB + 777;
    let data = random_bytes(size, 42);
    let mount = store.mount();
    write_file(&mount.join("data.bin"), &data);
    mount.unmount();

    let mount = store.mount();
    let file = File::open(mount.join("data.bin")).unwrap();
    let seed = rand::random::<u64>();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for read_number in 0..200 {
        // Some reads start near or past the end of the file.
        let offset = rng.gen_range(0..size + 4 * KIB);
        let len = if rng.gen_bool(0.3) { rng.gen_range(1..=512) } else { rng.gen_range(1..=300 * KIB) };
        let mut buffer = vec![0u8; len];
        let read = file
            .read_at(&mut buffer, offset as u64)
            .unwrap_or_else(|error| panic!("pread {read_number} at {offset} of {len} bytes (seed {seed}): {error}"));
        let expected = &data[offset.min(size)..(offset + len).min(size)];
        assert_same_bytes(&buffer[..read], expected, &format!("pread {read_number} at {offset} of {len} bytes (seed {seed})"));
    }
    drop(file);
    mount.unmount();
}

/// Writes `bytes` at `offset` through `file` and into the model of its contents.
fn patch(file: &File, model: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    file.write_all_at(bytes, offset as u64).unwrap_or_else(|error| panic!("pwrite at {offset}: {error}"));
    if model.len() < offset + bytes.len() {
        model.resize(offset + bytes.len(), 0);
    }
    model[offset..offset + bytes.len()].copy_from_slice(bytes);
}

#[test]
fn patched_regions_read_back_exactly() {
    let store = TestStore::init("30d");
    let mount = store.mount();
    let path = mount.join("dump.custom");
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path).unwrap();
    let mut model = Vec::new();

    // A placeholder header, then the body in 64 KiB writes, as pg_dump -Fc does.
    patch(&file, &mut model, 0, &[0u8; 4 * KIB]);
    let body = random_bytes(6 * MIB, 9);
    for piece in body.chunks(64 * KIB) {
        let offset = model.len();
        patch(&file, &mut model, offset, piece);
    }
    // fsync hands the data to the daemon, so the patches below reach it as writes
    // below data it has already cut into chunks.
    file.sync_all().expect("fsync dump.custom");

    patch(&file, &mut model, 2 * MIB + 123, &random_bytes(10 * KIB, 10));
    patch(&file, &mut model, 3 * MIB - 100, &random_bytes(200 * KIB, 11));
    patch(&file, &mut model, 4097, &[0xab]);
    let end = model.len();
    patch(&file, &mut model, end, &random_bytes(MIB, 12));
    let end = model.len();
    patch(&file, &mut model, end - 50 * KIB, &random_bytes(300, 13));
    // The final header, written last over the placeholder.
    patch(&file, &mut model, 0, &random_bytes(4 * KIB, 14));
    drop(file);

    let read = fs::read(&path).expect("read dump.custom before unmount");
    assert_same_bytes(&read, &model, "dump.custom before unmount");
    mount.unmount();

    let mount = store.mount();
    let read = fs::read(mount.join("dump.custom")).expect("read dump.custom after remount");
    assert_same_bytes(&read, &model, "dump.custom after remount");
    mount.unmount();
}

/// A file long enough that each commit drops its early extents from the daemon's
/// memory: a read and a header patch that reach below them, while the file is still
/// open, read those extents back from the index.
#[test]
fn reads_and_patches_below_committed_extents_while_writing() {
    let store = TestStore::init("30d");
    let mount = store.mount();
    let path = mount.join("big.bson");
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path).unwrap();
    let mut model = Vec::new();
    // 96 MiB is about 6,000 chunks at the 16 KiB average, more than the daemon keeps
    // in memory after a commit; each fsync commits.
    for round in 0..6 {
        let offset = model.len();
        patch(&file, &mut model, offset, &random_bytes(16 * MIB, 40 + round));
        file.sync_all().expect("fsync big.bson");
    }
    drop_page_cache(&file);
    let mut early = vec![0u8; 3 * MIB];
    file.read_exact_at(&mut early, MIB as u64).expect("read of early bytes while writing");
    assert_same_bytes(&early, &model[MIB..4 * MIB], "early bytes read while writing");

    patch(&file, &mut model, 100, &random_bytes(5000, 50));
    file.sync_all().expect("fsync after the header patch");
    let end = model.len();
    patch(&file, &mut model, end, &random_bytes(MIB, 51));
    drop(file);

    let read = fs::read(&path).expect("read big.bson before unmount");
    assert_same_bytes(&read, &model, "big.bson before unmount");
    mount.unmount();
    let mount = store.mount();
    let read = fs::read(mount.join("big.bson")).expect("read big.bson after remount");
    assert_same_bytes(&read, &model, "big.bson after remount");
    mount.unmount();
}
