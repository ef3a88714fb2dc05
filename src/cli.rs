//! Command-line definitions (clap derive types only).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Encrypted, write-once backup store mounted through FUSE.
#[derive(Debug, Parser)]
#[command(name = "wormvault", version, about, long_about = None)]
pub struct Cli {
    /// Log more (repeat for debug and trace); overrides RUST_LOG.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a new store in STORE (a new or empty folder).
    Init(InitArgs),
    /// Mount STORE at MOUNTPOINT.
    Mount(MountArgs),
    /// Show what a store holds: files, bytes, dedup and compression.
    Stats(StatsArgs),
    /// Verify a store's structure, and with --read-data every chunk's authenticity.
    Check(CheckArgs),
    /// Repair a store: rebuild its index from the packs.
    Repair(RepairArgs),
    /// Delete packs that no file uses any more (files deleted after their retention).
    Gc(GcArgs),
    /// Extend the retention of files on a mounted store (root only; never shortens).
    Retain(RetainArgs),
    /// Set or lift a legal hold on files of a mounted store (root only).
    Hold(HoldArgs),
    /// Manage the passphrases (key slots) that unlock a store.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Folder of the store (not mounted).
    pub store: PathBuf,
    /// Also decrypt and authenticate every chunk.
    #[arg(long)]
    pub read_data: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct RetainArgs {
    /// Files or folders inside a wormvault mount.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// New retain-until time: RFC 3339 UTC (2027-06-30T00:00:00Z) or a duration from
    /// now (90d).
    #[arg(long, value_name = "TIME")]
    pub until: String,
    /// Apply to every file under each folder.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    /// Files or folders inside a wormvault mount.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Lift the hold instead of setting it.
    #[arg(long)]
    pub release: bool,
    /// Apply to every file under each folder.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Folder of the store (not mounted).
    pub store: PathBuf,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Folder of the store (not mounted).
    pub store: PathBuf,
    /// Move the index aside and rebuild it from the packs alone.
    #[arg(long, required = true)]
    pub rebuild_index: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a passphrase; the new one is read from --new-passphrase-file,
    /// WORMVAULT_NEW_PASSPHRASE or a prompt.
    Add(KeyChangeArgs),
    /// List the key slots.
    List(KeyListArgs),
    /// Remove a key slot by id (never the last one).
    Remove(KeyRemoveArgs),
    /// Replace the passphrase that unlocks: adds the new slot, removes the old one.
    Passwd(KeyChangeArgs),
}

#[derive(Debug, Args)]
pub struct KeyChangeArgs {
    /// Folder of the store.
    pub store: PathBuf,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Read the new passphrase from FILE (mode 0600 or stricter).
    #[arg(long, value_name = "FILE")]
    pub new_passphrase_file: Option<PathBuf>,
    /// Argon2id memory in MiB for the new slot.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub kdf_memory_mib: u32,
    /// Argon2id passes for the new slot.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub kdf_passes: u32,
}

#[derive(Debug, Args)]
pub struct KeyListArgs {
    /// Folder of the store.
    pub store: PathBuf,
}

#[derive(Debug, Args)]
pub struct KeyRemoveArgs {
    /// Folder of the store.
    pub store: PathBuf,
    /// Id of the slot to remove, as `wormvault key list` prints it.
    pub slot: String,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// Read the passphrase from FILE (mode 0600 or stricter); otherwise the
    /// WORMVAULT_PASSPHRASE variable, the systemd credential wormvault.passphrase, or
    /// a prompt.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder of the new store.
    pub store: PathBuf,
    /// How long each sealed file stays undeletable: a number and s, m, h, d or y
    /// (365 days). Fixed for the store's life.
    #[arg(long, default_value = "30d", value_name = "DURATION")]
    pub retention: String,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Argon2id memory in MiB for the key slot (at least 64 is recommended).
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub kdf_memory_mib: u32,
    /// Argon2id passes for the key slot.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub kdf_passes: u32,
    /// Average chunk size in KiB (a power of two, 4 to 1024); the minimum is a quarter
    /// of it and the maximum eight times it. Smaller chunks deduplicate more of a
    /// database dump that changed a little and make a larger index. Fixed for the
    /// store's life.
    #[arg(long, default_value_t = 16, value_name = "KIB")]
    pub chunk_avg_kib: u32,
}

#[derive(Debug, Args)]
pub struct MountArgs {
    /// Folder of the store.
    pub store: PathBuf,
    /// Folder to mount the store on.
    pub mountpoint: PathBuf,
    /// Stay in the foreground (for systemd); otherwise go to the background once the
    /// mount is ready.
    #[arg(short, long)]
    pub foreground: bool,
    /// Mount options, comma-separated: allow_other, allow_root, nosuid, nodev, noexec,
    /// noatime, default_permissions (always on), reserve=BYTES[K|M|G],
    /// commit_interval=DURATION, workers=N, passphrase_file=FILE, state_dir=DIR,
    /// metrics_file=FILE, root_owner=UID:GID, root_mode=OCTAL; nofail, _netdev, auto,
    /// noauto, rw, dev, suid, exec, atime, user, users and x-* are accepted and ignored.
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Folder of the store.
    pub store: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}
