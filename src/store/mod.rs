//! The backing directory of a store: its layout, config, key slots, packs and lock.
//!
//! Layout (every folder 0700, every file 0600):
//! `config`, `keys/<slot id>.key`, `packs/<pack number>.pack`, `index/` (sled), `lock`.

pub mod config;
pub mod failpoint;
pub mod format;
pub mod hoststate;
pub mod immutable;
pub mod keyslot;
pub mod lock;
pub mod pack;

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Paths of the parts of a store.
#[derive(Debug, Clone)]
pub struct StorePaths {
    pub root: PathBuf,
}

impl StorePaths {
    pub fn new(root: &Path) -> Self {
        StorePaths { root: root.to_path_buf() }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config")
    }
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
    pub fn packs(&self) -> PathBuf {
        self.root.join("packs")
    }
    pub fn index(&self) -> PathBuf {
        self.root.join("index")
    }
    pub fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }
}

/// Fsyncs a folder so that entries created in it survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(|source| Error::io("failed to open folder", dir, source))?;
    failpoint::check("folder fsync")
        .and_then(|_| handle.sync_all())
        .map_err(|source| Error::io("failed to fsync folder", dir, source))
}

/// Creates a folder private to its owner.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::io("failed to create folder", dir, source))
}

/// Writes a new private file durably: temporary name, fsync, rename, folder fsync.
pub fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().expect("store files live in a folder");
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|source| Error::io("failed to create", &temporary, source))?;
    file.write_all(bytes).map_err(|source| Error::io("failed to write", &temporary, source))?;
    file.sync_all().map_err(|source| Error::io("failed to fsync", &temporary, source))?;
    std::fs::rename(&temporary, path).map_err(|source| Error::io("failed to rename into", path, source))?;
    sync_dir(dir)
}
