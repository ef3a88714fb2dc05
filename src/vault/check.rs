//! `wormvault check`: verifies that every pack is whole, that every file's chunks are
//! indexed where a frame of that id and length sits, and with `read_data` that every
//! chunk decrypts and authenticates. Reports name the file paths affected.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::chunkstore::open_chunk;
use crate::crypto::ChunkId;
use crate::error::{Error, Result};
use crate::store::format::{FrameHeader, KIND_CHUNK, KIND_COMMIT};
use crate::store::pack::{list_packs, scan_pack, Location, PackReader, ScanEnd};
use crate::tree::NodeKind;
use crate::unlock::unlock_store;

use super::{MountSettings, Vault};

/// Findings of `check`.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// One line per problem, naming what is damaged.
    pub problems: Vec<String>,
    /// Notes that are not damage (an index rebuilt or rolled forward).
    pub notes: Vec<String>,
    pub files: u64,
    pub chunks_checked: u64,
    pub packs: u64,
    /// Problems of the index alone: the packs still hold what it should point to, so
    /// `repair --rebuild-index` fixes them.
    pub index_problems: u64,
    /// Every problem found is one of the index alone.
    pub index_only: bool,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the store at `root` (it must not be mounted). `progress` is called with
/// (done, total) while chunks are read.
pub fn check_store(root: &Path, passphrase: &[u8], read_data: bool, progress: &mut dyn FnMut(u64, u64)) -> Result<CheckReport> {
    let unlocked = unlock_store(root, passphrase)?;
    let mut report = CheckReport::default();
    if !unlocked.paths.index().exists() {
        report.notes.push("index was missing and has been rebuilt from the packs".into());
    }
    let store_id = unlocked.store_id;
    let vault = Vault::open_store(unlocked, MountSettings { worker_threads: 1, ..MountSettings::default() }, "check")?;
    let packs_dir = vault.paths.packs();

    // 1. Every pack is a sequence of whole frames.
    let packs = list_packs(&packs_dir)?;
    let mut frames: HashMap<(u64, u64), FrameHeader> = HashMap::new();
    for pack_no in &packs {
        report.packs += 1;
        let end = scan_pack(&packs_dir, store_id, *pack_no, 0, |frame| {
            frames.insert((frame.location.pack_no, frame.location.offset), frame.header);
            Ok(())
        });
        match end {
            Ok(ScanEnd::Clean { .. }) => {}
            Ok(ScanEnd::Torn { offset, detail }) => {
                report.problems.push(format!("pack {pack_no:016x} is damaged at offset {offset}: {detail}"))
            }
            Err(error) => report.problems.push(format!("pack {pack_no:016x}: {error}")),
        }
    }
    report.problems.extend(commit_sequence_gaps(&frames));

    // 2. Paths of files, for naming what is damaged.
    let paths = file_paths(&vault)?;

    // 3. Every chunk a file uses is indexed at a frame with its id and length.
    let mut users: HashMap<ChunkId, Vec<u64>> = HashMap::new();
    let mut damaged_files: HashSet<u64> = HashSet::new();
    for inode in vault.index.all_inodes() {
        let inode = inode?;
        if inode.kind != NodeKind::File {
            continue;
        }
        match vault.index.manifest(inode.ino) {
            Ok(extents) => {
                for id in extents.unwrap_or_default().into_iter().filter_map(|extent| extent.chunk) {
                    users.entry(id).or_default().push(inode.ino);
                }
            }
            Err(error) => {
                report.problems.push(format!("file {}: its manifest in the index: {error}", path_of(&paths, inode.ino)));
                report.index_problems += 1;
                damaged_files.insert(inode.ino);
            }
        }
    }
    // Ids of the chunk frames in the packs, to tell a damaged index from lost data.
    let framed: HashSet<[u8; 32]> = frames.values().filter(|header| header.kind == KIND_CHUNK).map(|header| header.id).collect();
    for inode in vault.index.all_inodes() {
        let inode = inode?;
        if inode.kind == NodeKind::File {
            report.files += 1;
            if inode.incomplete() {
                report.notes.push(format!("file {} is incomplete (sealed after a failed write or a crash)", path_of(&paths, inode.ino)));
            }
        }
    }
    let mut locations: Vec<(ChunkId, Location)> = Vec::new();
    for (id, inos) in &users {
        let problem = match vault.index.chunk_location(id)? {
            None => Some(format!("chunk {id} is not in the index")),
            Some(location) => match frames.get(&(location.pack_no, location.offset)) {
                None if !packs.contains(&location.pack_no) => Some(format!("chunk {id}: pack {:016x} is missing", location.pack_no)),
                None => Some(format!("chunk {id}: no frame at pack {:016x} offset {}", location.pack_no, location.offset)),
                Some(header) if header.kind != KIND_CHUNK || header.id != id.0 || header.sealed_len != location.sealed_len => {
                    Some(format!("chunk {id}: the frame at pack {:016x} offset {} is another object", location.pack_no, location.offset))
                }
                Some(_) => {
                    locations.push((*id, location));
                    None
                }
            },
        };
        if let Some(problem) = problem {
            report.problems.push(problem);
            if framed.contains(&id.0) {
                report.index_problems += 1;
            }
            damaged_files.extend(inos.iter().copied());
        }
    }

    // 4. With read_data, every chunk decrypts and authenticates.
    if read_data {
        let reader = PackReader::new(&packs_dir);
        let total = locations.len() as u64;
        for (done, (id, location)) in locations.iter().enumerate() {
            progress(done as u64, total);
            let result = reader.read(*location).and_then(|sealed| open_chunk(&vault.keys, &store_id, id, *location, &sealed));
            report.chunks_checked += 1;
            if let Err(error) = result {
                let detail = match error {
                    Error::ChunkAuthenticationFailed { .. } => format!(
                        "chunk {id} in pack {:016x} at offset {} failed authentication",
                        location.pack_no, location.offset
                    ),
                    other => format!("chunk {id}: {other}"),
                };
                report.problems.push(detail);
                damaged_files.extend(users[id].iter().copied());
            }
        }
        progress(total, total);
    }
    report.index_only = report.index_problems > 0 && report.index_problems == report.problems.len() as u64;
    let mut damaged: Vec<String> = damaged_files.iter().map(|ino| path_of(&paths, *ino)).collect();
    damaged.sort();
    for path in damaged {
        report.problems.push(format!("damaged file: {path}"));
    }
    Ok(report)
}

