//! The sled index: where each chunk sits, and the namespace in a form fast to query.
//!
//! The index is a cache of the packs, never the source of truth: everything in it was
//! written to a pack and fsynced before it was applied here, and [`IndexMarker`] says
//! up to where. Keys are ids or keyed MACs; values are sealed under the index subkey
//! with associated data naming the tree and the key, so nothing is readable, or
//! movable between keys, without the master key.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::crypto::{self, ChunkId, Keys};
use crate::error::{Error, Result};
use crate::store::failpoint;
use crate::store::pack::Location;
use crate::tree::{CommitRecord, Extent, FileState, Inode, NodeKind, Op};

const TREE_CHUNKS: &str = "chunks";
const TREE_INODES: &str = "inodes";
const TREE_MANIFESTS: &str = "manifests";
const TREE_DIRENTS: &str = "dirents";
const TREE_META: &str = "meta";
/// Inodes in the `Writing` state, so a mount after a crash finds them without a scan.
const TREE_WRITING: &str = "writing";
const META_MARKER: &[u8] = b"marker";

/// Bound on sled's page cache. sled's default (1 GiB) would let the daemon's memory
/// grow with the store.
// NOTE: sled's memory beyond this cache still grows with the index. The daemon peaked
// at 55 MiB after a 1 GiB ingest and 171 MiB after 4 GiB (scripts/bench, 2 cores), so
// peak RSS is not flat in the amount ingested per mount.
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
    chunks: sled::Tree,
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
        Ok(Index {
            chunks: tree(TREE_CHUNKS)?,
            inodes: tree(TREE_INODES)?,
            manifests: tree(TREE_MANIFESTS)?,
            dirents: tree(TREE_DIRENTS)?,
            meta: tree(TREE_META)?,
            writing: tree(TREE_WRITING)?,
            db,
            keys,
        })
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
        self.get(&self.chunks, TREE_CHUNKS, &id.0)
    }

    pub fn inode(&self, ino: u64) -> Result<Option<Inode>> {
        self.get(&self.inodes, TREE_INODES, &ino.to_be_bytes())
    }

    pub fn manifest(&self, ino: u64) -> Result<Option<Vec<Extent>>> {
        self.get(&self.manifests, TREE_MANIFESTS, &ino.to_be_bytes())
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
        for (id, location) in chunks {
            let sealed = self.seal_value(TREE_CHUNKS, &id.0, &codec::encode(location));
            self.chunks.insert(id.0, sealed).map_err(sled_error(TREE_CHUNKS))?;
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
                let key = ino.to_be_bytes();
                let sealed = self.seal_value(TREE_MANIFESTS, &key, &codec::encode(extents));
                self.manifests.insert(key, sealed).map_err(sled_error(TREE_MANIFESTS))?;
            }
            Op::ExtendManifest { ino, keep, extents } => {
                let mut stored = self.manifest(*ino)?.unwrap_or_default();
                stored.truncate(*keep as usize);
                stored.extend_from_slice(extents);
                let key = ino.to_be_bytes();
                let sealed = self.seal_value(TREE_MANIFESTS, &key, &codec::encode(&stored));
                self.manifests.insert(key, sealed).map_err(sled_error(TREE_MANIFESTS))?;
            }
            Op::DelManifest(ino) => {
                self.manifests.remove(ino.to_be_bytes()).map_err(sled_error(TREE_MANIFESTS))?;
            }
        }
        Ok(())
    }

    /// Removes every namespace entry (inodes, entries, manifests), keeping chunk
    /// locations, before a snapshot record is applied.
    pub fn clear_namespace(&self) -> Result<()> {
        self.inodes.clear().map_err(sled_error(TREE_INODES))?;
        self.dirents.clear().map_err(sled_error(TREE_DIRENTS))?;
        self.manifests.clear().map_err(sled_error(TREE_MANIFESTS))?;
        self.writing.clear().map_err(sled_error(TREE_WRITING))?;
        Ok(())
    }

    /// Removes the locations of chunks that garbage collection deleted.
    pub fn remove_chunks(&self, ids: &[ChunkId]) -> Result<()> {
        for id in ids {
            self.chunks.remove(id.0).map_err(sled_error(TREE_CHUNKS))?;
        }
        Ok(())
    }

    /// Makes every applied change durable in sled's own files.
    pub fn flush(&self) -> Result<()> {
        failpoint::check("index flush").map_err(|source| Error::io("failed to flush index", "index", source))?;
        self.db.flush().map(|_| ()).map_err(sled_error("db"))
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

    /// Iterates over all manifests, for `check` and `stats`.
    pub fn all_manifests(&self) -> impl Iterator<Item = Result<(u64, Vec<Extent>)>> + '_ {
        self.manifests.iter().map(move |item| {
            let (key, sealed) = item.map_err(sled_error(TREE_MANIFESTS))?;
            let ino: [u8; 8] = key.as_ref().try_into().map_err(|_| Error::IndexAuthenticationFailed { tree: TREE_MANIFESTS })?;
            Ok((u64::from_be_bytes(ino), self.open_value(TREE_MANIFESTS, &key, &sealed)?))
        })
    }

    /// Iterates over all chunk locations, for `check` and `stats`.
    pub fn all_chunks(&self) -> impl Iterator<Item = Result<(ChunkId, Location)>> + '_ {
        self.chunks.iter().map(move |item| {
            let (key, sealed) = item.map_err(sled_error(TREE_CHUNKS))?;
            let id: [u8; 32] = key.as_ref().try_into().map_err(|_| Error::IndexAuthenticationFailed { tree: TREE_CHUNKS })?;
            Ok((ChunkId(id), self.open_value(TREE_CHUNKS, &key, &sealed)?))
        })
    }

    /// Bytes of sled's files on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(sled_error("db"))
    }
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
