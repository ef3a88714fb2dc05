//! Every on-disk constant and fixed-size header of the store, in one place.
//!
//! Changing any value here changes the format: bump [`FORMAT_VERSION`] and keep a
//! reader for the old one.

/// Version of the on-disk format written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// `config` file magic: "WVSTORE" plus the major format digit.
pub const CONFIG_MAGIC_V1: [u8; 8] = *b"WVSTORE1";
/// Key slot file magic.
pub const KEYSLOT_MAGIC_V1: [u8; 8] = *b"WVKEYSL1";
/// Pack file magic.
pub const PACK_MAGIC_V1: [u8; 8] = *b"WVPACK01";

/// Plain header of the config file: magic (8), version (4), reserved (4), store id (16).
pub const CONFIG_HEADER_LEN: usize = 32;
/// Plain part of a key slot: magic, version, reserved, store id, slot id, Argon2
/// memory KiB, passes, lanes, reserved, salt.
pub const KEYSLOT_HEADER_LEN: usize = 80;
/// Sealed master key inside a key slot: nonce, 32 key bytes, tag.
pub const KEYSLOT_SEALED_LEN: usize = 24 + 32 + 16;
pub const KEYSLOT_FILE_LEN: usize = KEYSLOT_HEADER_LEN + KEYSLOT_SEALED_LEN;

/// Pack header: magic (8), version (4), reserved (4), store id (16), pack number (8).
pub const PACK_HEADER_LEN: usize = 40;
/// Frame header: sealed length (4, LE), kind (1), reserved (3), object id (32).
pub const FRAME_HEADER_LEN: usize = 40;
/// Upper bound on a frame's sealed length, checked before any allocation.
pub const MAX_SEALED_LEN: u32 = 64 * 1024 * 1024;

/// Frame kinds. The kind is in clear so a scan can skip frames, and bound by the
/// associated data so it cannot be changed.
pub const KIND_CHUNK: u8 = 1;
pub const KIND_COMMIT: u8 = 2;

/// Chunk payload codecs, the first plaintext byte of a chunk frame.
pub const CODEC_RAW: u8 = 0;
pub const CODEC_ZSTD: u8 = 1;
/// Chunk plaintext header: codec (1), reserved (3), plain length (4), body length (4).
pub const CHUNK_HEADER_LEN: usize = 12;
/// Sealed chunk plaintexts are zero-padded to a multiple of this, so stored sizes
/// reveal compressed lengths only to this granularity.
pub const CHUNK_PAD_BYTES: usize = 256;
/// zstd level for chunk bodies: level 1 keeps ingest near disk speed on BSON.
pub const ZSTD_LEVEL: i32 = 1;

/// Packs are closed and a new one started once they pass this size.
pub const PACK_TARGET_BYTES: u64 = 64 * 1024 * 1024;

/// Associated data of a pack frame: binds kind, object id, format version and store.
pub fn frame_aad(kind: u8, id: &[u8; 32], store_id: &[u8; 16]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + 4 + 1 + 32 + 16);
    aad.extend_from_slice(&PACK_MAGIC_V1);
    aad.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    aad.push(kind);
    aad.extend_from_slice(id);
    aad.extend_from_slice(store_id);
    aad
}

/// The object id of a commit record: its sequence number, little-endian, then a byte
/// that is 1 for a snapshot (a record holding the whole namespace), then zeros. The
/// snapshot byte is in clear so a rebuild can find snapshots without decrypting.
pub fn commit_id(seq: u64, snapshot: bool) -> [u8; 32] {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&seq.to_le_bytes());
    id[8] = u8::from(snapshot);
    id
}

/// Header of one frame in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub sealed_len: u32,
    pub kind: u8,
    pub id: [u8; 32],
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        out[0..4].copy_from_slice(&self.sealed_len.to_le_bytes());
        out[4] = self.kind;
        out[8..40].copy_from_slice(&self.id);
        out
    }

    /// Parses a frame header; returns why it is invalid otherwise.
    pub fn decode(bytes: &[u8; FRAME_HEADER_LEN]) -> Result<FrameHeader, String> {
        let sealed_len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
        let kind = bytes[4];
        if kind != KIND_CHUNK && kind != KIND_COMMIT {
            return Err(format!("unknown frame kind {kind}"));
        }
        if bytes[5..8] != [0, 0, 0] {
            return Err("non-zero reserved bytes in frame header".into());
        }
        if sealed_len < 40 || sealed_len > MAX_SEALED_LEN {
            return Err(format!("sealed length {sealed_len} out of range"));
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&bytes[8..40]);
        Ok(FrameHeader { sealed_len, kind, id })
    }
}

/// Header at the start of each pack file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackHeader {
    pub store_id: [u8; 16],
    pub pack_no: u64,
}

impl PackHeader {
    pub fn encode(&self) -> [u8; PACK_HEADER_LEN] {
        let mut out = [0u8; PACK_HEADER_LEN];
        out[0..8].copy_from_slice(&PACK_MAGIC_V1);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[16..32].copy_from_slice(&self.store_id);
        out[32..40].copy_from_slice(&self.pack_no.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8; PACK_HEADER_LEN]) -> Result<PackHeader, String> {
        if bytes[0..8] != PACK_MAGIC_V1 {
            return Err("bad pack magic".into());
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(format!("pack format version {version}, expected {FORMAT_VERSION}"));
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(&bytes[16..32]);
        let pack_no = u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes"));
        Ok(PackHeader { store_id, pack_no })
    }
}

/// File name of pack `pack_no` inside the `packs` folder.
pub fn pack_file_name(pack_no: u64) -> String {
    format!("{pack_no:016x}.pack")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_round_trips() {
        let header = FrameHeader { sealed_len: 1000, kind: KIND_CHUNK, id: [5; 32] };
        assert_eq!(FrameHeader::decode(&header.encode()), Ok(header));
    }

    #[test]
    fn frame_header_rejects_bad_kind_and_length() {
        let mut bytes = FrameHeader { sealed_len: 1000, kind: KIND_CHUNK, id: [5; 32] }.encode();
        bytes[4] = 9;
        assert!(FrameHeader::decode(&bytes).is_err());
        let huge = FrameHeader { sealed_len: MAX_SEALED_LEN + 1, kind: KIND_COMMIT, id: [0; 32] };
        assert!(FrameHeader::decode(&huge.encode()).is_err());
    }

    #[test]
    fn pack_header_round_trips() {
        let header = PackHeader { store_id: [3; 16], pack_no: 42 };
        assert_eq!(PackHeader::decode(&header.encode()), Ok(header));
    }

    #[test]
    fn header_lengths_match_layout() {
        assert_eq!(KEYSLOT_FILE_LEN, 152);
        assert_eq!(FrameHeader { sealed_len: 40, kind: 1, id: [0; 32] }.encode().len(), FRAME_HEADER_LEN);
    }
}
