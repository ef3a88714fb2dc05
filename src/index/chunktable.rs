//! The chunk table: where each chunk sits, as an open-addressing hash table in a file.
//!
//! Dedup looks up every chunk written, and reads look up every chunk read, so the table
//! must stay fast at millions of chunks without keeping them in memory. sled keeps
//! state for each entry in memory (about 75 bytes an entry, measured over 240,000
//! inserts), which made the daemon's memory grow with the store. This table keeps
//! only its header in memory, and the kernel's page cache does the caching.
//!
//! Layout: a 4096-byte header, then `slots` slots of 64 bytes, so a slot never
//! straddles a 512-byte sector and a torn write cannot half-write one. Chunk ids are
//! keyed hashes, uniform and not chosen by anyone without the key, so an id's first
//! 8 bytes pick its home slot and linear probing resolves collisions.
//!
//! Slot: chunk id (32), pack number u32, offset u32, sealed length u32 (all LE), state
//! u8 (0 empty, 1 live, 2 deleted) and 3 zero bytes. The last 16 bytes are the start
//! of a keyed BLAKE3 MAC of the first 48. A location is not secret: each frame's
//! header names its chunk id in clear. The MAC only stops an entry being edited to
//! point elsewhere; a chunk frame opened at a wrong location fails authentication too.
//!
//! Durability: [`ChunkTable::insert`] writes through the page cache and
//! [`ChunkTable::sync`] fsyncs. The index calls `sync` before it records the commit
//! marker, so a durable marker never points past entries the table could lose.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::crypto::{ChunkId, SubKey};
use crate::error::{Error, Result};
use crate::store::pack::Location;

pub const MAGIC: &[u8; 16] = b"wormvault-ctab1\0";
pub const HEADER_LEN: u64 = 4096;
pub const SLOT_LEN: usize = 64;
pub const PAGE_LEN: usize = 4096;
const SLOTS_PER_PAGE: u64 = (PAGE_LEN / SLOT_LEN) as u64;
/// Slots of a new table: 256 KiB of file, room for about 2,800 chunks (45 MiB of data
/// at the default chunk size) before the first growth.
pub const INITIAL_SLOTS: u64 = 1 << 12;
/// The table grows when live plus deleted slots would pass this share of all slots.
/// With linear probing a miss reads (1 + 1/(1 - load)^2) / 2 slots on average: about
/// 6 at 0.7 and 13 at 0.8.
pub const MAX_LOAD: f64 = 0.7;
/// Pages a batch of inserts keeps buffered before it writes the lowest back.
const BATCH_PAGES: usize = 64;

const STATE_EMPTY: u8 = 0;
const STATE_LIVE: u8 = 1;
const STATE_DELETED: u8 = 2;

pub const MAC_CONTEXT: &str = "wormvault 2026-12 v1 chunk table mac";

fn bad() -> Error {
    Error::IndexAuthenticationFailed { tree: "chunks" }
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> Error + 'a {
    move |source| Error::io(what, path, source)
}

struct Table {
    file: File,
    slots: u64,
    live: u64,
    deleted: u64,
}

pub struct ChunkTable {
    path: PathBuf,
    mac_key: SubKey,
    table: RwLock<Table>,
}

