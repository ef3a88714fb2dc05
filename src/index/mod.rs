//! The sled index: where each chunk sits, and the namespace in a form fast to query.
//!
//! The index is a cache of the packs, never the source of truth: everything in it was
//! written to a pack and fsynced before it was applied here, and [`IndexMarker`] says
//! up to where. Keys are ids or keyed MACs; values are sealed under the index subkey
//! with associated data naming the tree and the key, so nothing is readable, or
//! movable between keys, without the master key.

pub mod chunktable;
pub mod pagefile;

use std::path::Path;
use std::sync::Arc;

use chunktable::ChunkTable;
use pagefile::PageFiles;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::crypto::{self, ChunkId, Keys};
use crate::error::{Error, Result};
use crate::store::failpoint;
use crate::store::pack::Location;
use crate::tree::{CommitRecord, Extent, FileState, Inode, NodeKind, Op};

/// File of the chunk table, beside sled's own files in the index folder.
const CHUNK_TABLE_FILE: &str = "chunk-table";
const TREE_INODES: &str = "inodes";
const TREE_MANIFESTS: &str = "manifests";
/// Name of full manifest pages in errors and associated data. The pages are kept in
/// files of their own, described in [`pagefile`].
const TREE_PAGES: &str = "manifest pages";
/// Folder of the full manifest pages, in the index folder.
const PAGES_DIR: &str = "manifest-pages";
const TREE_DIRENTS: &str = "dirents";
const TREE_META: &str = "meta";
/// Inodes in the `Writing` state, so a mount after a crash finds them without a scan.
const TREE_WRITING: &str = "writing";
const META_MARKER: &[u8] = b"marker";

/// Bound on sled's page cache. sled's default (1 GiB) would let the daemon's memory
/// grow with the store. sled holds only the namespace; chunk locations, one per
/// chunk, are in the chunk table, which keeps nothing in memory.
pub const INDEX_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// How far the packs have been applied to the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IndexMarker {
    /// Pack holding the last applied commit record, and the offset just after it.
    pub pack_no: u64,
    pub offset: u64,
    pub seq: u64,
    pub clock: i64,
    pub next_ino: u64,
}

/// A directory entry as stored in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dirent {
    pub name: Vec<u8>,
    pub ino: u64,
    pub kind: NodeKind,
}

/// Index key of a directory entry: a MAC of the parent (so entries of one folder sort
/// together), then a MAC of parent and name whose first 8 bytes are the readdir cookie.
pub type DirentKey = [u8; 32];

pub struct Index {
    db: sled::Db,
    keys: Arc<Keys>,
    chunks: ChunkTable,
    pages: PageFiles,
    /// Inodes whose manifest was removed since the last flush; their page files go
    /// after it.
    orphan_pages: std::sync::Mutex<std::collections::HashSet<u64>>,
    inodes: sled::Tree,
    manifests: sled::Tree,
    dirents: sled::Tree,
    meta: sled::Tree,
    writing: sled::Tree,
}

fn sled_error(tree: &'static str) -> impl Fn(sled::Error) -> Error {
    move |source| Error::Index { tree, source }
}

