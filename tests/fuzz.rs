//! Mutation fuzzing of every parser of bytes read from the backing disk: pack and
//! frame headers, the config, key slots, chunk payloads, commit records, index values,
//! whole packs and the host state file. None may panic, whatever the input.
//!
//! Seeds are valid encodings made here plus the files under tests/fuzz-corpus/, which
//! `WORMVAULT_FUZZ_WRITE_CORPUS=1` refreshes from the current encodings. Each
//! target runs `WORMVAULT_FUZZ_ITERATIONS` mutations (default 3000); `scripts/fuzz`
//! runs many more. A panicking input is written to target/fuzz-crashes/ and reported.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use wormvault::chunking::ChunkerParams;
use wormvault::chunkstore::parse_chunk_payload;
use wormvault::codec;
use wormvault::crypto::{ChunkId, KdfParams, Keys, MasterKey};
use wormvault::index::{Dirent, IndexMarker};
use wormvault::store::config::{decode_settings, encode_config, ConfigHeader, StoreSettings};
use wormvault::store::format::{FrameHeader, PackHeader, FRAME_HEADER_LEN, PACK_HEADER_LEN};
use wormvault::store::hoststate::HostState;
use wormvault::store::keyslot::KeySlot;
use wormvault::store::pack::{scan_pack, Location, PackWriter};
use wormvault::tree::{CommitRecord, Extent, FileState, Inode, NodeKind, Op};

/// A small xorshift generator: fuzzing needs speed and repeatability, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// Applies one to four random mutations: bit flips, interesting bytes, truncation,
/// extension, and copies of a slice to another place.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe][rng.below(6)];
            }
            2 => bytes.truncate(rng.below(bytes.len() + 1)),
            3 => {
                for _ in 0..rng.below(64) {
                    bytes.push(rng.next() as u8);
                }
            }
            4 if bytes.len() >= 8 => {
                let at = rng.below(bytes.len() - 7);
                bytes[at..at + 8].copy_from_slice(&[0xff; 8]);
            }
            _ if bytes.len() > 2 => {
                let from = rng.below(bytes.len());
                let to = rng.below(bytes.len());
                let len = rng.below(bytes.len() - from.max(to)).min(16);
                let piece = bytes[from..from + len].to_vec();
                bytes[to..to + len].copy_from_slice(&piece);
            }
            _ => {}
        }
    }
    bytes
}

fn iterations() -> usize {
    std::env::var("WORMVAULT_FUZZ_ITERATIONS").ok().and_then(|value| value.parse().ok()).unwrap_or(3000)
}

/// Loads the committed corpus files of `target`.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus").join(target);
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.filter_map(|entry| std::fs::read(entry.ok()?.path()).ok()).collect()
}

/// Runs `parse` on mutations of `seeds`; fails the test on the first panic and saves
/// the input that caused it.
fn fuzz(target: &str, mut seeds: Vec<Vec<u8>>, parse: impl Fn(&[u8])) {
    if std::env::var_os("WORMVAULT_FUZZ_WRITE_CORPUS").is_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (number, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{number}")), seed).unwrap();
        }
    }
    seeds.extend(corpus(target));
    assert!(!seeds.is_empty(), "no seeds for {target}");
    let mut rng = Rng(0x5eed_0000 + target.len() as u64 * 7919);
    for iteration in 0..iterations() {
        let seed = &seeds[iteration % seeds.len()];
        let input = if iteration < seeds.len() { seed.clone() } else { mutate(seed, &mut rng) };
        if catch_unwind(AssertUnwindSafe(|| parse(&input))).is_err() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{target}-{iteration}"));
            std::fs::write(&path, &input).unwrap();
            panic!("{target} panicked on input {} ({} bytes)", path.display(), input.len());
        }
    }
}

fn keys() -> std::sync::Arc<Keys> {
    Keys::derive(&MasterKey::from_bytes([42; 32]))
}

fn sample_inode() -> Inode {
    Inode {
        ino: 7,
        kind: NodeKind::File,
        perm: 0o644,
        uid: 1000,
        gid: 1000,
        size: 12345,
        atime_ns: 1,
        mtime_ns: 2,
        ctime_ns: 3,
        crtime_ns: 4,
        parent: 1,
        state: FileState::Sealed { sealed_at: 1_800_000_000, incomplete: false },
        retain_until: 1_802_592_000,
        hold: false,
        symlink_target: Vec::new(),
    }
}

fn sample_record() -> CommitRecord {
    CommitRecord {
        seq: 9,
        clock: 1_800_000_000,
        next_ino: 8,
        snapshot: false,
        ops: vec![
            Op::PutInode(sample_inode()),
            Op::PutDirent { parent: 1, name: b"orders.bson".to_vec(), ino: 7, kind: NodeKind::File },
            Op::PutManifest { ino: 7, extents: vec![Extent { len: 12345, chunk: Some(ChunkId([3; 32])) }, Extent { len: 10, chunk: None }] },
            Op::DelDirent { parent: 1, name: b"old".to_vec() },
            Op::DelInode(5),
            Op::DelManifest(5),
        ],
    }
}

