//! `wormvault stats`: what a store holds, from its index after rolling it forward.

use std::collections::HashMap;
use std::path::Path;

use crate::crypto::ChunkId;
use crate::error::Result;
use crate::retention::format_time;
use crate::store::pack::list_packs;
use crate::tree::NodeKind;
use crate::unlock::unlock_store;

use super::{MountSettings, Vault};

/// Figures of one store.
#[derive(Debug, Default, Clone)]
pub struct StatsReport {
    pub files: u64,
    pub symlinks: u64,
    pub directories: u64,
    pub incomplete_files: u64,
    /// Sum of file sizes.
    pub logical_bytes: u64,
    /// Plaintext bytes of the distinct chunks the files use.
    pub unique_bytes: u64,
    /// Bytes of pack files on disk.
    pub stored_bytes: u64,
    pub index_bytes: u64,
    pub chunks: u64,
    pub packs: u64,
    pub oldest_seal: Option<i64>,
    pub newest_seal: Option<i64>,
    /// Bytes of packs that `gc` would delete now.
    pub reclaimable_bytes: u64,
}

impl StatsReport {
    fn ratio(numerator: u64, denominator: u64) -> f64 {
        if denominator == 0 {
            1.0
        } else {
            numerator as f64 / denominator as f64
        }
    }

    pub fn dedup_ratio(&self) -> f64 {
        Self::ratio(self.logical_bytes, self.unique_bytes)
    }

    pub fn compression_ratio(&self) -> f64 {
        Self::ratio(self.unique_bytes, self.stored_bytes)
    }

    pub fn to_text(&self) -> String {
        let seal = |time: Option<i64>| time.map(format_time).unwrap_or_else(|| "-".into());
        format!(
            "files:             {}\nsymbolic links:    {}\ndirectories:       {}\nincomplete files:  {}\nlogical bytes:     {}\nunique bytes:      {}\nstored bytes:      {}\nindex bytes:       {}\ndedup ratio:       {:.2}\ncompression ratio: {:.2}\nchunks:            {}\npacks:             {}\noldest seal:       {}\nnewest seal:       {}\nreclaimable bytes: {}\n",
            self.files,
            self.symlinks,
            self.directories,
            self.incomplete_files,
            self.logical_bytes,
            self.unique_bytes,
            self.stored_bytes,
            self.index_bytes,
            self.dedup_ratio(),
            self.compression_ratio(),
            self.chunks,
            self.packs,
            seal(self.oldest_seal),
            seal(self.newest_seal),
            self.reclaimable_bytes,
        )
    }

    pub fn to_json(&self) -> String {
        let seal = |time: Option<i64>| time.map(|time| format!("\"{}\"", format_time(time))).unwrap_or_else(|| "null".into());
        format!(
            "{{\"files\":{},\"symlinks\":{},\"directories\":{},\"incomplete_files\":{},\"logical_bytes\":{},\"unique_bytes\":{},\"stored_bytes\":{},\"index_bytes\":{},\"dedup_ratio\":{:.4},\"compression_ratio\":{:.4},\"chunks\":{},\"packs\":{},\"oldest_seal\":{},\"newest_seal\":{},\"reclaimable_bytes\":{}}}",
            self.files,
            self.symlinks,
            self.directories,
            self.incomplete_files,
            self.logical_bytes,
            self.unique_bytes,
            self.stored_bytes,
            self.index_bytes,
            self.dedup_ratio(),
            self.compression_ratio(),
            self.chunks,
            self.packs,
            seal(self.oldest_seal),
            seal(self.newest_seal),
            self.reclaimable_bytes,
        )
    }
}

/// Opens the store (it must not be mounted) and gathers its figures.
pub fn collect(root: &Path, passphrase: &[u8]) -> Result<StatsReport> {
    let unlocked = unlock_store(root, passphrase)?;
    let vault = Vault::open_store(unlocked, MountSettings { worker_threads: 1, ..MountSettings::default() }, "stats")?;
    let mut report = StatsReport::default();
    for inode in vault.index.all_inodes() {
        let inode = inode?;
        match inode.kind {
            NodeKind::Dir => report.directories += 1,
            NodeKind::Symlink => report.symlinks += 1,
            NodeKind::File => {
                report.files += 1;
                report.logical_bytes += inode.size;
                if inode.incomplete() {
                    report.incomplete_files += 1;
                }
                if let Some(sealed_at) = inode.sealed_at() {
                    report.oldest_seal = Some(report.oldest_seal.map_or(sealed_at, |oldest| oldest.min(sealed_at)));
                    report.newest_seal = Some(report.newest_seal.map_or(sealed_at, |newest| newest.max(sealed_at)));
                }
            }
        }
    }
    let mut unique: HashMap<ChunkId, u64> = HashMap::new();
    for manifest in vault.index.all_manifests() {
        let (_, extents) = manifest?;
        for extent in extents {
            if let Some(id) = extent.chunk {
                unique.insert(id, extent.len);
            }
        }
    }
    report.unique_bytes = unique.values().sum();
    report.chunks = vault.index.chunk_count();
    let packs_dir = vault.paths.packs();
    for pack_no in list_packs(&packs_dir)? {
        report.packs += 1;
        let path = packs_dir.join(crate::store::format::pack_file_name(pack_no));
        report.stored_bytes += std::fs::metadata(&path).map(|metadata| metadata.len()).unwrap_or(0);
    }
    report.index_bytes = vault.index.size_on_disk()?;
    for pack_no in super::gc::mark(&vault)?.unused {
        let path = packs_dir.join(crate::store::format::pack_file_name(pack_no));
        report.reclaimable_bytes += std::fs::metadata(&path).map(|metadata| metadata.len()).unwrap_or(0);
    }
    Ok(report)
}
