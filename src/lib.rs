//! wormvault: an encrypted, write-once backup store mounted through FUSE.
//!
//! Files written to the mount are cut into content-defined chunks, deduplicated by a
//! keyed hash, compressed, sealed with XChaCha20-Poly1305 and appended to packs. A file
//! is sealed when its last writable handle is released; from then on it cannot be
//! changed, and cannot be deleted until its retention window has passed.

pub mod chunking;
pub mod chunkstore;
pub mod codec;
pub mod crypto;
pub mod error;
pub mod fs;
pub mod index;
pub mod metrics;
pub mod retention;
pub mod staging;
pub mod store;
pub mod tree;
pub mod unlock;
pub mod vault;

pub use error::{Error, Result};
