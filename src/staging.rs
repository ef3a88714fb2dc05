//! A file being written: extents already handed to the chunk store, a tail of bytes
//! not yet cut into chunks, and runs that arrived ahead of the tail.
//!
//! The kernel's write-back cache sends pages out of order, rewrites the growing last
//! page, and reads pages back; tools seek back to patch headers. So every write at any
//! offset is taken: appends go to the tail, writes ahead of it wait in `pending`, and
//! writes below the tail redo only the chunks they touch. Memory stays bounded by the
//! tail (a few chunk lengths), `pending` (at most [`PENDING_LIMIT_BYTES`], then the gap
//! becomes a zero extent) and the extents not yet committed. After each commit, the
//! committed extents are dropped from memory in whole manifest pages (spilled). They
//! are read back from the index only if a write or read reaches below them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::chunking::Chunker;
use crate::chunkstore::{ChunkStore, Ticket};
use crate::error::{Error, Result};
use crate::index::{Index, MANIFEST_PAGE_EXTENTS};
use crate::tree::Extent;

/// Bytes kept uncut at the end of the tail, so rewrites of the last pages (the
/// write-back cache resends a growing last page) land in the tail, not in a chunk.
const HOLDBACK_BYTES: usize = 128 * 1024;
/// Data ahead of the tail beyond this is not held in memory: the gap before it is
/// recorded as zeros, and a later write into the gap patches those zeros.
pub const PENDING_LIMIT_BYTES: usize = 64 * 1024 * 1024;
/// Zero extents are split at this alignment when a write lands in them.
const ZERO_SPLIT_ALIGN: u64 = 64 * 1024;
/// Extents kept in memory after a spill, so rewrites of the last pages and other
/// writes near the end never have to read spilled extents back.
const KEEP_EXTENTS: usize = 2 * MANIFEST_PAGE_EXTENTS;

/// The chunk store and chunker that a staged file writes through, and the index that
/// contains its spilled extents.
pub struct Pipeline<'a> {
    pub store: &'a ChunkStore,
    pub chunker: &'a Chunker,
    pub index: &'a Index,
}

pub struct StagedFile {
    ino: u64,
    /// Extents from number `base` on; those before it were spilled. Extent numbers in
    /// `changed_from` and the delta API count from the file's start, indexes into
    /// `extents` and `starts` from `base`.
    extents: Vec<Extent>,
    /// File offset of each extent in `extents`.
    starts: Vec<u64>,
    /// Number of spilled extents: a multiple of [`MANIFEST_PAGE_EXTENTS`], all in the
    /// index as committed.
    base: usize,
    /// File offset of the first extent in memory: the bytes the spilled extents cover.
    base_offset: u64,
    /// File offset of each spilled manifest page, for reads below `base_offset`.
    spilled_pages: Vec<u64>,
    /// End of the extents: first byte held in `tail`.
    frontier: u64,
    tail: Vec<u8>,
    /// Non-overlapping runs that start after the end of the tail, by offset.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Logical size: at least the end of the data, more after a growing truncate.
    size: u64,
    /// Nothing changed since the last [`StagedFile::settle`].
    settled: bool,
    /// Lowest extent index replaced or removed since the last [`StagedFile::take_delta`];
    /// extents below it are unchanged and need not be recorded again.
    changed_from: usize,
    pub ticket: Arc<Ticket>,
}

impl StagedFile {
    /// Starts an empty file with inode number `ino`.
    pub fn new(ino: u64) -> Self {
        StagedFile {
            ino,
            extents: Vec::new(),
            starts: Vec::new(),
            base: 0,
            base_offset: 0,
            spilled_pages: Vec::new(),
            frontier: 0,
            tail: Vec::new(),
            pending: BTreeMap::new(),
            pending_bytes: 0,
            size: 0,
            settled: true,
            changed_from: usize::MAX,
            ticket: Arc::new(Ticket::default()),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes the extents cover: the size of the file when it is sealed. It is less
    /// than [`StagedFile::size`] when a failed settle left bytes out of the extents.
    pub fn stored_len(&self) -> u64 {
        self.frontier
    }

    fn data_end(&self) -> u64 {
        let tail_end = self.frontier + self.tail.len() as u64;
        match self.pending.last_key_value() {
            Some((start, run)) => tail_end.max(start + run.len() as u64),
            None => tail_end,
        }
    }

    fn push_extent(&mut self, extent: Extent) {
        if extent.len == 0 {
            return;
        }
        self.starts.push(self.frontier);
        self.frontier += extent.len;
        self.extents.push(extent);
    }

    fn rebuild_starts(&mut self) {
        self.starts.clear();
        let mut offset = self.base_offset;
        for extent in &self.extents {
            self.starts.push(offset);
            offset += extent.len;
        }
        self.frontier = offset;
    }

    /// Index of the extent holding byte `offset` (which must be below the frontier and
    /// not below `base_offset`).
    fn extent_at(&self, offset: u64) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(index) => index,
            Err(index) => index - 1,
        }
    }

