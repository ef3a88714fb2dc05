//! Key material, sealing and key derivation.
//!
//! This module imports no other project module. Every secret lives in a type that
//! zeroizes on drop and prints as `<redacted>`, so a stray `{:?}` cannot leak it.

mod aead;
mod kdf;
mod keys;

pub use aead::{open, open_in_place, seal, seal_in_place, AuthenticationFailed, NONCE_LEN, SEAL_OVERHEAD, TAG_LEN};
pub use kdf::{derive_kek, KdfParams, KDF_MAX_MEMORY_KIB, KDF_MAX_PASSES};
pub use keys::{ChunkId, Keys, MasterKey, SubKey, KEY_LEN};