impl ChunkTable {
    /// Opens the table at `path`, creating an empty one when `create` is set.
    /// Returns `None` when the file is missing and `create` is not set.
    pub fn open(path: &Path, index_key: &SubKey, create: bool) -> Result<Option<ChunkTable>> {
        let mac_key = SubKey::from_bytes(blake3::derive_key(MAC_CONTEXT, index_key.as_bytes()));
        if !path.exists() {
            if !create {
                return Ok(None);
            }
            // Made under a temporary name and renamed, so a crash never leaves a table
            // without its header at the final name.
            let fresh_path = path.with_extension("new");
            let _ = std::fs::remove_file(&fresh_path);
            let file = new_table_file(&fresh_path, INITIAL_SLOTS)?;
            let table = Table { file, slots: INITIAL_SLOTS, live: 0, deleted: 0 };
            write_header(&table, &mac_key).map_err(io_error("failed to write chunk table", &fresh_path))?;
            table.file.sync_all().map_err(io_error("failed to sync chunk table", &fresh_path))?;
            std::fs::rename(&fresh_path, path).map_err(io_error("failed to create chunk table", path))?;
            sync_parent(path)?;
            return Ok(Some(ChunkTable { path: path.to_path_buf(), mac_key, table: RwLock::new(table) }));
        }

        let file = OpenOptions::new().read(true).write(true).open(path).map_err(io_error("failed to open chunk table", path))?;
        let mut header = [0u8; 72];
        file.read_exact_at(&mut header, 0).map_err(|_| bad())?;
        if &header[..16] != MAGIC || header_mac(&mac_key, &header[..40]) != header[40..72] {
            return Err(bad());
        }

        let field = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
        let (slots, live, deleted) = (field(16), field(24), field(32));
        let length = file.metadata().map_err(io_error("failed to open chunk table", path))?.len();
        if !slots.is_power_of_two() || slots < SLOTS_PER_PAGE || live + deleted > slots || length != HEADER_LEN + slots * SLOT_LEN as u64 {
            return Err(bad());
        }

        let table = Table { file, slots, live, deleted };
        Ok(Some(ChunkTable { path: path.to_path_buf(), mac_key, table: RwLock::new(table) }))
    }

    /// Number of live entries.
    pub fn entries(&self) -> u64 {
        self.read().live
    }

