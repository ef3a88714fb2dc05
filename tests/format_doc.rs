//! Checks that man/wormvault-format.5 agrees with the code. Every worked size example
//! and byte table is recomputed from the format constants and the real encoders.
//! Every magic, BLAKE3 context string and fixed prefix of the format must appear in
//! the page. So a changed constant without a changed page fails here.

use wormvault::chunking::ChunkerParams;
use wormvault::codec;
use wormvault::crypto::{
    ChunkId, KdfParams, Keys, MasterKey, KDF_MAX_MEMORY_KIB, KDF_MAX_PASSES, KEY_LEN, NONCE_LEN,
    TAG_LEN,
};
use wormvault::index::chunktable::{
    HEADER_LEN, INITIAL_SLOTS, MAC_CONTEXT, MAGIC, MAX_LOAD, SLOT_LEN,
};
use wormvault::index::pagefile::SLOT_BYTES;
use wormvault::index::{DirentKey, IndexMarker, MANIFEST_PAGE_EXTENTS};
use wormvault::store::config::{encode_config, ConfigHeader, StoreSettings};
use wormvault::store::format::{
    frame_aad, CHUNK_HEADER_LEN, CHUNK_PAD_BYTES, CONFIG_HEADER_LEN, CONFIG_MAGIC_V1,
    FORMAT_VERSION, FRAME_HEADER_LEN, KEYSLOT_FILE_LEN, KEYSLOT_HEADER_LEN, KEYSLOT_MAGIC_V1,
    KEYSLOT_SEALED_LEN, KIND_CHUNK, KIND_COMMIT, MAX_SEALED_LEN, PACK_HEADER_LEN, PACK_MAGIC_V1,
    PACK_TARGET_BYTES,
};
use wormvault::store::pack::{Location, METADATA_RESERVE_BYTES};
use wormvault::tree::{CommitRecord, Extent, FileState, Inode, NodeKind};
use wormvault::unlock::DEFAULT_CHUNKER;

const PAGE_SOURCE: &str = include_str!("../man/wormvault-format.5");
const KEYS_SOURCE: &str = include_str!("../src/crypto/keys.rs");
const INDEX_SOURCE: &str = include_str!("../src/index/mod.rs");
const HOST_STATE_SOURCE: &str = include_str!("../src/store/hoststate.rs");

/// Prefix shared by every BLAKE3 key-derivation context of format version 1.
const CONTEXT_PREFIX: &str = "wormvault 2026-12 v1";

/// Replaces the roff escapes the page uses by the characters they print.
fn unescape(line: &str) -> String {
    line.replace("\\-", "-")
        .replace("\\fI", "")
        .replace("\\fB", "")
        .replace("\\fP", "")
        .replace("\\fR", "")
        .replace("\\(<=", "<=")
        .replace("\\&", "")
        .replace("\\e", "\\")
}

