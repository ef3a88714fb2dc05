//! Inode records: attributes, seal state and retention of one file, folder or link.

use serde::{Deserialize, Serialize};

/// Inode number of the root folder, as FUSE requires.
pub const ROOT_INO: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
}

/// Where a regular file is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileState {
    /// Created and still open for writing (or cut off by a crash before sealing).
    Writing,
    /// Closed for good. `incomplete` marks a file whose last data could not be stored,
    /// or that a crash cut off; its length is what was durably stored.
    Sealed { sealed_at: i64, incomplete: bool },
}

/// One inode. Times are nanoseconds since the Unix epoch, by the wall clock, except
/// `sealed_at` and `retain_until`, which are seconds by the store clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inode {
    pub ino: u64,
    pub kind: NodeKind,
    /// Permission bits only (no file type bits).
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime_ns: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub crtime_ns: i64,
    /// Parent folder, for `..` and for rename checks.
    pub parent: u64,
    pub state: FileState,
    /// Store-clock second before which the file cannot be deleted; 0 until sealed.
    pub retain_until: i64,
    pub hold: bool,
    /// Target of a symbolic link, empty otherwise.
    pub symlink_target: Vec<u8>,
}

impl Inode {
    pub fn is_sealed(&self) -> bool {
        matches!(self.state, FileState::Sealed { .. })
    }

    pub fn sealed_at(&self) -> Option<i64> {
        match self.state {
            FileState::Sealed { sealed_at, .. } => Some(sealed_at),
            FileState::Writing => None,
        }
    }

    pub fn incomplete(&self) -> bool {
        matches!(self.state, FileState::Sealed { incomplete: true, .. })
    }
}
