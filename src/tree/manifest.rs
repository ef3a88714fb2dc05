//! File manifests: the ordered extents that make up a file's bytes.

use serde::{Deserialize, Serialize};

use crate::crypto::ChunkId;

/// A run of a file's bytes: a stored chunk, or zeros (a hole, or a gap filled at seal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    pub len: u64,
    /// `None` means `len` zero bytes, stored as nothing.
    pub chunk: Option<ChunkId>,
}

/// The extents of a sealed file, with their start offsets for lookups by offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub extents: Vec<Extent>,
    starts: Vec<u64>,
}

impl Manifest {
    pub fn new(extents: Vec<Extent>) -> Self {
        let mut starts = Vec::with_capacity(extents.len());
        let mut offset = 0;
        for extent in &extents {
            starts.push(offset);
            offset += extent.len;
        }
        Manifest { extents, starts }
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        match (self.starts.last(), self.extents.last()) {
            (Some(start), Some(extent)) => start + extent.len,
            _ => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns `(index, start)` of the extent holding byte `offset`, if any.
    pub fn find(&self, offset: u64) -> Option<(usize, u64)> {
        if offset >= self.len() {
            return None;
        }
        let index = match self.starts.binary_search(&offset) {
            Ok(index) => index,
            Err(index) => index - 1,
        };
        Some((index, self.starts[index]))
    }

    /// Start offset of extent `index`.
    pub fn start(&self, index: usize) -> u64 {
        self.starts[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_locates_extents() {
        let manifest = Manifest::new(vec![
            Extent { len: 10, chunk: None },
            Extent { len: 5, chunk: Some(ChunkId([1; 32])) },
        ]);
        assert_eq!(manifest.len(), 15);
        assert_eq!(manifest.find(0), Some((0, 0)));
        assert_eq!(manifest.find(9), Some((0, 0)));
        assert_eq!(manifest.find(10), Some((1, 10)));
        assert_eq!(manifest.find(14), Some((1, 10)));
        assert_eq!(manifest.find(15), None);
    }

    #[test]
    fn empty_manifest_has_no_extents() {
        let manifest = Manifest::new(Vec::new());
        assert!(manifest.is_empty());
        assert_eq!(manifest.find(0), None);
    }
}
