//! Argon2id stretching of passphrases into key-encryption keys.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::{SubKey, KEY_LEN};

/// Upper bound on the memory a stored key slot may ask for (4 GiB), so a forged slot
/// cannot make `mount` allocate terabytes.
pub const KDF_MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Upper bound on the passes a stored key slot may ask for.
pub const KDF_MAX_PASSES: u32 = 64;

/// Argon2id cost parameters, stored beside each wrapped key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Default for KdfParams {
    /// 64 MiB and 3 passes: the floor the security model promises.
    fn default() -> Self {
        KdfParams { memory_kib: 64 * 1024, passes: 3, lanes: 1 }
    }
}

impl KdfParams {
    /// Checks parameters read from disk against the caps above and Argon2's own limits.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_kib > KDF_MAX_MEMORY_KIB {
            return Err(format!("memory {} KiB exceeds the cap of {KDF_MAX_MEMORY_KIB} KiB", self.memory_kib));
        }
        if self.passes == 0 || self.passes > KDF_MAX_PASSES {
            return Err(format!("passes {} outside 1..={KDF_MAX_PASSES}", self.passes));
        }
        if self.lanes == 0 || self.lanes > 16 {
            return Err(format!("lanes {} outside 1..=16", self.lanes));
        }
        Params::new(self.memory_kib, self.passes, self.lanes, Some(KEY_LEN))
            .map(|_| ())
            .map_err(|error| format!("invalid Argon2 parameters: {error}"))
    }
}

/// Stretches `passphrase` with Argon2id into a key-encryption key.
pub fn derive_kek(passphrase: &[u8], salt: &[u8], params: KdfParams) -> Result<SubKey, String> {
    params.validate()?;
    let argon_params = Params::new(params.memory_kib, params.passes, params.lanes, Some(KEY_LEN))
        .map_err(|error| format!("invalid Argon2 parameters: {error}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|error| format!("Argon2id failed: {error}"))?;
    Ok(SubKey::from_bytes(*out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_caps_memory_and_passes() {
        let huge = KdfParams { memory_kib: u32::MAX, ..KdfParams::default() };
        assert!(huge.validate().is_err());
        let zero = KdfParams { passes: 0, ..KdfParams::default() };
        assert!(zero.validate().is_err());
        assert!(KdfParams::default().validate().is_ok());
    }

    #[test]
    fn derive_depends_on_passphrase_and_salt() {
        let params = KdfParams { memory_kib: 256, passes: 1, lanes: 1 };
        let a = derive_kek(b"one", b"saltsaltsaltsalt", params).unwrap();
        let b = derive_kek(b"two", b"saltsaltsaltsalt", params).unwrap();
        let c = derive_kek(b"one", b"othersaltothersa", params).unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_ne!(a.as_bytes(), c.as_bytes());
    }
}
