//! Integrity: damaged or moved chunk frames in a pack make reads fail with EIO and
//! never return wrong bytes, while files whose chunks are intact still read back.
//!
//! Pack layout used here: a 40-byte pack header, then frames. A frame is a 40-byte
//! header (sealed length u32 LE, kind byte with 1 for a chunk and 2 for a commit
//! record, 3 zero bytes, 32-byte object id) followed by the sealed bytes (24-byte
//! nonce, ciphertext, 16-byte tag).

mod common;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;

const PACK_HEADER_LEN: u64 = 40;
const FRAME_HEADER_LEN: u64 = 40;
const NONCE_LEN: u64 = 24;
const TAG_LEN: u64 = 16;
const KIND_CHUNK: u8 = 1;

/// One frame of a pack, located by the offset of its header.
#[derive(Debug, Clone)]
struct Frame {
    offset: u64,
    kind: u8,
    id: [u8; 32],
    sealed_len: u64,
}

impl Frame {
    fn sealed_offset(&self) -> u64 {
        self.offset + FRAME_HEADER_LEN
    }

    /// Formats the first 8 bytes of the object id in hex, as the daemon's log shows
    /// chunk ids.
    fn short_id(&self) -> String {
        self.id[..8].iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

/// Lists the pack files of a store, in pack-number order.
fn packs(store: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(store.join("packs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "pack"))
        .collect();
    paths.sort();
    paths
}

/// Parses the frame headers of a pack file and checks that the last frame ends at
/// the end of the file.
fn frames(pack: &Path) -> Vec<Frame> {
    let bytes = fs::read(pack).unwrap();
    let mut out = Vec::new();
    let mut offset = PACK_HEADER_LEN as usize;
    while offset < bytes.len() {
        let header = &bytes[offset..offset + FRAME_HEADER_LEN as usize];
        let sealed_len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as u64;
        let kind = header[4];
        assert_eq!(&header[5..8], &[0, 0, 0], "reserved bytes of the frame at {offset} in {}", pack.display());
        assert!(kind == 1 || kind == 2, "kind {kind} of the frame at {offset} in {}", pack.display());
        let mut id = [0u8; 32];
        id.copy_from_slice(&header[8..40]);
        out.push(Frame { offset: offset as u64, kind, id, sealed_len });
        offset += (FRAME_HEADER_LEN + sealed_len) as usize;
    }
    assert_eq!(offset, bytes.len(), "frames of {} end exactly at the end of the file", pack.display());
    out
}

/// Returns the pack number as the daemon's log shows it: 16 hex digits, the pack
/// file's stem.
fn pack_number(pack: &Path) -> String {
    pack.file_stem().unwrap().to_string_lossy().to_string()
}

fn assert_read_fails_with_eio(path: &Path, what: &str) {
    match fs::read(path) {
        Ok(bytes) => panic!("{what}: read returned {} bytes instead of failing with EIO", bytes.len()),
        Err(error) => assert_eq!(errno(&error), libc::EIO, "{what}: read failed with {error}, expected EIO"),
    }
}

/// Reads `path` in 4 KiB preads: each one must fail with EIO or return exactly the
/// expected bytes. Returns how many failed.
fn count_failed_preads(path: &Path, expected: &[u8]) -> usize {
    let file = File::open(path).unwrap();
    let mut failed = 0;
    for offset in (0..expected.len()).step_by(4096) {
        let mut buffer = vec![0u8; 4096];
        match file.read_at(&mut buffer, offset as u64) {
            Ok(read) => {
                let end = (offset + 4096).min(expected.len());
                assert_same_bytes(&buffer[..read], &expected[offset..end], &format!("pread at {offset} of {}", path.display()));
            }
            Err(error) => {
                assert_eq!(errno(&error), libc::EIO, "pread at {offset} of {}: {error}", path.display());
                failed += 1;
            }
        }
    }
    failed
}

/// A store whose first chunk frame has one flipped ciphertext byte, and the files
/// written to it.
struct FlippedStore {
    store: TestStore,
    pack: PathBuf,
    frame: Frame,
    damaged: Vec<u8>,
    others: Vec<(&'static str, Vec<u8>)>,
}

/// Writes a.bin, b.bin and c.bin, unmounts, and flips one byte in the middle of the
/// ciphertext of the first chunk frame, which belongs to a.bin.
fn flip_first_chunk() -> FlippedStore {
    let store = TestStore::init("30d");
    let damaged = random_bytes(300 * 1024, 1);
    let others = vec![("b.bin", random_bytes(500 * 1024, 2)), ("c.bin", random_bytes(70 * 1024, 3))];
    let mount = store.mount();
    // a.bin is written and closed first, so its chunks are the first chunk frames.
    write_file(&mount.join("a.bin"), &damaged);
    for (name, bytes) in &others {
        write_file(&mount.join(name), bytes);
    }
    mount.unmount();

    let pack = packs(&store.root).into_iter().next().expect("the store has a pack");
    let frame = frames(&pack).into_iter().find(|frame| frame.kind == KIND_CHUNK).expect("the first pack has a chunk frame");
    let ciphertext_len = frame.sealed_len - NONCE_LEN - TAG_LEN;
    let flip_at = frame.sealed_offset() + NONCE_LEN + ciphertext_len / 2;
    clear_immutable(&pack);
    let file = OpenOptions::new().read(true).write(true).open(&pack).unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, flip_at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x01], flip_at).unwrap();
    FlippedStore { store, pack, frame, damaged, others }
}

/// Selects the error lines of `log` that name the flipped chunk and its pack.
fn error_lines<'a>(log: &'a str, flipped: &FlippedStore) -> Vec<&'a str> {
    let chunk = flipped.frame.short_id();
    let pack_no = pack_number(&flipped.pack);
    log.lines().filter(|line| line.contains("ERROR") && line.contains(&chunk) && line.contains(&pack_no)).collect()
}

#[test]
fn flipped_byte_fails_read_with_eio() {
    let flipped = flip_first_chunk();
    let mount = flipped.store.mount();
    assert_read_fails_with_eio(&mount.join("a.bin"), "a.bin with a flipped byte");
    let failed = count_failed_preads(&mount.join("a.bin"), &flipped.damaged);
    assert!(failed > 0, "every 4 KiB pread of a.bin succeeded despite the flipped byte");
    for (name, bytes) in &flipped.others {
        let read = fs::read(mount.join(name)).unwrap_or_else(|error| panic!("read {name}: {error}"));
        assert_same_bytes(&read, bytes, name);
    }
    let log = mount.unmount();

    let lines = error_lines(&log, &flipped);
    assert!(
        !lines.is_empty(),
        "no error line names chunk {} and pack {}; log:\n{log}",
        flipped.frame.short_id(),
        pack_number(&flipped.pack)
    );
    let offset = format!("offset={}", flipped.frame.offset);
    assert!(
        lines.iter().all(|line| line.contains(&offset)),
        "error lines do not name the frame offset {offset}:\n{}",
        lines.join("\n")
    );
}

#[test]
fn damaged_chunk_logged_once() {
    let flipped = flip_first_chunk();
    let mount = flipped.store.mount();
    assert_read_fails_with_eio(&mount.join("a.bin"), "a.bin with a flipped byte");
    let log = mount.unmount();
    let lines = error_lines(&log, &flipped);
    assert_eq!(
        lines.len(),
        1,
        "error lines for chunk {} after one read of a.bin:\n{}",
        flipped.frame.short_id(),
        lines.join("\n")
    );
}

#[test]
fn swapped_chunks_fail_read_with_eio() {
    let store = TestStore::init("30d");
    // Each file is shorter than the 4 KiB minimum chunk, so it is one chunk, and both
    // chunks have the same sealed length.
    let first = random_bytes(3000, 11);
    let second = random_bytes(3000, 12);
    let intact = random_bytes(400 * 1024, 13);
    let mount = store.mount();
    write_file(&mount.join("x.bin"), &first);
    write_file(&mount.join("y.bin"), &second);
    write_file(&mount.join("z.bin"), &intact);
    mount.unmount();

    let pack = packs(&store.root).into_iter().next().expect("the store has a pack");
    let chunks: Vec<Frame> = frames(&pack).into_iter().filter(|frame| frame.kind == KIND_CHUNK).collect();
    assert!(chunks.len() >= 3, "expected at least 3 chunk frames, found {}", chunks.len());
    let (x, y) = (&chunks[0], &chunks[1]);
    assert_eq!(x.sealed_len, y.sealed_len, "sealed lengths of the chunks of x.bin and y.bin");
    clear_immutable(&pack);
    let file = OpenOptions::new().read(true).write(true).open(&pack).unwrap();
    let mut x_sealed = vec![0u8; x.sealed_len as usize];
    let mut y_sealed = vec![0u8; y.sealed_len as usize];
    file.read_exact_at(&mut x_sealed, x.sealed_offset()).unwrap();
    file.read_exact_at(&mut y_sealed, y.sealed_offset()).unwrap();
    file.write_all_at(&y_sealed, x.sealed_offset()).unwrap();
    file.write_all_at(&x_sealed, y.sealed_offset()).unwrap();
    drop(file);

    let mount = store.mount();
    assert_read_fails_with_eio(&mount.join("x.bin"), "x.bin holding the sealed bytes of y.bin");
    assert_read_fails_with_eio(&mount.join("y.bin"), "y.bin holding the sealed bytes of x.bin");
    let read = fs::read(mount.join("z.bin")).expect("read z.bin");
    assert_same_bytes(&read, &intact, "z.bin");
    mount.unmount();
}
