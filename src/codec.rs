//! Binary encoding of records stored sealed in packs, the index and the config.
//!
//! bincode with fixed-width integers. Decoding has a 64 MiB limit, so a corrupt
//! length field fails instead of allocating; all decoded bytes were authenticated first.

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};

fn options() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().reject_trailing_bytes()
}

/// Encodes a value. There is no size limit here, so the caller that stores the bytes
/// checks them against the limit of its container (a pack frame is at most 64 MiB).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    options().serialize(value).expect("in-memory records always encode")
}

/// Decodes a value, returning a description of what is wrong otherwise.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    options().with_limit(64 << 20).deserialize(bytes).map_err(|error| error.to_string())
}
