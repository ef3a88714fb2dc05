//! The `wormvault` command: parse arguments, install the logger, run, map the result
//! to an exit status (0 success, 1 failure, 2 usage error).

mod cli;
mod commands;
mod daemon;
mod logging;
mod passphrase;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    // Before anything holds a key: no core dumps, no ptrace by other users.
    daemon::harden_process();
    // Taken first, before any thread exists, so the environment is changed safely.
    let env_passphrase = passphrase::take_from_env();
    let new_env_passphrase = passphrase::take_env(passphrase::NEW_PASSPHRASE_ENV);
    let cli = Cli::parse_from(daemon::mount_helper_args(std::env::args_os().collect()));
    install_logger(&cli);
    let result = match cli.command {
        Command::Init(args) => commands::init(args, env_passphrase),
        Command::Mount(args) => daemon::mount(args, env_passphrase),
        Command::Stats(args) => commands::stats(args, env_passphrase),
        Command::Check(args) => commands::check(args, env_passphrase),
        Command::Repair(args) => commands::repair(args, env_passphrase),
        Command::Gc(args) => commands::gc(args, env_passphrase),
        Command::Retain(args) => commands::retain(args),
        Command::Hold(args) => commands::hold(args),
        Command::Key(command) => commands::key(command, env_passphrase, new_env_passphrase),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut message = format!("wormvault: {error}");
            for cause in error.chain().skip(1) {
                let cause = cause.to_string();
                if !message.contains(&cause) {
                    message.push_str(": ");
                    message.push_str(&cause);
                }
            }
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

fn install_logger(cli: &Cli) {
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let filters = match std::env::var("RUST_LOG") {
        Ok(spec) if cli.verbose == 0 && !cli.quiet => spec,
        // fuser logs a failed unmount of its own after every external unmount; that
        // line is noise, so its mount module is silenced.
        _ => format!("wormvault={level},warn,fuser::mnt=off"),
    };
    logging::install(&filters);
}
