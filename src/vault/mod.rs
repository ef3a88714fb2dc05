//! The mounted store: namespace, files being written, commits and recovery.
//!
//! All state changes go to an in-memory overlay first. A commit hands every staged
//! byte to the chunk store, appends one sealed commit record holding the overlay's
//! final state, fsyncs the packs, and only then applies the record to the index.
//! So the index never refers to anything a power cut could lose, and a crash before
//! the fsync loses only the overlay: the last commit's state is what comes back.

mod ops;
mod recovery;
mod sealed;
pub mod check;
pub mod gc;
pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chunking::Chunker;
use crate::chunkstore::ChunkStore;
use crate::codec;
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::index::{Dirent, DirentKey, Index, IndexMarker};
use crate::retention::{Refusal, StoreClock};
use crate::staging::{Pipeline, StagedFile};
use crate::store::config::StoreSettings;
use crate::store::format::pack_file_name;
use crate::store::hoststate::HostState;
use crate::store::immutable;
use crate::store::lock::StoreLock;
use crate::store::pack::{PackReader, PackWriter};
use crate::store::StorePaths;
use crate::tree::{CommitRecord, FileState, Inode, Manifest, NodeKind, Op, ROOT_INO};
pub use sealed::SealedExtents;

/// Number of chunks written since the last commit that makes the next commit due
/// before the commit interval. A commit's record, index updates and lists grow with
/// its chunk count, so this bound keeps the daemon's memory flat at any ingest speed.
/// 16,384 chunks are about 256 MiB of data at the default average chunk size.
const COMMIT_CHUNKS: usize = 16_384;

/// Hands memory freed by a commit back to the kernel. glibc keeps freed blocks in
/// the arena of the thread that used them, so the transient buffers of each commit
/// would otherwise stay in the daemon's resident size.
fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

pub use ops::{read_sealed, DirEntry, SetAttr, StatFs};