/// Returns the page's text lines (not requests), unescaped and joined with spaces, so
/// a sentence can be searched for across the source's line breaks.
fn prose() -> String {
    PAGE_SOURCE
        .lines()
        .filter(|line| !line.starts_with('.') && !line.starts_with('\''))
        .map(unescape)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Returns the whole page, unescaped, requests included.
fn page_text() -> String {
    PAGE_SOURCE
        .lines()
        .map(unescape)
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_prose_contains(sentence: &str) {
    assert!(
        prose().contains(sentence),
        "man/wormvault-format.5 lacks the sentence {sentence:?}"
    );
}

/// Rows of the first table after the line `anchor`, as cells split at the `@` tab
/// character, without the format line, the header row and rules.
fn table_after(anchor: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = PAGE_SOURCE.lines().collect();
    let start = lines
        .iter()
        .position(|line| *line == anchor)
        .unwrap_or_else(|| panic!("man/wormvault-format.5 has no line {anchor:?}"));
    let open = start
        + lines[start..]
            .iter()
            .position(|line| *line == ".TS")
            .unwrap_or_else(|| panic!("no table after {anchor:?}"));
    let format_end = open
        + lines[open..]
            .iter()
            .position(|line| line.ends_with('.'))
            .expect("table format line");
    let mut rows = Vec::new();
    for line in &lines[format_end + 1..] {
        if *line == ".TE" {
            break;
        }
        if *line == "_" || line.starts_with("T}") || !line.contains('@') {
            continue;
        }
        rows.push(line.split('@').map(unescape).collect());
    }
    rows.remove(0);
    rows
}

/// Checks that the (offset, size) rows of the byte table after `anchor` follow each
/// other from offset 0, and returns the end of the last row with a numeric size.
fn contiguous_end(anchor: &str) -> usize {
    let mut expected = 0;
    for row in table_after(anchor) {
        let (Ok(offset), Ok(size)) = (row[0].parse::<usize>(), row[1].parse::<usize>()) else {
            break;
        };
        assert_eq!(
            offset, expected,
            "table after {anchor:?}: row {row:?} starts at {offset}, expected {expected}"
        );
        expected = offset + size;
    }
    expected
}

/// Returns the string literals in `source` that start with `prefix`.
fn string_literals(source: &str, prefix: &str) -> Vec<String> {
    // NOTE: a literal that contains an escaped quote would be cut at it, but the
    // literals searched here contain none.
    let quoted = format!("\"{prefix}");
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find(&quoted) {
        let literal = &rest[start + 1..];
        let end = literal.find('"').expect("string literal is closed");
        found.push(literal[..end].to_string());
        rest = &literal[end..];
    }
    found
}

/// Padded plaintext, sealed length and frame length of a raw chunk of `n` bytes.
fn raw_chunk_sizes(n: usize) -> (usize, usize, usize) {
    let padded = (CHUNK_HEADER_LEN + n).div_ceil(CHUNK_PAD_BYTES) * CHUNK_PAD_BYTES;
    let sealed = NONCE_LEN + padded + TAG_LEN;
    (padded, sealed, FRAME_HEADER_LEN + sealed)
}

fn test_keys() -> std::sync::Arc<Keys> {
    Keys::derive(&MasterKey::from_bytes([7; KEY_LEN]))
}

fn sample_inode(state: FileState) -> Inode {
    Inode {
        ino: 2,
        kind: NodeKind::File,
        perm: 0o644,
        uid: 1000,
        gid: 1000,
        size: 0,
        atime_ns: 0,
        mtime_ns: 0,
        ctime_ns: 0,
        crtime_ns: 0,
        parent: 1,
        state,
        retain_until: 0,
        hold: false,
        symlink_target: Vec::new(),
    }
}

#[test]
fn chunk_frame_table_rows() {
    let rows = table_after(".SH WORKED SIZE EXAMPLES");
    for n in [
        100,
        DEFAULT_CHUNKER.avg_bytes as usize,
        DEFAULT_CHUNKER.max_bytes as usize,
    ] {
        let (padded, sealed, frame) = raw_chunk_sizes(n);
        let expected = [n, padded, sealed, frame, frame - n].map(|value| value.to_string());
        let row = rows
            .iter()
            .find(|row| row[0] == n.to_string())
            .unwrap_or_else(|| panic!("the worked size table has no row for a {n}-byte chunk"));
        assert_eq!(
            row.as_slice(),
            expected.as_slice(),
            "worked size table row for a {n}-byte chunk"
        );
    }
}

#[test]
fn chunk_frame_100_bytes_sentence() {
    let n = 100;
    let (padded, sealed, frame) = raw_chunk_sizes(n);
    let unpadded = CHUNK_HEADER_LEN + n;
    assert_prose_contains(&format!(
        "a {n}-byte chunk: {CHUNK_HEADER_LEN} + {n} = {unpadded} bytes, padded to {padded}, sealed to \
         {NONCE_LEN} + {padded} + {TAG_LEN} = {sealed} bytes, and {FRAME_HEADER_LEN} + {sealed} = {frame} bytes on disk."
    ));
}

#[test]
fn chunk_frame_average_sentence() {
    let n = DEFAULT_CHUNKER.avg_bytes as usize;
    let (padded, sealed, frame) = raw_chunk_sizes(n);
    let unpadded = CHUNK_HEADER_LEN + n;
    let percent = (frame - n) as f64 * 100.0 / n as f64;
    assert_prose_contains(&format!(
        "A {n}-byte chunk, the default average: {CHUNK_HEADER_LEN} + {n} = {unpadded} bytes, padded to {padded}, \
         sealed to {sealed}, and {frame} bytes on disk, {percent:.2}% more than the chunk."
    ));
}

#[test]
fn fixed_sizes_sentences() {
    assert_eq!(
        KEYSLOT_SEALED_LEN,
        NONCE_LEN + KEY_LEN + TAG_LEN,
        "sealed master key layout"
    );
    assert_eq!(
        KEYSLOT_FILE_LEN,
        KEYSLOT_HEADER_LEN + KEYSLOT_SEALED_LEN,
        "key slot file layout"
    );
    assert_prose_contains(&format!(
        "A key slot file is {KEYSLOT_FILE_LEN} bytes: {KEYSLOT_HEADER_LEN} bytes of header, {NONCE_LEN} of nonce, \
         {KEY_LEN} of wrapped key and {TAG_LEN} of tag."
    ));
    assert_prose_contains(&format!(
        "A key slot file is {KEYSLOT_FILE_LEN} bytes: an {KEYSLOT_HEADER_LEN}-byte plain header and the \
         {KEYSLOT_SEALED_LEN}-byte sealed master key."
    ));
    assert_prose_contains(&format!(
        "A pack header is {PACK_HEADER_LEN} bytes, so the first frame of a pack starts at offset {PACK_HEADER_LEN}."
    ));
}

#[test]
fn config_file_sizes() {
    let settings = StoreSettings {
        retention_seconds: 86_400,
        chunker: DEFAULT_CHUNKER,
        created_unix: 1_800_000_000,
    };
    let settings_len = codec::encode(&settings).len();
    let header = ConfigHeader {
        version: FORMAT_VERSION,
        store_id: [1; 16],
    };
    let file_len = encode_config(&header, &settings, &test_keys()).len();
    assert_eq!(
        file_len,
        CONFIG_HEADER_LEN + NONCE_LEN + settings_len + TAG_LEN,
        "config file layout"
    );
    assert_prose_contains(&format!(
        "A config file is {file_len} bytes: {CONFIG_HEADER_LEN} bytes of header, {NONCE_LEN} of nonce, \
         {settings_len} of settings and {TAG_LEN} of tag."
    ));
    assert_prose_contains(&format!(
        "A version {FORMAT_VERSION} config file is {file_len} bytes."
    ));
    assert_prose_contains(&format!("The settings plaintext is {settings_len} bytes:"));
    assert_eq!(
        contiguous_end(".SH CONFIG FILE"),
        file_len,
        "config file byte table"
    );
    let settings_anchor = format!("The settings plaintext is {settings_len} bytes:");
    assert_eq!(
        contiguous_end(&settings_anchor),
        settings_len,
        "settings byte table"
    );
}

#[test]
fn commit_and_index_sizes() {
    let empty = CommitRecord {
        seq: 1,
        clock: 0,
        next_ino: 2,
        snapshot: false,
        ops: Vec::new(),
    };
    let plain = codec::encode(&empty).len();
    let frame = FRAME_HEADER_LEN + NONCE_LEN + plain + TAG_LEN;
    assert_prose_contains(&format!(
        "A record with no ops is {plain} bytes of plaintext."
    ));
    assert_prose_contains(&format!(
        "A commit record with no ops takes a {frame}-byte frame: {FRAME_HEADER_LEN} bytes of header, \
         {NONCE_LEN} of nonce, {plain} of plaintext and {TAG_LEN} of tag."
    ));

    assert_prose_contains(&format!(
        "A chunk location takes one {SLOT_LEN}-byte slot of the chunk table. The table grows before it is \
         {}% full and is at least 25% full after it grows, so a grown table takes from {} to {} bytes per chunk.",
        (MAX_LOAD * 100.0).round(),
        (SLOT_LEN as f64 / MAX_LOAD).floor(),
        SLOT_LEN * 4
    ));
    assert_prose_contains(&format!(
        "The file is a {HEADER_LEN}-byte header, then slots slots of {SLOT_LEN} bytes each."
    ));
    assert_prose_contains(&format!("A new table has {INITIAL_SLOTS} slots."));
    assert_prose_contains(&format!(
        "Before live plus deleted slots would exceed {}% of slots,",
        (MAX_LOAD * 100.0).round()
    ));
    let slot_rows = table_after("A slot is:");
    let slot_end: usize = slot_rows
        .iter()
        .map(|row| row[0].parse::<usize>().unwrap() + row[1].parse::<usize>().unwrap())
        .max()
        .unwrap();
    assert_eq!(slot_end, SLOT_LEN, "the slot table covers {SLOT_LEN} bytes");
    let location = codec::encode(&Location {
        pack_no: 3,
        offset: 40,
        sealed_len: 296,
    })
    .len();
    assert_eq!(location, 20, "a Location encodes to 20 bytes, stored in 12 in a slot");

    let no_extents = codec::encode(&Vec::<Extent>::new()).len();
    let chunk_extent = codec::encode(&Extent {
        len: 1,
        chunk: Some(ChunkId([0; 32])),
    })
    .len();
    let zero_extent = codec::encode(&Extent {
        len: 1,
        chunk: None,
    })
    .len();
    let sealed_empty_manifest = NONCE_LEN + no_extents + TAG_LEN;
    assert_prose_contains(&format!(
        "A sealed manifest page is {sealed_empty_manifest} bytes plus {chunk_extent} bytes per chunk extent \
         and {zero_extent} bytes per zero extent."
    ));
    assert_prose_contains(&format!(
        "An extent is {chunk_extent} bytes with a chunk and {zero_extent} bytes without."
    ));
    let full_page = sealed_empty_manifest + MANIFEST_PAGE_EXTENTS * chunk_extent;
    assert!(full_page as u64 + 4 <= SLOT_BYTES, "a full page and its length fit a slot");
    assert_prose_contains(&format!(
        "A full page with only chunk extents seals to {full_page} bytes and fits its {SLOT_BYTES}-byte slot."
    ));
    assert_prose_contains(&format!("Slot s is at offset s times {SLOT_BYTES}."));

    let marker = codec::encode(&IndexMarker::default()).len();
    assert_eq!(marker, 5 * 8, "the page lists five 8-byte marker fields");
}

#[test]
fn inode_sizes() {
    let writing = codec::encode(&sample_inode(FileState::Writing)).len();
    let sealed = codec::encode(&sample_inode(FileState::Sealed {
        sealed_at: 5,
        incomplete: false,
    }))
    .len();
    assert_prose_contains(&format!(
        "An inode is therefore {writing} bytes while its file is being written and {sealed} bytes once sealed"
    ));
    // Retention, hold and the symlink target length follow the state: 8 + 1 + 8 bytes.
    let tail = 8 + 1 + 8;
    assert_prose_contains(&format!(
        "is {} in the Writing state and {} in the Sealed state.",
        writing - tail,
        sealed - tail
    ));
    assert_eq!(
        contiguous_end(".SS Inode"),
        writing - tail,
        "inode byte table up to the state"
    );
}

#[test]
fn byte_tables_match_constants() {
    let aad_len = frame_aad(KIND_CHUNK, &[0; 32], &[0; 16]).len();
    let key_len = std::mem::size_of::<DirentKey>();
    let key_anchor = format!("The index key of a directory entry is {key_len} bytes:");
    let empty_record = CommitRecord {
        seq: 1,
        clock: 0,
        next_ino: 2,
        snapshot: true,
        ops: Vec::new(),
    };
    let record_header_len = codec::encode(&empty_record).len();

    // (line before the table, bytes the table must cover, table name)
    let cases = [
        (".SH KEY SLOT FILE", KEYSLOT_FILE_LEN, "key slot"),
        (".SS Pack header", PACK_HEADER_LEN, "pack header"),
        (".SS Frame header", FRAME_HEADER_LEN, "frame header"),
        (
            ".SS Frame associated data",
            aad_len,
            "frame associated data",
        ),
        (
            ".SH CHUNK PAYLOAD",
            CHUNK_HEADER_LEN,
            "chunk payload header",
        ),
        (key_anchor.as_str(), key_len, "directory entry key"),
        (".SH COMMIT RECORD", record_header_len, "commit record"),
    ];
    for (anchor, expected, table) in cases {
        assert_eq!(contiguous_end(anchor), expected, "{table} byte table");
    }

    assert_prose_contains(&format!("with these {aad_len} bytes of associated data:"));
}

#[test]
fn frame_kinds_and_limits() {
    assert_prose_contains(&format!(
        "Kind: {KIND_CHUNK} for a chunk, {KIND_COMMIT} for a commit record."
    ));
    assert_prose_contains(&format!(
        "a sealed length below {} or above {MAX_SEALED_LEN} (64 MiB)",
        NONCE_LEN + TAG_LEN
    ));
    assert_prose_contains(&format!(
        "A frame's sealed object is at most {MAX_SEALED_LEN} bytes (64 MiB)."
    ));
    assert_prose_contains(&format!(
        "A pack is closed once it has reached {PACK_TARGET_BYTES} bytes (64 MiB)"
    ));
    assert_prose_contains(&format!(
        "less than {} MiB available",
        METADATA_RESERVE_BYTES >> 20
    ));
    assert_prose_contains(&format!(
        "A sealed object is therefore {} bytes longer",
        NONCE_LEN + TAG_LEN
    ));
}

#[test]
fn chunker_and_kdf_defaults() {
    let ChunkerParams {
        min_bytes,
        avg_bytes,
        max_bytes,
    } = DEFAULT_CHUNKER;
    let bits = 63 - u64::from(avg_bytes).leading_zeros();
    assert_prose_contains(&format!(
        "{min_bytes}, {avg_bytes} and {max_bytes} bytes by default, which gives {}-bit and {}-bit masks.",
        bits + 2,
        bits - 2
    ));
    let kdf = KdfParams::default();
    assert_prose_contains(&format!(
        "use {} KiB ({} MiB), {} passes and {} lane",
        kdf.memory_kib,
        kdf.memory_kib / 1024,
        kdf.passes,
        kdf.lanes
    ));
    assert_prose_contains(&format!(
        "more than {KDF_MAX_MEMORY_KIB} KiB (4 GiB), for passes outside 1 to {KDF_MAX_PASSES}"
    ));
}

#[test]
fn magics_and_version_named() {
    let text = page_text();
    for magic in [CONFIG_MAGIC_V1, KEYSLOT_MAGIC_V1, PACK_MAGIC_V1] {
        let magic = std::str::from_utf8(&magic).expect("magics are ASCII");
        assert!(
            text.contains(&format!("\"{magic}\"")),
            "man/wormvault-format.5 does not quote the magic {magic}"
        );
    }
    assert!(
        text.contains(&format!("format version {FORMAT_VERSION}")),
        "man/wormvault-format.5 does not name format version {FORMAT_VERSION}"
    );
}

#[test]
fn chunk_table_named() {
    let text = page_text();
    let magic = std::str::from_utf8(&MAGIC[..15]).expect("the magic is ASCII");
    assert_eq!(MAGIC[15], 0, "the chunk table magic ends in a zero byte");
    assert!(
        text.contains(&format!("the ASCII bytes \"{magic}\" and a zero byte")),
        "man/wormvault-format.5 does not quote the chunk table magic {magic}"
    );
    assert!(
        text.contains(MAC_CONTEXT),
        "man/wormvault-format.5 does not name the context {MAC_CONTEXT:?}"
    );
    assert_prose_contains(&format!(
        "A manifest is split into pages of {MANIFEST_PAGE_EXTENTS} extents,"
    ));
}

#[test]
fn context_strings_named() {
    let contexts = string_literals(KEYS_SOURCE, CONTEXT_PREFIX);
    assert_eq!(
        contexts.len(),
        6,
        "src/crypto/keys.rs should define six subkey contexts, found {contexts:?}"
    );
    let text = page_text();
    for context in &contexts {
        assert!(
            text.contains(context.as_str()),
            "man/wormvault-format.5 does not name the context {context:?}"
        );
    }
}

#[test]
fn fixed_prefixes_named() {
    let index_prefixes = string_literals(INDEX_SOURCE, "wormvault index v");
    assert_eq!(
        index_prefixes.len(),
        1,
        "src/index/mod.rs should hold one index value prefix"
    );
    let prefix = &index_prefixes[0];
    assert_prose_contains(&format!("the {} ASCII bytes \"{prefix}\"", prefix.len()));

    let state_literals = string_literals(HOST_STATE_SOURCE, "wormvault-state-v");
    assert!(
        !state_literals.is_empty(),
        "src/store/hoststate.rs should hold the host state line prefix"
    );
    let text = page_text();
    for literal in &state_literals {
        let first_field = literal
            .split_whitespace()
            .next()
            .expect("literal starts with the prefix");
        assert!(
            text.contains(first_field),
            "man/wormvault-format.5 does not show the host state field {first_field:?}"
        );
    }
}
