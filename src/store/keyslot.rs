//! Key slots: the master key wrapped by a key that Argon2id derives from a passphrase.
//!
//! The plain part of a slot (ids, Argon2 parameters, salt) is the associated data of
//! the wrapped key, so editing the parameters or moving a slot to another store makes
//! it fail to open.

use std::path::{Path, PathBuf};

use rand::RngCore;
use zeroize::Zeroizing;

use crate::crypto::{self, derive_kek, KdfParams, MasterKey, KEY_LEN};
use crate::error::{Error, Result};
use crate::store::format::{FORMAT_VERSION, KEYSLOT_FILE_LEN, KEYSLOT_HEADER_LEN, KEYSLOT_MAGIC_V1};

/// A parsed key slot file.
#[derive(Debug, Clone)]
pub struct KeySlot {
    pub store_id: [u8; 16],
    pub slot_id: [u8; 16],
    pub params: KdfParams,
    pub salt: [u8; 16],
    header: [u8; KEYSLOT_HEADER_LEN],
    sealed: Vec<u8>,
}

impl KeySlot {
    /// Wraps `master` under `passphrase` in a new slot.
    pub fn create(store_id: [u8; 16], master: &MasterKey, passphrase: &[u8], params: KdfParams) -> Result<KeySlot> {
        let mut slot_id = [0u8; 16];
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut slot_id);
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let header = encode_header(store_id, slot_id, params, salt);
        let kek = derive_kek(passphrase, &salt, params).map_err(|detail| Error::Invalid { what: "key derivation", detail })?;
        let sealed = crypto::seal(&kek, &header, master.as_bytes());
        Ok(KeySlot { store_id, slot_id, params, salt, header, sealed })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header.to_vec();
        out.extend_from_slice(&self.sealed);
        out
    }

    /// Parses a slot file; `path` is used in errors only.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<KeySlot> {
        let damaged = |detail: String| Error::Damaged { path: path.to_path_buf(), detail };
        if bytes.len() != KEYSLOT_FILE_LEN {
            return Err(damaged(format!("key slot is {} bytes, expected {KEYSLOT_FILE_LEN}", bytes.len())));
        }
        if bytes[0..8] != KEYSLOT_MAGIC_V1 {
            return Err(damaged("bad key slot magic".into()));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion { path: path.to_path_buf(), found: version, supported: FORMAT_VERSION });
        }
        let read_u32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let params = KdfParams { memory_kib: read_u32(48), passes: read_u32(52), lanes: read_u32(56) };
        params.validate().map_err(|detail| damaged(format!("key slot parameters rejected: {detail}")))?;
        let mut header = [0u8; KEYSLOT_HEADER_LEN];
        header.copy_from_slice(&bytes[..KEYSLOT_HEADER_LEN]);
        let take16 = |at: usize| -> [u8; 16] { bytes[at..at + 16].try_into().expect("16 bytes") };
        Ok(KeySlot {
            store_id: take16(16),
            slot_id: take16(32),
            params,
            salt: take16(64),
            header,
            sealed: bytes[KEYSLOT_HEADER_LEN..].to_vec(),
        })
    }

    /// Unwraps the master key; `None` means the passphrase does not open this slot.
    pub fn unlock(&self, passphrase: &[u8]) -> Result<Option<MasterKey>> {
        let kek = derive_kek(passphrase, &self.salt, self.params)
            .map_err(|detail| Error::Invalid { what: "key derivation", detail })?;
        match crypto::open(&kek, &self.header, &self.sealed) {
            Ok(plain) => {
                let plain = Zeroizing::new(plain);
                let mut bytes = [0u8; KEY_LEN];
                bytes.copy_from_slice(&plain);
                let master = MasterKey::from_bytes(bytes);
                zeroize::Zeroize::zeroize(&mut bytes);
                Ok(Some(master))
            }
            Err(_) => Ok(None),
        }
    }

    /// File name of this slot inside the `keys` folder.
    pub fn file_name(&self) -> String {
        format!("{}.key", hex(&self.slot_id))
    }
}

fn encode_header(store_id: [u8; 16], slot_id: [u8; 16], params: KdfParams, salt: [u8; 16]) -> [u8; KEYSLOT_HEADER_LEN] {
    let mut out = [0u8; KEYSLOT_HEADER_LEN];
    out[0..8].copy_from_slice(&KEYSLOT_MAGIC_V1);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[16..32].copy_from_slice(&store_id);
    out[32..48].copy_from_slice(&slot_id);
    out[48..52].copy_from_slice(&params.memory_kib.to_le_bytes());
    out[52..56].copy_from_slice(&params.passes.to_le_bytes());
    out[56..60].copy_from_slice(&params.lanes.to_le_bytes());
    out[64..80].copy_from_slice(&salt);
    out
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Reads every slot file in `dir`, in name order.
pub fn read_slots(dir: &Path) -> Result<Vec<(PathBuf, KeySlot)>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::io("failed to list key slots in", dir, source))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "key"))
        .collect();
    paths.sort();
    let mut slots = Vec::new();
    let mut first_error = None;
    for path in paths {
        let parsed = std::fs::read(&path)
            .map_err(|source| Error::io("failed to read key slot", &path, source))
            .and_then(|bytes| KeySlot::decode(&path, &bytes));
        match parsed {
            Ok(slot) => slots.push((path, slot)),
            Err(error) => {
                // One damaged slot must not lock out the passphrases of the others.
                log::warn!("key slot skipped: slot={} error={error}", path.display());
                first_error.get_or_insert(error);
            }
        }
    }
    match (slots.is_empty(), first_error) {
        (true, Some(error)) => Err(error),
        _ => Ok(slots),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams { memory_kib: 256, passes: 1, lanes: 1 };

    #[test]
    fn slot_unlocks_with_right_passphrase_only() {
        let master = MasterKey::from_bytes([8; 32]);
        let slot = KeySlot::create([1; 16], &master, b"right", FAST).unwrap();
        let parsed = KeySlot::decode(Path::new("x.key"), &slot.encode()).unwrap();
        assert_eq!(parsed.unlock(b"right").unwrap().unwrap().as_bytes(), master.as_bytes());
        assert!(parsed.unlock(b"wrong").unwrap().is_none());
    }

    #[test]
    fn edited_parameters_fail_to_unlock() {
        let master = MasterKey::from_bytes([8; 32]);
        let mut bytes = KeySlot::create([1; 16], &master, b"right", FAST).unwrap().encode();
        bytes[52] = 2;
        let parsed = KeySlot::decode(Path::new("x.key"), &bytes).unwrap();
        assert!(parsed.unlock(b"right").unwrap().is_none());
    }

    #[test]
    fn huge_memory_parameter_is_rejected() {
        let master = MasterKey::from_bytes([8; 32]);
        let mut bytes = KeySlot::create([1; 16], &master, b"right", FAST).unwrap().encode();
        bytes[48..52].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(KeySlot::decode(Path::new("x.key"), &bytes), Err(Error::Damaged { .. })));
    }
}