/// Failure of a filesystem operation, mapped to an errno by the FUSE adapter.
#[derive(Debug)]
pub enum FsError {
    /// A plain errno with nothing to log (ENOENT, EEXIST, ENOTEMPTY, ...).
    Errno(i32),
    /// A write-once rule refused the operation: EPERM, logged as a refusal.
    Refused { op: &'static str, ino: u64, refusal: Refusal },
    /// The store failed.
    Store(Error),
}

impl From<Error> for FsError {
    fn from(error: Error) -> Self {
        FsError::Store(error)
    }
}

pub type FsResult<T> = std::result::Result<T, FsError>;

/// Mount-time settings of the daemon.
#[derive(Debug, Clone)]
pub struct MountSettings {
    /// Free space kept back on the backing filesystem: below it, creates and writable
    /// opens fail with ENOSPC at once, so data the kernel cached still has room.
    /// `None` means [`DEFAULT_RESERVE_BYTES`] or a tenth of the filesystem, if smaller.
    pub reserve_bytes: Option<u64>,
    /// A commit runs once this long has passed since the first uncommitted change.
    pub commit_interval: Duration,
    pub worker_threads: usize,
    /// Folder of the host state file; `None` means the default.
    pub state_dir: Option<std::path::PathBuf>,
    /// Owner and permission bits the root folder gets at mount, so an unprivileged
    /// backup user can write there.
    pub root_owner: Option<(u32, u32)>,
    pub root_mode: Option<u32>,
}

impl Default for MountSettings {
    fn default() -> Self {
        MountSettings {
            reserve_bytes: None,
            commit_interval: Duration::from_secs(5),
            worker_threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            state_dir: None,
            root_owner: None,
            root_mode: None,
        }
    }
}

/// Default space reserve. The kernel keeps at most about 1% of the machine's dirty
/// page limit for one FUSE mount (its per-device max_ratio), tens of MiB on a large
/// machine, so 256 MiB leaves room for that and for commit records.
pub const DEFAULT_RESERVE_BYTES: u64 = 256 * 1024 * 1024;

/// An unlocked store: what `init` and the key commands produce and `mount` consumes.
pub struct Unlocked {
    pub paths: StorePaths,
    /// Kept only by commands that wrap the key again (`key add`, `key passwd`);
    /// `mount` drops it after deriving the subkeys.
    pub master: Option<crate::crypto::MasterKey>,
    /// The key slot that the passphrase opened.
    pub slot_path: std::path::PathBuf,
    pub keys: Arc<Keys>,
    pub store_id: [u8; 16],
    pub settings: StoreSettings,
}

/// A file being written, with its open writable handles.
struct OpenWrite {
    file: StagedFile,
    writers: u32,
    /// Set at the first FLUSH on the last writable handle: the file takes no new
    /// writable opens or truncations from then on.
    closing: bool,
    unlinked: bool,
    /// Time of the last write, applied at seal unless a later SETATTR set mtime.
    written_ns: Option<i64>,
    /// Extents of this file known to the overlay or the index.
    recorded: usize,
    /// Whether any manifest change of this file was queued yet.
    ever_recorded: bool,
}

/// An open handle.
#[derive(Debug, Clone)]
struct Handle {
    ino: u64,
    writable: bool,
    manifest: Option<Arc<SealedExtents>>,
}

#[derive(Default)]
struct Overlay {
    inodes: HashMap<u64, Option<Inode>>,
    dirents: BTreeMap<DirentKey, OverlayDirent>,
    manifests: HashMap<u64, ManifestChange>,
}

/// A manifest change waiting for the next commit.
#[derive(Debug, Clone)]
enum ManifestChange {
    Put(Arc<Manifest>),
    /// Keep the first `keep` extents of the recorded manifest, then append `extents`.
    Extend { keep: usize, extents: Vec<crate::tree::Extent> },
    Delete,
}

#[derive(Debug, Clone)]
struct OverlayDirent {
    parent: u64,
    name: Vec<u8>,
    entry: Option<Dirent>,
}

pub struct Vault {
    paths: StorePaths,
    settings: StoreSettings,
    mount: MountSettings,
    keys: Arc<Keys>,
    index: Arc<Index>,
    chunks: ChunkStore,
    chunker: Chunker,
    overlay: Overlay,
    writes: HashMap<u64, OpenWrite>,
    handles: HashMap<u64, Handle>,
    next_handle: u64,
    marker: IndexMarker,
    clock: StoreClock,
    /// When the oldest uncommitted change was made.
    dirty_since: Option<Instant>,
    refusals: RefusalLog,
    host_state: HostState,
    metrics: crate::metrics::Metrics,
    /// Set after a host state write failed, so the warning is logged once.
    host_state_failed: bool,
    _lock: StoreLock,
}

impl Vault {
    /// Opens an unlocked store for mounting: takes the lock, rolls the index forward
    /// from the packs, and seals files that a crash left being written.
    pub fn open_store(unlocked: Unlocked, mount: MountSettings, purpose: &str) -> Result<Vault> {
        Self::open_store_with_progress(unlocked, mount, purpose, &mut |_, _| {})
    }