    /// Bytes of the table file.
    pub fn size_on_disk(&self) -> u64 {
        HEADER_LEN + self.read().slots * SLOT_LEN as u64
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Looks up the location of chunk `id`.
    pub fn get(&self, id: &ChunkId) -> Result<Option<Location>> {
        let table = self.read();
        let mut page = [0u8; PAGE_LEN];
        let mut loaded = u64::MAX;
        let mut slot = home_slot(id, table.slots);
        for _ in 0..table.slots {
            let page_no = slot / SLOTS_PER_PAGE;
            if page_no != loaded {
                table.file.read_exact_at(&mut page, page_offset(page_no)).map_err(io_error("failed to read chunk table", &self.path))?;
                loaded = page_no;
            }
            let at = (slot % SLOTS_PER_PAGE) as usize * SLOT_LEN;
            let bytes: &[u8; SLOT_LEN] = page[at..at + SLOT_LEN].try_into().expect("one slot");
            match bytes[44] {
                STATE_EMPTY => return Ok(None),
                STATE_LIVE if bytes[..32] == id.0 => return decode_slot(&self.mac_key, bytes).map(|(_, location)| Some(location)),
                _ => {}
            }
            slot = (slot + 1) & (table.slots - 1);
        }
        Ok(None)
    }

    /// Records the locations of `entries`, replacing any earlier location of the same
    /// chunk. Grows the table first when they would load it past [`MAX_LOAD`].
    pub fn insert(&self, entries: &[(ChunkId, Location)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut table = self.write();
        let needed = table.live + table.deleted + entries.len() as u64;
        if needed as f64 > table.slots as f64 * MAX_LOAD {
            let entries = table.live + entries.len() as u64;
            self.grow(&mut table, entries)?;
        }

        let mut slots = Vec::with_capacity(entries.len());
        for (id, location) in entries {
            slots.push(encode_slot(&self.mac_key, id, location, STATE_LIVE)?);
        }
        let (added, reused) = match put_slots(&table.file, table.slots, &mut slots) {
            Ok(counts) => counts,
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => {
                // The counts were short, as after a power cut between writing slots and
                // the header: count the slots again, grow, and insert again. Entries
                // already written are found and rewritten in place.
                log::warn!("chunk table counts too low, recounting its slots: path={}", self.path.display());
                let (live, deleted) = count_slots(&table, &self.path)?;
                table.live = live;
                table.deleted = deleted;
                let entries = table.live + entries.len() as u64;
                self.grow(&mut table, entries)?;
                put_slots(&table.file, table.slots, &mut slots).map_err(io_error("failed to write chunk table", &self.path))?
            }
            Err(error) => return Err(Error::io("failed to write chunk table", &self.path, error)),
        };
        table.live += added;
        table.deleted = table.deleted.saturating_sub(reused);
        // The header goes out with the slots, so a crash of the process alone never
        // leaves counts behind the slots.
        write_header(&table, &self.mac_key).map_err(io_error("failed to write chunk table", &self.path))?;
        Ok(())
    }

    /// Marks the entries of `ids` deleted; ids not in the table are skipped.
    pub fn remove(&self, ids: &[ChunkId]) -> Result<()> {
        let mut table = self.write();
        let slots = table.slots;
        let mut removed = 0;
        let mut cache = PageCache::new(&table.file);
        for id in ids {
            let mut slot = home_slot(id, slots);
            for _ in 0..slots {
                let page = cache.page(slot / SLOTS_PER_PAGE).map_err(io_error("failed to read chunk table", &self.path))?;
                let at = (slot % SLOTS_PER_PAGE) as usize * SLOT_LEN;
                let state = page.bytes[at + 44];
                if state == STATE_EMPTY {
                    break;
                }
                if state == STATE_LIVE && page.bytes[at..at + 32] == id.0 {
                    let (_, location) = decode_slot(&self.mac_key, page.bytes[at..at + SLOT_LEN].try_into().expect("one slot"))?;
                    let slot_bytes = encode_slot(&self.mac_key, id, &location, STATE_DELETED)?;
                    page.bytes[at..at + SLOT_LEN].copy_from_slice(&slot_bytes);
                    page.dirty = true;
                    removed += 1;
                    break;
                }
                slot = (slot + 1) & (slots - 1);
            }
        }
        cache.flush_all().map_err(io_error("failed to write chunk table", &self.path))?;
        table.live -= removed;
        table.deleted += removed;
        Ok(())
    }

    /// Writes the header and fsyncs the table.
    pub fn sync(&self) -> Result<()> {
        let table = self.read();
        write_header(&table, &self.mac_key).map_err(io_error("failed to write chunk table", &self.path))?;
        table.file.sync_data().map_err(io_error("failed to sync chunk table", &self.path))
    }

    /// Calls `visit` with every live entry, in slot order.
    pub fn for_each(&self, mut visit: impl FnMut(ChunkId, Location) -> Result<()>) -> Result<()> {
        let table = self.read();
        scan_blocks(&table, &self.path, |block| {
            for bytes in block.chunks_exact(SLOT_LEN).filter(|bytes| bytes[44] == STATE_LIVE) {
                let (id, location) = decode_slot(&self.mac_key, bytes.try_into().expect("one slot"))?;
                visit(id, location)?;
            }
            Ok(())
        })
    }

    /// Moves every live entry into a new file of enough slots for `entries` at half
    /// load, then renames it over the table. A crash leaves the old table or the new.
    fn grow(&self, table: &mut Table, entries: u64) -> Result<()> {
        let mut slots = table.slots;
        while (entries as f64) > slots as f64 * MAX_LOAD / 1.4 {
            slots *= 2;
        }
        let fresh_path = self.path.with_extension("new");
        let _ = std::fs::remove_file(&fresh_path);
        let fresh = new_table_file(&fresh_path, slots)?;
        let write_error = io_error("failed to grow chunk table", &fresh_path);
        let mut moved = 0;
        scan_blocks(table, &self.path, |block| {
            let mut live: Vec<[u8; SLOT_LEN]> =
                block.chunks_exact(SLOT_LEN).filter(|bytes| bytes[44] == STATE_LIVE).map(|bytes| bytes.try_into().expect("one slot")).collect();
            moved += put_slots(&fresh, slots, &mut live).map_err(&write_error)?.0;
            Ok(())
        })?;

        let grown = Table { file: fresh, slots, live: moved, deleted: 0 };
        write_header(&grown, &self.mac_key).map_err(&write_error)?;
        grown.file.sync_all().map_err(&write_error)?;
        std::fs::rename(&fresh_path, &self.path).map_err(io_error("failed to grow chunk table", &self.path))?;
        sync_parent(&self.path)?;
        log::debug!("chunk table grown: slots={} entries={moved}", slots);
        *table = grown;
        Ok(())
    }
}

/// Writes encoded `slots` (all live) into a table of `slots_total` slots, replacing a
/// live slot of the same id. Returns how many were added and how many of those took
/// a deleted slot. Sorting by home slot makes the writes one pass over the file.
fn put_slots(file: &File, slots_total: u64, slots: &mut [[u8; SLOT_LEN]]) -> std::io::Result<(u64, u64)> {
    slots.sort_unstable_by_key(|bytes| home_slot_of(bytes, slots_total));
    let mut cache = PageCache::new(file);
    let (mut added, mut reused) = (0, 0);
    for bytes in slots.iter() {
        let mut slot = home_slot_of(bytes, slots_total);
        let mut free: Option<u64> = None;
        let mut probes = 0u64;
        let target = loop {
            probes += 1;
            if probes > slots_total {
                match free {
                    Some(free) => break free,
                    None => return Err(std::io::Error::from(std::io::ErrorKind::StorageFull)),
                }
            }
            let page = cache.page(slot / SLOTS_PER_PAGE)?;
            let at = (slot % SLOTS_PER_PAGE) as usize * SLOT_LEN;
            match page.bytes[at + 44] {
                STATE_EMPTY => break free.unwrap_or(slot),
                STATE_LIVE if page.bytes[at..at + 32] == bytes[..32] => break slot,
                STATE_DELETED if free.is_none() => free = Some(slot),
                _ => {}
            }
            slot = (slot + 1) & (slots_total - 1);
        };
        let page = cache.page(target / SLOTS_PER_PAGE)?;
        let at = (target % SLOTS_PER_PAGE) as usize * SLOT_LEN;
        match page.bytes[at + 44] {
            STATE_EMPTY => added += 1,
            STATE_DELETED => {
                added += 1;
                reused += 1;
            }
            _ => {}
        }
        page.bytes[at..at + SLOT_LEN].copy_from_slice(bytes);
        page.dirty = true;
    }
    cache.flush_all()?;
    Ok((added, reused))
}

/// Calls `visit` with the slots of `table` in order, one 1 MiB block of whole slots
/// at a time.
fn scan_blocks(table: &Table, path: &Path, mut visit: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
    let mut block = vec![0u8; 256 * PAGE_LEN];
    let mut offset = HEADER_LEN;
    let end = HEADER_LEN + table.slots * SLOT_LEN as u64;
    while offset < end {
        let len = block.len().min((end - offset) as usize);
        table.file.read_exact_at(&mut block[..len], offset).map_err(io_error("failed to read chunk table", path))?;
        visit(&block[..len])?;
        offset += len as u64;
    }
    Ok(())
}

/// Counts the live and deleted slots of `table`.
fn count_slots(table: &Table, path: &Path) -> Result<(u64, u64)> {
    let (mut live, mut deleted) = (0, 0);
    scan_blocks(table, path, |block| {
        for bytes in block.chunks_exact(SLOT_LEN) {
            match bytes[44] {
                STATE_LIVE => live += 1,
                STATE_DELETED => deleted += 1,
                _ => {}
            }
        }
        Ok(())
    })?;
    Ok((live, deleted))
}

struct CachedPage {
    bytes: Box<[u8; PAGE_LEN]>,
    dirty: bool,
}

/// A few pages of the table held during one batch, written back lowest first.
struct PageCache<'a> {
    file: &'a File,
    pages: BTreeMap<u64, CachedPage>,
}

impl<'a> PageCache<'a> {
    fn new(file: &'a File) -> Self {
        PageCache { file, pages: BTreeMap::new() }
    }

