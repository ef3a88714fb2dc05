//! XChaCha20-Poly1305 sealing with a fresh random 192-bit nonce per seal.
//!
//! A sealed object is `nonce (24) || ciphertext || tag (16)`. With random 192-bit
//! nonces, nonce reuse is negligible even after 2^64 seals under one key.

use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use super::SubKey;

pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Bytes a seal adds to its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// The sealed bytes were altered, truncated, moved, or sealed under another key or
/// other associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed")]
pub struct AuthenticationFailed;

/// Seals `plain` under `key`, binding `aad`.
pub fn seal(key: &SubKey, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    // A user-space CSPRNG (ChaCha, seeded and reseeded from the OS) avoids one
    // getrandom call per seal; 192-bit random nonces need no counter.
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ciphertext = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    sealed
}

/// Seals in place the plaintext at `buf[start + NONCE_LEN..]`, writing the nonce into
/// `buf[start..start + NONCE_LEN]` and appending the tag, so `buf[start..]` ends up as
/// the bytes [`seal`] returns. This saves the copies of a chunk's worth of bytes that
/// [`seal`] makes.
pub fn seal_in_place(key: &SubKey, aad: &[u8], buf: &mut Vec<u8>, start: usize) {
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    buf[start..start + NONCE_LEN].copy_from_slice(&nonce);
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut buf[start + NONCE_LEN..])
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    buf.extend_from_slice(&tag);
}

/// Opens in place bytes made by [`seal`], returning the plaintext as a slice of
/// `sealed`.
pub fn open_in_place<'a>(key: &SubKey, aad: &[u8], sealed: &'a mut [u8]) -> Result<&'a [u8], AuthenticationFailed> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(AuthenticationFailed);
    }
    let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .decrypt_in_place_detached(XNonce::from_slice(nonce), aad, ciphertext, Tag::from_slice(tag))
        .map_err(|_| AuthenticationFailed)?;
    Ok(&sealed[NONCE_LEN..sealed.len() - TAG_LEN])
}

/// Opens bytes made by [`seal`] with the same key and associated data.
pub fn open(key: &SubKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AuthenticationFailed> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(AuthenticationFailed);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad })
        .map_err(|_| AuthenticationFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SubKey {
        SubKey::from_bytes([byte; 32])
    }

    #[test]
    fn seal_then_open_round_trips() {
        let sealed = seal(&key(1), b"aad", b"hello");
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(open(&key(1), b"aad", &sealed).unwrap(), b"hello");
    }

    #[test]
    fn in_place_forms_match_seal_and_open() {
        let mut buf = b"prefix".to_vec();
        buf.extend_from_slice(&[0u8; NONCE_LEN]);
        buf.extend_from_slice(b"hello");
        seal_in_place(&key(1), b"aad", &mut buf, 6);
        assert_eq!(&buf[..6], b"prefix");
        assert_eq!(open(&key(1), b"aad", &buf[6..]).unwrap(), b"hello");

        let mut sealed = seal(&key(1), b"aad", b"hello");
        assert_eq!(open_in_place(&key(1), b"aad", &mut sealed).unwrap(), b"hello");
        let mut flipped = seal(&key(1), b"aad", b"hello");
        flipped[NONCE_LEN] ^= 1;
        assert_eq!(open_in_place(&key(1), b"aad", &mut flipped), Err(AuthenticationFailed));
        assert_eq!(open_in_place(&key(1), b"aad", &mut [0u8; 10]), Err(AuthenticationFailed));
    }

    #[test]
    fn open_rejects_flipped_byte() {
        let mut sealed = seal(&key(1), b"aad", b"hello");
        sealed[NONCE_LEN + 1] ^= 0x40;
        assert_eq!(open(&key(1), b"aad", &sealed), Err(AuthenticationFailed));
    }

    #[test]
    fn open_rejects_other_aad_and_key() {
        let sealed = seal(&key(1), b"aad", b"hello");
        assert_eq!(open(&key(1), b"other", &sealed), Err(AuthenticationFailed));
        assert_eq!(open(&key(2), b"aad", &sealed), Err(AuthenticationFailed));
        assert_eq!(open(&key(1), b"aad", &sealed[..10]), Err(AuthenticationFailed));
    }

    #[test]
    fn nonces_are_fresh() {
        let a = seal(&key(1), b"", b"same");
        let b = seal(&key(1), b"", b"same");
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
    }
}
