//! Filesystem operations on the vault, one method per FUSE request, enforcing the
//! write-once rules. Each returns an [`FsError`] that the FUSE adapter maps to an errno.

use std::ops::Bound;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{FsError, FsResult, Handle, OpenWrite, SealedExtents, Vault};
use crate::chunkstore::ChunkReader;
use crate::error::Error;
use crate::index::{dirent_cookie, dirent_resume_key, Dirent, DirentKey};
use crate::retention::{self, Refusal};
use crate::staging::{Pipeline, StagedFile};
use crate::tree::{FileState, Inode, NodeKind, ROOT_INO};

/// Maximum length of a name component in bytes, as on Linux filesystems.
pub const NAME_MAX: usize = 255;
/// How far ahead of a read the prefetcher decrypts. The kernel reads ahead up to
/// 1 MiB on its own, so this keeps the next megabytes ready behind it.
const PREFETCH_BYTES: u64 = 4 * 1024 * 1024;
/// Entries fetched from the index per step of a listing.
const LIST_BATCH: usize = 128;

/// Attribute changes of a SETATTR request; times in nanoseconds since the epoch.
#[derive(Debug, Default, Clone)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime_ns: Option<i64>,
    pub mtime_ns: Option<i64>,
}

/// One entry of a listing; `cookie` is the offset that resumes after it.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub cookie: u64,
    pub ino: u64,
    pub kind: NodeKind,
    pub name: Vec<u8>,
}

/// Capacity figures for `statfs`, in blocks of `block_size` bytes.
#[derive(Debug, Clone, Copy)]
pub struct StatFs {
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
    pub block_size: u32,
    pub name_max: u32,
}

/// Wall-clock nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn check_name(name: &[u8]) -> FsResult<()> {
    if name.len() > NAME_MAX {
        return Err(FsError::Errno(libc::ENAMETOOLONG));
    }
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(FsError::Errno(libc::EINVAL));
    }
    Ok(())
}

fn is_writable(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
}

impl Vault {
    /// Returns the inode with the size of a file being written brought up to date.
    fn current(&self, ino: u64) -> FsResult<Inode> {
        let mut inode = self.inode(ino)?.ok_or(FsError::Errno(libc::ENOENT))?;
        if let Some(write) = self.writes.get(&ino) {
            inode.size = write.file.size();
        }
        Ok(inode)
    }

    fn directory(&self, ino: u64) -> FsResult<Inode> {
        let inode = self.current(ino)?;
        if inode.kind != NodeKind::Dir {
            return Err(FsError::Errno(libc::ENOTDIR));
        }
        Ok(inode)
    }

    /// Refuses new data while the backing disk is short of the reserve or degraded.
    fn check_writable(&self) -> FsResult<()> {
        if let Some(reason) = self.chunks.degraded() {
            log::debug!("write refused on degraded store: reason={reason}");
            return Err(FsError::Errno(libc::EROFS));
        }
        let stats = backing_stats(&self.paths.root)?;
        let reserve = self.reserve_bytes(&stats);
        if stats.available_bytes < reserve {
            log::warn!("create refused, backing disk below the reserve: available={} reserve={reserve}", stats.available_bytes);
            return Err(FsError::Errno(libc::ENOSPC));
        }
        Ok(())
    }

    fn reserve_bytes(&self, stats: &BackingStats) -> u64 {
        self.mount.reserve_bytes.unwrap_or_else(|| super::DEFAULT_RESERVE_BYTES.min(stats.blocks * stats.block_size / 10))
    }

    fn touch_dir(&mut self, ino: u64) -> FsResult<()> {
        let mut dir = self.directory(ino)?;
        let now = now_ns();
        dir.mtime_ns = now;
        dir.ctime_ns = now;
        self.put_inode(dir);
        Ok(())
    }

    fn new_inode(&mut self, parent: u64, kind: NodeKind, perm: u32, uid: u32, gid: u32) -> Inode {
        let now = now_ns();
        let ino = self.allocate_ino();
        Inode {
            ino,
            kind,
            perm: (perm & 0o7777) as u16,
            uid,
            gid,
            size: 0,
            atime_ns: now,
            mtime_ns: now,
            ctime_ns: now,
            crtime_ns: now,
            parent,
            state: FileState::Writing,
            retain_until: 0,
            hold: false,
            symlink_target: Vec::new(),
        }
    }

