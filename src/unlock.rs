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
    let slot_path = paths.keys().join(slot.file_name());
    write_file_durably(&slot_path, &slot.encode())?;
    crate::store::immutable::seal_file(&slot_path);
    let settings = StoreSettings {
        retention_seconds: options.retention_seconds,
        chunker: options.chunker,
        created_unix: wall_clock_seconds(),
    };
    let header = ConfigHeader { version: FORMAT_VERSION, store_id };
    write_file_durably(&paths.config(), &encode_config(&header, &settings, &keys))?;
    crate::store::immutable::seal_file(&paths.config());
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
            return Ok(Unlocked { paths, master: Some(master), slot_path: path, keys, store_id: header.store_id, settings });
        }
    }
    Err(Error::WrongPassphrase { store: root.to_path_buf() })
}

/// One key slot as `key list` shows it.
#[derive(Debug, Clone)]
pub struct SlotInfo {
    pub slot_id: String,
    pub memory_kib: u32,
    pub passes: u32,
    pub path: std::path::PathBuf,
}

/// Lists the key slots of a store.
pub fn list_keys(root: &Path) -> Result<Vec<SlotInfo>> {
    let paths = StorePaths::new(root);
    Ok(read_slots(&paths.keys())?
        .into_iter()
        .map(|(path, slot)| SlotInfo {
            slot_id: crate::store::keyslot::hex(&slot.slot_id),
            memory_kib: slot.params.memory_kib,
            passes: slot.params.passes,
            path,
        })
        .collect())
}

/// Adds a key slot wrapping the unlocked master key under `passphrase`; data is not
/// re-encrypted. Returns the new slot's id.
pub fn add_key(unlocked: &Unlocked, passphrase: &[u8], kdf: KdfParams) -> Result<String> {
    let master = unlocked.master.as_ref().ok_or(Error::Invalid {
        what: "unlocked store",
        detail: "the master key was already dropped".into(),
    })?;
    let slot = KeySlot::create(unlocked.store_id, master, passphrase, kdf)?;
    let path = unlocked.paths.keys().join(slot.file_name());
    write_file_durably(&path, &slot.encode())?;
    crate::store::immutable::seal_file(&path);
    log::info!("key slot added: slot={}", crate::store::keyslot::hex(&slot.slot_id));
    Ok(crate::store::keyslot::hex(&slot.slot_id))
}

/// Removes key slot `slot_id`, refusing to remove the last one. Whoever copied the
/// slot file before keeps access with its passphrase: removal cannot revoke a copy.
pub fn remove_key(unlocked: &Unlocked, slot_id: &str) -> Result<()> {
    let slots = list_keys(&unlocked.paths.root)?;
    let Some(target) = slots.iter().find(|slot| slot.slot_id == slot_id) else {
        return Err(Error::Invalid {
            what: "key slot",
            detail: format!("no slot {slot_id} in {}; `wormvault key list` shows the slots", unlocked.paths.root.display()),
        });
    };
    if slots.len() == 1 {
        return Err(Error::Invalid {
            what: "key slot",
            detail: format!("slot {slot_id} is the last key of the store and cannot be removed; add another first"),
        });
    }
    crate::store::immutable::set_immutable(&target.path, false)
        .map_err(|source| Error::io("failed to clear the immutable attribute of", &target.path, source))?;
    std::fs::remove_file(&target.path).map_err(|source| Error::io("failed to remove", &target.path, source))?;
    crate::store::sync_dir(&unlocked.paths.keys())?;
    log::info!("key slot removed: slot={slot_id}");
    Ok(())
}

/// Returns the id of the slot file at `path` (its file stem).
pub fn slot_id_of(path: &Path) -> String {
    path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default()
}
