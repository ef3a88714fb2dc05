//! Subcommands other than `mount`, each a short call into the library.

use anyhow::Context;
use zeroize::Zeroizing;

use wormvault::crypto::KdfParams;
use wormvault::retention::parse_duration;
use wormvault::unlock::{init_store, InitOptions};

use crate::cli::{CheckArgs, GcArgs, HoldArgs, InitArgs, KeyChangeArgs, KeyCommand, RepairArgs, RetainArgs, StatsArgs};
use crate::passphrase;

pub fn init(args: InitArgs, env_passphrase: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    let retention_seconds = parse_duration(&args.retention).map_err(anyhow::Error::msg).context("invalid --retention")?;
    let kdf = KdfParams { memory_kib: args.kdf_memory_mib.saturating_mul(1024), passes: args.kdf_passes, lanes: 1 };
    kdf.validate().map_err(anyhow::Error::msg).context("invalid key derivation parameters")?;
    if !args.chunk_avg_kib.is_power_of_two() || !(4..=1024).contains(&args.chunk_avg_kib) {
        anyhow::bail!("invalid --chunk-avg-kib {}: expected a power of two from 4 to 1024", args.chunk_avg_kib);
    }
    let avg_bytes = args.chunk_avg_kib * 1024;
    let chunker = wormvault::chunking::ChunkerParams { min_bytes: avg_bytes / 4, avg_bytes, max_bytes: avg_bytes * 8 };
    let secret = passphrase::obtain(args.passphrase.passphrase_file.as_deref(), env_passphrase, true)?;
    let options = InitOptions { retention_seconds, chunker, kdf };
    init_store(&args.store, &secret, &options)?;
    println!("created store {} with retention {}", args.store.display(), args.retention);
    Ok(())
}