impl Index {
    /// Opens (or creates) the index folder.
    pub fn open(path: &Path, keys: Arc<Keys>) -> Result<Index> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(INDEX_CACHE_BYTES)
            .flush_every_ms(None)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(sled_error("db"))?;
        let tree = |name: &'static str| db.open_tree(name).map_err(sled_error(name));
        let meta = tree(TREE_META)?;
        let table_path = path.join(CHUNK_TABLE_FILE);
        let chunks = match ChunkTable::open(&table_path, &keys.index, false)? {
            Some(table) => table,
            None => {
                // Without its chunk table the rest of the index cannot be trusted to
                // match the packs: forget it all, and the mount rolls forward from the
                // first pack.
                if !meta.is_empty() {
                    log::warn!("index has no chunk table, rebuilding it from the packs: path={}", table_path.display());
                    for name in db.tree_names() {
                        db.open_tree(&name).and_then(|tree| tree.clear()).map_err(sled_error("db"))?;
                    }
                    db.flush().map_err(sled_error("db"))?;
                }
                ChunkTable::open(&table_path, &keys.index, true)?.expect("a created table opens")
            }
        };
        let pages = PageFiles::open(&path.join(PAGES_DIR))?;
        let orphans = pages.inodes()?;
        let index = Index {
            chunks,
            pages,
            orphan_pages: std::sync::Mutex::new(std::collections::HashSet::new()),
            inodes: tree(TREE_INODES)?,
            manifests: tree(TREE_MANIFESTS)?,
            dirents: tree(TREE_DIRENTS)?,
            meta,
            writing: tree(TREE_WRITING)?,
            db,
            keys,
        };
        // Page files whose manifest is gone, left by a crash before their removal or
        // by an index that lost its chunk table, are removed now.
        index.remove_orphan_pages(orphans)?;
        Ok(index)
    }

    fn seal_value(&self, tree: &str, key: &[u8], value: &[u8]) -> Vec<u8> {
        crypto::seal(&self.keys.index, &value_aad(tree, key), value)
    }

    fn open_value<T: serde::de::DeserializeOwned>(&self, tree: &'static str, key: &[u8], sealed: &[u8]) -> Result<T> {
        let plain = crypto::open(&self.keys.index, &value_aad(tree, key), sealed)
            .map_err(|_| Error::IndexAuthenticationFailed { tree })?;
        codec::decode(&plain).map_err(|_| Error::IndexAuthenticationFailed { tree })
    }

    fn get<T: serde::de::DeserializeOwned>(&self, tree: &sled::Tree, name: &'static str, key: &[u8]) -> Result<Option<T>> {
        match tree.get(key).map_err(sled_error(name))? {
            Some(sealed) => Ok(Some(self.open_value(name, key, &sealed)?)),
            None => Ok(None),
        }
    }

    pub fn chunk_location(&self, id: &ChunkId) -> Result<Option<Location>> {
        self.chunks.get(id)
    }

    pub fn inode(&self, ino: u64) -> Result<Option<Inode>> {
        self.get(&self.inodes, TREE_INODES, &ino.to_be_bytes())
    }

    fn manifest_tail(&self, ino: u64) -> Result<Option<ManifestTail>> {
        self.get(&self.manifests, TREE_MANIFESTS, &ino.to_be_bytes())
    }

    /// Reads full page number `page`, stored in slot `slot`, of the manifest of `ino`.
    fn full_page(&self, ino: u64, page: u64, slot: u32) -> Result<Vec<Extent>> {
        let key = slot_key(ino, page * MANIFEST_PAGE_EXTENTS as u64, slot);
        let sealed = self.pages.read(ino, slot)?;
        let extents: Vec<Extent> = self.open_value(TREE_PAGES, &key, &sealed)?;
        if extents.len() != MANIFEST_PAGE_EXTENTS {
            return Err(Error::IndexAuthenticationFailed { tree: TREE_PAGES });
        }
        Ok(extents)
    }

    /// Returns the whole manifest of `ino`, its pages joined.
    pub fn manifest(&self, ino: u64) -> Result<Option<Vec<Extent>>> {
        let Some(tail) = self.manifest_tail(ino)? else { return Ok(None) };
        let mut extents = Vec::with_capacity(tail.slots.len() * MANIFEST_PAGE_EXTENTS + tail.extents.len());
        for (page, slot) in tail.slots.iter().enumerate() {
            extents.extend_from_slice(&self.full_page(ino, page as u64, *slot)?);
        }
        extents.extend_from_slice(&tail.extents);
        Ok(Some(extents))
    }

    /// Returns the length of the manifest of `ino` and the file offset where each of
    /// its pages starts, reading one page at a time.
    pub fn manifest_page_starts(&self, ino: u64) -> Result<Option<(u64, Vec<u64>)>> {
        let Some(tail) = self.manifest_tail(ino)? else { return Ok(None) };
        let mut starts = Vec::with_capacity(tail.slots.len() + 1);
        let mut len = 0u64;
        for (page, slot) in tail.slots.iter().enumerate() {
            starts.push(len);
            len += self.full_page(ino, page as u64, *slot)?.iter().map(|extent| extent.len).sum::<u64>();
        }
        if !tail.extents.is_empty() {
            starts.push(len);
            len += tail.extents.iter().map(|extent| extent.len).sum::<u64>();
        }
        Ok(Some((len, starts)))
    }

    /// Returns the manifest page of `ino` that starts at extent number `first`: a full
    /// page, or the last, partial one.
    pub fn manifest_page(&self, ino: u64, first: u64) -> Result<Vec<Extent>> {
        let tail = self.manifest_tail(ino)?.ok_or(Error::IndexAuthenticationFailed { tree: TREE_MANIFESTS })?;
        let page = first / MANIFEST_PAGE_EXTENTS as u64;
        if first % MANIFEST_PAGE_EXTENTS as u64 != 0 || page > tail.slots.len() as u64 {
            return Err(Error::IndexAuthenticationFailed { tree: TREE_MANIFESTS });
        }
        match tail.slots.get(page as usize) {
            Some(slot) => self.full_page(ino, page, *slot),
            None => Ok(tail.extents),
        }
    }

    /// Replaces the manifest of `ino` from extent `keep` on with `extents`: only the
    /// page holding extent `keep` and the pages after it are read and written, so
    /// recording the growth of a large file costs the growth, not the file.
    fn write_manifest_from(&self, ino: u64, keep: u64, extents: &[Extent]) -> Result<()> {
        let page_len = MANIFEST_PAGE_EXTENTS as u64;
        let tail = self.manifest_tail(ino)?.unwrap_or_default();
        let full = tail.slots.len() as u64;
        // A record may keep more extents than are stored only if it was damaged.
        let keep = keep.min(full * page_len + tail.extents.len() as u64);
        let (first_page, mut pending) = if keep >= full * page_len {
            let mut pending = tail.extents;
            pending.truncate((keep - full * page_len) as usize);
            (full, pending)
        } else {
            let page = keep / page_len;
            let mut pending = self.full_page(ino, page, tail.slots[page as usize])?;
            pending.truncate((keep - page * page_len) as usize);
            (page, pending)
        };
        pending.extend_from_slice(extents);

        // New pages take new slots past the end of the page file, fsynced before sled
        // names them. Each is sealed with its slot number, so an old version of a page,
        // left in an earlier slot, cannot be copied over the current one.
        let whole = pending.len() / MANIFEST_PAGE_EXTENTS;
        let mut slots = tail.slots;
        slots.truncate(first_page as usize);
        if whole > 0 {
            let first_slot = self.pages.next_slot(ino)?;
            let sealed: Vec<Vec<u8>> = pending[..whole * MANIFEST_PAGE_EXTENTS]
                .chunks(MANIFEST_PAGE_EXTENTS)
                .enumerate()
                .map(|(number, page)| {
                    let key = slot_key(ino, (first_page + number as u64) * page_len, first_slot + number as u32);
                    self.seal_value(TREE_PAGES, &key, &codec::encode(&page.to_vec()))
                })
                .collect();
            slots.extend(self.pages.append(ino, first_slot, &sealed)?);
        }

        let tail = ManifestTail { slots, extents: pending.split_off(whole * MANIFEST_PAGE_EXTENTS) };
        let key = ino.to_be_bytes();
        let value = self.seal_value(TREE_MANIFESTS, &key, &codec::encode(&tail));
        self.manifests.insert(key, value).map_err(sled_error(TREE_MANIFESTS))?;
        Ok(())
    }

    /// Removes the manifest of `ino`. Its page file goes only after the next index
    /// flush: a roll-forward after a crash may replay earlier records that read it.
    fn remove_manifest(&self, ino: u64) -> Result<()> {
        self.manifests.remove(ino.to_be_bytes()).map_err(sled_error(TREE_MANIFESTS))?;
        self.orphan_pages.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(ino);
        Ok(())
    }

    /// Removes the page files of `inodes` that no manifest names any more.
    fn remove_orphan_pages(&self, inodes: impl IntoIterator<Item = u64>) -> Result<()> {
        for ino in inodes {
            if !self.manifests.contains_key(ino.to_be_bytes()).map_err(sled_error(TREE_MANIFESTS))? {
                self.pages.remove(ino)?;
            }
        }
        Ok(())
    }

    pub fn marker(&self) -> Result<Option<IndexMarker>> {
        self.get(&self.meta, TREE_META, META_MARKER)
    }

    /// Computes the index key of entry `name` in folder `parent`.
    pub fn dirent_key(&self, parent: u64, name: &[u8]) -> DirentKey {
        dirent_key(&self.keys, parent, name)
    }

    pub fn dirent(&self, parent: u64, name: &[u8]) -> Result<Option<Dirent>> {
        self.get(&self.dirents, TREE_DIRENTS, &self.dirent_key(parent, name))
    }

    /// Lowest and highest possible keys of folder `parent`'s entries.
    pub fn dir_bounds(&self, parent: u64) -> (DirentKey, DirentKey) {
        let tag = dir_tag(&self.keys, parent);
        let mut low = [0u8; 32];
        let mut high = [0xffu8; 32];
        low[..16].copy_from_slice(&tag);
        high[..16].copy_from_slice(&tag);
        (low, high)
    }

    /// Lists up to `limit` entries of folder `parent` whose keys sort after `after`.
    pub fn dirents_after(&self, parent: u64, after: Option<&DirentKey>, limit: usize) -> Result<Vec<(DirentKey, Dirent)>> {
        let prefix = dir_tag(&self.keys, parent);
        let start: Vec<u8> = match after {
            Some(key) => {
                let mut start = key.to_vec();
                start.push(0);
                start
            }
            None => prefix.to_vec(),
        };
        let mut end = prefix.to_vec();
        end.extend_from_slice(&[0xff; 17]);
        let mut out = Vec::new();
        for item in self.dirents.range(start..end) {
            let (key, sealed) = item.map_err(sled_error(TREE_DIRENTS))?;
            let key: DirentKey = key.as_ref().try_into().map_err(|_| Error::IndexAuthenticationFailed { tree: TREE_DIRENTS })?;
            out.push((key, self.open_value(TREE_DIRENTS, &key, &sealed)?));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Applies one commit: the chunk locations it made durable, its namespace ops, and
    /// the marker. The caller has fsynced the packs holding all of them.
    pub fn apply(&self, chunks: &[(ChunkId, Location)], record: &CommitRecord, marker: IndexMarker) -> Result<()> {
        failpoint::check("index apply").map_err(|source| Error::io("failed to update index", "index", source))?;
        // The chunk table is fsynced before sled receives the marker. sled may write its
        // buffers at any time, so a marker on disk must never precede the locations.
        if !chunks.is_empty() {
            self.chunks.insert(chunks)?;
            self.chunks.sync()?;
        }
        for op in &record.ops {
            self.apply_op(op)?;
        }
        let sealed = self.seal_value(TREE_META, META_MARKER, &codec::encode(&marker));
        failpoint::check("index marker").map_err(|source| Error::io("failed to update index", "index", source))?;
        self.meta.insert(META_MARKER, sealed).map_err(sled_error(TREE_META))?;
        Ok(())
    }

    fn apply_op(&self, op: &Op) -> Result<()> {
        match op {
            Op::PutInode(inode) => {
                let key = inode.ino.to_be_bytes();
                let sealed = self.seal_value(TREE_INODES, &key, &codec::encode(inode));
                self.inodes.insert(key, sealed).map_err(sled_error(TREE_INODES))?;
                if inode.state == FileState::Writing && inode.kind == NodeKind::File {
                    self.writing.insert(key, &[]).map_err(sled_error(TREE_WRITING))?;
                } else {
                    self.writing.remove(key).map_err(sled_error(TREE_WRITING))?;
                }
            }
            Op::DelInode(ino) => {
                self.inodes.remove(ino.to_be_bytes()).map_err(sled_error(TREE_INODES))?;
                self.writing.remove(ino.to_be_bytes()).map_err(sled_error(TREE_WRITING))?;
            }
            Op::PutDirent { parent, name, ino, kind } => {
                let key = self.dirent_key(*parent, name);
                let dirent = Dirent { name: name.clone(), ino: *ino, kind: *kind };
                let sealed = self.seal_value(TREE_DIRENTS, &key, &codec::encode(&dirent));
                self.dirents.insert(key, sealed).map_err(sled_error(TREE_DIRENTS))?;
            }
            Op::DelDirent { parent, name } => {
                self.dirents.remove(self.dirent_key(*parent, name)).map_err(sled_error(TREE_DIRENTS))?;
            }
            Op::PutManifest { ino, extents } => {
                self.remove_manifest(*ino)?;
                self.write_manifest_from(*ino, 0, extents)?;
            }
            Op::ExtendManifest { ino, keep, extents } => self.write_manifest_from(*ino, *keep, extents)?,
            Op::DelManifest(ino) => self.remove_manifest(*ino)?,
        }
        Ok(())
    }

    /// Removes every namespace entry (inodes, entries, manifests), keeping chunk
    /// locations, before a snapshot record is applied.
    pub fn clear_namespace(&self) -> Result<()> {
        self.inodes.clear().map_err(sled_error(TREE_INODES))?;
        self.dirents.clear().map_err(sled_error(TREE_DIRENTS))?;
        self.manifests.clear().map_err(sled_error(TREE_MANIFESTS))?;
        self.orphan_pages.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend(self.pages.inodes()?);
        self.writing.clear().map_err(sled_error(TREE_WRITING))?;
        Ok(())
    }

    /// Removes the locations of chunks that garbage collection deleted.
    pub fn remove_chunks(&self, ids: &[ChunkId]) -> Result<()> {
        self.chunks.remove(ids)?;
        self.chunks.sync()
    }

    /// Makes every applied change durable in sled's own files.
    pub fn flush(&self) -> Result<()> {
        failpoint::check("index flush").map_err(|source| Error::io("failed to flush index", "index", source))?;
        self.db.flush().map_err(sled_error("db"))?;
        let orphans = std::mem::take(&mut *self.orphan_pages.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        self.remove_orphan_pages(orphans)
    }

    /// Inode numbers of files left in the `Writing` state.
    pub fn writing_inodes(&self) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for item in self.writing.iter() {
            let (key, _) = item.map_err(sled_error(TREE_WRITING))?;
            let bytes: [u8; 8] = key.as_ref().try_into().map_err(|_| Error::IndexAuthenticationFailed { tree: TREE_WRITING })?;
            out.push(u64::from_be_bytes(bytes));
        }
        Ok(out)
    }

    /// Iterates over all inodes, for `check` and `stats`.
    pub fn all_inodes(&self) -> impl Iterator<Item = Result<Inode>> + '_ {
        self.inodes.iter().map(move |item| {
            let (key, sealed) = item.map_err(sled_error(TREE_INODES))?;
            self.open_value(TREE_INODES, &key, &sealed)
        })
    }

    /// Iterates over all manifests, one whole manifest at a time, for `check`, `gc`
    /// and `stats`.
    pub fn all_manifests(&self) -> impl Iterator<Item = Result<(u64, Vec<Extent>)>> + '_ {
        self.manifests.iter().keys().map(move |key| {
            let key = key.map_err(sled_error(TREE_MANIFESTS))?;
            let ino: [u8; 8] = key.as_ref().try_into().map_err(|_| Error::IndexAuthenticationFailed { tree: TREE_MANIFESTS })?;
            let ino = u64::from_be_bytes(ino);
            Ok((ino, self.manifest(ino)?.unwrap_or_default()))
        })
    }

    /// Lists all chunk locations, for `gc`.
    pub fn all_chunks(&self) -> Result<Vec<(ChunkId, Location)>> {
        let mut out = Vec::with_capacity(self.chunks.entries() as usize);
        self.chunks.for_each(|id, location| {
            out.push((id, location));
            Ok(())
        })?;
        Ok(out)
    }

    /// Number of chunk locations.
    pub fn chunk_count(&self) -> u64 {
        self.chunks.entries()
    }

    /// Bytes of the index on disk: sled's files, the chunk table and the manifest
    /// pages.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk().map_err(sled_error("db"))? + self.chunks.size_on_disk() + self.pages.size_on_disk())
    }
}

