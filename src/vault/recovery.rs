//! Rolling the index forward from the packs at mount.
//!
//! The index marker names the pack and offset just after the last commit record it
//! holds. Everything after it is scanned: chunk frames are collected, and each commit
//! record applies them with its ops. Records are idempotent, so a crash in the middle
//! of applying one is repaired by applying it again.

use std::fs::OpenOptions;

use crate::codec;
use crate::crypto::{self, ChunkId, Keys};
use crate::error::{Error, Result};
use crate::index::{Index, IndexMarker};
use crate::chunkstore::open_chunk;
use crate::store::format::{frame_aad, pack_file_name, KIND_CHUNK, KIND_COMMIT, PACK_HEADER_LEN};
use crate::store::pack::{list_packs, scan_pack, Location, ScanEnd};
use crate::store::StorePaths;
use crate::tree::CommitRecord;

/// Applies every commit record after the index marker; returns the new marker.
///
/// A torn tail in the newest pack (a frame cut off by a crash) is truncated away. A
/// bad frame in any older pack is damage, and the mount is refused.
/// `progress` is called with (packs scanned, packs in all) as the scan goes.
pub fn roll_forward(
    paths: &StorePaths,
    index: &Index,
    keys: &Keys,
    store_id: [u8; 16],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<IndexMarker> {
    let mut marker = index.marker()?.unwrap_or_default();
    let packs = list_packs(&paths.packs())?;
    let mut chunks: Vec<(ChunkId, Location)> = Vec::new();
    let mut applied = 0u64;
    // (last applied seq, next seq found, pack) of a jump in the sequence not yet closed
    // by a snapshot.
    let mut gap: Option<(u64, u64, u64)> = None;
    for (position, &pack_no) in packs.iter().enumerate() {
        progress(position as u64, packs.len() as u64);
        if pack_no < marker.pack_no {
            continue;
        }
        let start = if pack_no == marker.pack_no { marker.offset } else { 0 };
        let newest = position + 1 == packs.len();
        let path = paths.packs().join(pack_file_name(pack_no));
        if remove_headerless_pack(&path)? {
            continue;
        }
        // A frame in the newest pack that fails to open is a torn write: everything
        // from it on is dropped.
        let mut torn_at: Option<u64> = None;
        let end = scan_pack(&paths.packs(), store_id, pack_no, start, |frame| {
            let opened = match frame.header.kind {
                KIND_CHUNK => {
                    let id = ChunkId(frame.header.id);
                    open_chunk(keys, &store_id, &id, frame.location, &frame.sealed).map(|_| None)
                }
                _ => open_commit(keys, store_id, &frame.header.id, frame.location, &frame.sealed).map(Some),
            };
            let opened = match (opened, torn_at) {
                // A bad frame in the newest pack means its commit's fsync never
                // finished: frames and record are written before one fsync, and a
                // power cut may keep a later page and lose an earlier one. So a
                // valid record after it was never acknowledged and is dropped too.
                (_, Some(_)) => return Ok(()),
                (Ok(opened), None) => opened,
                (Err(_), None) if newest => {
                    torn_at = Some(frame.location.offset);
                    return Ok(());
                }
                (Err(error), None) if frame.header.kind == KIND_COMMIT => return Err(error),
                (Err(error), None) => {
                    // A damaged chunk in an older pack is not indexed, so nothing new
                    // deduplicates against it; `check` names the files that used it.
                    log::error!("chunk frame failed authentication during roll-forward, not indexed: error={error}");
                    return Ok(());
                }
            };
            match opened {
                None => chunks.push((ChunkId(frame.header.id), frame.location)),
                Some(record) => {
                    if record.seq <= marker.seq {
                        return Ok(());
                    }
                    if record.snapshot {
                        // A snapshot is the whole namespace: what older records left
                        // in the index goes, and replay continues from it.
                        index.clear_namespace()?;
                        gap = None;
                    } else if record.seq != marker.seq + 1 {
                        // Garbage collection deletes packs of old records only after
                        // writing a snapshot, so a gap must be followed by one.
                        gap.get_or_insert((marker.seq, record.seq, pack_no));
                        return Ok(());
                    } else if gap.is_some() {
                        return Ok(());
                    }
                    let next = IndexMarker {
                        pack_no,
                        offset: frame.location.offset + 40 + u64::from(frame.location.sealed_len),
                        seq: record.seq,
                        clock: record.clock.max(marker.clock),
                        next_ino: record.next_ino.max(marker.next_ino),
                    };
                    index.apply(&chunks, &record, next)?;
                    chunks.clear();
                    marker = next;
                    applied += 1;
                }
            }
            Ok(())
        })?;
        let end = match torn_at {
            Some(offset) => ScanEnd::Torn { offset, detail: "frame failed authentication".into() },
            None => end,
        };
        if let ScanEnd::Torn { offset, detail } = end {
            if !newest {
                return Err(Error::Damaged { path, detail: format!("bad frame at offset {offset}: {detail}") });
            }
            log::warn!("torn pack tail truncated after a crash: pack={pack_no:016x} offset={offset} detail={detail}");
            let file = OpenOptions::new().write(true).open(&path).map_err(|source| Error::io("failed to open pack", &path, source))?;
            file.set_len(offset).map_err(|source| Error::io("failed to truncate pack", &path, source))?;
            file.sync_all().map_err(|source| Error::io("failed to fsync pack", &path, source))?;
        }
    }
    progress(packs.len() as u64, packs.len() as u64);
    if let Some((from, to, pack_no)) = gap {
        return Err(Error::Damaged {
            path: paths.packs().join(pack_file_name(pack_no)),
            detail: format!("commit sequence jumps from {from} to {to} and no snapshot follows; packs are missing"),
        });
    }
    if applied > 0 {
        index.flush()?;
        log::info!("index rolled forward from packs: commits={applied} seq={}", marker.seq);
    }
    Ok(marker)
}

/// Removes a pack too short to hold its header. Such a pack was created by a daemon
/// that died before the header reached the disk, so it holds nothing durable, and
/// leaving it would make it look like a damaged older pack once a new one follows.
fn remove_headerless_pack(path: &std::path::Path) -> Result<bool> {
    let len = std::fs::metadata(path).map_err(|source| Error::io("failed to stat pack", path, source))?.len();
    if len >= PACK_HEADER_LEN as u64 {
        return Ok(false);
    }
    log::warn!("empty pack left by a crash removed: pack={} bytes={len}", path.display());
    std::fs::remove_file(path).map_err(|source| Error::io("failed to remove empty pack", path, source))?;
    if let Some(dir) = path.parent() {
        crate::store::sync_dir(dir)?;
    }
    Ok(true)
}

/// Opens a commit record frame.
pub fn open_commit(keys: &Keys, store_id: [u8; 16], id: &[u8; 32], location: Location, sealed: &[u8]) -> Result<CommitRecord> {
    let damaged = |detail: &str| Error::Damaged {
        path: pack_file_name(location.pack_no).into(),
        detail: format!("commit record at offset {}: {detail}", location.offset),
    };
    let plain = crypto::open(&keys.data, &frame_aad(KIND_COMMIT, id, &store_id), sealed)
        .map_err(|_| damaged("failed authentication"))?;
    let record: CommitRecord = codec::decode(&plain).map_err(|detail| damaged(&detail))?;
    if crate::store::format::commit_id(record.seq, record.snapshot) != *id {
        return Err(damaged("sequence number does not match the frame id"));
    }
    Ok(record)
}