pub fn stats(args: StatsArgs, env_passphrase: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    let secret = passphrase::obtain(args.passphrase.passphrase_file.as_deref(), env_passphrase, false)?;
    let report = wormvault::vault::stats::collect(&args.store, &secret)?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

pub fn check(args: CheckArgs, env_passphrase: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    let secret = passphrase::obtain(args.passphrase.passphrase_file.as_deref(), env_passphrase, false)?;
    let mut bar = Progress::new("reading chunks");
    let report = wormvault::vault::check::check_store(&args.store, &secret, args.read_data, &mut |done, total| bar.show(done, total))?;
    bar.finish();
    for note in &report.notes {
        println!("note: {note}");
    }
    for problem in &report.problems {
        println!("damaged: {problem}");
    }
    if !report.is_clean() {
        let store = args.store.display();
        if report.index_only {
            anyhow::bail!(
                "{} problems found in {store}, all in the index while the packs still hold the data; run `wormvault repair --rebuild-index {store}`, then check again",
                report.problems.len()
            );
        }
        anyhow::bail!("{} problems found in {store}; run `wormvault repair --rebuild-index {store}` first if any are in the index, then restore the files still damaged from another copy", report.problems.len());
    }
    let data = if args.read_data { format!(", {} chunks authenticated", report.chunks_checked) } else { String::new() };
    println!("store {} is intact: {} files, {} packs{data}", args.store.display(), report.files, report.packs);
    Ok(())
}

pub fn repair(args: RepairArgs, env_passphrase: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    let secret = passphrase::obtain(args.passphrase.passphrase_file.as_deref(), env_passphrase, false)?;
    let mut bar = Progress::new("scanning packs");
    let aside = wormvault::vault::check::rebuild_index(&args.store, &secret, &mut |done, total| bar.show(done, total))?;
    bar.finish();
    println!("index rebuilt from the packs; the old index was moved to {}", aside.display());
    Ok(())
}

pub fn gc(args: GcArgs, env_passphrase: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    let secret = passphrase::obtain(args.passphrase.passphrase_file.as_deref(), env_passphrase, false)?;
    let mut bar = Progress::new("scanning packs");
    let report = wormvault::vault::gc::collect_garbage(&args.store, &secret, &mut |done, total| bar.show(done, total))?;
    bar.finish();
    println!(
        "gc done: {} packs deleted, {} bytes reclaimed, {} packs kept because files still use them",
        report.packs_deleted, report.bytes_reclaimed, report.packs_kept
    );
    Ok(())
}

pub fn key(
    command: KeyCommand,
    env_passphrase: Option<Zeroizing<String>>,
    new_env_passphrase: Option<Zeroizing<String>>,
) -> anyhow::Result<()> {
    match command {
        KeyCommand::List(args) => {
            for slot in wormvault::unlock::list_keys(&args.store)? {
                println!("{}  argon2id memory={}MiB passes={}", slot.slot_id, slot.memory_kib / 1024, slot.passes);
            }
        }
        KeyCommand::Add(args) => {
            let (unlocked, new_secret, kdf) = unlock_for_change(&args, env_passphrase, new_env_passphrase)?;
            let slot = wormvault::unlock::add_key(&unlocked, &new_secret, kdf)?;
            println!("added key slot {slot}");
        }
        KeyCommand::Passwd(args) => {
            let (unlocked, new_secret, kdf) = unlock_for_change(&args, env_passphrase, new_env_passphrase)?;
            let old = wormvault::unlock::slot_id_of(&unlocked.slot_path);
            let slot = wormvault::unlock::add_key(&unlocked, &new_secret, kdf)?;
            wormvault::unlock::remove_key(&unlocked, &old)?;
            println!("passphrase changed: slot {old} replaced by {slot}");
        }
        KeyCommand::Remove(args) => {
            let secret = passphrase::obtain(args.passphrase.passphrase_file.as_deref(), env_passphrase, false)?;
            let unlocked = wormvault::unlock::unlock_store(&args.store, &secret)?;
            wormvault::unlock::remove_key(&unlocked, &args.slot)?;
            println!("removed key slot {}", args.slot);
        }
    }
    Ok(())
}

fn unlock_for_change(
    args: &KeyChangeArgs,
    env_passphrase: Option<Zeroizing<String>>,
    new_env_passphrase: Option<Zeroizing<String>>,
) -> anyhow::Result<(wormvault::vault::Unlocked, Zeroizing<Vec<u8>>, KdfParams)> {
    let kdf = KdfParams { memory_kib: args.kdf_memory_mib.saturating_mul(1024), passes: args.kdf_passes, lanes: 1 };
    kdf.validate().map_err(anyhow::Error::msg).context("invalid key derivation parameters")?;
    let secret = passphrase::obtain(args.passphrase.passphrase_file.as_deref(), env_passphrase, false)?;
    let unlocked = wormvault::unlock::unlock_store(&args.store, &secret)?;
    let new_secret = passphrase::obtain_new(args.new_passphrase_file.as_deref(), new_env_passphrase)?;
    Ok((unlocked, new_secret, kdf))
}

/// A progress line on a terminal; silent when stderr is not one.
struct Progress {
    label: &'static str,
    enabled: bool,
    last_percent: Option<u64>,
}

impl Progress {
    fn new(label: &'static str) -> Self {
        // SAFETY: isatty only inspects the descriptor.
        let enabled = unsafe { libc::isatty(2) } == 1;
        Progress { label, enabled, last_percent: None }
    }

    fn show(&mut self, done: u64, total: u64) {
        if !self.enabled || total == 0 {
            return;
        }
        let percent = done * 100 / total;
        if self.last_percent != Some(percent) {
            self.last_percent = Some(percent);
            eprint!("\r{}: {done}/{total} ({percent}%)", self.label);
        }
    }

    fn finish(&self) {
        if self.enabled && self.last_percent.is_some() {
            eprintln!();
        }
    }
}

/// Sets a `trusted.*` attribute on every regular file named by `paths` (and under them
/// with `recursive`); returns how many files were changed.
fn set_on_files(paths: &[std::path::PathBuf], recursive: bool, name: &str, value: &[u8]) -> anyhow::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(name).expect("constant names have no NUL byte");
    let mut changed = 0;
    let mut pending: Vec<std::path::PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path).with_context(|| format!("cannot stat {}", path.display()))?;
        if metadata.is_dir() {
            if !recursive {
                anyhow::bail!("{} is a folder; add -R to apply to every file under it", path.display());
            }
            for entry in std::fs::read_dir(&path).with_context(|| format!("cannot list {}", path.display()))? {
                pending.push(entry.with_context(|| format!("cannot list {}", path.display()))?.path());
            }
            continue;
        }
        if !metadata.is_file() {
            continue;
        }
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).context("path contains a NUL byte")?;
        // SAFETY: valid C strings and a value buffer of the given length.
        let rc = unsafe { libc::setxattr(c_path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
        if rc != 0 {
            let error = std::io::Error::last_os_error();
            let hint = match error.raw_os_error() {
                Some(libc::EPERM) => " (only root may change retention, and it can only be extended)",
                Some(libc::EOPNOTSUPP) => " (is this path on a wormvault mount?)",
                _ => "",
            };
            anyhow::bail!("cannot update {}: {error}{hint}", path.display());
        }
        changed += 1;
    }
    Ok(changed)
}

pub fn retain(args: RetainArgs) -> anyhow::Result<()> {
    let until = match wormvault::retention::parse_duration(&args.until) {
        Ok(seconds) => wormvault::retention::wall_clock_seconds() + seconds as i64,
        Err(_) => wormvault::retention::parse_time(&args.until).map_err(anyhow::Error::msg).context("invalid --until")?,
    };
    let value = wormvault::retention::format_time(until);
    let changed = set_on_files(&args.paths, args.recursive, "trusted.wormvault.retain_until", value.as_bytes())?;
    println!("retention of {changed} files extended to {value}");
    Ok(())
}

pub fn hold(args: HoldArgs) -> anyhow::Result<()> {
    let value: &[u8] = if args.release { b"0" } else { b"1" };
    let changed = set_on_files(&args.paths, args.recursive, "trusted.wormvault.hold", value)?;
    let action = if args.release { "lifted from" } else { "set on" };
    println!("legal hold {action} {changed} files");
    Ok(())
}
