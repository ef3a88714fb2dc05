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
use crate::store::format::{frame_aad, pack_file_name, KIND_CHUNK, KIND_COMMIT};
use crate::store::pack::{list_packs, scan_pack, Location, ScanEnd};
use crate::store::StorePaths;
use crate::tree::CommitRecord;

/// Applies every commit record after the index marker; returns the new marker.
///
/// A torn tail in the newest pack (a frame cut off by a crash) is truncated away. A
/// bad frame in any older pack is damage, and the mount is refused.
pub fn roll_forward(paths: &StorePaths, index: &Index, keys: &Keys, store_id: [u8; 16]) -> Result<IndexMarker> {
    let mut marker = index.marker()?.unwrap_or_default();
    let packs = list_packs(&paths.packs())?;
    let mut chunks: Vec<(ChunkId, Location)> = Vec::new();
    let mut applied = 0u64;
    // (last applied seq, next seq found, pack) of a jump in the sequence not yet closed
    // by a snapshot.
    let mut gap: Option<(u64, u64, u64)> = None;
    for (position, &pack_no) in packs.iter().enumerate() {
        if pack_no < marker.pack_no {
            continue;
        }
        let start = if pack_no == marker.pack_no { marker.offset } else { 0 };
        let newest = position + 1 == packs.len();
        // A commit record in the newest pack that fails to open is a torn write when
        // nothing valid follows it; everything from it on is dropped.
        let mut torn_commit: Option<u64> = None;
        let end = scan_pack(&paths.packs(), store_id, pack_no, start, |frame| {
            if torn_commit.is_some() {
                return Ok(());
            }
            match frame.header.kind {
                KIND_CHUNK => chunks.push((ChunkId(frame.header.id), frame.location)),
                KIND_COMMIT => {
                    let record = match open_commit(keys, store_id, &frame.header.id, frame.location, &frame.sealed) {
                        Ok(record) => record,
                        Err(_) if newest => {
                            torn_commit = Some(frame.location.offset);
                            return Ok(());
                        }
                        Err(error) => return Err(error),
                    };
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
                _ => unreachable!("frame kinds are checked when the header is decoded"),
            }
            Ok(())
        })?;
        let end = match torn_commit {
            Some(offset) => ScanEnd::Torn { offset, detail: "commit record failed authentication".into() },
            None => end,
        };
        if let ScanEnd::Torn { offset, detail } = end {
            let path = paths.packs().join(pack_file_name(pack_no));
            if !newest {
                return Err(Error::Damaged { path, detail: format!("bad frame at offset {offset}: {detail}") });
            }
            log::warn!("torn pack tail truncated after a crash: pack={pack_no:016x} offset={offset} detail={detail}");
            let file = OpenOptions::new().write(true).open(&path).map_err(|source| Error::io("failed to open pack", &path, source))?;
            file.set_len(offset).map_err(|source| Error::io("failed to truncate pack", &path, source))?;
            file.sync_all().map_err(|source| Error::io("failed to fsync pack", &path, source))?;
        }
    }
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
