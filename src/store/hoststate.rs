//! The host state file: the newest commit sequence number of a store, kept outside
//! the store (by default in /var/lib/wormvault), so putting back an older copy of the
//! store is detected at mount and by `check`. Rolling back both the store and this
//! file together cannot be detected.

use std::path::{Path, PathBuf};

use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::store::keyslot::hex;

/// Folder of host state files unless `WORMVAULT_STATE_DIR` or `-o state_dir=` says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/wormvault";
pub const STATE_DIR_ENV: &str = "WORMVAULT_STATE_DIR";

/// The state file of one store.
#[derive(Debug, Clone)]
pub struct HostState {
    path: PathBuf,
}

impl HostState {
    /// Names the state file of `store_id` in `dir` (or the default folder).
    pub fn new(dir: Option<&Path>, store_id: &[u8; 16]) -> HostState {
        let dir = match dir {
            Some(dir) => dir.to_path_buf(),
            None => std::env::var_os(STATE_DIR_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        };
        HostState { path: dir.join(format!("{}.state", hex(store_id))) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn mac(keys: &Keys, seq: u64) -> String {
        hex(&keys.name_mac(&[b"host state", &seq.to_le_bytes()]))
    }

    /// Returns the recorded sequence number, `None` when there is no file yet.
    pub fn read(&self, keys: &Keys) -> Result<Option<u64>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::io("failed to read host state file", &self.path, source)),
        };
        let damaged = || Error::Damaged {
            path: self.path.clone(),
            detail: "host state file is unreadable or was not written with this store's key".into(),
        };
        let mut fields = text.split_whitespace();
        if fields.next() != Some("wormvault-state-v1") {
            return Err(damaged());
        }
        let seq: u64 = fields.next().and_then(|field| field.parse().ok()).ok_or_else(damaged)?;
        if fields.next() != Some(Self::mac(keys, seq).as_str()) {
            return Err(damaged());
        }
        Ok(Some(seq))
    }

    /// Records `seq` durably (temporary file, fsync, rename).
    pub fn write(&self, keys: &Keys, seq: u64) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::io("failed to create", dir, source))?;
        }
        let temporary = self.path.with_extension("state.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|source| Error::io("failed to write host state file", &temporary, source))?;
        crate::store::failpoint::check("host state write")
            .and_then(|_| writeln!(file, "wormvault-state-v1 {seq} {}", Self::mac(keys, seq)))
            .and_then(|_| file.sync_all())
            .map_err(|source| Error::io("failed to write host state file", &temporary, source))?;
        std::fs::rename(&temporary, &self.path).map_err(|source| Error::io("failed to write host state file", &self.path, source))
    }
}
