//! The chunk store: dedup, compression, sealing and packing of chunks, on worker
//! threads, and authenticated reads back.
//!
//! A chunk handed to [`ChunkStore::put`] is readable at once (from memory while it is
//! in flight) and reaches a pack on a worker. Queues are bounded, so a writer faster
//! than the workers waits in `put`: back-pressure is a slower reply, never EAGAIN.
//! Failures reach the writer through its [`Ticket`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::crypto::{self, ChunkId, Keys, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::store::format::{
    commit_id, frame_aad, CHUNK_HEADER_LEN, CHUNK_PAD_BYTES, CODEC_RAW, CODEC_ZSTD, FRAME_HEADER_LEN, KIND_CHUNK, KIND_COMMIT, ZSTD_LEVEL,
};
use crate::store::pack::{Location, PackReader, PackWriter};

/// Jobs waiting for a worker: about 2 MiB of plaintext at the 16 KiB average chunk
/// size, 16 MiB at most with 128 KiB chunks.
const QUEUE_DEPTH: usize = 128;
/// Prefetch requests waiting; more are dropped, since prefetching is only a hint.
const PREFETCH_QUEUE_DEPTH: usize = 256;
/// Bound on the decrypted-chunk cache.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Completion tracking for the chunks one writer handed over.
#[derive(Default)]
pub struct Ticket {
    state: Mutex<TicketState>,
    settled: Condvar,
}

#[derive(Default)]
struct TicketState {
    pending: usize,
    /// First failure, as an errno, kept until the ticket is dropped.
    error: Option<i32>,
}

impl Ticket {
    fn start(&self) {
        self.state.lock().expect("ticket lock poisoned").pending += 1;
    }

    fn finish(&self, error: Option<i32>) {
        let mut state = self.state.lock().expect("ticket lock poisoned");
        state.pending -= 1;
        if state.error.is_none() {
            state.error = error;
        }
        self.settled.notify_all();
    }

    /// Waits until every chunk handed over with this ticket is in a pack, then
    /// returns the first failure as an errno.
    pub fn wait(&self) -> Option<i32> {
        let mut state = self.state.lock().expect("ticket lock poisoned");
        while state.pending > 0 {
            state = self.settled.wait(state).expect("ticket lock poisoned");
        }
        state.error
    }

    /// Records a failure found outside the workers (a lost chunk, a failed commit).
    pub fn fail(&self, errno: i32) {
        let mut state = self.state.lock().expect("ticket lock poisoned");
        state.error.get_or_insert(errno);
    }

    pub fn error(&self) -> Option<i32> {
        self.state.lock().expect("ticket lock poisoned").error
    }
}

struct Job {
    id: ChunkId,
    plain: Arc<Vec<u8>>,
    ticket: Arc<Ticket>,
}

/// Counters for logs, `stats` and metrics.
#[derive(Default)]
pub struct ChunkCounters {
    pub chunks_new: AtomicU64,
    pub chunks_deduplicated: AtomicU64,
    pub plain_bytes_new: AtomicU64,
    pub sealed_bytes_new: AtomicU64,
}

#[derive(Default)]
struct ChunkState {
    /// Chunks handed over but not yet in a pack; reads are served from here.
    inflight: HashMap<ChunkId, Arc<Vec<u8>>>,
    /// Chunks in a pack but not yet applied to the index.
    uncommitted: HashMap<ChunkId, Location>,
    /// Chunks whose write failed; files that refer to them are cut off at seal.
    lost: HashSet<ChunkId>,
}

struct Shared {
    keys: Arc<Keys>,
    store_id: [u8; 16],
    index: Arc<Index>,
    writer: Mutex<PackWriter>,
    reader: PackReader,
    state: Mutex<ChunkState>,
    drained: Condvar,
    cache: Mutex<ChunkCache>,
    degraded: AtomicBool,
    counters: ChunkCounters,
    /// Chunks the prefetch thread is loading, and the signal that one is done.
    prefetching: Mutex<HashSet<ChunkId>>,
    prefetched: Condvar,
    /// Requests to the prefetch thread; `None` once the store shuts down, which ends
    /// the thread.
    prefetch_queue: Mutex<Option<Sender<ChunkId>>>,
}

