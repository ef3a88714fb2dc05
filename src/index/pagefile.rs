//! Full manifest pages of large files, one file per inode beside sled.
//!
//! sled keeps much of what it has written in memory: about 9 MiB for the 225 pages of
//! a 4 GiB file, measured. So sled stores only each manifest's last, partial page and
//! the slot number of each full page. Full pages go here, in fixed-size slots.
//! Reads use pread, so the pages are cached by the kernel, not in the daemon.
//!
//! A slot is a u32 LE length and a sealed page, padded to [`SLOT_BYTES`]. A slot is
//! written once: a changed page takes a new slot at the end of the file, fsynced
//! before sled records it. So whatever state of sled survives a crash, and whichever
//! records the roll-forward replays, every slot sled names still contains its page.
//! Slots no longer named are left in place until the file is removed.

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

    /// Reads the sealed page in slot `slot` of inode `ino`.
    pub fn read(&self, ino: u64, slot: u32) -> Result<Vec<u8>> {
        let page = u64::from(slot);
        let path = self.path(ino);
        // A page file or slot that sled names but that is missing or short is damage to
        // the index, like a page that fails to open.
        let damaged = |error: std::io::Error| match error.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof => Error::IndexAuthenticationFailed { tree: "manifest pages" },
            _ => Error::io("failed to read manifest page", &path, error),
        };
        let file = File::open(&path).map_err(damaged)?;
        let mut slot = vec![0u8; SLOT_BYTES as usize];
        file.read_exact_at(&mut slot, page * SLOT_BYTES).map_err(damaged)?;
        let len = u32::from_le_bytes(slot[..4].try_into().expect("4 bytes")) as usize;
        if len > slot.len() - 4 {
            return Err(Error::IndexAuthenticationFailed { tree: "manifest pages" });
        }
        slot.truncate(4 + len);
        slot.drain(..4);
        Ok(slot)
    }

    /// Writes sealed `pages` to the page file of `ino` in new slots from `first`, which
    /// [`PageFiles::next_slot`] gave, fsyncs, and returns their slot numbers. Slots that sled may still name are never written:
    /// new slots go past the end of the file, so a crash before sled records them
    /// leaves every slot that sled names as it was.
    // NOTE: slots that a rewrite leaves unnamed are never reclaimed while the file's
    // manifest exists, so a large file patched far below its end many times grows its
    // page file by a slot per rewritten page each time.
    pub fn append(&self, ino: u64, first: u32, pages: &[Vec<u8>]) -> Result<Vec<u32>> {
        let path = self.path(ino);
        let created = !path.exists();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_error("failed to open manifest pages", &path))?;
        let mut slots = Vec::with_capacity(pages.len());
        for (number, sealed) in pages.iter().enumerate() {
            let slot = first
                .checked_add(number as u32)
                .ok_or_else(|| Error::io("failed to write manifest page", &path, std::io::Error::from_raw_os_error(libc::EFBIG)))?;
            write_slot(&file, slot, sealed).map_err(io_error("failed to write manifest page", &path))?;
            slots.push(slot);
        }
        file.sync_data().map_err(io_error("failed to sync manifest pages", &path))?;
        if created {
            sync_dir(&self.dir)?;
        }
        Ok(slots)
    }

    /// Returns the first slot past the end of the page file of `ino`: where
    /// [`PageFiles::append`] must put the next pages. A slot cut short by a crash is
    /// past every slot sled names, so it is reused.
    pub fn next_slot(&self, ino: u64) -> Result<u32> {
        let path = self.path(ino);
        let len = match std::fs::metadata(&path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(Error::io("failed to open manifest pages", &path, error)),
        };
        u32::try_from(len / SLOT_BYTES).map_err(|_| Error::io("failed to write manifest page", &path, std::io::Error::from_raw_os_error(libc::EFBIG)))
    }

    /// Lists the inode numbers that have a page file.
    pub fn inodes(&self) -> Result<Vec<u64>> {
        let entries = std::fs::read_dir(&self.dir).map_err(io_error("failed to list manifest pages", &self.dir))?;
        let mut inodes = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error("failed to list manifest pages", &self.dir))?;
            match entry.file_name().to_str().and_then(|name| u64::from_str_radix(name, 16).ok()) {
                Some(ino) => inodes.push(ino),
                None => log::warn!("unexpected file in the manifest page folder ignored: path={}", entry.path().display()),
            }
        }
        Ok(inodes)
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

    /// Bytes of all page files.
    pub fn size_on_disk(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
        entries.filter_map(|entry| entry.ok()?.metadata().ok()).map(|metadata| metadata.len()).sum()
    }
}

fn write_slot(file: &File, slot: u32, sealed: &[u8]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(SLOT_BYTES as usize);
    bytes.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    bytes.extend_from_slice(sealed);
    assert!(bytes.len() as u64 <= SLOT_BYTES, "a sealed page of 1024 extents fits a slot");
    bytes.resize(SLOT_BYTES as usize, 0);
    file.write_all_at(&bytes, u64::from(slot) * SLOT_BYTES)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(io_error("failed to sync folder", dir))
}
