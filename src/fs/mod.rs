//! The FUSE adapter: turns kernel requests into vault calls and errors into errnos.
//! It decides no policy and touches neither sled nor packs.

mod errno;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    consts, FileAttr, FileType, Filesystem, KernelConfig, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
};

use crate::chunkstore::{ChunkReader, Ticket};
use crate::tree::{Inode, NodeKind};
use crate::vault::read_sealed;
use crate::vault::{FsError, SealedExtents, SetAttr, Vault};

pub use errno::errno;

/// How long the kernel may cache names and attributes.
const TTL: Duration = Duration::from_secs(1);
/// Largest WRITE the kernel is asked to send: 1 MiB, the FUSE maximum of 256 pages.
const MAX_WRITE_BYTES: u32 = 1024 * 1024;

/// FUSE init flag (protocol 7.33): the daemon clears set-user-ID and set-group-ID
/// bits itself on writes that the kernel flags with [`FUSE_WRITE_KILL_SUIDGID`].
const FUSE_HANDLE_KILLPRIV_V2: u32 = 1 << 28;
/// FUSE write flag: clear the set-user-ID and set-group-ID bits of the file.
const FUSE_WRITE_KILL_SUIDGID: u32 = 1 << 2;

/// A FLUSH whose reply waits for the file's chunks to reach a pack.
type PendingFlush = (u64, Arc<Ticket>, ReplyEmpty);

/// A READ of a sealed file, served off the request loop.
struct SealedRead {
    ino: u64,
    offset: u64,
    size: u32,
    manifest: Arc<SealedExtents>,
    reader: ChunkReader,
    reply: ReplyData,
}

/// Threads serving READs of sealed files. A sealed file never changes, so its reads
/// can run in any order and in parallel, while the request loop goes on.
const READ_THREADS: usize = 2;

/// The filesystem handed to fuser.
pub struct WormFs {
    vault: Arc<Mutex<Vault>>,
    /// FLUSH replies wait here, on their own thread, so one file's close does not
    /// stop the request loop while its last chunks are compressed and sealed.
    flush_waiter: crossbeam_channel::Sender<PendingFlush>,
    sealed_reads: crossbeam_channel::Sender<SealedRead>,
}

impl WormFs {
    pub fn new(vault: Arc<Mutex<Vault>>) -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded::<PendingFlush>();
        std::thread::Builder::new()
            .name("wormvault-flush".into())
            .spawn(move || {
                for (ino, ticket, reply) in receiver {
                    match ticket.wait() {
                        Some(code) => reply.error(errno("flush", ino, FsError::Errno(code))),
                        None => reply.ok(),
                    }
                }
            })
            .expect("spawning the flush waiter");
        let (reads, queue) = crossbeam_channel::bounded::<SealedRead>(64);
        for number in 0..READ_THREADS {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("wormvault-reply-{number}"))
                .spawn(move || {
                    for read in queue {
                        match read_sealed(&read.reader, &read.manifest, read.offset, read.size) {
                            Ok(bytes) => read.reply.data(&bytes),
                            Err(error) => read.reply.error(errno("read", read.ino, FsError::Store(error))),
                        }
                    }
                })
                .expect("spawning a read thread");
        }
        WormFs { vault, flush_waiter: sender, sealed_reads: reads }
    }

    fn vault(&self) -> MutexGuard<'_, Vault> {
        self.vault.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH
    }
}

fn time_ns(value: TimeOrNow) -> i64 {
    let time = match value {
        TimeOrNow::SpecificTime(time) => time,
        TimeOrNow::Now => SystemTime::now(),
    };
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_nanos() as i64,
        Err(_) => 0,
    }
}

fn file_type(kind: NodeKind) -> FileType {
    match kind {
        NodeKind::File => FileType::RegularFile,
        NodeKind::Dir => FileType::Directory,
        NodeKind::Symlink => FileType::Symlink,
    }
}