    /// Opens the store like [`Vault::open_store`], reporting (packs scanned, packs in
    /// all) while the index is rolled forward, which is long after an index rebuild.
    pub fn open_store_with_progress(
        unlocked: Unlocked,
        mount: MountSettings,
        purpose: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vault> {
        let Unlocked { paths, keys, store_id, settings, master, .. } = unlocked;
        drop(master);
        let lock = StoreLock::acquire(&paths.root, &paths.lock(), purpose)?;
        let index = Arc::new(Index::open(&paths.index(), keys.clone())?);
        let marker = recovery::roll_forward(&paths, &index, &keys, store_id, progress)?;
        let host_state = HostState::new(mount.state_dir.as_deref(), &store_id);
        check_rollback(&host_state, &keys, marker.seq)?;
        let packs = crate::store::pack::list_packs(&paths.packs())?;
        // Every existing pack is finished: each mount appends to a new one.
        for pack_no in &packs {
            immutable::seal_file(&paths.packs().join(pack_file_name(*pack_no)));
        }
        let last_pack = packs.last().copied();
        let writer = PackWriter::new(&paths.packs(), store_id, last_pack.map_or(0, |number| number + 1));
        let reader = PackReader::new(&paths.packs());
        let chunks = ChunkStore::start(keys.clone(), store_id, index.clone(), writer, reader, mount.worker_threads);
        let chunker = Chunker::new(keys.chunker.as_bytes(), settings.chunker);
        let clock = StoreClock::resume(marker.clock);
        let mut vault = Vault {
            paths,
            settings,
            mount,
            keys,
            index,
            chunks,
            chunker,
            overlay: Overlay::default(),
            writes: HashMap::new(),
            handles: HashMap::new(),
            next_handle: 1,
            marker,
            clock,
            dirty_since: None,
            refusals: RefusalLog::default(),
            host_state,
            metrics: crate::metrics::Metrics::default(),
            host_state_failed: false,
            _lock: lock,
        };
        vault.ensure_root()?;
        vault.apply_root_settings()?;
        vault.seal_interrupted()?;
        vault.commit()?;
        Ok(vault)
    }

    fn ensure_root(&mut self) -> Result<()> {
        if self.index.inode(ROOT_INO)?.is_some() {
            return Ok(());
        }
        let now = ops::now_ns();
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        self.put_inode(Inode {
            ino: ROOT_INO,
            kind: NodeKind::Dir,
            perm: 0o755,
            uid,
            gid,
            size: 0,
            atime_ns: now,
            mtime_ns: now,
            ctime_ns: now,
            crtime_ns: now,
            parent: ROOT_INO,
            state: FileState::Sealed { sealed_at: self.clock.now(), incomplete: false },
            retain_until: 0,
            hold: false,
            symlink_target: Vec::new(),
        });
        if self.marker.next_ino <= ROOT_INO {
            self.marker.next_ino = ROOT_INO + 1;
        }
        Ok(())
    }

    fn apply_root_settings(&mut self) -> Result<()> {
        let Some(mut root) = self.index.inode(ROOT_INO)?.or_else(|| self.overlay.inodes.get(&ROOT_INO).cloned().flatten()) else {
            return Ok(());
        };
        let before = root.clone();
        if let Some((uid, gid)) = self.mount.root_owner {
            root.uid = uid;
            root.gid = gid;
        }
        if let Some(mode) = self.mount.root_mode {
            root.perm = mode as u16;
        }
        if root != before {
            log::info!("root folder set: uid={} gid={} mode={:o}", root.uid, root.gid, root.perm);
            self.put_inode(root);
        }
        Ok(())
    }

    /// Seals, as incomplete at their durable length, the files a crash left open.
    fn seal_interrupted(&mut self) -> Result<()> {
        for ino in self.index.writing_inodes()? {
            let Some(mut inode) = self.index.inode(ino)? else { continue };
            // The writing tree only lists candidates; the sealed inode decides, so an
            // entry added there cannot reseal a file and reset its retention.
            if inode.state != FileState::Writing || inode.kind != NodeKind::File {
                log::warn!("writing entry for an inode that is not being written ignored: ino={ino}");
                continue;
            }
            let extents = self.index.manifest(ino)?.unwrap_or_default();
            let manifest = Manifest::new(extents);
            inode.size = manifest.len();
            let sealed_at = self.clock.now();
            inode.state = FileState::Sealed { sealed_at, incomplete: true };
            inode.retain_until = sealed_at + self.settings.retention_seconds as i64;
            log::warn!("file left open by a crash sealed as incomplete: ino={ino} size={}", inode.size);
            self.overlay.manifests.insert(ino, ManifestChange::Put(Arc::new(manifest)));
            self.put_inode(inode);
        }
        Ok(())
    }

    fn touch(&mut self) {
        self.dirty_since.get_or_insert_with(Instant::now);
    }

    /// Returns whether the commit interval has passed since the oldest uncommitted change.
    pub fn commit_due(&self) -> bool {
        self.dirty_since.is_some_and(|since| since.elapsed() >= self.mount.commit_interval)
            || self.chunks.uncommitted_count() >= COMMIT_CHUNKS
    }

    // --- overlay access -----------------------------------------------------------

    fn inode(&self, ino: u64) -> Result<Option<Inode>> {
        match self.overlay.inodes.get(&ino) {
            Some(entry) => Ok(entry.clone()),
            None => self.index.inode(ino),
        }
    }

    fn put_inode(&mut self, inode: Inode) {
        self.overlay.inodes.insert(inode.ino, Some(inode));
        self.touch();
    }

    fn delete_inode(&mut self, ino: u64) {
        self.overlay.inodes.insert(ino, None);
        self.overlay.manifests.insert(ino, ManifestChange::Delete);
        self.touch();
    }

    fn dirent(&self, parent: u64, name: &[u8]) -> Result<Option<Dirent>> {
        let key = self.index.dirent_key(parent, name);
        match self.overlay.dirents.get(&key) {
            Some(entry) => Ok(entry.entry.clone()),
            None => self.index.dirent(parent, name),
        }
    }

    fn put_dirent(&mut self, parent: u64, name: &[u8], ino: u64, kind: NodeKind) {
        let key = self.index.dirent_key(parent, name);
        let entry = Some(Dirent { name: name.to_vec(), ino, kind });
        self.overlay.dirents.insert(key, OverlayDirent { parent, name: name.to_vec(), entry });
        self.touch();
    }

    fn delete_dirent(&mut self, parent: u64, name: &[u8]) {
        let key = self.index.dirent_key(parent, name);
        self.overlay.dirents.insert(key, OverlayDirent { parent, name: name.to_vec(), entry: None });
        self.touch();
    }

    fn manifest(&self, ino: u64) -> Result<Arc<Manifest>> {
        let mut extents = self.index.manifest(ino)?.unwrap_or_default();
        match self.overlay.manifests.get(&ino) {
            Some(ManifestChange::Put(manifest)) => return Ok(manifest.clone()),
            Some(ManifestChange::Delete) => return Ok(Arc::default()),
            Some(ManifestChange::Extend { keep, extents: added }) => {
                extents.truncate(*keep);
                extents.extend_from_slice(added);
            }
            None => {}
        }
        Ok(Arc::new(Manifest::new(extents)))
    }

    /// Returns the extents of sealed file `ino` for reading: paged from the index when
    /// the file's manifest is committed and large, whole otherwise.
    fn sealed_extents(&self, ino: u64) -> Result<Arc<SealedExtents>> {
        if self.overlay.manifests.contains_key(&ino) {
            let manifest = Arc::unwrap_or_clone(self.manifest(ino)?);
            return Ok(Arc::new(SealedExtents::Whole(manifest)));
        }
        Ok(Arc::new(SealedExtents::load(&self.index, ino)?))
    }

    fn allocate_ino(&mut self) -> u64 {
        let ino = self.marker.next_ino.max(ROOT_INO + 1);
        self.marker.next_ino = ino + 1;
        self.touch();
        ino
    }

    // --- commit -------------------------------------------------------------------

    /// Makes every change so far durable. Files being written are recorded at their
    /// current length, so a crash later seals them there.
    pub fn commit(&mut self) -> Result<()> {
        let open: Vec<u64> = self.writes.keys().copied().collect();
        for ino in open {
            self.record_staged(ino)?;
        }
        if self.dirty_since.is_none() {
            return Ok(());
        }
        self.chunks.drain();
        for write in self.writes.values_mut() {
            if write.file.cut_at_lost(&self.chunks) {
                write.file.ticket.fail(libc::EIO);
            }
        }
        let record = CommitRecord {
            seq: self.marker.seq + 1,
            clock: self.clock.now(),
            next_ino: self.marker.next_ino,
            snapshot: false,
            ops: self.overlay_ops(),
        };
        let started = Instant::now();
        let (pack_no, offset) = self.chunks.append_commit(record.seq, false, &codec::encode(&record))?;
        let finished = self.chunks.sync()?;
        let synced = Instant::now();
        for pack_no in &finished {
            immutable::seal_file(&self.paths.packs().join(pack_file_name(*pack_no)));
        }
        let applied = self.chunks.uncommitted();
        let marker = IndexMarker { pack_no, offset, seq: record.seq, clock: record.clock, next_ino: record.next_ino };
        self.index.apply(&applied, &record, marker)?;
        let indexed = Instant::now();
        self.index.flush()?;
        let flushed = Instant::now();
        self.chunks.mark_applied(&applied);
        // The index now contains every recorded extent of the files being written, so
        // their memory can drop all but the last ones.
        for write in self.writes.values_mut() {
            if !write.unlinked {
                write.file.spill(write.recorded);
            }
        }
        self.marker = marker;
        self.overlay = Overlay::default();
        release_free_memory();
        self.dirty_since = None;
        self.metrics.commits += 1;
        if let Err(error) = self.host_state.write(&self.keys, record.seq) {
            if !self.host_state_failed {
                log::warn!("host state file not written, rollback of this store will go unnoticed: error={error}");
                self.host_state_failed = true;
            }
        }
        log::debug!(
            "commit done: seq={} ops={} chunks={} pack={pack_no:016x} finished_packs={} sync_ms={} index_ms={} flush_ms={}",
            record.seq,
            record.ops.len(),
            applied.len(),
            finished.len(),
            synced.duration_since(started).as_millis(),
            indexed.duration_since(synced).as_millis(),
            flushed.duration_since(indexed).as_millis(),
        );
        Ok(())
    }

    /// Puts what changed in a file being written, and its size, into the overlay.
    fn record_staged(&mut self, ino: u64) -> Result<()> {
        let pipeline = Pipeline { store: &self.chunks, chunker: &self.chunker, index: &self.index };
        let Some(write) = self.writes.get_mut(&ino) else { return Ok(()) };
        if write.unlinked {
            return Ok(());
        }
        write.file.settle(&pipeline)?;
        let size = write.file.size();
        if !self.record_manifest_delta(ino)? {
            return Ok(());
        }
        if let Some(mut inode) = self.inode(ino)? {
            inode.size = size;
            self.put_inode(inode);
        }
        Ok(())
    }

    /// Queues the extents of file `ino` that changed since they were last recorded;
    /// returns whether anything changed.
    fn record_manifest_delta(&mut self, ino: u64) -> Result<bool> {
        let pipeline = Pipeline { store: &self.chunks, chunker: &self.chunker, index: &self.index };
        let Some(write) = self.writes.get_mut(&ino) else { return Ok(false) };
        let keep = write.file.take_delta(write.recorded);
        let count = write.file.extent_count();
        let unchanged = keep == write.recorded && keep == count;
        write.recorded = count;
        if unchanged && self.overlay.manifests.contains_key(&ino) {
            return Ok(false);
        }
        if unchanged && write.ever_recorded {
            return Ok(false);
        }
        write.ever_recorded = true;
        let keep = match self.overlay.manifests.get(&ino) {
            Some(ManifestChange::Extend { keep: pending, .. }) => keep.min(*pending),
            Some(ManifestChange::Put(_)) | Some(ManifestChange::Delete) => 0,
            None => keep,
        };
        let extents = write.file.extents_from(&pipeline, keep)?;
        self.overlay.manifests.insert(ino, ManifestChange::Extend { keep, extents });
        self.touch();
        Ok(true)
    }

    fn overlay_ops(&self) -> Vec<Op> {
        let mut ops = Vec::new();
        for (ino, inode) in &self.overlay.inodes {
            ops.push(match inode {
                Some(inode) => Op::PutInode(inode.clone()),
                None => Op::DelInode(*ino),
            });
        }
        for dirent in self.overlay.dirents.values() {
            ops.push(match &dirent.entry {
                Some(entry) => Op::PutDirent { parent: dirent.parent, name: entry.name.clone(), ino: entry.ino, kind: entry.kind },
                None => Op::DelDirent { parent: dirent.parent, name: dirent.name.clone() },
            });
        }
        for (ino, manifest) in &self.overlay.manifests {
            ops.push(match manifest {
                ManifestChange::Put(manifest) => Op::PutManifest { ino: *ino, extents: manifest.extents.clone() },
                ManifestChange::Extend { keep, extents } => Op::ExtendManifest { ino: *ino, keep: *keep as u64, extents: extents.clone() },
                ManifestChange::Delete => Op::DelManifest(*ino),
            });
        }
        ops
    }

    /// Seals what is still open (after a forced unmount) and commits.
    pub fn shutdown(&mut self) -> Result<()> {
        let open: Vec<u64> = self.writes.keys().copied().collect();
        for ino in open {
            log::warn!("file still open at unmount sealed as incomplete: ino={ino}");
            if let Err(error) = self.seal(ino, true) {
                log::error!("sealing at unmount failed: ino={ino} error={error:?}");
            }
        }
        self.handles.clear();
        self.commit()?;
        if let Some(pack_no) = self.chunks.finish_pack()? {
            immutable::seal_file(&self.paths.packs().join(pack_file_name(pack_no)));
        }
        Ok(())
    }

    /// Logs a refusal (aggregating repeats) and returns it as an error.
    fn refuse(&mut self, op: &'static str, ino: u64, refusal: Refusal) -> FsError {
        self.refusals.record(op, ino, refusal);
        *self.metrics.refusals.entry(refusal.as_str()).or_default() += 1;
        FsError::Refused { op, ino, refusal }
    }

    /// Calls `visit(parent, entry)` for every entry reachable from the root in the
    /// index, folder by folder; entries only in the overlay are not visited.
    pub(crate) fn walk_index_tree(&self, mut visit: impl FnMut(u64, Dirent)) -> Result<()> {
        let mut folders = vec![ROOT_INO];
        while let Some(folder) = folders.pop() {
            let mut after = None;
            loop {
                let batch = self.index.dirents_after(folder, after.as_ref(), 256)?;
                let Some((last, _)) = batch.last() else { break };
                after = Some(*last);
                for (_, dirent) in batch {
                    if dirent.kind == NodeKind::Dir {
                        folders.push(dirent.ino);
                    }
                    visit(folder, dirent);
                }
            }
        }
        Ok(())
    }

    /// Returns the pack being appended to and its next offset.
    pub(crate) fn chunks_position(&self) -> (u64, u64) {
        self.chunks.position()
    }

    /// Renders the monitoring counters in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let counters = self.chunks.counters();
        let figures = crate::metrics::ChunkFigures {
            chunks_new: counters.chunks_new.load(Relaxed),
            chunks_deduplicated: counters.chunks_deduplicated.load(Relaxed),
            plain_bytes_new: counters.plain_bytes_new.load(Relaxed),
            sealed_bytes_new: counters.sealed_bytes_new.load(Relaxed),
        };
        crate::metrics::render(&self.metrics, figures)
    }