pub struct ChunkStore {
    shared: Arc<Shared>,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl ChunkStore {
    /// Starts `worker_count` workers that append to `writer`.
    pub fn start(
        keys: Arc<Keys>,
        store_id: [u8; 16],
        index: Arc<Index>,
        writer: PackWriter,
        reader: PackReader,
        worker_count: usize,
    ) -> ChunkStore {
        let shared = Arc::new(Shared {
            keys,
            store_id,
            index,
            writer: Mutex::new(writer),
            reader,
            state: Mutex::new(ChunkState::default()),
            drained: Condvar::new(),
            cache: Mutex::new(ChunkCache::default()),
            degraded: AtomicBool::new(false),
            counters: ChunkCounters::default(),
            prefetching: Mutex::new(HashSet::new()),
            prefetched: Condvar::new(),
            prefetch_queue: Mutex::new(None),
        });
        let (sender, receiver) = bounded::<Job>(QUEUE_DEPTH);
        let workers: Vec<JoinHandle<()>> = (0..worker_count.max(1))
            .map(|number| {
                let shared = shared.clone();
                let receiver = receiver.clone();
                std::thread::Builder::new()
                    .name(format!("wormvault-seal-{number}"))
                    .spawn(move || run_worker(&shared, &receiver))
                    .expect("spawning a worker thread")
            })
            .collect();
        // As many prefetch threads as seal workers: decompression dominates a restore,
        // so a sequential reader is as fast as the cores that decrypt ahead of it.
        let (prefetch, requests) = bounded::<ChunkId>(PREFETCH_QUEUE_DEPTH);
        let mut workers = workers;
        for number in 0..worker_count.max(1) {
            let shared = shared.clone();
            let requests = requests.clone();
            let prefetcher = std::thread::Builder::new()
                .name(format!("wormvault-read-{number}"))
                .spawn(move || run_prefetcher(&shared, &requests))
                .expect("spawning a prefetch thread");
            workers.push(prefetcher);
        }
        *shared.prefetch_queue.lock().expect("prefetch queue lock poisoned") = Some(prefetch);
        ChunkStore { shared, jobs: Some(sender), workers }
    }

    pub fn counters(&self) -> &ChunkCounters {
        &self.shared.counters
    }

    pub fn keys(&self) -> &Keys {
        &self.shared.keys
    }

    /// Hands a chunk over and returns its id. A chunk already stored (or in flight)
    /// is not stored again. Blocks while the queue is full.
    pub fn put(&self, plain: Vec<u8>, ticket: &Arc<Ticket>) -> Result<ChunkId> {
        if self.shared.degraded.load(Ordering::Relaxed) {
            let reason = self.shared.writer.lock().expect("pack writer lock poisoned").broken().unwrap_or("").to_string();
            return Err(Error::Degraded { reason });
        }
        let id = self.shared.keys.chunk_id(&plain);
        let plain = Arc::new(plain);
        let (known, lost) = {
            let state = self.shared.state.lock().expect("chunk state lock poisoned");
            (state.inflight.contains_key(&id) || state.uncommitted.contains_key(&id), state.lost.contains(&id))
        };
        // The chunk table read happens without the state lock, which the seal workers
        // take after every append. Only the vault's lock holder calls put, and commits
        // take that lock too, so no chunk moves into the index in between.
        if known || (!lost && self.shared.index.chunk_location(&id)?.is_some()) {
            self.shared.counters.chunks_deduplicated.fetch_add(1, Ordering::Relaxed);
            log::trace!("chunk deduplicated: chunk={id}");
            return Ok(id);
        }
        {
            let mut state = self.shared.state.lock().expect("chunk state lock poisoned");
            state.lost.remove(&id);
            state.inflight.insert(id, plain.clone());
        }
        ticket.start();
        let job = Job { id, plain, ticket: ticket.clone() };
        self.jobs.as_ref().expect("workers run until drop").send(job).expect("workers run until drop");
        Ok(id)
    }

    /// Returns the plaintext of a chunk, authenticated.
    pub fn get(&self, id: &ChunkId) -> Result<Arc<Vec<u8>>> {
        self.reader().get(id)
    }

    /// Returns a handle for reading chunks from other threads.
    pub fn reader(&self) -> ChunkReader {
        ChunkReader { shared: self.shared.clone() }
    }
}

/// A handle that reads and prefetches chunks without the vault's lock, so reads of
/// sealed files can run on several threads.
#[derive(Clone)]
pub struct ChunkReader {
    shared: Arc<Shared>,
}

impl ChunkReader {
    /// Returns the plaintext of a chunk, authenticated.
    pub fn get(&self, id: &ChunkId) -> Result<Arc<Vec<u8>>> {
        if let Some(plain) = self.wait_for_prefetch(id) {
            return Ok(plain);
        }
        load_chunk(&self.shared, id)
    }

