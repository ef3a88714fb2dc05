//! The store's config file: a plain header naming the store and format version, and
//! the settings sealed under the config subkey, so a changed retention or chunker
//! setting fails authentication and refuses the mount.

use std::path::Path;

use crate::chunking::ChunkerParams;
use crate::codec;
use crate::crypto::{self, Keys};
use crate::error::{Error, Result};
use crate::store::format::{CONFIG_HEADER_LEN, CONFIG_MAGIC_V1, FORMAT_VERSION};

/// Settings fixed when the store is made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreSettings {
    /// How long a sealed file stays undeletable, in seconds after its seal time.
    pub retention_seconds: u64,
    pub chunker: ChunkerParams,
    /// Wall-clock creation time, seconds since the Unix epoch.
    pub created_unix: i64,
}

/// The plain header: who the store is, in which format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigHeader {
    pub version: u32,
    pub store_id: [u8; 16],
}

impl ConfigHeader {
    pub fn encode(&self) -> [u8; CONFIG_HEADER_LEN] {
        let mut out = [0u8; CONFIG_HEADER_LEN];
        out[0..8].copy_from_slice(&CONFIG_MAGIC_V1);
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[16..32].copy_from_slice(&self.store_id);
        out
    }

    /// Parses the header of a config file.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<ConfigHeader> {
        if bytes.len() < CONFIG_HEADER_LEN || bytes[0..8] != CONFIG_MAGIC_V1 {
            return Err(Error::NotAStore { path: path.to_path_buf(), file: "config" });
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion { path: path.to_path_buf(), found: version, supported: FORMAT_VERSION });
        }
        if version == 0 {
            return Err(Error::Damaged { path: path.to_path_buf(), detail: "config format version 0".into() });
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(&bytes[16..32]);
        Ok(ConfigHeader { version, store_id })
    }
}

/// Encodes a whole config file: header, then the sealed settings.
pub fn encode_config(header: &ConfigHeader, settings: &StoreSettings, keys: &Keys) -> Vec<u8> {
    let head = header.encode();
    let body = codec::encode(settings);
    let mut out = head.to_vec();
    out.extend_from_slice(&crypto::seal(&keys.config, &head, &body));
    out
}

/// Opens the sealed settings of a config file whose header was already read.
pub fn decode_settings(path: &Path, bytes: &[u8], keys: &Keys) -> Result<StoreSettings> {
    let (head, sealed) = bytes.split_at(CONFIG_HEADER_LEN);
    let body = crypto::open(&keys.config, head, sealed).map_err(|_| Error::Damaged {
        path: path.to_path_buf(),
        detail: "config failed authentication (edited, or from another store)".into(),
    })?;
    let settings: StoreSettings = codec::decode(&body)
        .map_err(|detail| Error::Damaged { path: path.to_path_buf(), detail: format!("config settings unreadable: {detail}") })?;
    settings
        .chunker
        .validate()
        .map_err(|detail| Error::Damaged { path: path.to_path_buf(), detail })?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn settings() -> StoreSettings {
        StoreSettings {
            retention_seconds: 3600,
            chunker: ChunkerParams { min_bytes: 4096, avg_bytes: 16384, max_bytes: 131072 },
            created_unix: 1_800_000_000,
        }
    }

    #[test]
    fn config_round_trips() {
        let keys = Keys::derive(&MasterKey::from_bytes([1; 32]));
        let header = ConfigHeader { version: FORMAT_VERSION, store_id: [4; 16] };
        let bytes = encode_config(&header, &settings(), &keys);
        let path = Path::new("config");
        assert_eq!(ConfigHeader::decode(path, &bytes).unwrap(), header);
        assert_eq!(decode_settings(path, &bytes, &keys).unwrap(), settings());
    }

    #[test]
    fn edited_config_fails_authentication() {
        let keys = Keys::derive(&MasterKey::from_bytes([1; 32]));
        let header = ConfigHeader { version: FORMAT_VERSION, store_id: [4; 16] };
        let mut bytes = encode_config(&header, &settings(), &keys);
        bytes[20] ^= 1;
        assert!(matches!(decode_settings(Path::new("config"), &bytes, &keys), Err(Error::Damaged { .. })));
    }

    #[test]
    fn newer_version_is_rejected() {
        let header = ConfigHeader { version: FORMAT_VERSION + 1, store_id: [4; 16] };
        let result = ConfigHeader::decode(Path::new("config"), &header.encode());
        assert!(matches!(result, Err(Error::UnsupportedVersion { found, .. }) if found == FORMAT_VERSION + 1));
    }
}