    fn page(&mut self, page_no: u64) -> std::io::Result<&mut CachedPage> {
        if !self.pages.contains_key(&page_no) {
            if self.pages.len() >= BATCH_PAGES {
                let (evicted, page) = self.pages.pop_first().expect("the cache is full");
                if page.dirty {
                    self.file.write_all_at(&page.bytes[..], page_offset(evicted))?;
                }
            }
            let mut bytes = Box::new([0u8; PAGE_LEN]);
            self.file.read_exact_at(&mut bytes[..], page_offset(page_no))?;
            self.pages.insert(page_no, CachedPage { bytes, dirty: false });
        }
        Ok(self.pages.get_mut(&page_no).expect("the page was just loaded"))
    }

    fn flush_all(&mut self) -> std::io::Result<()> {
        while let Some((page_no, page)) = self.pages.pop_first() {
            if page.dirty {
                self.file.write_all_at(&page.bytes[..], page_offset(page_no))?;
            }
        }
        Ok(())
    }
}

fn page_offset(page_no: u64) -> u64 {
    HEADER_LEN + page_no * PAGE_LEN as u64
}

fn home_slot(id: &ChunkId, slots: u64) -> u64 {
    u64::from_le_bytes(id.0[..8].try_into().expect("8 bytes")) & (slots - 1)
}

fn home_slot_of(bytes: &[u8; SLOT_LEN], slots: u64) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) & (slots - 1)
}