    /// Returns the chunk from the cache, first waiting for the prefetcher if it is
    /// loading it right now, so the same chunk is not decrypted twice.
    fn wait_for_prefetch(&self, id: &ChunkId) -> Option<Arc<Vec<u8>>> {
        let mut loading = self.shared.prefetching.lock().expect("prefetch lock poisoned");
        while loading.contains(id) {
            loading = self.shared.prefetched.wait(loading).expect("prefetch lock poisoned");
        }
        drop(loading);
        self.shared.cache.lock().expect("cache lock poisoned").get(id)
    }

    /// Asks the prefetch thread to load and decrypt `ids` into the cache, ahead of a
    /// sequential reader. Chunks already cached or queued are skipped.
    pub fn prefetch(&self, ids: &[ChunkId]) {
        let queue = self.shared.prefetch_queue.lock().expect("prefetch queue lock poisoned");
        let Some(queue) = queue.as_ref() else { return };
        let mut loading = self.shared.prefetching.lock().expect("prefetch lock poisoned");
        let cache = self.shared.cache.lock().expect("cache lock poisoned");
        for id in ids {
            if cache.get(id).is_none() && !loading.contains(id) && queue.try_send(*id).is_ok() {
                loading.insert(*id);
            }
        }
    }
}

/// Loads, authenticates and caches one chunk.
fn load_chunk(shared: &Shared, id: &ChunkId) -> Result<Arc<Vec<u8>>> {
    {
        let location = {
            let state = shared.state.lock().expect("chunk state lock poisoned");
            if let Some(plain) = state.inflight.get(id) {
                return Ok(plain.clone());
            }
            state.uncommitted.get(id).copied()
        };
        let location = match location {
            Some(location) => location,
            None => shared.index.chunk_location(id)?.ok_or(Error::ChunkMissing { chunk: *id })?,
        };
        let mut sealed = shared.reader.read(location)?;
        let plain = Arc::new(open_chunk_in_place(&shared.keys, &shared.store_id, id, location, &mut sealed)?);
        shared.cache.lock().expect("cache lock poisoned").insert(*id, plain.clone());
        Ok(plain)
    }
}

/// Loads prefetch requests one by one. A failure is left for the reader to meet and
/// report when it asks for the chunk itself.
fn run_prefetcher(shared: &Shared, requests: &Receiver<ChunkId>) {
    while let Ok(id) = requests.recv() {
        let _ = load_chunk(shared, &id);
        shared.prefetching.lock().expect("prefetch lock poisoned").remove(&id);
        shared.prefetched.notify_all();
    }
}

impl ChunkStore {

    /// Returns whether any of `ids` failed to reach a pack.
    pub fn first_lost<'a>(&self, ids: impl Iterator<Item = &'a ChunkId>) -> Option<usize> {
        let state = self.shared.state.lock().expect("chunk state lock poisoned");
        if state.lost.is_empty() {
            return None;
        }
        ids.enumerate().find(|(_, id)| state.lost.contains(id)).map(|(index, _)| index)
    }

    /// Waits until no chunk is in flight.
    pub fn drain(&self) {
        let mut state = self.shared.state.lock().expect("chunk state lock poisoned");
        while !state.inflight.is_empty() {
            state = self.shared.drained.wait(state).expect("chunk state lock poisoned");
        }
    }

