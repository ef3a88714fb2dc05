//! The master key, the subkeys derived from it, and keyed chunk ids.

use std::fmt;
use std::sync::Arc;

use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length in bytes of every symmetric key in the store.
pub const KEY_LEN: usize = 32;

/// The store's random master key. It is written to disk only wrapped by a key slot.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    /// Draws a new master key from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        MasterKey(bytes)
    }

    /// Wraps unwrapped key bytes; the caller zeroizes its own copy.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        MasterKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A key derived from the master key for one purpose.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SubKey([u8; KEY_LEN]);

impl SubKey {
    /// Builds a subkey from raw bytes, for key-encryption keys and tests.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SubKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for SubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubKey(<redacted>)")
    }
}

/// BLAKE3 key-derivation contexts, one per purpose. Changing a string changes the
/// format: every id, MAC and sealed object of existing stores would stop matching.
const CONTEXT_CHUNK_ID: &str = "wormvault 2026-12 v1 chunk id";
const CONTEXT_CHUNKER: &str = "wormvault 2026-12 v1 chunker gear table";
const CONTEXT_DATA: &str = "wormvault 2026-12 v1 pack data";
const CONTEXT_NAMES: &str = "wormvault 2026-12 v1 directory entry mac";
const CONTEXT_INDEX: &str = "wormvault 2026-12 v1 index values";
const CONTEXT_CONFIG: &str = "wormvault 2026-12 v1 store config";

/// The subkeys of an unlocked store. Each purpose has its own key, so a weakness in
/// one use (for example the chunker's table) does not expose another.
#[derive(Debug)]
pub struct Keys {
    /// Keyed BLAKE3 key for chunk ids.
    pub chunk_id: SubKey,
    /// Seed for the chunker's gear table.
    pub chunker: SubKey,
    /// XChaCha20-Poly1305 key for objects in packs.
    pub data: SubKey,
    /// Keyed BLAKE3 key for directory-entry MACs in the index.
    pub names: SubKey,
    /// XChaCha20-Poly1305 key for index values.
    pub index: SubKey,
    /// XChaCha20-Poly1305 key for the store config.
    pub config: SubKey,
}

impl Keys {
    /// Derives every subkey from the master key.
    pub fn derive(master: &MasterKey) -> Arc<Keys> {
        let derive = |context: &str| SubKey(blake3::derive_key(context, master.as_bytes()));
        let keys = Arc::new(Keys {
            chunk_id: derive(CONTEXT_CHUNK_ID),
            chunker: derive(CONTEXT_CHUNKER),
            data: derive(CONTEXT_DATA),
            names: derive(CONTEXT_NAMES),
            index: derive(CONTEXT_INDEX),
            config: derive(CONTEXT_CONFIG),
        });
        lock_in_memory(&*keys);
        keys
    }

    /// Computes the id of a chunk: keyed BLAKE3 of its plaintext, so equal chunks get
    /// equal ids only inside one store and ids reveal nothing without the key.
    pub fn chunk_id(&self, plain: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(self.chunk_id.as_bytes(), plain).as_bytes())
    }

    /// Computes a 32-byte MAC of `parts` under the names key.
    pub fn name_mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(self.names.as_bytes());
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }
}

/// Asks the kernel to keep the subkeys out of swap. Failure (RLIMIT_MEMLOCK too small)
/// is logged at debug level only, because the keys still work.
fn lock_in_memory(keys: &Keys) {
    let pointer = keys as *const Keys as *const libc::c_void;
    // SAFETY: the pointer and length describe one live, owned allocation.
    let rc = unsafe { libc::mlock(pointer, std::mem::size_of::<Keys>()) };
    if rc != 0 {
        log::debug!("mlock of subkeys failed: error={}", std::io::Error::last_os_error());
    }
}

/// Identity of a chunk: keyed BLAKE3 of its plaintext.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ChunkId(pub [u8; 32]);

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for ChunkId {
    /// Shows the first 8 bytes in hex, enough to find the chunk in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subkeys_differ_by_purpose() {
        let keys = Keys::derive(&MasterKey::from_bytes([7; KEY_LEN]));
        assert_ne!(keys.data.as_bytes(), keys.index.as_bytes());
        assert_ne!(keys.chunk_id.as_bytes(), keys.names.as_bytes());
        assert_ne!(keys.chunker.as_bytes(), keys.config.as_bytes());
    }

    #[test]
    fn chunk_id_depends_on_key() {
        let a = Keys::derive(&MasterKey::from_bytes([1; KEY_LEN]));
        let b = Keys::derive(&MasterKey::from_bytes([2; KEY_LEN]));
        assert_eq!(a.chunk_id(b"same"), a.chunk_id(b"same"));
        assert_ne!(a.chunk_id(b"same"), b.chunk_id(b"same"));
    }

    #[test]
    fn debug_output_redacts_keys() {
        let keys = Keys::derive(&MasterKey::from_bytes([9; KEY_LEN]));
        let shown = format!("{keys:?}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("9, 9"), "{shown}");
    }
}