    /// Writes `data` at `offset`.
    pub fn write(&mut self, pipeline: &Pipeline, offset: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.settled = false;
        let end = offset + data.len() as u64;
        let mut offset = offset;
        let mut data = data;
        if offset < self.base_offset {
            self.unspill(pipeline)?;
        }
        if offset < self.frontier {
            self.reopen_near_end(pipeline, offset)?;
        }
        if offset < self.frontier {
            let below = (end.min(self.frontier) - offset) as usize;
            self.patch(pipeline, offset, &data[..below])?;
            offset += below as u64;
            data = &data[below..];
        }
        if !data.is_empty() {
            let tail_end = self.frontier + self.tail.len() as u64;
            self.trim_pending(offset, end);
            if offset <= tail_end {
                let relative = (offset - self.frontier) as usize;
                if relative + data.len() > self.tail.len() {
                    self.tail.resize(relative + data.len(), 0);
                }
                self.tail[relative..relative + data.len()].copy_from_slice(data);
                self.absorb_pending();
            } else {
                self.pending_bytes += data.len();
                self.pending.insert(offset, data.to_vec());
                if self.pending_bytes > PENDING_LIMIT_BYTES {
                    self.skip_gap(pipeline)?;
                }
            }
        }
        self.size = self.size.max(end);
        self.cut(pipeline, false)
    }

    /// Moves the last extents back into the tail when a write lands in them and they
    /// are few, the common case of a rewritten last page.
    fn reopen_near_end(&mut self, pipeline: &Pipeline, offset: u64) -> Result<()> {
        let limit = 2 * u64::from(pipeline.chunker.params().max_bytes);
        let first = self.extent_at(offset);
        if self.frontier - self.starts[first] > limit {
            return Ok(());
        }
        let bytes = self.materialize(pipeline, first, self.extents.len())?;
        self.changed_from = self.changed_from.min(self.base + first);
        self.extents.truncate(first);
        self.starts.truncate(first);
        self.frontier -= bytes.len() as u64;
        let mut tail = bytes;
        tail.extend_from_slice(&self.tail);
        self.tail = tail;
        Ok(())
    }

    /// Rewrites the chunks under `[offset, offset + data.len())`, all below the frontier.
    fn patch(&mut self, pipeline: &Pipeline, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset + data.len() as u64;
        self.split_zero_extents(offset, end);
        let first = self.extent_at(offset);
        let last = self.extent_at(end - 1) + 1;
        let region_start = self.starts[first];
        let mut region = self.materialize(pipeline, first, last)?;
        let relative = (offset - region_start) as usize;
        region[relative..relative + data.len()].copy_from_slice(data);
        let mut replacement = Vec::new();
        let mut cursor = 0;
        for len in pipeline.chunker.split_all(&region) {
            let id = pipeline.store.put(region[cursor..cursor + len].to_vec(), &self.ticket)?;
            replacement.push(Extent { len: len as u64, chunk: Some(id) });
            cursor += len;
        }
        self.changed_from = self.changed_from.min(self.base + first);
        self.extents.splice(first..last, replacement);
        self.rebuild_starts();
        Ok(())
    }