    fn seal_inode(&self, inode: &mut Inode, incomplete: bool) {
        let sealed_at = self.clock.now();
        inode.state = FileState::Sealed { sealed_at, incomplete };
        inode.retain_until = sealed_at + self.retention_seconds();
    }

    fn new_handle(&mut self, ino: u64, writable: bool, manifest: Option<Arc<SealedExtents>>) -> u64 {
        let fh = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(fh, Handle { ino, writable, manifest });
        fh
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> FsResult<Inode> {
        if name.len() > NAME_MAX {
            return Err(FsError::Errno(libc::ENAMETOOLONG));
        }
        self.directory(parent)?;
        let dirent = self.dirent(parent, name)?.ok_or(FsError::Errno(libc::ENOENT))?;
        self.current(dirent.ino)
    }

    pub fn getattr(&self, ino: u64) -> FsResult<Inode> {
        self.current(ino)
    }

    pub fn setattr(&mut self, ino: u64, change: SetAttr) -> FsResult<Inode> {
        let mut inode = self.current(ino)?;
        if let Some(size) = change.size {
            if inode.kind != NodeKind::File {
                return Err(FsError::Errno(libc::EISDIR));
            }
            let pipeline = Pipeline { store: &self.chunks, chunker: &self.chunker, index: &self.index };
            match self.writes.get_mut(&ino) {
                Some(write) if write.closing => return Err(self.refuse("truncate", ino, Refusal::Closing)),
                Some(write) => {
                    write.file.truncate(&pipeline, size)?;
                    write.written_ns = Some(now_ns());
                    inode.size = size;
                }
                None if size == inode.size => {}
                None => return Err(self.refuse("truncate", ino, Refusal::Sealed)),
            }
        }
        if let Some(mode) = change.mode {
            inode.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = change.uid {
            inode.uid = uid;
        }
        if let Some(gid) = change.gid {
            inode.gid = gid;
        }
        if let Some(atime) = change.atime_ns {
            inode.atime_ns = atime;
        }
        if let Some(mtime) = change.mtime_ns {
            inode.mtime_ns = mtime;
            if let Some(write) = self.writes.get_mut(&ino) {
                write.written_ns = None;
            }
        }
        inode.ctime_ns = now_ns();
        self.put_inode(inode.clone());
        Ok(inode)
    }

    pub fn mkdir(&mut self, parent: u64, name: &[u8], perm: u32, uid: u32, gid: u32) -> FsResult<Inode> {
        check_name(name)?;
        self.directory(parent)?;
        if self.dirent(parent, name)?.is_some() {
            return Err(FsError::Errno(libc::EEXIST));
        }
        let mut inode = self.new_inode(parent, NodeKind::Dir, perm, uid, gid);
        inode.state = FileState::Sealed { sealed_at: self.clock.now(), incomplete: false };
        self.put_dirent(parent, name, inode.ino, NodeKind::Dir);
        self.put_inode(inode.clone());
        self.touch_dir(parent)?;
        Ok(inode)
    }

    /// Makes a symbolic link. A link is sealed at birth: its target never changes, and
    /// deleting it waits for retention like a file.
    pub fn symlink(&mut self, parent: u64, name: &[u8], target: &[u8], uid: u32, gid: u32) -> FsResult<Inode> {
        check_name(name)?;
        self.directory(parent)?;
        if self.dirent(parent, name)?.is_some() {
            return Err(FsError::Errno(libc::EEXIST));
        }
        self.check_writable()?;
        let mut inode = self.new_inode(parent, NodeKind::Symlink, 0o777, uid, gid);
        inode.symlink_target = target.to_vec();
        inode.size = target.len() as u64;
        self.seal_inode(&mut inode, false);
        self.put_dirent(parent, name, inode.ino, NodeKind::Symlink);
        self.put_inode(inode.clone());
        self.touch_dir(parent)?;
        Ok(inode)
    }

    pub fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        let inode = self.current(ino)?;
        if inode.kind != NodeKind::Symlink {
            return Err(FsError::Errno(libc::EINVAL));
        }
        Ok(inode.symlink_target)
    }

    /// MKNOD: a regular file becomes an empty sealed file; FIFOs and devices are refused.
    pub fn mknod(&mut self, parent: u64, name: &[u8], mode: u32, uid: u32, gid: u32) -> FsResult<Inode> {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return Err(self.refuse("mknod", parent, Refusal::SpecialFile));
        }
        let (inode, fh) = self.create(parent, name, mode, libc::O_RDONLY | libc::O_EXCL, uid, gid)?;
        self.release(inode.ino, fh)?;
        self.current(inode.ino)
    }

