//! The namespace: inodes, directory entries, file manifests, and the commit records
//! that carry their changes into packs.

pub mod inode;
pub mod manifest;
pub mod record;

pub use inode::{FileState, Inode, NodeKind, ROOT_INO};
pub use manifest::{Extent, Manifest};
pub use record::{CommitRecord, Op};