fn slot_mac(key: &SubKey, body: &[u8]) -> [u8; 16] {
    let mac = blake3::keyed_hash(key.as_bytes(), body);
    mac.as_bytes()[..16].try_into().expect("16 bytes")
}

fn header_mac(key: &SubKey, body: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(key.as_bytes());
    hasher.update(b"header");
    hasher.update(body);
    *hasher.finalize().as_bytes()
}

fn encode_slot(key: &SubKey, id: &ChunkId, location: &Location, state: u8) -> Result<[u8; SLOT_LEN]> {
    // Packs are numbered from zero and close at 64 MiB, so both fit in 32 bits. A
    // store past 4 billion packs (256 PiB) would need a wider slot.
    let pack_no = u32::try_from(location.pack_no).map_err(|_| Error::ChunkTableFull { pack_no: location.pack_no })?;
    let offset = u32::try_from(location.offset).map_err(|_| Error::ChunkTableFull { pack_no: location.pack_no })?;
    let mut bytes = [0u8; SLOT_LEN];
    bytes[..32].copy_from_slice(&id.0);
    bytes[32..36].copy_from_slice(&pack_no.to_le_bytes());
    bytes[36..40].copy_from_slice(&offset.to_le_bytes());
    bytes[40..44].copy_from_slice(&location.sealed_len.to_le_bytes());
    bytes[44] = state;
    let mac = slot_mac(key, &bytes[..48]);
    bytes[48..].copy_from_slice(&mac);
    Ok(bytes)
}

fn decode_slot(key: &SubKey, bytes: &[u8; SLOT_LEN]) -> Result<(ChunkId, Location)> {
    if slot_mac(key, &bytes[..48]) != bytes[48..] || bytes[45..48] != [0, 0, 0] {
        return Err(bad());
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let id = ChunkId(bytes[..32].try_into().expect("32 bytes"));
    Ok((id, Location { pack_no: u64::from(word(32)), offset: u64::from(word(36)), sealed_len: word(40) }))
}

fn write_header(table: &Table, key: &SubKey) -> std::io::Result<()> {
    let mut header = [0u8; 72];
    header[..16].copy_from_slice(MAGIC);
    header[16..24].copy_from_slice(&table.slots.to_le_bytes());
    header[24..32].copy_from_slice(&table.live.to_le_bytes());
    header[32..40].copy_from_slice(&table.deleted.to_le_bytes());
    let mac = header_mac(key, &header[..40]);
    header[40..].copy_from_slice(&mac);
    table.file.write_all_at(&header, 0)
}

/// Creates a zero-filled table file of `slots` slots, private to its owner.
fn new_table_file(path: &Path, slots: u64) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("failed to create chunk table", path))?;
    // Reserve the blocks now, so a full disk fails here rather than in a later write.
    let length = HEADER_LEN + slots * SLOT_LEN as u64;
    // SAFETY: fallocate on an owned, open descriptor with in-range arguments.
    let rc = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, 0, length as libc::off_t) };
    if rc != 0 {
        let error = std::io::Error::last_os_error();
        let _ = std::fs::remove_file(path);
        return Err(Error::io("failed to create chunk table", path, error));
    }
    Ok(file)
}

