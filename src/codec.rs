//! Binary encoding of records stored sealed in packs, the index and the config.
//!
//! bincode with fixed-width integers. Decoding has a 64 MiB limit, so a corrupt
//! length field fails instead of allocating; all decoded bytes were authenticated first.

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};

fn options() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().reject_trailing_bytes().with_limit(64 << 20)
}

/// Encodes a value; encoding an in-memory record cannot fail.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    options().serialize(value).expect("records encode within the 64 MiB limit")
}

/// Decodes a value, returning a description of what is wrong otherwise.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    options().deserialize(bytes).map_err(|error| error.to_string())
}
