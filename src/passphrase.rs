//! Where a passphrase comes from: a file, systemd's credential, the environment, or a
//! prompt without echo, in that order of preference.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use zeroize::Zeroizing;

/// Environment variable holding a passphrase; it is removed from the environment at
/// start, so child processes and /proc/PID/environ do not show it later.
pub const PASSPHRASE_ENV: &str = "WORMVAULT_PASSPHRASE";
/// Name of the systemd credential (`LoadCredential=wormvault.passphrase:...`).
pub const CREDENTIAL_NAME: &str = "wormvault.passphrase";

/// Takes the passphrase out of the environment, once, before any thread starts.
///
/// `remove_var` alone only unlinks the entry: /proc/PID/environ still shows the
/// process's original environment block. So the value is overwritten in place first.
pub fn take_from_env() -> Option<Zeroizing<String>> {
    take_env(PASSPHRASE_ENV)
}

/// Environment variable holding the new passphrase of `key add` and `key passwd`.
pub const NEW_PASSPHRASE_ENV: &str = "WORMVAULT_NEW_PASSPHRASE";

/// Takes the variable `variable` out of the environment, overwriting its value first.
pub fn take_env(variable: &str) -> Option<Zeroizing<String>> {
    let value = std::env::var(variable).ok().map(Zeroizing::new);
    let name = std::ffi::CString::new(variable).expect("variable names have no NUL byte");
    // SAFETY: no other thread exists yet; getenv returns a pointer to the NUL-terminated
    // value inside the environment block, which this process owns and may overwrite.
    unsafe {
        let pointer = libc::getenv(name.as_ptr());
        if !pointer.is_null() {
            let len = libc::strlen(pointer);
            for offset in 0..len {
                std::ptr::write_volatile(pointer.add(offset), b'x' as libc::c_char);
            }
        }
    }
    std::env::remove_var(variable);
    value
}

/// Finds the new passphrase of a key change: a file, the variable, or a prompt asked
/// twice. The systemd credential is not read here, because it contains the current
/// passphrase.
pub fn obtain_new(file: Option<&Path>, from_env: Option<Zeroizing<String>>) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if let Some(path) = file {
        return read_file(path);
    }
    if let Some(value) = from_env {
        if value.is_empty() {
            bail!("{NEW_PASSPHRASE_ENV} is set but empty");
        }
        return Ok(Zeroizing::new(value.as_bytes().to_vec()));
    }
    prompt("new passphrase: ", Some("repeat new passphrase: "), "give --new-passphrase-file, set WORMVAULT_NEW_PASSPHRASE")
}

/// Reads a passphrase at a prompt without echo, asking twice when `repeat` is given.
fn prompt(label: &str, repeat: Option<&str>, alternatives: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let first = Zeroizing::new(
        rpassword::prompt_password(label).with_context(|| format!("no passphrase: {alternatives}, or run on a terminal"))?,
    );
    if first.is_empty() {
        bail!("the passphrase must not be empty");
    }
    if let Some(repeat) = repeat {
        let second = Zeroizing::new(rpassword::prompt_password(repeat).context("cannot read passphrase")?);
        if *first != *second {
            bail!("the two passphrases differ");
        }
    }
    Ok(Zeroizing::new(first.as_bytes().to_vec()))
}

/// Reads a passphrase file, refusing one that group or others can read.
pub fn read_file(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let metadata = std::fs::metadata(path).with_context(|| format!("cannot read passphrase file {}", path.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        bail!(
            "passphrase file {} is readable by group or others (mode {:o}); run chmod 600 on it",
            path.display(),
            metadata.permissions().mode() & 0o777
        );
    }
    let mut bytes = Zeroizing::new(std::fs::read(path).with_context(|| format!("cannot read passphrase file {}", path.display()))?);
    while bytes.last().is_some_and(|byte| *byte == b'\n' || *byte == b'\r') {
        bytes.pop();
    }
    if bytes.is_empty() {
        bail!("passphrase file {} is empty", path.display());
    }
    Ok(bytes)
}

/// Finds the passphrase for an existing store. `confirm` asks twice at a prompt.
pub fn obtain(file: Option<&Path>, from_env: Option<Zeroizing<String>>, confirm: bool) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if let Some(path) = file {
        return read_file(path);
    }
    if let Some(directory) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let path = PathBuf::from(directory).join(CREDENTIAL_NAME);
        if path.exists() {
            return read_file(&path);
        }
    }
    if let Some(value) = from_env {
        if value.is_empty() {
            bail!("{PASSPHRASE_ENV} is set but empty");
        }
        return Ok(Zeroizing::new(value.as_bytes().to_vec()));
    }
    let repeat = confirm.then_some("repeat passphrase: ");
    prompt("wormvault passphrase: ", repeat, "give --passphrase-file, set WORMVAULT_PASSPHRASE")
}
