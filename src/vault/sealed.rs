//! The extents of a sealed file as reads see them: whole in memory for small files,
//! or page by page from the index for large ones. So a read of a file of any size
//! keeps a few manifest pages in memory, not its whole extent list.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::index::{Index, MANIFEST_PAGE_EXTENTS};
use crate::tree::{Extent, Manifest};

/// Manifests of at most this many pages are read whole: one or two pages cost less
/// memory than the bookkeeping of paging them.
const WHOLE_PAGES: usize = 2;

/// The extents of one sealed file, for reads that run off the vault's lock.
pub enum SealedExtents {
    Whole(Manifest),
    Paged(PagedManifest),
}

/// A large manifest read page by page from the index.
pub struct PagedManifest {
    ino: u64,
    len: u64,
    index: Arc<Index>,
    /// File offset of the first byte of each page.
    page_starts: Vec<u64>,
    /// The two pages read last, as (page number, extents): a read and the prefetch
    /// after it often span a page boundary.
    recent: Mutex<Vec<(usize, Arc<Vec<Extent>>)>>,
}

impl SealedExtents {
    /// Loads the committed manifest of `ino` from the index, paged when it is large.
    pub fn load(index: &Arc<Index>, ino: u64) -> Result<SealedExtents> {
        let Some((len, page_starts)) = index.manifest_page_starts(ino)? else {
            return Ok(SealedExtents::Whole(Manifest::default()));
        };
        if page_starts.len() <= WHOLE_PAGES {
            return Ok(SealedExtents::Whole(Manifest::new(index.manifest(ino)?.unwrap_or_default())));
        }
        Ok(SealedExtents::Paged(PagedManifest { ino, len, index: index.clone(), page_starts, recent: Mutex::new(Vec::new()) }))
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            SealedExtents::Whole(manifest) => manifest.len(),
            SealedExtents::Paged(paged) => paged.len,
        }
    }

    /// Calls `visit` with the start offset and extent of every extent that overlaps
    /// `[offset, end)`, in file order.
    pub fn for_each_in(&self, offset: u64, end: u64, visit: &mut dyn FnMut(u64, &Extent) -> Result<()>) -> Result<()> {
        let end = end.min(self.len());
        if offset >= end {
            return Ok(());
        }
        match self {
            SealedExtents::Whole(manifest) => {
                let (mut index, _) = manifest.find(offset).expect("offset is inside the manifest");
                while index < manifest.extents.len() && manifest.start(index) < end {
                    visit(manifest.start(index), &manifest.extents[index])?;
                    index += 1;
                }
                Ok(())
            }
            SealedExtents::Paged(paged) => paged.for_each_in(offset, end, visit),
        }
    }
}

impl PagedManifest {
    fn for_each_in(&self, offset: u64, end: u64, visit: &mut dyn FnMut(u64, &Extent) -> Result<()>) -> Result<()> {
        let mut page = self.page_starts.partition_point(|start| *start <= offset) - 1;
        while page < self.page_starts.len() && self.page_starts[page] < end {
            let extents = self.page(page)?;
            let mut start = self.page_starts[page];
            for extent in extents.iter() {
                if start >= end {
                    break;
                }
                if start + extent.len > offset {
                    visit(start, extent)?;
                }
                start += extent.len;
            }
            page += 1;
        }
        Ok(())
    }

    fn page(&self, page: usize) -> Result<Arc<Vec<Extent>>> {
        let mut recent = self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, extents)) = recent.iter().find(|(number, _)| *number == page) {
            return Ok(extents.clone());
        }
        let extents = Arc::new(self.index.manifest_page(self.ino, (page * MANIFEST_PAGE_EXTENTS) as u64)?);
        // The page must cover the bytes that the page starts computed at load give it.
        let covered: u64 = extents.iter().map(|extent| extent.len).sum();
        let next = self.page_starts.get(page + 1).copied().unwrap_or(self.len);
        if self.page_starts[page] + covered != next {
            return Err(Error::IndexAuthenticationFailed { tree: "manifests" });
        }
        if recent.len() >= 2 {
            recent.remove(0);
        }
        recent.push((page, extents.clone()));
        Ok(extents)
    }
}

impl std::fmt::Debug for SealedExtents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            SealedExtents::Whole(_) => "whole",
            SealedExtents::Paged(_) => "paged",
        };
        f.debug_struct("SealedExtents").field("kind", &kind).field("len", &self.len()).finish()
    }
}