#[test]
fn frame_and_pack_headers_never_panic() {
    let frame = FrameHeader { sealed_len: 4096, kind: 1, id: [9; 32] }.encode().to_vec();
    fuzz("frame-header", vec![frame], |bytes| {
        if let Ok(header) = <[u8; FRAME_HEADER_LEN]>::try_from(bytes) {
            let _ = FrameHeader::decode(&header);
        }
    });
    let pack = PackHeader { store_id: [1; 16], pack_no: 3 }.encode().to_vec();
    fuzz("pack-header", vec![pack], |bytes| {
        if let Ok(header) = <[u8; PACK_HEADER_LEN]>::try_from(bytes) {
            let _ = PackHeader::decode(&header);
        }
    });
}

#[test]
fn config_and_key_slots_never_panic() {
    let keys = keys();
    let settings = StoreSettings {
        retention_seconds: 86_400,
        chunker: ChunkerParams { min_bytes: 4096, avg_bytes: 16384, max_bytes: 131072 },
        created_unix: 1_800_000_000,
    };
    let header = ConfigHeader { version: 1, store_id: [5; 16] };
    let config = encode_config(&header, &settings, &keys);
    fuzz("config", vec![config], |bytes| {
        if ConfigHeader::decode(Path::new("config"), bytes).is_ok() && bytes.len() >= 32 {
            let _ = decode_settings(Path::new("config"), bytes, &keys);
        }
    });
    fuzz("settings", vec![codec::encode(&settings)], |bytes| {
        let _ = codec::decode::<StoreSettings>(bytes);
    });
    let fast = KdfParams { memory_kib: 64, passes: 1, lanes: 1 };
    let slot = KeySlot::create([5; 16], &MasterKey::from_bytes([1; 32]), b"pass", fast).unwrap().encode();
    fuzz("key-slot", vec![slot], |bytes| {
        // Unlocking runs Argon2 with the parsed parameters; only cheap ones are tried,
        // since the caps (4 GiB, 64 passes) are checked by decode itself.
        if let Ok(parsed) = KeySlot::decode(Path::new("x.key"), bytes) {
            if parsed.params.memory_kib <= 1024 && parsed.params.passes <= 2 {
                let _ = parsed.unlock(b"pass");
            }
        }
    });
}

#[test]
fn chunk_payloads_never_panic() {
    let text = b"{\"_id\": 1, \"name\": \"order\"}".repeat(200);
    let mut zstd_payload = vec![1, 0, 0, 0];
    let body = zstd::bulk::compress(&text, 1).unwrap();
    zstd_payload.extend_from_slice(&(text.len() as u32).to_le_bytes());
    zstd_payload.extend_from_slice(&(body.len() as u32).to_le_bytes());
    zstd_payload.extend_from_slice(&body);
    let mut raw_payload = vec![0, 0, 0, 0, 5, 0, 0, 0, 5, 0, 0, 0];
    raw_payload.extend_from_slice(b"hello");
    fuzz("chunk-payload", vec![zstd_payload, raw_payload], |bytes| {
        let _ = parse_chunk_payload(bytes);
    });
}

#[test]
fn records_and_index_values_never_panic() {
    fuzz("commit-record", vec![codec::encode(&sample_record())], |bytes| {
        let _ = codec::decode::<CommitRecord>(bytes);
    });
    let marker = IndexMarker { pack_no: 3, offset: 4096, seq: 9, clock: 1_800_000_000, next_ino: 8 };
    let dirent = Dirent { name: b"orders.bson".to_vec(), ino: 7, kind: NodeKind::File };
    let location = Location { pack_no: 2, offset: 40, sealed_len: 336 };
    let seeds = vec![
        codec::encode(&sample_inode()),
        codec::encode(&marker),
        codec::encode(&dirent),
        codec::encode(&location),
        codec::encode(&vec![Extent { len: 1, chunk: None }]),
    ];
    fuzz("index-value", seeds, |bytes| {
        let _ = codec::decode::<Inode>(bytes);
        let _ = codec::decode::<IndexMarker>(bytes);
        let _ = codec::decode::<Dirent>(bytes);
        let _ = codec::decode::<Location>(bytes);
        let _ = codec::decode::<Vec<Extent>>(bytes);
    });
}

#[test]
fn pack_scans_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = PackWriter::new(dir.path(), [1; 16], 0);
    writer.append(1, &[2; 32], &[0xaa; 300]).unwrap();
    writer.append(2, &[0; 32], &[0xbb; 100]).unwrap();
    writer.sync().unwrap();
    let pack_path: PathBuf = dir.path().join("0000000000000000.pack");
    let seed = std::fs::read(&pack_path).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    fuzz("pack", vec![seed], |bytes| {
        std::fs::write(scratch.path().join("0000000000000000.pack"), bytes).unwrap();
        let _ = scan_pack(scratch.path(), [1; 16], 0, 0, |_| Ok(()));
    });
}

#[test]
fn host_state_never_panics() {
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let state = HostState::new(Some(dir.path()), &[1; 16]);
    state.write(&keys, 42).unwrap();
    let seed = std::fs::read(state.path()).unwrap();
    fuzz("host-state", vec![seed], |bytes| {
        std::fs::write(state.path(), bytes).unwrap();
        let _ = state.read(&keys);
    });
}