/// Finds jumps in the commit sequence after the newest snapshot: garbage collection
/// deletes packs of older records only after a snapshot, so a jump after it means a
/// pack holding commit records is missing.
fn commit_sequence_gaps(frames: &HashMap<(u64, u64), FrameHeader>) -> Vec<String> {
    let mut commits: Vec<(u64, u64, bool)> = frames
        .iter()
        .filter(|(_, header)| header.kind == KIND_COMMIT)
        .map(|((pack_no, _), header)| {
            (u64::from_le_bytes(header.id[..8].try_into().expect("8 bytes")), *pack_no, header.id[8] == 1)
        })
        .collect();
    commits.sort_unstable();
    let start = commits.iter().rposition(|(_, _, snapshot)| *snapshot).unwrap_or(0);
    let mut problems = Vec::new();
    for pair in commits[start..].windows(2) {
        let ((previous, _, _), (next, pack_no, _)) = (pair[0], pair[1]);
        if next > previous + 1 {
            problems.push(format!(
                "commit records {} to {} are missing before pack {pack_no:016x}: a pack was deleted",
                previous + 1,
                next - 1
            ));
        }
    }
    if start == 0 && commits.first().is_some_and(|(seq, _, snapshot)| *seq != 1 && !*snapshot) {
        problems.push(format!("commit records before {} are missing: the first pack was deleted", commits[0].0));
    }
    problems
}

/// Maps inode numbers to (parent, name) from every directory entry.
fn file_paths(vault: &Vault) -> Result<HashMap<u64, (u64, Vec<u8>)>> {
    let mut names = HashMap::new();
    vault.walk_index_tree(|parent, dirent| {
        names.insert(dirent.ino, (parent, dirent.name));
    })?;
    Ok(names)
}

fn path_of(names: &HashMap<u64, (u64, Vec<u8>)>, ino: u64) -> String {
    let mut parts = Vec::new();
    let mut cursor = ino;
    while let Some((parent, name)) = names.get(&cursor) {
        parts.push(String::from_utf8_lossy(name).into_owned());
        cursor = *parent;
        if parts.len() > 4096 {
            break;
        }
    }
    if parts.is_empty() {
        return format!("<inode {ino}, not linked>");
    }
    parts.reverse();
    format!("/{}", parts.join("/"))
}

/// Moves the index aside and rebuilds it from the packs alone.
pub fn rebuild_index(root: &Path, passphrase: &[u8], progress: &mut dyn FnMut(u64, u64)) -> Result<std::path::PathBuf> {
    let unlocked = unlock_store(root, passphrase)?;
    let index = unlocked.paths.index();
    let lock = crate::store::lock::StoreLock::acquire(root, &unlocked.paths.lock(), "repair")?;
    let aside = root.join(format!("index.old-{}", crate::retention::wall_clock_seconds()));
    if index.exists() {
        std::fs::rename(&index, &aside).map_err(|source| Error::io("failed to move the index aside to", &aside, source))?;
    }
    drop(lock);
    let settings = MountSettings { worker_threads: 1, ..MountSettings::default() };
    let vault = Vault::open_store_with_progress(unlocked, settings, "repair", progress)?;
    drop(vault);
    Ok(aside)
}
