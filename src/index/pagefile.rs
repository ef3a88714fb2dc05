//! Full manifest pages of large files, one file per inode beside sled.
//!
//! sled keeps much of what it has written in memory (about 9 MiB for the 225 pages of
//! a 4 GiB file, measured), so only each manifest's last, partial page lives in sled.
//! Full pages go here, at fixed slots: page `k` of an inode is slot `k` of its file.
//! Reads use pread, so the pages are cached by the kernel, not in the daemon.
//!
//! A slot is a u32 LE length and a sealed page, padded to [`SLOT_BYTES`]. Pages are
//! written only past the inode's durable full pages, or into a fresh file renamed over
//! the old one, and each write is fsynced before sled records the new page count, so
//! a crash never leaves sled counting a page that is not on disk.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Bytes of one slot: the length prefix and a sealed page of 1024 chunk extents
/// (42,032 bytes), rounded up to whole 4 KiB blocks.
pub const SLOT_BYTES: u64 = 45_056;

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> Error + 'a {
    move |source| Error::io(what, path, source)
}

pub struct PageFiles {
    dir: PathBuf,
}

impl PageFiles {
    /// Opens the page folder, creating it private to its owner.
    pub fn open(dir: &Path) -> Result<PageFiles> {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(io_error("failed to create manifest page folder", dir))?;
            sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
        }
        Ok(PageFiles { dir: dir.to_path_buf() })
    }

    fn path(&self, ino: u64) -> PathBuf {
        self.dir.join(format!("{ino:016x}"))
    }

    /// Reads the sealed page in slot `page` of inode `ino`.
    pub fn read(&self, ino: u64, page: u64) -> Result<Vec<u8>> {
        let path = self.path(ino);
        let file = File::open(&path).map_err(io_error("failed to open manifest pages", &path))?;
        let mut slot = vec![0u8; SLOT_BYTES as usize];
        file.read_exact_at(&mut slot, page * SLOT_BYTES).map_err(io_error("failed to read manifest page", &path))?;
        let len = u32::from_le_bytes(slot[..4].try_into().expect("4 bytes")) as usize;
        if len > slot.len() - 4 {
            return Err(Error::IndexAuthenticationFailed { tree: "manifest pages" });
        }
        slot.truncate(4 + len);
        slot.drain(..4);
        Ok(slot)
    }

    /// Writes sealed `pages` into slots `from` on, after keeping slots `..from`, and
    /// fsyncs. Slots at `durable` or later are not part of any durable state, so they
    /// are written in place. An earlier slot is never overwritten: the kept slots are
    /// copied into a new file that replaces the old one.
    pub fn write(&self, ino: u64, durable: u64, from: u64, pages: &[Vec<u8>]) -> Result<()> {
        let path = self.path(ino);
        if from >= durable {
            let created = !path.exists();
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(io_error("failed to open manifest pages", &path))?;
            write_slots(&file, from, pages).map_err(io_error("failed to write manifest page", &path))?;
            file.sync_data().map_err(io_error("failed to sync manifest pages", &path))?;
            if created {
                sync_dir(&self.dir)?;
            }
            return Ok(());
        }
        let fresh = path.with_extension("new");
        let _ = std::fs::remove_file(&fresh);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&fresh)
            .map_err(io_error("failed to create manifest pages", &fresh))?;
        if from > 0 {
            let old = File::open(&path).map_err(io_error("failed to open manifest pages", &path))?;
            let mut block = vec![0u8; SLOT_BYTES as usize];
            for slot in 0..from {
                old.read_exact_at(&mut block, slot * SLOT_BYTES).map_err(io_error("failed to read manifest page", &path))?;
                file.write_all_at(&block, slot * SLOT_BYTES).map_err(io_error("failed to write manifest page", &fresh))?;
            }
        }
        write_slots(&file, from, pages).map_err(io_error("failed to write manifest page", &fresh))?;
        file.sync_data().map_err(io_error("failed to sync manifest pages", &fresh))?;
        std::fs::rename(&fresh, &path).map_err(io_error("failed to replace manifest pages", &path))?;
        sync_dir(&self.dir)
    }

    /// Removes all pages of `ino`.
    pub fn remove(&self, ino: u64) -> Result<()> {
        let path = self.path(ino);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(Error::io("failed to remove manifest pages", &path, error)),
        }
    }

    /// Removes the pages of every inode.
    pub fn clear(&self) -> Result<()> {
        let entries = std::fs::read_dir(&self.dir).map_err(io_error("failed to list manifest pages", &self.dir))?;
        for entry in entries {
            let path = entry.map_err(io_error("failed to list manifest pages", &self.dir))?.path();
            std::fs::remove_file(&path).map_err(io_error("failed to remove manifest pages", &path))?;
        }
        sync_dir(&self.dir)
    }

    /// Bytes of all page files.
    pub fn size_on_disk(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
        entries.filter_map(|entry| entry.ok()?.metadata().ok()).map(|metadata| metadata.len()).sum()
    }
}

fn write_slots(file: &File, from: u64, pages: &[Vec<u8>]) -> std::io::Result<()> {
    for (number, sealed) in pages.iter().enumerate() {
        let mut slot = Vec::with_capacity(SLOT_BYTES as usize);
        slot.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        slot.extend_from_slice(sealed);
        assert!(slot.len() as u64 <= SLOT_BYTES, "a sealed page of 1024 extents fits a slot");
        slot.resize(SLOT_BYTES as usize, 0);
        file.write_all_at(&slot, (from + number as u64) * SLOT_BYTES)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(io_error("failed to sync folder", dir))
}
