//! Commit records: the namespace changes of one commit, sealed as one pack frame so a
//! crash applies all of them or none.
//!
//! Every op is an idempotent upsert or delete of final state, so replaying a record
//! that the index already holds changes nothing.

use serde::{Deserialize, Serialize};

use super::{Extent, Inode, NodeKind};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    PutInode(Inode),
    DelInode(u64),
    PutDirent { parent: u64, name: Vec<u8>, ino: u64, kind: NodeKind },
    DelDirent { parent: u64, name: Vec<u8> },
    PutManifest { ino: u64, extents: Vec<Extent> },
    /// Keeps the first `keep` extents of the stored manifest and appends `extents`: a
    /// file being written is recorded by what changed, not whole at every commit.
    ExtendManifest { ino: u64, keep: u64, extents: Vec<Extent> },
    DelManifest(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// Strictly increasing across the store's life.
    pub seq: u64,
    /// Store clock at the commit, seconds.
    pub clock: i64,
    /// Next inode number to hand out after this commit.
    pub next_ino: u64,
    /// A snapshot holds the whole namespace as puts: replay may start from it, so the
    /// packs holding older records can be deleted by garbage collection.
    pub snapshot: bool,
    pub ops: Vec<Op>,
}