/// Extents per manifest page. A page seals to about 42 KiB, so a commit that adds a
/// few hundred chunks to a large file rewrites one or two pages.
pub const MANIFEST_PAGE_EXTENTS: usize = 1024;

/// The last, partial page of a manifest, kept in sled, and the slot in the inode's
/// page file of each full page before it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ManifestTail {
    slots: Vec<u32>,
    extents: Vec<Extent>,
}

/// Key of the manifest page of `ino` whose first extent is extent number `first`.
fn page_key(ino: u64, first: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&ino.to_be_bytes());
    key[8..].copy_from_slice(&first.to_be_bytes());
    key
}

/// Associated-data key of a full manifest page: inode, first extent, and the slot
/// that contains it.
fn slot_key(ino: u64, first: u64, slot: u32) -> [u8; 20] {
    let mut key = [0u8; 20];
    key[..16].copy_from_slice(&page_key(ino, first));
    key[16..].copy_from_slice(&slot.to_be_bytes());
    key
}

fn value_aad(tree: &str, key: &[u8]) -> Vec<u8> {
    let mut aad = b"wormvault index v1 ".to_vec();
    aad.extend_from_slice(tree.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key);
    aad
}

fn dir_tag(keys: &Keys, parent: u64) -> [u8; 16] {
    let mac = keys.name_mac(&[b"dir", &parent.to_le_bytes()]);
    mac[..16].try_into().expect("16 bytes")
}

