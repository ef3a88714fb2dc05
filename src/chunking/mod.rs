//! Content-defined chunking with a keyed gear table (FastCDC with normalized chunking).
//!
//! The whole 256-entry gear table comes from the chunker subkey through BLAKE3's keyed
//! XOF, so cut points depend on a per-store secret. A table that is only a public one
//! XORed with a seed lets an attacker who controls some plaintext recover the seed
//! from observed chunk lengths; a table that is a PRF output does not.
//! This module imports no other project module.

/// Chunk size limits of a store, in plaintext bytes. They are store settings, fixed
/// at `init`, because changing them changes every cut point and so every chunk id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkerParams {
    pub min_bytes: u32,
    pub avg_bytes: u32,
    pub max_bytes: u32,
}

impl ChunkerParams {
    /// Checks the limits: powers of two are not required, but min < avg < max,
    /// and max must fit the pack format's chunk limit.
    pub fn validate(&self) -> Result<(), String> {
        if !(64 <= self.min_bytes && self.min_bytes < self.avg_bytes && self.avg_bytes < self.max_bytes) {
            return Err(format!(
                "chunk sizes must satisfy 64 <= min < avg < max, got min={} avg={} max={}",
                self.min_bytes, self.avg_bytes, self.max_bytes
            ));
        }
        if self.max_bytes > 16 * 1024 * 1024 {
            return Err(format!("maximum chunk size {} exceeds 16 MiB", self.max_bytes));
        }
        Ok(())
    }
}

/// A chunker bound to one store's key and size limits.
#[derive(Clone)]
pub struct Chunker {
    gear: Box<[u64; 256]>,
    params: ChunkerParams,
    /// Stricter mask used before the average size, looser after it (normalized chunking).
    mask_small: u64,
    mask_large: u64,
}

impl Chunker {
    /// Builds the gear table from `key` (the chunker subkey).
    pub fn new(key: &[u8; 32], params: ChunkerParams) -> Self {
        let mut table_bytes = [0u8; 256 * 8];
        blake3::Hasher::new_keyed(key)
            .update(b"gear table")
            .finalize_xof()
            .fill(&mut table_bytes);
        let mut gear = Box::new([0u64; 256]);
        for (entry, bytes) in gear.iter_mut().zip(table_bytes.chunks_exact(8)) {
            *entry = u64::from_le_bytes(bytes.try_into().expect("chunks_exact yields 8 bytes"));
        }
        let bits = 63 - u64::from(params.avg_bytes).leading_zeros();
        Chunker { gear, params, mask_small: high_bits_mask(bits + 2), mask_large: high_bits_mask(bits.saturating_sub(2)) }
    }

    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Finds the end of the chunk that starts at `data[0]`.
    ///
    /// Returns `Some(len)` when the cut is decided by `data` alone: a content cut point,
    /// or `max_bytes` reached. Returns `None` when more bytes could move the cut; the
    /// caller then either waits for more data or, at the end of a file, takes all of it.
    /// A cut depends only on bytes before it, so feeding more data never moves a cut
    /// that was already returned.
    pub fn find_cut(&self, data: &[u8]) -> Option<usize> {
        let min = self.params.min_bytes as usize;
        let avg = self.params.avg_bytes as usize;
        let max = self.params.max_bytes as usize;
        if data.len() <= min {
            return None;
        }
        let scan_end = data.len().min(max);
        let normal_end = scan_end.min(avg);
        let mut hash = 0u64;
        let mut index = min;
        while index < normal_end {
            hash = (hash << 1).wrapping_add(self.gear[data[index] as usize]);
            if hash & self.mask_small == 0 {
                return Some(index + 1);
            }
            index += 1;
        }
        while index < scan_end {
            hash = (hash << 1).wrapping_add(self.gear[data[index] as usize]);
            if hash & self.mask_large == 0 {
                return Some(index + 1);
            }
            index += 1;
        }
        if scan_end == max {
            Some(max)
        } else {
            None
        }
    }

    /// Splits a whole buffer into chunk lengths, the last chunk taking what remains.
    pub fn split_all(&self, data: &[u8]) -> Vec<usize> {
        let mut lengths = Vec::new();
        let mut start = 0;
        while start < data.len() {
            let len = self.find_cut(&data[start..]).unwrap_or(data.len() - start);
            lengths.push(len);
            start += len;
        }
        lengths
    }
}

/// A mask of `bits` ones in the high end of a u64: with a shift-left gear hash the
/// high bits mix the most recent 64 bytes, which is what a cut decision should see.
fn high_bits_mask(bits: u32) -> u64 {
    if bits == 0 {
        0
    } else {
        !0u64 << (64 - bits.min(63))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: ChunkerParams = ChunkerParams { min_bytes: 2048, avg_bytes: 8192, max_bytes: 32768 };

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut out = vec![0u8; len];
        blake3::Hasher::new().update(&seed.to_le_bytes()).finalize_xof().fill(&mut out);
        out
    }

    #[test]
    fn cuts_respect_limits() {
        let chunker = Chunker::new(&[1; 32], PARAMS);
        let data = pseudo_random(1 << 20, 1);
        let lengths = chunker.split_all(&data);
        assert_eq!(lengths.iter().sum::<usize>(), data.len());
        for len in &lengths[..lengths.len() - 1] {
            assert!(*len > PARAMS.min_bytes as usize, "chunk of {len} bytes is not above the minimum");
            assert!(*len <= PARAMS.max_bytes as usize, "chunk of {len} bytes is above the maximum");
        }
        let mean = data.len() / lengths.len();
        assert!(mean > 4096, "mean chunk length {mean} is too small");
        assert!(mean < 16384, "mean chunk length {mean} is too large");
    }

    #[test]
    fn cuts_depend_on_key() {
        let data = pseudo_random(1 << 18, 2);
        let a = Chunker::new(&[1; 32], PARAMS).split_all(&data);
        let b = Chunker::new(&[2; 32], PARAMS).split_all(&data);
        assert_ne!(a, b);
    }

    #[test]
    fn cuts_resynchronize_after_insert() {
        let chunker = Chunker::new(&[3; 32], PARAMS);
        let original = pseudo_random(1 << 19, 3);
        let mut edited = original[..1000].to_vec();
        edited.extend_from_slice(b"inserted bytes");
        edited.extend_from_slice(&original[1000..]);
        let ends = |data: &[u8], shift: usize| -> std::collections::HashSet<usize> {
            let mut end = 0;
            chunker.split_all(data).into_iter().map(|len| { end += len; end - shift }).collect()
        };
        let before = ends(&original, 0);
        let after = ends(&edited, 14);
        let shared = before.intersection(&after).count();
        assert!(shared + 2 >= before.len(), "shared {shared} of {}", before.len());
    }

    #[test]
    fn find_cut_waits_for_more_data() {
        let chunker = Chunker::new(&[4; 32], PARAMS);
        assert_eq!(chunker.find_cut(&[0u8; 100]), None);
        let zeros = vec![0u8; PARAMS.max_bytes as usize + 10];
        let cut = chunker.find_cut(&zeros).unwrap();
        assert!(cut <= PARAMS.max_bytes as usize);
    }

    #[test]
    fn validate_rejects_bad_order() {
        let bad = ChunkerParams { min_bytes: 8192, avg_bytes: 4096, max_bytes: 65536 };
        assert!(bad.validate().is_err());
        assert!(PARAMS.validate().is_ok());
    }
}
