//! The crate's error type. Variants name what happened and carry the ids involved;
//! integrity failures have variants of their own and are never folded into `Io`.

use std::io;
use std::path::PathBuf;

use crate::crypto::ChunkId;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("wrong passphrase: no key slot of {store} opens with it")]
    WrongPassphrase { store: PathBuf },

    #[error("{path} is not a wormvault store (missing or invalid {file}); create one with `wormvault init`")]
    NotAStore { path: PathBuf, file: &'static str },

    #[error("{path}: format version {found} is newer than this wormvault supports ({supported}); upgrade wormvault")]
    UnsupportedVersion { path: PathBuf, found: u32, supported: u32 },

    #[error("{path} is damaged: {detail}")]
    Damaged { path: PathBuf, detail: String },

    #[error("chunk {chunk} in pack {pack:016x} at offset {offset} failed authentication")]
    ChunkAuthenticationFailed { chunk: ChunkId, pack: u64, offset: u64 },

    #[error("chunk {chunk} is referenced but not stored in any pack")]
    ChunkMissing { chunk: ChunkId },

    #[error("pack {pack:016x} is truncated at offset {offset}")]
    PackTruncated { pack: u64, offset: u64 },

    #[error("index entry in tree {tree} failed authentication; the packs are the source of truth, so `wormvault repair --rebuild-index STORE` rebuilds the index from them")]
    IndexAuthenticationFailed { tree: &'static str },

    #[error("pack {pack_no} is past the chunk table's limit of 2^32 packs of 64 MiB")]
    ChunkTableFull { pack_no: u64 },

    #[error("index operation on tree {tree} failed: {source}")]
    Index {
        tree: &'static str,
        #[source]
        source: sled::Error,
    },

    #[error("store {store} is in use by pid {pid} (mounted at {mountpoint})")]
    Locked { store: PathBuf, pid: u32, mountpoint: String },

    #[error("the store is degraded after a failed write ({reason}); new writes are refused until it is remounted")]
    Degraded { reason: String },

    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}

impl Error {
    /// Wraps an I/O error with the action and the path it concerned.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { what, path: path.into(), source }
    }

    /// Returns the OS error code behind an I/O failure, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