/// Computes the index key of a directory entry; see [`DirentKey`].
pub fn dirent_key(keys: &Keys, parent: u64, name: &[u8]) -> DirentKey {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(&dir_tag(keys, parent));
    let mac = keys.name_mac(&[b"name", &parent.to_le_bytes(), name]);
    key[16..].copy_from_slice(&mac[..16]);
    // Readdir cookies 1 and 2 are `.` and `..`, and the kernel wants offsets that fit
    // in an i64, so the cookie is the MAC's top 62 bits plus 3.
    let cookie = (u64::from_be_bytes(mac[..8].try_into().expect("8 bytes")) >> 2) + 3;
    key[16..24].copy_from_slice(&cookie.to_be_bytes());
    key
}

/// Returns the readdir cookie of an entry key.
pub fn dirent_cookie(key: &DirentKey) -> u64 {
    u64::from_be_bytes(key[16..24].try_into().expect("8 bytes"))
}

/// Returns the smallest key of folder `parent` that sorts after every entry with a
/// cookie of at most `cookie`, for resuming a listing.
pub fn dirent_resume_key(keys: &Keys, parent: u64, cookie: u64) -> DirentKey {
    let mut key = [0xffu8; 32];
    key[..16].copy_from_slice(&dir_tag(keys, parent));
    key[16..24].copy_from_slice(&cookie.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn extents(count: usize, seed: u8) -> Vec<Extent> {
        (0..count).map(|n| Extent { len: n as u64 + 1, chunk: Some(ChunkId([seed.wrapping_add(n as u8); 32])) }).collect()
    }

    fn extend(index: &Index, ino: u64, keep: u64, extents: Vec<Extent>) {
        index.apply_op(&Op::ExtendManifest { ino, keep, extents }).unwrap();
    }

    #[test]
    fn manifest_pages_grow_truncate_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Keys::derive(&MasterKey::generate())).unwrap();
        let page = MANIFEST_PAGE_EXTENTS;

        extend(&index, 7, 0, Vec::new());
        assert_eq!(index.manifest(7).unwrap(), Some(Vec::new()));

        // Growth across page boundaries, in steps that do not line up with pages.
        let mut expected = Vec::new();
        for step in 0..5 {
            let more = extents(page / 2 + 7, step);
            extend(&index, 7, expected.len() as u64, more.clone());
            expected.extend(more);
            assert_eq!(index.manifest(7).unwrap().as_ref(), Some(&expected));
        }

        // A rewrite from inside an earlier page drops the pages after it.
        let redo = extents(3, 99);
        extend(&index, 7, page as u64 + 5, redo.clone());
        expected.truncate(page + 5);
        expected.extend(redo);
        assert_eq!(index.manifest(7).unwrap().as_ref(), Some(&expected));
        assert_eq!(index.manifest_tail(7).unwrap().unwrap().slots.len(), 1);

        // Another file's pages stay apart, and a put replaces every page.
        index.apply_op(&Op::PutManifest { ino: 8, extents: extents(page * 2, 1) }).unwrap();
        index.apply_op(&Op::PutManifest { ino: 7, extents: extents(3, 5) }).unwrap();
        assert_eq!(index.manifest(7).unwrap(), Some(extents(3, 5)));
        let all: Vec<(u64, usize)> = index.all_manifests().map(|m| m.map(|(ino, e)| (ino, e.len()))).collect::<Result<_>>().unwrap();
        assert_eq!(all, vec![(7, 3), (8, page * 2)]);

        index.apply_op(&Op::DelManifest(8)).unwrap();
        assert_eq!(index.manifest(8).unwrap(), None);
        assert_eq!(index.all_manifests().count(), 1);
    }

    #[test]
    fn manifest_pages_at_exact_boundaries_and_replays() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Keys::derive(&MasterKey::generate())).unwrap();
        let page = MANIFEST_PAGE_EXTENTS;

        // Exactly two full pages leave an empty last page in sled.
        let mut expected = extents(2 * page, 3);
        extend(&index, 9, 0, expected.clone());
        assert_eq!(index.manifest_tail(9).unwrap().unwrap().slots.len(), 2);
        assert_eq!(index.manifest(9).unwrap().as_ref(), Some(&expected));
        assert_eq!(index.manifest_page_starts(9).unwrap().unwrap().1.len(), 2);

        // Keeping exactly one page rewrites the page file from the second page on.
        let more = extents(page + 1, 4);
        extend(&index, 9, page as u64, more.clone());
        expected.truncate(page);
        expected.extend(more.clone());
        assert_eq!(index.manifest(9).unwrap().as_ref(), Some(&expected));

        // Replaying the same op, as a roll-forward after a crash does, changes nothing.
        extend(&index, 9, page as u64, more);
        assert_eq!(index.manifest(9).unwrap().as_ref(), Some(&expected));
        let (len, starts) = index.manifest_page_starts(9).unwrap().unwrap();
        assert_eq!(len, expected.iter().map(|extent| extent.len).sum::<u64>());
        assert_eq!(starts.len(), 3);
        assert_eq!(index.manifest_page(9, 2 * page as u64).unwrap(), expected[2 * page..].to_vec());

        // A keep beyond the stored extents, from a damaged record, appends at the end.
        let tail = extents(2, 5);
        extend(&index, 9, u64::MAX, tail.clone());
        expected.extend(tail);
        assert_eq!(index.manifest(9).unwrap().as_ref(), Some(&expected));
    }

    #[test]
    fn manifest_survives_a_lost_sled_update_and_replay() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Keys::derive(&MasterKey::generate())).unwrap();
        let page = MANIFEST_PAGE_EXTENTS;
        let before = extents(3 * page + 10, 1);
        index.apply_op(&Op::PutManifest { ino: 4, extents: before.clone() }).unwrap();
        let old_tail = index.manifests.get(4u64.to_be_bytes()).unwrap().unwrap();

        // A record that cuts back into the first page, then a crash in which sled
        // loses that update while the page file keeps what was written.
        let redo = extents(5, 7);
        extend(&index, 4, 100, redo.clone());
        index.manifests.insert(4u64.to_be_bytes(), old_tail).unwrap();
        assert_eq!(index.manifest(4).unwrap().as_ref(), Some(&before));

        // The roll-forward replays the record.
        extend(&index, 4, 100, redo.clone());
        let mut after = before[..100].to_vec();
        after.extend(redo);
        assert_eq!(index.manifest(4).unwrap().as_ref(), Some(&after));

        // A deleted manifest's page file stays until the index is flushed.
        let page_file = dir.path().join(PAGES_DIR).join(format!("{:016x}", 4));
        index.apply_op(&Op::DelManifest(4)).unwrap();
        assert!(page_file.exists());
        index.flush().unwrap();
        assert!(!page_file.exists());
    }

    #[test]
    fn stale_page_slot_fails_authentication() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Keys::derive(&MasterKey::generate())).unwrap();
        let page = MANIFEST_PAGE_EXTENTS;
        index.apply_op(&Op::PutManifest { ino: 5, extents: extents(2 * page, 1) }).unwrap();
        // A patch near the start rewrites both pages into slots 2 and 3.
        extend(&index, 5, 10, extents(2 * page - 10, 2));
        assert_eq!(index.manifest_tail(5).unwrap().unwrap().slots, vec![2, 3]);

        let path = dir.path().join(PAGES_DIR).join(format!("{:016x}", 5));
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        let mut old = vec![0u8; pagefile::SLOT_BYTES as usize];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut old, 0).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &old, 2 * pagefile::SLOT_BYTES).unwrap();
        assert!(matches!(index.manifest(5), Err(Error::IndexAuthenticationFailed { tree: TREE_PAGES })));
    }

    #[test]
    fn missing_page_file_fails_authentication() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Keys::derive(&MasterKey::generate())).unwrap();
        index.apply_op(&Op::PutManifest { ino: 6, extents: extents(MANIFEST_PAGE_EXTENTS + 1, 1) }).unwrap();
        std::fs::remove_file(dir.path().join(PAGES_DIR).join(format!("{:016x}", 6))).unwrap();
        assert!(matches!(index.manifest(6), Err(Error::IndexAuthenticationFailed { tree: TREE_PAGES })));
    }

    #[test]
    fn damaged_manifest_page_fails_authentication() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Keys::derive(&MasterKey::generate())).unwrap();
        index.apply_op(&Op::PutManifest { ino: 3, extents: extents(MANIFEST_PAGE_EXTENTS * 3, 0) }).unwrap();
        assert_eq!(index.manifest(3).unwrap().map(|all| all.len()), Some(MANIFEST_PAGE_EXTENTS * 3));
        let page_file = dir.path().join(PAGES_DIR).join(format!("{:016x}", 3));
        let file = std::fs::OpenOptions::new().write(true).open(page_file).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[0x5a; 64], pagefile::SLOT_BYTES + 100).unwrap();
        assert!(matches!(index.manifest(3), Err(Error::IndexAuthenticationFailed { tree: TREE_PAGES })));
    }
}