    pub fn create(&mut self, parent: u64, name: &[u8], mode: u32, flags: i32, uid: u32, gid: u32) -> FsResult<(Inode, u64)> {
        check_name(name)?;
        self.directory(parent)?;
        if flags & libc::O_TMPFILE == libc::O_TMPFILE {
            return Err(FsError::Errno(libc::EOPNOTSUPP));
        }
        if let Some(existing) = self.dirent(parent, name)? {
            if flags & libc::O_EXCL != 0 {
                return Err(FsError::Errno(libc::EEXIST));
            }
            let fh = self.open(existing.ino, flags)?;
            return Ok((self.current(existing.ino)?, fh));
        }
        self.check_writable()?;
        let inode = self.new_inode(parent, NodeKind::File, mode, uid, gid);
        let ino = inode.ino;
        self.put_dirent(parent, name, ino, NodeKind::File);
        self.put_inode(inode.clone());
        self.touch_dir(parent)?;
        let writable = is_writable(flags);
        self.writes.insert(
            ino,
            OpenWrite {
                file: StagedFile::new(ino),
                writers: 1,
                closing: false,
                unlinked: false,
                written_ns: None,
                recorded: 0,
                ever_recorded: false,
            },
        );
        let fh = self.new_handle(ino, true, None);
        if !writable {
            // A read-only create makes an empty file that no handle can write: seal it
            // now, while the handle stays open for reading.
            self.handles.get_mut(&fh).expect("handle was just made").writable = false;
            self.seal(ino, false)?;
        }
        Ok((inode, fh))
    }

    pub fn open(&mut self, ino: u64, flags: i32) -> FsResult<u64> {
        let inode = self.current(ino)?;
        let writable = is_writable(flags);
        let truncate = flags & libc::O_TRUNC != 0;
        if inode.kind == NodeKind::Dir {
            return if writable { Err(FsError::Errno(libc::EISDIR)) } else { Ok(self.new_handle(ino, false, None)) };
        }
        if writable || truncate {
            if inode.kind != NodeKind::File {
                return Err(self.refuse("open", ino, Refusal::Sealed));
            }
            let pipeline = Pipeline { store: &self.chunks, chunker: &self.chunker, index: &self.index };
            match self.writes.get_mut(&ino) {
                Some(write) if write.closing => return Err(self.refuse("open", ino, Refusal::Closing)),
                Some(write) => {
                    if truncate {
                        write.file.truncate(&pipeline, 0)?;
                        write.written_ns = Some(now_ns());
                    }
                    if writable {
                        write.writers += 1;
                    }
                    self.touch();
                }
                None => return Err(self.refuse("open", ino, Refusal::Sealed)),
            }
            return Ok(self.new_handle(ino, writable, None));
        }
        let manifest = if self.writes.contains_key(&ino) { None } else { Some(self.sealed_extents(ino)?) };
        Ok(self.new_handle(ino, false, manifest))
    }

    pub fn read(&mut self, ino: u64, fh: u64, offset: u64, len: u32) -> FsResult<Vec<u8>> {
        let pipeline = Pipeline { store: &self.chunks, chunker: &self.chunker, index: &self.index };
        if let Some(write) = self.writes.get(&ino) {
            return Ok(write.file.read(&pipeline, offset, len as usize)?);
        }
        let Some((manifest, _)) = self.sealed_read_plan(ino, fh)? else {
            return Err(FsError::Errno(libc::EIO));
        };
        let reader = self.chunks.reader();
        Ok(read_sealed(&reader, &manifest, offset, len)?)
    }

