//! Subcommands other than `mount`, each a short call into the library.

use anyhow::Context;
use zeroize::Zeroizing;

use wormvault::crypto::KdfParams;
use wormvault::retention::parse_duration;
use wormvault::unlock::{init_store, InitOptions, DEFAULT_CHUNKER};

use crate::cli::{InitArgs, StatsArgs};
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