    /// Chunk locations in packs that the index does not hold yet.
    /// Number of chunks in packs but not yet applied to the index.
    pub fn uncommitted_count(&self) -> usize {
        self.shared.state.lock().expect("chunk state lock poisoned").uncommitted.len()
    }

    pub fn uncommitted(&self) -> Vec<(ChunkId, Location)> {
        let state = self.shared.state.lock().expect("chunk state lock poisoned");
        state.uncommitted.iter().map(|(id, location)| (*id, *location)).collect()
    }

    /// Forgets locations that the index now holds.
    pub fn mark_applied(&self, applied: &[(ChunkId, Location)]) {
        let mut state = self.shared.state.lock().expect("chunk state lock poisoned");
        for (id, _) in applied {
            state.uncommitted.remove(id);
        }
    }

    /// Seals and appends a commit record; returns the pack and the offset just after it.
    pub fn append_commit(&self, seq: u64, snapshot: bool, record: &[u8]) -> Result<(u64, u64)> {
        let id = commit_id(seq, snapshot);
        let sealed = crypto::seal(&self.shared.keys.data, &frame_aad(KIND_COMMIT, &id, &self.shared.store_id), record);
        if sealed.len() > crate::store::format::MAX_SEALED_LEN as usize {
            // NOTE: a commit cannot be split over frames yet, so one this large fails
            // and is retried at every interval until fewer changes are pending.
            return Err(Error::Invalid {
                what: "commit record",
                detail: format!(
                    "{} bytes sealed, above the {}-byte frame limit; too many changes in one commit",
                    sealed.len(),
                    crate::store::format::MAX_SEALED_LEN
                ),
            });
        }
        let mut writer = self.shared.writer.lock().expect("pack writer lock poisoned");
        let result = writer.append(KIND_COMMIT, &id, &sealed);
        self.note_failure(&writer);
        let location = result?;
        Ok((location.pack_no, location.offset + crate::store::format::FRAME_HEADER_LEN as u64 + u64::from(location.sealed_len)))
    }

    /// Makes every appended frame durable.
    pub fn sync(&self) -> Result<Vec<u64>> {
        let mut writer = self.shared.writer.lock().expect("pack writer lock poisoned");
        let result = writer.sync();
        self.note_failure(&writer);
        result?;
        Ok(writer.take_finished())
    }

    /// Returns the pack being appended to and its next offset.
    pub fn position(&self) -> (u64, u64) {
        self.shared.writer.lock().expect("pack writer lock poisoned").position()
    }

    /// Closes the pack being written; returns its number if there was one.
    pub fn finish_pack(&self) -> Result<Option<u64>> {
        let mut writer = self.shared.writer.lock().expect("pack writer lock poisoned");
        let finished = writer.finish();
        self.note_failure(&writer);
        finished
    }

    /// Returns why writes are rejected, once a pack write has failed for good.
    pub fn degraded(&self) -> Option<String> {
        if !self.shared.degraded.load(Ordering::Relaxed) {
            return None;
        }
        self.shared.writer.lock().expect("pack writer lock poisoned").broken().map(str::to_string)
    }

    fn note_failure(&self, writer: &PackWriter) {
        if writer.broken().is_some() {
            self.shared.degraded.store(true, Ordering::Relaxed);
        }
    }
}