    /// Counts a failed periodic commit for the metrics.
    pub fn note_commit_failure(&mut self) {
        self.metrics.commit_failures += 1;
    }

    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn retention_seconds(&self) -> i64 {
        self.settings.retention_seconds as i64
    }
}

/// Rejects a store older than the commit the host state file records.
fn check_rollback(host_state: &HostState, keys: &Keys, seq: u64) -> Result<()> {
    if let Some(recorded) = host_state.read(keys)? {
        if recorded > seq {
            return Err(Error::Damaged {
                path: host_state.path().to_path_buf(),
                detail: format!(
                    "rollback detected: this host saw commit {recorded}, the store holds only up to {seq}; \
                     put back the newest copy of the store, or delete this file to accept the older state"
                ),
            });
        }
    }
    Ok(())
}

/// Refusal logging: each kind of refusal is logged at info level the first few times
/// in a minute, then counted, so an `rm -rf` over a million sealed files is a few lines.
#[derive(Default)]
struct RefusalLog {
    windows: HashMap<(&'static str, &'static str), (Instant, u64)>,
}

const REFUSALS_LOGGED_PER_MINUTE: u64 = 5;

impl RefusalLog {
    fn record(&mut self, op: &'static str, ino: u64, refusal: Refusal) {
        let key = (op, refusal.as_str());
        let now = Instant::now();
        let window = self.windows.entry(key).or_insert((now, 0));
        if now.duration_since(window.0) >= Duration::from_secs(60) {
            if window.1 > REFUSALS_LOGGED_PER_MINUTE {
                log::info!(
                    "refusals repeated: op={op} reason={} count={}",
                    refusal.as_str(),
                    window.1 - REFUSALS_LOGGED_PER_MINUTE
                );
            }
            *window = (now, 0);
        }
        window.1 += 1;
        if window.1 <= REFUSALS_LOGGED_PER_MINUTE {
            log::info!("refused: op={op} ino={ino} reason={}", refusal.as_str());
        }
    }
}
