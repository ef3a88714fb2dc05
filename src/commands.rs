//! Subcommands other than `mount`, each a short call into the library.

use anyhow::Context;
use zeroize::Zeroizing;

use wormvault::crypto::KdfParams;
use wormvault::retention::parse_duration;
use wormvault::unlock::{init_store, InitOptions, DEFAULT_CHUNKER};

use crate::cli::{CheckArgs, GcArgs, InitArgs, KeyChangeArgs, KeyCommand, RepairArgs, StatsArgs};
use crate::passphrase;

pub fn init(args: InitArgs, env_passphrase: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    let retention_seconds = parse_duration(&args.retention).map_err(anyhow::Error::msg).context("invalid --retention")?;
    let kdf = KdfParams { memory_kib: args.kdf_memory_mib.saturating_mul(1024), passes: args.kdf_passes, lanes: 1 };
    kdf.validate().map_err(anyhow::Error::msg).context("invalid key derivation parameters")?;
    let secret = passphrase::obtain(args.passphrase.passphrase_file.as_deref(), env_passphrase, true)?;
    let options = InitOptions { retention_seconds, chunker: DEFAULT_CHUNKER, kdf };
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
        anyhow::bail!("{} problems found in {}; restore the damaged files from another copy", report.problems.len(), args.store.display());
    }
    let data = if args.read_data { format!(", {} chunks authenticated", report.chunks_checked) } else { String::new() };
    println!("store {} is intact: {} files, {} packs{data}", args.store.display(), report.files, report.packs);
    Ok(())
}

pub fn repair(args: RepairArgs, env_passphrase: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    let secret = passphrase::obtain(args.passphrase.passphrase_file.as_deref(), env_passphrase, false)?;
    let aside = wormvault::vault::check::rebuild_index(&args.store, &secret)?;
    println!("index rebuilt from the packs; the old index was moved to {}", aside.display());
    Ok(())
}

pub fn gc(args: GcArgs, env_passphrase: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    let secret = passphrase::obtain(args.passphrase.passphrase_file.as_deref(), env_passphrase, false)?;
    let report = wormvault::vault::gc::collect_garbage(&args.store, &secret)?;
    println!(
        "gc done: {} packs deleted, {} bytes reclaimed, {} packs kept because files still use them",
        report.packs_deleted, report.bytes_reclaimed, report.packs_kept
    );
    Ok(())
}

pub fn key(command: KeyCommand, env_passphrase: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    match command {
        KeyCommand::List(args) => {
            for slot in wormvault::unlock::list_keys(&args.store)? {
                println!("{}  argon2id memory={}MiB passes={}", slot.slot_id, slot.memory_kib / 1024, slot.passes);
            }
        }
        KeyCommand::Add(args) => {
            let (unlocked, new_secret, kdf) = unlock_for_change(&args, env_passphrase)?;
            let slot = wormvault::unlock::add_key(&unlocked, &new_secret, kdf)?;
            println!("added key slot {slot}");
        }
        KeyCommand::Passwd(args) => {
            let (unlocked, new_secret, kdf) = unlock_for_change(&args, env_passphrase)?;
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
) -> anyhow::Result<(wormvault::vault::Unlocked, Zeroizing<Vec<u8>>, KdfParams)> {
    let kdf = KdfParams { memory_kib: args.kdf_memory_mib.saturating_mul(1024), passes: args.kdf_passes, lanes: 1 };
    kdf.validate().map_err(anyhow::Error::msg).context("invalid key derivation parameters")?;
    let secret = passphrase::obtain(args.passphrase.passphrase_file.as_deref(), env_passphrase, false)?;
    let unlocked = wormvault::unlock::unlock_store(&args.store, &secret)?;
    let new_env = std::env::var("WORMVAULT_NEW_PASSPHRASE").ok().map(Zeroizing::new);
    let new_secret = match &args.new_passphrase_file {
        Some(path) => passphrase::read_file(path)?,
        None => passphrase::obtain(None, new_env, true).context("cannot read the new passphrase")?,
    };
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