    /// Splits zero extents overlapping `[offset, end)` so the overlapping piece is
    /// small, aligned to [`ZERO_SPLIT_ALIGN`]: a write into a huge hole then costs
    /// only the chunks around it.
    fn split_zero_extents(&mut self, offset: u64, end: u64) {
        let mut split = Vec::with_capacity(self.extents.len() + 2);
        let mut changed = false;
        for (extent, start) in self.extents.iter().zip(&self.starts) {
            let extent_end = start + extent.len;
            if extent.chunk.is_some() || extent_end <= offset || *start >= end {
                split.push(*extent);
                continue;
            }
            let low = (*start).max(offset / ZERO_SPLIT_ALIGN * ZERO_SPLIT_ALIGN);
            let high = extent_end.min(end.div_ceil(ZERO_SPLIT_ALIGN) * ZERO_SPLIT_ALIGN);
            for (from, to) in [(*start, low), (low, high), (high, extent_end)] {
                if to > from {
                    split.push(Extent { len: to - from, chunk: None });
                }
            }
            changed = true;
        }
        if changed {
            let first_changed = self.extents.iter().zip(&split).position(|(old, new)| old != new).unwrap_or(self.extents.len());
            self.changed_from = self.changed_from.min(self.base + first_changed);
            self.extents = split;
            self.rebuild_starts();
        }
    }