impl Drop for ChunkStore {
    fn drop(&mut self) {
        self.jobs = None;
        self.shared.prefetch_queue.lock().expect("prefetch queue lock poisoned").take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn run_worker(shared: &Shared, jobs: &Receiver<Job>) {
    // One compression context per worker: making a new one per chunk cost about a
    // tenth of the worker's time.
    let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("zstd level 1 is valid");
    while let Ok(job) = jobs.recv() {
        let mut frame = seal_chunk_frame(&shared.keys, &shared.store_id, &job.id, &job.plain, &mut compressor);
        let sealed_len = frame.len() - FRAME_HEADER_LEN;
        let result = {
            let mut writer = shared.writer.lock().expect("pack writer lock poisoned");
            let result = writer.append_frame(KIND_CHUNK, &job.id.0, &mut frame);
            if writer.broken().is_some() {
                shared.degraded.store(true, Ordering::Relaxed);
            }
            result
        };
        let errno = {
            let mut state = shared.state.lock().expect("chunk state lock poisoned");
            state.inflight.remove(&job.id);
            let errno = match result {
                Ok(location) => {
                    state.uncommitted.insert(job.id, location);
                    shared.counters.chunks_new.fetch_add(1, Ordering::Relaxed);
                    shared.counters.plain_bytes_new.fetch_add(job.plain.len() as u64, Ordering::Relaxed);
                    shared.counters.sealed_bytes_new.fetch_add(sealed_len as u64, Ordering::Relaxed);
                    None
                }
                Err(error) => {
                    log::error!("chunk write failed: chunk={} error={error}", job.id);
                    state.lost.insert(job.id);
                    Some(error.raw_os_error().unwrap_or(libc::EIO))
                }
            };
            if state.inflight.is_empty() {
                shared.drained.notify_all();
            }
            errno
        };
        job.ticket.finish(errno);
    }
}

/// Compresses, pads and seals a chunk into a pack frame whose first
/// [`FRAME_HEADER_LEN`] bytes are left for the pack writer's header. The sealed
/// payload is `codec, 0, 0, 0, plain_len, body_len, body, zeros`. Compression and
/// sealing work in the one buffer, so the chunk's bytes are not copied between steps.
fn seal_chunk_frame(keys: &Keys, store_id: &[u8; 16], id: &ChunkId, plain: &[u8], compressor: &mut zstd::bulk::Compressor) -> Vec<u8> {
    let body_at = FRAME_HEADER_LEN + NONCE_LEN + CHUNK_HEADER_LEN;
    let bound = zstd::zstd_safe::compress_bound(plain.len()).max(plain.len());
    let mut frame = vec![0u8; body_at + bound + CHUNK_PAD_BYTES + TAG_LEN];
    let compressed = compressor.compress_to_buffer(plain, &mut frame[body_at..]).ok().filter(|len| *len < plain.len());
    let (codec, body_len) = match compressed {
        Some(len) => (CODEC_ZSTD, len),
        None => {
            frame[body_at..body_at + plain.len()].copy_from_slice(plain);
            (CODEC_RAW, plain.len())
        }
    };
    let header_at = FRAME_HEADER_LEN + NONCE_LEN;
    frame[header_at] = codec;
    frame[header_at + 4..header_at + 8].copy_from_slice(&(plain.len() as u32).to_le_bytes());
    frame[header_at + 8..header_at + 12].copy_from_slice(&(body_len as u32).to_le_bytes());
    let padded = (CHUNK_HEADER_LEN + body_len).div_ceil(CHUNK_PAD_BYTES) * CHUNK_PAD_BYTES;
    frame.truncate(header_at + padded);
    frame[body_at + body_len..].fill(0);
    crypto::seal_in_place(&keys.data, &frame_aad(KIND_CHUNK, &id.0, store_id), &mut frame, FRAME_HEADER_LEN);
    frame
}

/// Opens a sealed chunk frame and checks that its plaintext hashes to `id`.
pub fn open_chunk(keys: &Keys, store_id: &[u8; 16], id: &ChunkId, location: Location, sealed: &[u8]) -> Result<Vec<u8>> {
    open_chunk_in_place(keys, store_id, id, location, &mut sealed.to_vec())
}

/// Opens a sealed chunk frame, decrypting in `sealed` itself, and checks that its
/// plaintext hashes to `id`.
pub fn open_chunk_in_place(keys: &Keys, store_id: &[u8; 16], id: &ChunkId, location: Location, sealed: &mut [u8]) -> Result<Vec<u8>> {
    let failed = || Error::ChunkAuthenticationFailed { chunk: *id, pack: location.pack_no, offset: location.offset };
    let payload = crypto::open_in_place(&keys.data, &frame_aad(KIND_CHUNK, &id.0, store_id), sealed).map_err(|_| failed())?;
    let plain = parse_chunk_payload(payload).ok_or_else(failed)?;
    if keys.chunk_id(&plain) != *id {
        return Err(failed());
    }
    Ok(plain)
}

/// Decodes an opened chunk payload into the chunk's plaintext; `None` if malformed.
pub fn parse_chunk_payload(payload: &[u8]) -> Option<Vec<u8>> {
    if payload.len() < CHUNK_HEADER_LEN {
        return None;
    }
    let plain_len = u32::from_le_bytes(payload[4..8].try_into().expect("4 bytes")) as usize;
    let body_len = u32::from_le_bytes(payload[8..12].try_into().expect("4 bytes")) as usize;
    if plain_len > MAX_CHUNK_PLAIN_BYTES {
        return None;
    }
    let body = payload.get(CHUNK_HEADER_LEN..CHUNK_HEADER_LEN.checked_add(body_len)?)?;
    let plain = match payload[0] {
        CODEC_RAW => body.to_vec(),
        CODEC_ZSTD => decompress(body, plain_len)?,
        _ => return None,
    };
    (plain.len() == plain_len).then_some(plain)
}

/// Decompresses with this thread's zstd context: making a new context for every
/// chunk took about a tenth of a restore.
fn decompress(body: &[u8], plain_len: usize) -> Option<Vec<u8>> {
    thread_local! {
        static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = zstd::bulk::Decompressor::new().ok();
        }
        slot.as_mut()?.decompress(body, plain_len).ok()
    })
}

