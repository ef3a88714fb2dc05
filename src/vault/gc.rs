//! `wormvault gc`: deletes packs that hold no chunk any file still uses.
//!
//! Only whole packs are deleted, and only when every chunk in them is unused: a pack
//! that holds one chunk of a retained file keeps its immutable attribute, so data
//! inside retention is never rewritten or moved. Before any pack goes, a snapshot
//! record of the whole namespace is made durable, so a later index rebuild no longer
//! needs the commit records inside the deleted packs.
//!
//! Interrupted at any point, the store stays consistent: before the snapshot nothing
//! changed; after it, unused packs are merely still there, and the next run deletes
//! them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::codec;
use crate::crypto::ChunkId;
use crate::error::{Error, Result};
use crate::index::IndexMarker;
use crate::store::format::pack_file_name;
use crate::store::immutable;
use crate::store::pack::list_packs;
use crate::tree::{CommitRecord, Op};
use crate::unlock::unlock_store;

use super::{MountSettings, Vault};

/// Counts of what one collection deleted and kept.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    pub packs_deleted: u64,
    pub bytes_reclaimed: u64,
    /// Packs kept because they hold a chunk that a file still uses.
    pub packs_kept: u64,
}

/// Largest namespace a snapshot record may hold: it is one sealed frame.
const SNAPSHOT_LIMIT_BYTES: usize = 60 * 1024 * 1024;

/// Runs a collection on the store at `root` (it must not be mounted).
/// `progress` is called with (packs scanned, packs in all) while the store is opened.
pub fn collect_garbage(root: &Path, passphrase: &[u8], progress: &mut dyn FnMut(u64, u64)) -> Result<GcReport> {
    let unlocked = unlock_store(root, passphrase)?;
    let settings = MountSettings { worker_threads: 1, ..MountSettings::default() };
    let mut vault = Vault::open_store_with_progress(unlocked, settings, "gc", progress)?;
    let packs_dir = vault.paths.packs();
    let Marked { unused, mut located, kept } = mark(&vault)?;
    let mut report = GcReport { packs_kept: kept, ..GcReport::default() };
    if unused.is_empty() {
        return Ok(report);
    }

    write_snapshot(&mut vault)?;

    for pack_no in unused {
        let path = packs_dir.join(pack_file_name(pack_no));
        let ids = located.remove(&pack_no).unwrap_or_default();
        vault.index.remove_chunks(&ids)?;
        vault.index.flush()?;
        let size = std::fs::metadata(&path).map(|metadata| metadata.len()).unwrap_or(0);
        immutable::set_immutable(&path, false).map_err(|source| Error::io("failed to clear the immutable attribute of", &path, source))?;
        std::fs::remove_file(&path).map_err(|source| Error::io("failed to delete pack", &path, source))?;
        log::info!("unused pack deleted: pack={pack_no:016x} bytes={size} chunks={}", ids.len());
        report.packs_deleted += 1;
        report.bytes_reclaimed += size;
    }
    crate::store::sync_dir(&packs_dir)?;
    Ok(report)
}

/// The result of the mark phase.
pub(crate) struct Marked {
    /// Finished packs that hold no chunk any file uses, ascending.
    pub unused: Vec<u64>,
    /// Unused chunks, by the pack that contains them.
    pub located: HashMap<u64, Vec<ChunkId>>,
    /// Packs kept because a file uses one of their chunks.
    pub kept: u64,
}

/// Finds the packs no file uses. The pack an open vault may write to is never one.
pub(crate) fn mark(vault: &Vault) -> Result<Marked> {
    let mut live: HashSet<ChunkId> = HashSet::new();
    for manifest in vault.index.all_manifests() {
        let (_, extents) = manifest?;
        live.extend(extents.into_iter().filter_map(|extent| extent.chunk));
    }
    let mut located: HashMap<u64, Vec<ChunkId>> = HashMap::new();
    let mut used_packs: HashSet<u64> = HashSet::new();
    let mut live_located = 0usize;
    for (id, location) in vault.index.all_chunks()? {
        if live.contains(&id) {
            used_packs.insert(location.pack_no);
            live_located += 1;
        } else {
            located.entry(location.pack_no).or_default().push(id);
        }
    }
    // Without a location for every chunk in use, a pack holding one of them could look
    // unused; deleting nothing is the only safe choice then.
    if live_located < live.len() {
        return Err(Error::Invalid {
            what: "index",
            detail: format!(
                "{} chunks that files use have no location in the index; run `wormvault check` and \
                 `wormvault repair --rebuild-index` before gc",
                live.len() - live_located
            ),
        });
    }
    let (current_pack, _) = vault.chunks_position();
    let mut marked = Marked { unused: Vec::new(), located, kept: 0 };
    for pack_no in list_packs(&vault.paths.packs())? {
        if pack_no >= current_pack {
            continue;
        }
        if used_packs.contains(&pack_no) {
            marked.kept += 1;
        } else {
            marked.unused.push(pack_no);
        }
    }
    Ok(marked)
}

/// Appends a snapshot of the whole namespace and makes it durable.
fn write_snapshot(vault: &mut Vault) -> Result<()> {
    vault.commit()?;
    let mut ops = Vec::new();
    vault.walk_index_tree(|parent, dirent| {
        ops.push(Op::PutDirent { parent, name: dirent.name, ino: dirent.ino, kind: dirent.kind });
    })?;
    for inode in vault.index.all_inodes() {
        ops.push(Op::PutInode(inode?));
    }
    for manifest in vault.index.all_manifests() {
        let (ino, extents) = manifest?;
        ops.push(Op::PutManifest { ino, extents });
    }
    let record = CommitRecord {
        seq: vault.marker.seq + 1,
        clock: vault.clock.now(),
        next_ino: vault.marker.next_ino,
        snapshot: true,
        ops,
    };
    let encoded = codec::encode(&record);
    if encoded.len() > SNAPSHOT_LIMIT_BYTES {
        // NOTE: a namespace larger than one frame (about 300,000 files) cannot be
        // snapshotted yet, so such stores cannot be collected.
        return Err(Error::Invalid {
            what: "garbage collection",
            detail: format!("the namespace snapshot is {} bytes, above the {SNAPSHOT_LIMIT_BYTES}-byte limit of one record", encoded.len()),
        });
    }
    let (pack_no, offset) = vault.chunks.append_commit(record.seq, true, &encoded)?;
    vault.chunks.sync()?;
    let marker = IndexMarker { pack_no, offset, seq: record.seq, clock: record.clock, next_ino: record.next_ino };
    vault.index.apply(&[], &CommitRecord { ops: Vec::new(), ..record }, marker)?;
    vault.index.flush()?;
    vault.marker = marker;
    log::info!("namespace snapshot written: seq={} bytes={}", marker.seq, encoded.len());
    Ok(())
}