    /// Returns the bytes of extents `first..last`.
    fn materialize(&self, pipeline: &Pipeline, first: usize, last: usize) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        for extent in &self.extents[first..last] {
            match &extent.chunk {
                Some(id) => bytes.extend_from_slice(&pipeline.store.get(id)?),
                None => bytes.resize(bytes.len() + extent.len as usize, 0),
            }
        }
        Ok(bytes)
    }

    /// Drops pending bytes in `[offset, end)`: a newer write replaces them.
    fn trim_pending(&mut self, offset: u64, end: u64) {
        let overlapping: Vec<u64> = self
            .pending
            .range(..end)
            .filter(|(start, run)| *start + run.len() as u64 > offset)
            .map(|(start, _)| *start)
            .collect();
        for start in overlapping {
            let run = self.pending.remove(&start).expect("key was just listed");
            self.pending_bytes -= run.len();
            let run_end = start + run.len() as u64;
            if start < offset {
                let left = run[..(offset - start) as usize].to_vec();
                self.pending_bytes += left.len();
                self.pending.insert(start, left);
            }
            if run_end > end {
                let right = run[(end - start) as usize..].to_vec();
                self.pending_bytes += right.len();
                self.pending.insert(end, right);
            }
        }
    }

    /// Appends pending runs that now continue the tail.
    fn absorb_pending(&mut self) {
        loop {
            let tail_end = self.frontier + self.tail.len() as u64;
            let Some(entry) = self.pending.first_entry() else { return };
            if *entry.key() != tail_end {
                return;
            }
            let run = entry.remove();
            self.pending_bytes -= run.len();
            self.tail.extend_from_slice(&run);
        }
    }

    /// Records the gap before the first pending run as zeros and continues from it.
    fn skip_gap(&mut self, pipeline: &Pipeline) -> Result<()> {
        self.cut(pipeline, true)?;
        if let Some((&start, _)) = self.pending.first_key_value() {
            let gap = start - self.frontier;
            self.push_extent(Extent { len: gap, chunk: None });
            self.absorb_pending();
        }
        Ok(())
    }

    /// Cuts chunks off the front of the tail. Unless `all`, the last
    /// [`HOLDBACK_BYTES`] stay, and so does a piece whose cut needs more data.
    fn cut(&mut self, pipeline: &Pipeline, all: bool) -> Result<()> {
        // Unless cutting everything, a chunk is cut only when a whole maximum-size
        // chunk plus the holdback is buffered: then the cut is decided and lies before
        // the holdback, so no byte is scanned twice.
        let max = pipeline.chunker.params().max_bytes as usize;
        if !all && self.tail.len() < max + HOLDBACK_BYTES {
            return Ok(());
        }
        let tail = std::mem::take(&mut self.tail);
        let mut consumed = 0;
        let mut result = Ok(());
        while consumed < tail.len() && (all || tail.len() - consumed >= max + HOLDBACK_BYTES) {
            let available = &tail[consumed..];
            let len = match pipeline.chunker.find_cut(available) {
                Some(len) => len,
                None if all => available.len(),
                None => break,
            };
            match pipeline.store.put(available[..len].to_vec(), &self.ticket) {
                Ok(id) => self.push_extent(Extent { len: len as u64, chunk: Some(id) }),
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
            consumed += len;
        }
        self.tail = tail;
        self.tail.drain(..consumed);
        result
    }

    /// Hands every byte to the chunk store, so the extents describe the whole file.
    /// The file stays writable.
    pub fn settle(&mut self, pipeline: &Pipeline) -> Result<()> {
        if !self.settled {
            self.cut(pipeline, true)?;
            while let Some((start, run)) = self.pending.pop_first() {
                self.pending_bytes -= run.len();
                if start > self.frontier {
                    self.push_extent(Extent { len: start - self.frontier, chunk: None });
                }
                self.tail = run;
                self.cut(pipeline, true)?;
            }
            if self.size > self.frontier {
                self.push_extent(Extent { len: self.size - self.frontier, chunk: None });
            }
            self.settled = true;
        }
        Ok(())
    }

    /// Number of extents, spilled ones included, as of the last [`StagedFile::settle`].
    pub fn extent_count(&self) -> usize {
        self.base + self.extents.len()
    }

    /// Returns extents from number `first` on, reading spilled ones back if needed.
    pub fn extents_from(&mut self, pipeline: &Pipeline, first: usize) -> Result<Vec<Extent>> {
        if first < self.base {
            self.unspill(pipeline)?;
        }
        Ok(self.extents[first - self.base..].to_vec())
    }

    /// Returns what changed since extents `..recorded` were last recorded: how many
    /// leading extents stay as they were. Changes below `base` reload the spilled
    /// extents first, so the extents after the returned count are in memory.
    pub fn take_delta(&mut self, recorded: usize) -> usize {
        let keep = self.changed_from.min(recorded).min(self.extent_count());
        self.changed_from = usize::MAX;
        debug_assert!(keep >= self.base, "a change below the spilled extents reloads them first");
        keep
    }

    /// Drops from memory the extents below number `committed`, all in the index as
    /// committed, in whole manifest pages, keeping the last [`KEEP_EXTENTS`].
    pub fn spill(&mut self, committed: usize) {
        let upto = committed.min(self.changed_from).min(self.extent_count().saturating_sub(KEEP_EXTENTS));
        let target = upto / MANIFEST_PAGE_EXTENTS * MANIFEST_PAGE_EXTENTS;
        if target <= self.base {
            return;
        }
        let count = target - self.base;
        for page in (0..count).step_by(MANIFEST_PAGE_EXTENTS) {
            self.spilled_pages.push(self.starts[page]);
        }
        self.base_offset = self.starts[count];
        self.extents.drain(..count);
        self.starts.drain(..count);
        self.base = target;
        log::debug!("extents spilled: ino={} spilled={target} in_memory={}", self.ino, self.extents.len());
    }

    /// Reads the spilled extents back from the index, for a change below them.
    // NOTE: this reloads every spilled extent, so a file patched far below its end
    // (a header rewritten after gigabytes) keeps its whole extent list in memory again.
    fn unspill(&mut self, pipeline: &Pipeline) -> Result<()> {
        if self.base == 0 {
            return Ok(());
        }
        let stored = pipeline.index.manifest(self.ino)?.unwrap_or_default();
        let spilled = stored.get(..self.base).ok_or(Error::IndexAuthenticationFailed { tree: "manifests" })?;
        if spilled.iter().map(|extent| extent.len).sum::<u64>() != self.base_offset {
            return Err(Error::IndexAuthenticationFailed { tree: "manifests" });
        }
        let mut extents = spilled.to_vec();
        extents.append(&mut self.extents);
        self.extents = extents;
        self.base = 0;
        self.base_offset = 0;
        self.spilled_pages.clear();
        self.rebuild_starts();
        log::debug!("spilled extents read back: ino={} extents={}", self.ino, self.extents.len());
        Ok(())
    }

    /// Copies the bytes of `[offset, end)` below `base_offset` from the spilled pages.
    fn read_spilled(&self, pipeline: &Pipeline, offset: u64, end: u64, copy: &mut dyn FnMut(u64, &[u8])) -> Result<()> {
        let mut page = self.spilled_pages.partition_point(|start| *start <= offset) - 1;
        while page < self.spilled_pages.len() && self.spilled_pages[page] < end {
            let first = (page * MANIFEST_PAGE_EXTENTS) as u64;
            let extents = pipeline.index.manifest_page(self.ino, first)?;
            // The page must cover exactly the bytes up to the next spilled page.
            let covered: u64 = extents.iter().map(|extent| extent.len).sum();
            let next = self.spilled_pages.get(page + 1).copied().unwrap_or(self.base_offset);
            if extents.len() != MANIFEST_PAGE_EXTENTS || self.spilled_pages[page] + covered != next {
                return Err(Error::IndexAuthenticationFailed { tree: "manifests" });
            }
            let mut start = self.spilled_pages[page];
            for extent in extents {
                if start >= end {
                    break;
                }
                if start + extent.len > offset {
                    if let Some(id) = &extent.chunk {
                        copy(start, &pipeline.store.get(id)?);
                    }
                }
                start += extent.len;
            }
            page += 1;
        }
        Ok(())
    }

    /// Reads up to `len` bytes at `offset`; holes read as zeros.
    pub fn read(&self, pipeline: &Pipeline, offset: u64, len: usize) -> Result<Vec<u8>> {
        if offset >= self.size {
            return Ok(Vec::new());
        }
        let end = self.size.min(offset + len as u64);
        let mut out = vec![0u8; (end - offset) as usize];
        let mut copy = |from: u64, bytes: &[u8]| {
            let low = from.max(offset);
            let high = (from + bytes.len() as u64).min(end);
            if low < high {
                out[(low - offset) as usize..(high - offset) as usize]
                    .copy_from_slice(&bytes[(low - from) as usize..(high - from) as usize]);
            }
        };
        if offset < self.base_offset {
            self.read_spilled(pipeline, offset, end.min(self.base_offset), &mut copy)?;
        }
        if offset.max(self.base_offset) < self.frontier {
            let mut index = self.extent_at(offset.max(self.base_offset));
            while index < self.extents.len() && self.starts[index] < end {
                if let Some(id) = &self.extents[index].chunk {
                    copy(self.starts[index], &pipeline.store.get(id)?);
                }
                index += 1;
            }
        }
        copy(self.frontier, &self.tail);
        for (start, run) in self.pending.range(..end) {
            copy(*start, run);
        }
        Ok(out)
    }

    /// Changes the size: growing adds zeros, shrinking drops bytes past `new_size`.
    pub fn truncate(&mut self, pipeline: &Pipeline, new_size: u64) -> Result<()> {
        self.settled = false;
        if new_size >= self.data_end() {
            self.size = new_size;
            return Ok(());
        }
        self.trim_pending(new_size, u64::MAX);
        if new_size < self.base_offset {
            self.unspill(pipeline)?;
        }
        if new_size >= self.frontier {
            self.tail.truncate((new_size - self.frontier) as usize);
        } else {
            self.tail.clear();
            let index = self.extent_at(new_size);
            let start = self.starts[index];
            let extent = self.extents[index];
            self.changed_from = self.changed_from.min(self.base + index);
            self.extents.truncate(index);
            self.starts.truncate(index);
            self.frontier = start;
            if new_size > start {
                match &extent.chunk {
                    None => self.push_extent(Extent { len: new_size - start, chunk: None }),
                    Some(id) => self.tail = pipeline.store.get(id)?[..(new_size - start) as usize].to_vec(),
                }
            }
        }
        self.size = new_size;
        Ok(())
    }

    /// Cuts the file's extents off at the first chunk that failed to reach a pack, so a
    /// file sealed after a write failure holds exactly the bytes that were stored.
    pub fn cut_at_lost(&mut self, store: &ChunkStore) -> bool {
        let Some(index) = store.first_lost(self.extents.iter().filter_map(|extent| extent.chunk.as_ref())) else {
            return false;
        };
        let mut chunk_number = 0;
        let position = self
            .extents
            .iter()
            .position(|extent| {
                if extent.chunk.is_some() {
                    chunk_number += 1;
                }
                extent.chunk.is_some() && chunk_number == index + 1
            })
            .expect("the lost chunk is among the extents");
        self.changed_from = self.changed_from.min(self.base + position);
        self.extents.truncate(position);
        self.rebuild_starts();
        self.size = self.frontier;
        true
    }
}