fn sync_parent(path: &Path) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    File::open(parent).and_then(|dir| dir.sync_all()).map_err(io_error("failed to sync folder", parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> ChunkId {
        ChunkId(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    fn location(n: u64) -> Location {
        Location { pack_no: n % 7, offset: n * 64, sealed_len: (n % 1000) as u32 + 40 }
    }

    #[test]
    fn entries_survive_growth_reopen_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks");
        let key = SubKey::from_bytes([9; 32]);
        let table = ChunkTable::open(&path, &key, true).unwrap().unwrap();
        let total = 200_000u64;
        for batch in (0..total).collect::<Vec<_>>().chunks(30_000) {
            let entries: Vec<_> = batch.iter().map(|&n| (id(n), location(n))).collect();
            table.insert(&entries).unwrap();
        }
        assert_eq!(table.entries(), total);
        assert!(table.size_on_disk() > INITIAL_SLOTS * SLOT_LEN as u64);
        table.sync().unwrap();
        drop(table);

        let table = ChunkTable::open(&path, &key, false).unwrap().unwrap();
        for n in (0..total).step_by(997) {
            assert_eq!(table.get(&id(n)).unwrap(), Some(location(n)));
        }
        assert_eq!(table.get(&id(total + 1)).unwrap(), None);

        let removed: Vec<_> = (0..1000).map(id).collect();
        table.remove(&removed).unwrap();
        assert_eq!(table.get(&id(5)).unwrap(), None);
        assert_eq!(table.get(&id(1000)).unwrap(), Some(location(1000)));
        // A removed chunk written again takes a slot back.
        table.insert(&[(id(5), location(6))]).unwrap();
        assert_eq!(table.get(&id(5)).unwrap(), Some(location(6)));
        let mut seen = 0;
        table.for_each(|_, _| {
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, total - 999);
        assert_eq!(table.entries(), total - 999);
    }

    #[test]
    fn short_counts_are_recounted_before_the_table_fills() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks");
        let key = SubKey::from_bytes([7; 32]);
        let table = ChunkTable::open(&path, &key, true).unwrap().unwrap();
        let slots = table.read().slots;
        // Fill the table to 60%, then lose the counts as a crash would: the header
        // says the table is empty.
        let first = slots * 6 / 10;
        let entries: Vec<_> = (0..first).map(|n| (id(n), location(n))).collect();
        table.insert(&entries).unwrap();
        assert_eq!(table.read().slots, slots, "no growth yet");
        {
            let mut inner = table.write();
            inner.live = 0;
            write_header(&inner, &key).unwrap();
        }
        // Two more batches of 30% each look like they fit but overfill the table.
        let batch = slots * 3 / 10;
        let total = first + 2 * batch;
        let more: Vec<_> = (first..total).map(|n| (id(n), location(n))).collect();
        table.insert(&more[..batch as usize]).unwrap();
        table.insert(&more[batch as usize..]).unwrap();
        assert!(table.read().slots > slots, "the table grew after recounting");
        assert_eq!(table.entries(), total);
        for n in (0..total).step_by(97) {
            assert_eq!(table.get(&id(n)).unwrap(), Some(location(n)));
        }
    }

    #[test]
    fn tampering_fails_authentication() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks");
        let key = SubKey::from_bytes([3; 32]);
        let table = ChunkTable::open(&path, &key, true).unwrap().unwrap();
        table.insert(&[(id(1), location(1))]).unwrap();
        table.sync().unwrap();
        drop(table);
        assert!(matches!(ChunkTable::open(&path, &SubKey::from_bytes([4; 32]), false), Err(Error::IndexAuthenticationFailed { .. })));

        let slot = home_slot(&id(1), INITIAL_SLOTS);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0x55], HEADER_LEN + slot * SLOT_LEN as u64 + 36).unwrap();
        let table = ChunkTable::open(&path, &key, false).unwrap().unwrap();
        assert!(matches!(table.get(&id(1)), Err(Error::IndexAuthenticationFailed { .. })));
    }
}