    /// Returns what a read of `ino` through `fh` needs to run without the vault's
    /// lock: the manifest of the sealed file and a chunk reader. `None` means the file
    /// is being written and must be read under the lock with [`Vault::read`].
    pub fn sealed_read_plan(&mut self, ino: u64, fh: u64) -> FsResult<Option<(Arc<SealedExtents>, ChunkReader)>> {
        if self.writes.contains_key(&ino) {
            return Ok(None);
        }
        let manifest = match self.handles.get(&fh).and_then(|handle| handle.manifest.clone()) {
            Some(manifest) if manifest.len() == self.current(ino)?.size => manifest,
            _ => {
                let manifest = self.sealed_extents(ino)?;
                if let Some(handle) = self.handles.get_mut(&fh) {
                    handle.manifest = Some(manifest.clone());
                }
                manifest
            }
        };
        Ok(Some((manifest, self.chunks.reader())))
    }

    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let pipeline = Pipeline { store: &self.chunks, chunker: &self.chunker, index: &self.index };
        let Some(write) = self.writes.get_mut(&ino) else {
            return Err(self.refuse("write", ino, Refusal::Sealed));
        };
        if let Some(errno) = write.file.ticket.error() {
            return Err(FsError::Errno(errno));
        }
        write.file.write(&pipeline, offset, data)?;
        write.written_ns = Some(now_ns());
        self.metrics.bytes_written += data.len() as u64;
        self.touch();
        Ok(data.len() as u32)
    }

    /// Clears the set-user-ID and set-group-ID bits, as a write by another user does.
    pub fn clear_set_id_bits(&mut self, ino: u64) {
        if let Ok(mut inode) = self.current(ino) {
            if inode.perm & 0o6000 != 0 {
                inode.perm &= !0o6000;
                self.put_inode(inode);
            }
        }
    }

    /// FLUSH: hands the data received so far to the store, waits until it is in a
    /// pack, and returns any failure, so `close()` reports it.
    pub fn flush(&mut self, ino: u64, fh: u64) -> FsResult<()> {
        match self.flush_start(ino, fh)? {
            Some(ticket) => match ticket.wait() {
                Some(errno) => Err(FsError::Errno(errno)),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// The first half of FLUSH: hands the data over and returns the ticket to wait on,
    /// so the FUSE adapter can wait off the request loop while other requests go on.
    pub fn flush_start(&mut self, ino: u64, fh: u64) -> FsResult<Option<Arc<crate::chunkstore::Ticket>>> {
        let writable = self.handles.get(&fh).is_some_and(|handle| handle.writable);
        let pipeline = Pipeline { store: &self.chunks, chunker: &self.chunker, index: &self.index };
        let Some(write) = self.writes.get_mut(&ino) else { return Ok(None) };
        if !writable {
            return Ok(None);
        }
        if write.writers == 1 {
            write.closing = true;
        }
        write.file.settle(&pipeline)?;
        Ok(Some(write.file.ticket.clone()))
    }

    /// RELEASE: the last writable handle of a file seals it.
    pub fn release(&mut self, ino: u64, fh: u64) -> FsResult<()> {
        let Some(handle) = self.handles.remove(&fh) else {
            log::warn!("release of unknown file handle: ino={ino} fh={fh}");
            return Err(FsError::Errno(libc::EBADF));
        };
        if handle.ino != ino {
            log::warn!("release names another inode than its handle: ino={ino} handle_ino={} fh={fh}", handle.ino);
        }
        if !handle.writable {
            return Ok(());
        }
        let Some(write) = self.writes.get_mut(&ino) else { return Ok(()) };
        write.writers = write.writers.saturating_sub(1);
        if write.writers == 0 {
            self.seal(ino, false)?;
        }
        Ok(())
    }

    /// Seals a file: its bytes become a manifest and retention starts.
    pub(super) fn seal(&mut self, ino: u64, force_incomplete: bool) -> FsResult<()> {
        if self.writes.get(&ino).is_some_and(|write| write.unlinked) {
            self.writes.remove(&ino);
            self.delete_inode(ino);
            return Ok(());
        }
        let pipeline = Pipeline { store: &self.chunks, chunker: &self.chunker, index: &self.index };
        let Some(write) = self.writes.get_mut(&ino) else { return Ok(()) };
        let settle_failed = write.file.settle(&pipeline).is_err();
        let write_failed = write.file.ticket.wait().is_some();
        let lost = write.file.cut_at_lost(&self.chunks);
        let settle_failed = settle_failed || write.file.settle(&pipeline).is_err();
        self.record_manifest_delta(ino)?;
        let write = self.writes.remove(&ino).expect("the file was just looked up");
        let incomplete = force_incomplete || settle_failed || write_failed || lost;
        let mut inode = self.inode(ino)?.ok_or(FsError::Errno(libc::ENOENT))?;
        inode.size = write.file.stored_len();
        if let Some(written) = write.written_ns {
            inode.mtime_ns = written;
            inode.ctime_ns = written;
        }
        self.seal_inode(&mut inode, incomplete);
        self.metrics.files_sealed += 1;
        if incomplete {
            self.metrics.files_incomplete += 1;
            log::warn!("file sealed incomplete: ino={ino} stored_bytes={}", inode.size);
        } else {
            log::debug!("file sealed: ino={ino} bytes={} extents={}", inode.size, write.file.extent_count());
        }
        self.put_inode(inode);
        Ok(())
    }

    /// FSYNC on a file or folder: commits the whole store.
    pub fn fsync(&mut self) -> FsResult<()> {
        self.commit()?;
        Ok(())
    }

    pub fn unlink(&mut self, parent: u64, name: &[u8]) -> FsResult<()> {
        let dirent = self.dirent(parent, name)?.ok_or(FsError::Errno(libc::ENOENT))?;
        if dirent.kind == NodeKind::Dir {
            return Err(FsError::Errno(libc::EISDIR));
        }
        let ino = dirent.ino;
        if let Some(write) = self.writes.get_mut(&ino) {
            if write.closing {
                return Err(self.refuse("unlink", ino, Refusal::Closing));
            }
            write.unlinked = true;
        } else {
            let inode = self.current(ino)?;
            if let Err(refusal) = retention::may_delete(&inode, self.clock.now()) {
                return Err(self.refuse("unlink", ino, refusal));
            }
            self.delete_inode(ino);
        }
        self.delete_dirent(parent, name);
        self.touch_dir(parent)?;
        Ok(())
    }

    pub fn rmdir(&mut self, parent: u64, name: &[u8]) -> FsResult<()> {
        let dirent = self.dirent(parent, name)?.ok_or(FsError::Errno(libc::ENOENT))?;
        if dirent.kind != NodeKind::Dir {
            return Err(FsError::Errno(libc::ENOTDIR));
        }
        if !self.list_dir(dirent.ino, None, 1)?.is_empty() {
            return Err(FsError::Errno(libc::ENOTEMPTY));
        }
        self.delete_dirent(parent, name);
        self.delete_inode(dirent.ino);
        self.touch_dir(parent)?;
        Ok(())
    }

    pub fn rename(&mut self, parent: u64, name: &[u8], new_parent: u64, new_name: &[u8], flags: u32) -> FsResult<()> {
        let dirent = self.dirent(parent, name)?.ok_or(FsError::Errno(libc::ENOENT))?;
        if flags & (libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT) != 0 {
            return Err(self.refuse("rename", dirent.ino, Refusal::Replace));
        }
        check_name(new_name)?;
        self.directory(new_parent)?;
        if let Some(existing) = self.dirent(new_parent, new_name)? {
            if existing.ino == dirent.ino {
                return Ok(());
            }
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(FsError::Errno(libc::EEXIST));
            }
            return Err(self.refuse("rename", existing.ino, Refusal::Replace));
        }
        if dirent.kind == NodeKind::Dir {
            let mut cursor = new_parent;
            loop {
                if cursor == dirent.ino {
                    return Err(FsError::Errno(libc::EINVAL));
                }
                if cursor == ROOT_INO {
                    break;
                }
                cursor = self.current(cursor)?.parent;
            }
        }
        let mut inode = self.current(dirent.ino)?;
        inode.parent = new_parent;
        inode.ctime_ns = now_ns();
        self.delete_dirent(parent, name);
        self.put_dirent(new_parent, new_name, dirent.ino, dirent.kind);
        self.put_inode(inode);
        self.touch_dir(parent)?;
        if new_parent != parent {
            self.touch_dir(new_parent)?;
        }
        Ok(())
    }

    /// LINK is refused: a second name could outlive the retention checks of the first.
    pub fn link(&mut self, ino: u64) -> FsError {
        self.refuse("link", ino, Refusal::Link)
    }

    /// Lists folder `ino` after readdir offset `offset` (0 starts, 1 and 2 are `.`, `..`).
    pub fn readdir(&self, ino: u64, offset: u64) -> FsResult<Vec<DirEntry>> {
        let dir = self.directory(ino)?;
        let mut out = Vec::new();
        if offset < 1 {
            out.push(DirEntry { cookie: 1, ino, kind: NodeKind::Dir, name: b".".to_vec() });
        }
        if offset < 2 {
            out.push(DirEntry { cookie: 2, ino: dir.parent, kind: NodeKind::Dir, name: b"..".to_vec() });
        }
        let after = (offset > 2).then(|| dirent_resume_key(&self.keys, ino, offset));
        for (key, dirent) in self.list_dir(ino, after.as_ref(), LIST_BATCH)? {
            out.push(DirEntry { cookie: dirent_cookie(&key), ino: dirent.ino, kind: dirent.kind, name: dirent.name });
        }
        Ok(out)
    }

    /// Lists entries of `parent` after key `after`, merging the index with the overlay.
    /// Returns an empty list only when there are no more entries.
    fn list_dir(&self, parent: u64, after: Option<&DirentKey>, limit: usize) -> FsResult<Vec<(DirentKey, Dirent)>> {
        let (low, high) = self.index.dir_bounds(parent);
        let mut cursor = after.copied().unwrap_or(low);
        loop {
            let stored = self.index.dirents_after(parent, Some(&cursor), limit)?;
            let exhausted = stored.len() < limit;
            let bound = if exhausted { high } else { stored.last().expect("a full batch is not empty").0 };
            let mut merged: std::collections::BTreeMap<DirentKey, Option<Dirent>> =
                stored.into_iter().map(|(key, dirent)| (key, Some(dirent))).collect();
            for (key, entry) in self.overlay.dirents.range((Bound::Excluded(cursor), Bound::Included(bound))) {
                merged.insert(*key, entry.entry.clone());
            }
            let out: Vec<(DirentKey, Dirent)> =
                merged.into_iter().filter_map(|(key, entry)| entry.map(|dirent| (key, dirent))).take(limit).collect();
            if !out.is_empty() || exhausted {
                return Ok(out);
            }
            cursor = bound;
        }
    }

    pub fn statfs(&self) -> FsResult<StatFs> {
        let stats = backing_stats(&self.paths.root)?;
        let reserve_blocks = self.reserve_bytes(&stats) / stats.block_size;
        Ok(StatFs {
            blocks: stats.blocks,
            blocks_free: stats.blocks_free.saturating_sub(reserve_blocks),
            blocks_available: stats.blocks_available.saturating_sub(reserve_blocks),
            files: stats.files.max(1 << 20),
            files_free: if stats.files == 0 { 1 << 20 } else { stats.files_free },
            block_size: stats.block_size as u32,
            name_max: NAME_MAX as u32,
        })
    }

    /// Reads a virtual attribute `user.wormvault.*`; they are not listed by LISTXATTR,
    /// so copies with `cp -a` or `rsync -X` do not carry them.
    pub fn getxattr(&self, ino: u64, name: &[u8]) -> FsResult<Vec<u8>> {
        let inode = self.current(ino)?;
        let no_data = FsError::Errno(libc::ENODATA);
        let value = match name {
            b"user.wormvault.sealed_at" => retention::format_time(inode.sealed_at().ok_or(no_data)?),
            b"user.wormvault.retain_until" if inode.retain_until > 0 => retention::format_time(inode.retain_until),
            b"user.wormvault.hold" => u8::from(inode.hold).to_string(),
            b"user.wormvault.incomplete" => u8::from(inode.incomplete()).to_string(),
            _ => return Err(no_data),
        };
        Ok(value.into_bytes())
    }

    /// Sets `trusted.wormvault.retain_until` (extension only) or `trusted.wormvault.hold`.
    /// The kernel lets only CAP_SYS_ADMIN set `trusted.*` names.
    pub fn setxattr(&mut self, ino: u64, name: &[u8], value: &[u8]) -> FsResult<()> {
        let mut inode = self.current(ino)?;
        let text = std::str::from_utf8(value).map_err(|_| FsError::Errno(libc::EINVAL))?;
        match name {
            b"trusted.wormvault.retain_until" => {
                if !inode.is_sealed() || inode.kind == NodeKind::Dir {
                    return Err(FsError::Errno(libc::EINVAL));
                }
                let requested = retention::parse_time(text).map_err(|_| FsError::Errno(libc::EINVAL))?;
                match retention::extend_retention(&inode, requested) {
                    Ok(until) => inode.retain_until = until,
                    Err(refusal) => return Err(self.refuse("setxattr", ino, refusal)),
                }
                log::info!("retention extended: ino={ino} retain_until={}", retention::format_time(inode.retain_until));
            }
            b"trusted.wormvault.hold" => {
                inode.hold = match text.trim() {
                    "1" => true,
                    "0" => false,
                    _ => return Err(FsError::Errno(libc::EINVAL)),
                };
                log::info!("legal hold changed: ino={ino} hold={}", inode.hold);
            }
            _ if name.starts_with(b"user.wormvault.") => return Err(FsError::Errno(libc::EPERM)),
            _ => return Err(FsError::Errno(libc::EOPNOTSUPP)),
        }
        self.put_inode(inode);
        Ok(())
    }
}

/// Reads `len` bytes at `offset` of a sealed file, then queues the chunks of the next
/// [`PREFETCH_BYTES`], so a sequential reader finds them decrypted.
pub fn read_sealed(reader: &ChunkReader, manifest: &SealedExtents, offset: u64, len: u32) -> Result<Vec<u8>, Error> {
    let bytes = read_manifest(reader, manifest, offset, len as usize)?;
    let end = offset + bytes.len() as u64;
    let mut ids = Vec::new();
    manifest.for_each_in(end, end + PREFETCH_BYTES, &mut |_, extent| {
        ids.extend(extent.chunk);
        Ok(())
    })?;
    if !ids.is_empty() {
        reader.prefetch(&ids);
    }
    Ok(bytes)
}

/// Reads `len` bytes at `offset` from a sealed file's extents.
fn read_manifest(chunks: &ChunkReader, manifest: &SealedExtents, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
    let end = manifest.len().min(offset + len as u64);
    if offset >= end {
        return Ok(Vec::new());
    }
    let mut out = vec![0u8; (end - offset) as usize];
    manifest.for_each_in(offset, end, &mut |start, extent| {
        if let Some(id) = &extent.chunk {
            let plain = chunks.get(id)?;
            if plain.len() as u64 != extent.len {
                return Err(Error::ChunkAuthenticationFailed { chunk: *id, pack: u64::MAX, offset: start });
            }
            let low = start.max(offset);
            let high = (start + extent.len).min(end);
            out[(low - offset) as usize..(high - offset) as usize]
                .copy_from_slice(&plain[(low - start) as usize..(high - start) as usize]);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Capacity of the backing filesystem.
pub(super) struct BackingStats {
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
    pub block_size: u64,
    pub available_bytes: u64,
}

pub(super) fn backing_stats(root: &std::path::Path) -> Result<BackingStats, Error> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(root.as_os_str().as_bytes()).expect("store paths have no NUL byte");
    // SAFETY: statvfs writes into the zeroed struct; the path is a valid C string.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stats) };
    if rc != 0 {
        return Err(Error::io("failed to statfs", root, std::io::Error::last_os_error()));
    }
    let block_size = (stats.f_frsize as u64).max(1);
    Ok(BackingStats {
        blocks: stats.f_blocks as u64,
        blocks_free: stats.f_bfree as u64,
        blocks_available: stats.f_bavail as u64,
        files: stats.f_files as u64,
        files_free: stats.f_ffree as u64,
        block_size,
        available_bytes: stats.f_bavail as u64 * block_size,
    })
}