/// Largest chunk plaintext a payload may claim, checked before decompressing: the
/// chunker's limit is 16 MiB.
const MAX_CHUNK_PLAIN_BYTES: usize = 16 * 1024 * 1024;

/// A byte-bounded cache of decrypted chunks, evicting the oldest insert first.
#[derive(Default)]
struct ChunkCache {
    entries: HashMap<ChunkId, Arc<Vec<u8>>>,
    order: VecDeque<ChunkId>,
    bytes: usize,
}

impl ChunkCache {
    fn get(&self, id: &ChunkId) -> Option<Arc<Vec<u8>>> {
        self.entries.get(id).cloned()
    }

    fn insert(&mut self, id: ChunkId, plain: Arc<Vec<u8>>) {
        if self.entries.contains_key(&id) {
            return;
        }
        self.bytes += plain.len();
        self.entries.insert(id, plain);
        self.order.push_back(id);
        while self.bytes > CACHE_BYTES {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(evicted) = self.entries.remove(&oldest) {
                self.bytes -= evicted.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn sealed_chunk_opens_and_rejects_tampering() {
        let keys = Keys::derive(&MasterKey::from_bytes([3; 32]));
        let plain = b"some bson bytes ".repeat(100);
        let id = keys.chunk_id(&plain);
        let location = Location { pack_no: 0, offset: 40, sealed_len: 0 };
        let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).unwrap();
        let frame = seal_chunk_frame(&keys, &[1; 16], &id, &plain, &mut compressor);
        let sealed = frame[FRAME_HEADER_LEN..].to_vec();
        assert_eq!(sealed.len() % CHUNK_PAD_BYTES, crypto::SEAL_OVERHEAD % CHUNK_PAD_BYTES);
        assert_eq!(open_chunk(&keys, &[1; 16], &id, location, &sealed).unwrap(), plain);
        let other = keys.chunk_id(b"other");
        assert!(matches!(open_chunk(&keys, &[1; 16], &other, location, &sealed), Err(Error::ChunkAuthenticationFailed { .. })));
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        assert!(matches!(open_chunk(&keys, &[1; 16], &id, location, &flipped), Err(Error::ChunkAuthenticationFailed { .. })));
    }

    #[test]
    fn cache_stays_within_bound() {
        let mut cache = ChunkCache::default();
        for number in 0..100u8 {
            cache.insert(ChunkId([number; 32]), Arc::new(vec![0; 1 << 20]));
        }
        assert!(cache.bytes <= CACHE_BYTES);
        assert!(cache.get(&ChunkId([99; 32])).is_some());
        assert!(cache.get(&ChunkId([0; 32])).is_none());
    }
}
