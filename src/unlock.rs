//! Making a store (`init`) and unlocking one with a passphrase.

use std::path::Path;

use rand::RngCore;

use crate::chunking::ChunkerParams;
use crate::crypto::{KdfParams, Keys, MasterKey};
use crate::error::{Error, Result};
use crate::retention::wall_clock_seconds;
use crate::store::config::{decode_settings, encode_config, ConfigHeader, StoreSettings};
use crate::store::format::FORMAT_VERSION;
use crate::store::keyslot::{read_slots, KeySlot};
use crate::store::{create_private_dir, write_file_durably, StorePaths};
use crate::vault::Unlocked;

/// Default chunk sizes: 16 KiB average. Database dumps change a few documents per
/// collection between days, and a smaller average keeps more of day 1 shared.
pub const DEFAULT_CHUNKER: ChunkerParams = ChunkerParams { min_bytes: 4 * 1024, avg_bytes: 16 * 1024, max_bytes: 128 * 1024 };

/// Options of `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub retention_seconds: u64,
    pub chunker: ChunkerParams,
    pub kdf: KdfParams,
}

/// Makes a new store in `root`, which must not exist or be an empty folder.
pub fn init_store(root: &Path, passphrase: &[u8], options: &InitOptions) -> Result<()> {
    options.chunker.validate().map_err(|detail| Error::Invalid { what: "chunk sizes", detail })?;
    if root.exists() {
        let mut entries = std::fs::read_dir(root).map_err(|source| Error::io("failed to read", root, source))?;
        if entries.next().is_some() {
            return Err(Error::Invalid {
                what: "store folder",
                detail: format!("{} is not empty; choose a new folder", root.display()),
            });
        }
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|source| Error::io("failed to set permissions of", root, source))?;
    } else {
        create_private_dir(root)?;
    }
    let paths = StorePaths::new(root);
    create_private_dir(&paths.keys())?;
    create_private_dir(&paths.packs())?;
    let master = MasterKey::generate();
    let keys = Keys::derive(&master);
    let mut store_id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut store_id);
    let slot = KeySlot::create(store_id, &master, passphrase, options.kdf)?;
    write_file_durably(&paths.keys().join(slot.file_name()), &slot.encode())?;
    let settings = StoreSettings {
        retention_seconds: options.retention_seconds,
        chunker: options.chunker,
        created_unix: wall_clock_seconds(),
    };
    let header = ConfigHeader { version: FORMAT_VERSION, store_id };
    write_file_durably(&paths.config(), &encode_config(&header, &settings, &keys))?;
    log::info!("store created: retention_seconds={}", options.retention_seconds);
    Ok(())
}

/// Unlocks a store: finds a key slot that opens with `passphrase` and checks the
/// config under the master key.
pub fn unlock_store(root: &Path, passphrase: &[u8]) -> Result<Unlocked> {
    let paths = StorePaths::new(root);
    let config_path = paths.config();
    let bytes = match std::fs::read(&config_path) {
        Ok(bytes) => bytes,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotAStore { path: root.to_path_buf(), file: "config" })
        }
        Err(source) => return Err(Error::io("failed to read", &config_path, source)),
    };
    let header = ConfigHeader::decode(&config_path, &bytes)?;
    let slots = read_slots(&paths.keys())?;
    if slots.is_empty() {
        return Err(Error::NotAStore { path: root.to_path_buf(), file: "keys/*.key" });
    }
    for (path, slot) in slots {
        if slot.store_id != header.store_id {
            log::warn!("key slot belongs to another store, skipped: slot={}", path.display());
            continue;
        }
        if let Some(master) = slot.unlock(passphrase)? {
            let keys = Keys::derive(&master);
            let settings = decode_settings(&config_path, &bytes, &keys)?;
            return Ok(Unlocked { paths, keys, store_id: header.store_id, settings });
        }
    }
    Err(Error::WrongPassphrase { store: root.to_path_buf() })
}