/// Converts an inode to kernel attributes. `st_blocks` counts the logical size, so
/// `du` and `tar --sparse` see data where there is data.
fn attr(inode: &Inode) -> FileAttr {
    FileAttr {
        ino: inode.ino,
        size: inode.size,
        blocks: inode.size.div_ceil(512),
        atime: time(inode.atime_ns),
        mtime: time(inode.mtime_ns),
        ctime: time(inode.ctime_ns),
        crtime: time(inode.crtime_ns),
        kind: file_type(inode.kind),
        perm: inode.perm,
        nlink: 1,
        uid: inode.uid,
        gid: inode.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl Filesystem for WormFs {
    fn init(&mut self, _req: &Request<'_>, config: &mut KernelConfig) -> Result<(), libc::c_int> {
        // The write-back cache turns small writes (mongodump --gzip writes about 250
        // bytes at a time) into page-sized and larger WRITE requests.
        for capability in [consts::FUSE_WRITEBACK_CACHE, consts::FUSE_ATOMIC_O_TRUNC, consts::FUSE_BIG_WRITES] {
            if config.add_capabilities(capability).is_err() {
                log::warn!("kernel lacks a FUSE capability: capability={capability:#x}");
            }
        }
        // With this the kernel leaves clearing set-user-ID bits on write to the
        // daemon and marks inodes S_NOSEC, instead of asking for the
        // security.capability attribute before every write(2): at 250-byte writes
        // that round trip cost more than the write.
        if config.add_capabilities(FUSE_HANDLE_KILLPRIV_V2).is_err() {
            log::debug!("kernel lacks FUSE_HANDLE_KILLPRIV_V2; every write asks for security.capability");
        }
        let _ = config.set_max_write(MAX_WRITE_BYTES);
        let _ = config.set_max_readahead(MAX_WRITE_BYTES);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn destroy(&mut self) {
        if let Err(error) = self.vault().shutdown() {
            log::error!("final commit at unmount failed: error={error}");
        }
    }

    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        match self.vault().lookup(parent, name.as_bytes()) {
            Ok(inode) => reply.entry(&TTL, &attr(&inode), 0),
            Err(error) => reply.error(errno("lookup", parent, error)),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.vault().getattr(ino) {
            Ok(inode) => reply.attr(&TTL, &attr(&inode)),
            Err(error) => reply.error(errno("getattr", ino, error)),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let change = SetAttr { mode, uid, gid, size, atime_ns: atime.map(time_ns), mtime_ns: mtime.map(time_ns) };
        match self.vault().setattr(ino, change) {
            Ok(inode) => reply.attr(&TTL, &attr(&inode)),
            Err(error) => reply.error(errno("setattr", ino, error)),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        match self.vault().readlink(ino) {
            Ok(target) => reply.data(&target),
            Err(error) => reply.error(errno("readlink", ino, error)),
        }
    }

    fn mknod(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, mode: u32, _umask: u32, _rdev: u32, reply: ReplyEntry) {
        match self.vault().mknod(parent, name.as_bytes(), mode, req.uid(), req.gid()) {
            Ok(inode) => reply.entry(&TTL, &attr(&inode), 0),
            Err(error) => reply.error(errno("mknod", parent, error)),
        }
    }

    fn mkdir(&mut self, req: &Request<'_>, parent: u64, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        match self.vault().mkdir(parent, name.as_bytes(), mode, req.uid(), req.gid()) {
            Ok(inode) => reply.entry(&TTL, &attr(&inode), 0),
            Err(error) => reply.error(errno("mkdir", parent, error)),
        }
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        match self.vault().unlink(parent, name.as_bytes()) {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(errno("unlink", parent, error)),
        }
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        match self.vault().rmdir(parent, name.as_bytes()) {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(errno("rmdir", parent, error)),
        }
    }

    fn symlink(&mut self, req: &Request<'_>, parent: u64, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let target = target.as_os_str().as_bytes();
        match self.vault().symlink(parent, link_name.as_bytes(), target, req.uid(), req.gid()) {
            Ok(inode) => reply.entry(&TTL, &attr(&inode), 0),
            Err(error) => reply.error(errno("symlink", parent, error)),
        }
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        match self.vault().rename(parent, name.as_bytes(), newparent, newname.as_bytes(), flags) {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(errno("rename", parent, error)),
        }
    }

    fn link(&mut self, _req: &Request<'_>, ino: u64, _newparent: u64, _newname: &OsStr, reply: ReplyEntry) {
        let error = self.vault().link(ino);
        reply.error(errno("link", ino, error));
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        match self.vault().open(ino, flags) {
            Ok(fh) => reply.opened(fh, 0),
            Err(error) => reply.error(errno("open", ino, error)),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        if offset < 0 {
            reply.error(libc::EINVAL);
            return;
        }
        let mut vault = self.vault();
        match vault.sealed_read_plan(ino, fh) {
            Ok(Some((manifest, reader))) => {
                drop(vault);
                let read = SealedRead { ino, offset: offset as u64, size, manifest, reader, reply };
                self.sealed_reads.send(read).expect("read threads run until unmount");
            }
            Ok(None) => match vault.read(ino, fh, offset as u64, size) {
                Ok(bytes) => reply.data(&bytes),
                Err(error) => reply.error(errno("read", ino, error)),
            },
            Err(error) => reply.error(errno("read", ino, error)),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        if offset < 0 {
            reply.error(libc::EINVAL);
            return;
        }
        let mut vault = self.vault();
        if write_flags & FUSE_WRITE_KILL_SUIDGID != 0 {
            vault.clear_set_id_bits(ino);
        }
        match vault.write(ino, offset as u64, data) {
            Ok(written) => reply.written(written),
            Err(error) => reply.error(errno("write", ino, error)),
        }
    }

    fn flush(&mut self, _req: &Request<'_>, ino: u64, fh: u64, _lock_owner: u64, reply: ReplyEmpty) {
        let started = self.vault().flush_start(ino, fh);
        match started {
            Ok(Some(ticket)) => self.flush_waiter.send((ino, ticket, reply)).expect("the flush waiter runs until unmount"),
            Ok(None) => reply.ok(),
            Err(error) => reply.error(errno("flush", ino, error)),
        }
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        match self.vault().release(ino, fh) {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(errno("release", ino, error)),
        }
    }

    fn fsync(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        match self.vault().fsync() {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(errno("fsync", ino, error)),
        }
    }

    fn readdir(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, offset: i64, mut reply: ReplyDirectory) {
        let entries = match self.vault().readdir(ino, offset.max(0) as u64) {
            Ok(entries) => entries,
            Err(error) => return reply.error(errno("readdir", ino, error)),
        };
        for entry in entries {
            if reply.add(entry.ino, entry.cookie as i64, file_type(entry.kind), OsStr::from_bytes(&entry.name)) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        match self.vault().fsync() {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(errno("fsyncdir", ino, error)),
        }
    }

    fn statfs(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyStatfs) {
        match self.vault().statfs() {
            Ok(stats) => reply.statfs(
                stats.blocks,
                stats.blocks_free,
                stats.blocks_available,
                stats.files,
                stats.files_free,
                stats.block_size,
                stats.name_max,
                stats.block_size,
            ),
            Err(error) => reply.error(errno("statfs", ino, error)),
        }
    }

    fn setxattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        match self.vault().setxattr(ino, name.as_bytes(), value) {
            Ok(()) => reply.ok(),
            Err(error) => reply.error(errno("setxattr", ino, error)),
        }
    }

    fn getxattr(&mut self, _req: &Request<'_>, ino: u64, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.vault().getxattr(ino, name.as_bytes()) {
            Ok(value) if size == 0 => reply.size(value.len() as u32),
            Ok(value) if value.len() <= size as usize => reply.data(&value),
            Ok(_) => reply.error(libc::ERANGE),
            Err(error) => reply.error(errno("getxattr", ino, error)),
        }
    }

    fn listxattr(&mut self, _req: &Request<'_>, _ino: u64, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }

    fn removexattr(&mut self, _req: &Request<'_>, ino: u64, name: &OsStr, reply: ReplyEmpty) {
        let code = if name.as_bytes().starts_with(b"user.wormvault.") || name.as_bytes().starts_with(b"trusted.wormvault.") {
            libc::EPERM
        } else {
            libc::ENODATA
        };
        log::debug!("removexattr refused: ino={ino} errno={code}");
        reply.error(code);
    }

    fn create(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.vault().create(parent, name.as_bytes(), mode, flags, req.uid(), req.gid()) {
            Ok((inode, fh)) => reply.created(&TTL, &attr(&inode), 0, fh, 0),
            Err(error) => reply.error(errno("create", parent, error)),
        }
    }
}
