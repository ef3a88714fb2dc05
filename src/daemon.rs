//! `wormvault mount`: unlock, mount, serve until unmounted, commit, exit.
//!
//! Without `-f` the process forks before any thread starts; the parent waits until
//! the child reports the mount ready (or its error), so a wrong passphrase or a busy
//! store still reaches the caller with exit status 1.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::FromRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use fuser::MountOption;
use zeroize::Zeroizing;

use wormvault::fs::WormFs;
use wormvault::retention::parse_duration;
use wormvault::unlock::unlock_store;
use wormvault::vault::{MountSettings, Vault};

use crate::cli::MountArgs;
use crate::passphrase;

/// Rewrites the form `mount.fuse3` uses, `wormvault STORE MOUNTPOINT -o OPTIONS`, into
/// `wormvault mount STORE MOUNTPOINT -o OPTIONS`.
pub fn mount_helper_args(mut args: Vec<OsString>) -> Vec<OsString> {
    const COMMANDS: [&str; 10] = ["init", "mount", "stats", "check", "repair", "gc", "retain", "hold", "key", "help"];
    if let Some(first) = args.get(1) {
        let text = first.to_string_lossy();
        if !text.starts_with('-') && !COMMANDS.contains(&text.as_ref()) && args.len() >= 3 {
            args.insert(1, OsString::from("mount"));
        }
    }
    args
}

/// Mount options after parsing `-o`.
struct ParsedOptions {
    fuse: Vec<MountOption>,
    settings: MountSettings,
    passphrase_file: Option<PathBuf>,
    /// Prometheus text file rewritten every [`METRICS_INTERVAL`].
    metrics_file: Option<PathBuf>,
}

const METRICS_INTERVAL: Duration = Duration::from_secs(10);

fn parse_size(text: &str) -> anyhow::Result<u64> {
    let (number, scale) = match text.chars().last() {
        Some('K') | Some('k') => (&text[..text.len() - 1], 1u64 << 10),
        Some('M') | Some('m') => (&text[..text.len() - 1], 1 << 20),
        Some('G') | Some('g') => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    let number: u64 = number.parse().with_context(|| format!("invalid size {text:?}: expected bytes with an optional K, M or G"))?;
    Ok(number * scale)
}

fn parse_options(options: &[String]) -> anyhow::Result<ParsedOptions> {
    let mut parsed = ParsedOptions {
        fuse: vec![MountOption::DefaultPermissions, MountOption::Subtype("wormvault".into())],
        settings: MountSettings::default(),
        passphrase_file: None,
        metrics_file: None,
    };
    for option in options.iter().flat_map(|group| group.split(',')).filter(|option| !option.is_empty()) {
        let (key, value) = match option.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (option, None),
        };
        match (key, value) {
            ("allow_other", None) => parsed.fuse.push(MountOption::AllowOther),
            ("allow_root", None) => parsed.fuse.push(MountOption::AllowRoot),
            ("nosuid", None) => parsed.fuse.push(MountOption::NoSuid),
            ("nodev", None) => parsed.fuse.push(MountOption::NoDev),
            ("noexec", None) => parsed.fuse.push(MountOption::NoExec),
            ("noatime", None) => parsed.fuse.push(MountOption::NoAtime),
            ("default_permissions", None) => {}
            ("reserve", Some(value)) => parsed.settings.reserve_bytes = Some(parse_size(value)?),
            ("commit_interval", Some(value)) => {
                let seconds = parse_duration(value).map_err(anyhow::Error::msg).context("invalid commit_interval")?;
                parsed.settings.commit_interval = Duration::from_secs(seconds);
            }
            ("workers", Some(value)) => {
                parsed.settings.worker_threads = value.parse().with_context(|| format!("invalid workers={value}"))?
            }
            ("passphrase_file", Some(value)) => parsed.passphrase_file = Some(PathBuf::from(value)),
            ("metrics_file", Some(value)) => parsed.metrics_file = Some(PathBuf::from(value)),
            ("state_dir", Some(value)) => parsed.settings.state_dir = Some(PathBuf::from(value)),
            ("root_owner", Some(value)) => {
                let (uid, gid) = value.split_once(':').with_context(|| format!("invalid root_owner={value}: expected UID:GID"))?;
                let uid = uid.parse().with_context(|| format!("invalid root_owner={value}: expected numeric UID:GID"))?;
                let gid = gid.parse().with_context(|| format!("invalid root_owner={value}: expected numeric UID:GID"))?;
                parsed.settings.root_owner = Some((uid, gid));
            }
            ("root_mode", Some(value)) => {
                let mode = u32::from_str_radix(value, 8).with_context(|| format!("invalid root_mode={value}: expected octal such as 0755"))?;
                if mode > 0o7777 {
                    bail!("invalid root_mode={value}: expected permission bits up to 7777");
                }
                parsed.settings.root_mode = Some(mode);
            }
            ("nofail" | "_netdev" | "auto" | "noauto" | "rw" | "user" | "users" | "dev" | "suid" | "exec" | "atime", None) => {}
            (key, _) if key.starts_with("x-systemd.") || key.starts_with("x-") => {}
            ("ro", None) => bail!("mount option ro is not supported: a wormvault store is always mounted read-write"),
            _ => bail!("unknown mount option {option:?}; see `wormvault mount --help`"),
        }
    }
    Ok(parsed)
}

pub fn mount(args: MountArgs, env_passphrase: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    let options = parse_options(&args.options)?;
    let passphrase_file = args.passphrase.passphrase_file.or(options.passphrase_file.clone());
    let secret = passphrase::obtain(passphrase_file.as_deref(), env_passphrase, false)?;
    let unlocked = unlock_store(&args.store, &secret)?;
    drop(secret);
    clean_dead_mountpoint(&args.mountpoint)
        .with_context(|| format!("mountpoint {} is not usable", args.mountpoint.display()))?;
    let mountpoint = std::fs::canonicalize(&args.mountpoint)
        .with_context(|| format!("mountpoint {} is not a folder", args.mountpoint.display()))?;
    if !mountpoint.is_dir() {
        bail!("mountpoint {} is not a folder", mountpoint.display());
    }
    let store = std::fs::canonicalize(&args.store).unwrap_or(args.store);
    if args.foreground {
        return serve(unlocked, options, &store, &mountpoint, None);
    }
    let readiness = fork_and_wait()?;
    if serve(unlocked, options, &store, &mountpoint, Some(readiness)).is_err() {
        // The waiting parent has printed the error already, or stdio is detached.
        std::process::exit(1);
    }
    Ok(())
}

/// Serves the mount until it is unmounted. `readiness` is the pipe to the waiting
/// parent, written once: "ok", or the error.
fn serve(
    unlocked: wormvault::vault::Unlocked,
    options: ParsedOptions,
    store: &Path,
    mountpoint: &Path,
    mut readiness: Option<std::fs::File>,
) -> anyhow::Result<()> {
    let background = readiness.is_some();
    let report = |readiness: &mut Option<std::fs::File>, message: &str| {
        if let Some(mut pipe) = readiness.take() {
            let _ = pipe.write_all(message.as_bytes());
        }
    };
    let purpose = mountpoint.display().to_string();
    let vault = match Vault::open_store(unlocked, options.settings, &purpose) {
        Ok(vault) => Arc::new(Mutex::new(vault)),
        Err(error) => {
            report(&mut readiness, &format!("wormvault: {error}"));
            return Err(error.into());
        }
    };
    let mut fuse_options = options.fuse;
    fuse_options.push(MountOption::FSName(store.display().to_string()));
    let mut session = match fuser::Session::new(WormFs::new(vault.clone()), mountpoint, &fuse_options) {
        Ok(session) => session,
        Err(error) => {
            let message = format!("wormvault: failed to mount {}: {error}", mountpoint.display());
            report(&mut readiness, &message);
            bail!("failed to mount {}: {error}", mountpoint.display());
        }
    };
    log::info!("mounted: store={} mountpoint={}", store.display(), mountpoint.display());
    report(&mut readiness, "ok");
    if background {
        detach_stdio();
    }
    notify_systemd("READY=1");
    let stop = Arc::new(AtomicBool::new(false));
    let committer = spawn_committer(vault.clone(), stop.clone(), options.metrics_file.clone());
    spawn_signal_handler(mountpoint.to_path_buf())?;
    let run_result = session.run();
    notify_systemd("STOPPING=1");
    stop.store(true, Ordering::Relaxed);
    let _ = committer.join();
    drop(session);
    let shutdown = vault.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).shutdown();
    run_result.context("FUSE session failed")?;
    shutdown.context("final commit failed")?;
    log::info!("unmounted, everything committed: store={}", store.display());
    // Everything is durable now, the index included (its flush returned), so the
    // process exits without running sled's destructor, which rewrites its files again
    // and took seconds after a large ingest.
    std::mem::forget(vault);
    Ok(())
}

/// Commits whenever the commit interval has passed since the oldest uncommitted change.
/// Also rewrites the metrics file, when one is set.
fn spawn_committer(vault: Arc<Mutex<Vault>>, stop: Arc<AtomicBool>, metrics_file: Option<PathBuf>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("wormvault-commit".into())
        .spawn(move || {
            let mut metrics_written: Option<std::time::Instant> = None;
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                let mut vault = vault.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if vault.commit_due() {
                    if let Err(error) = vault.commit() {
                        vault.note_commit_failure();
                        log::warn!("periodic commit failed, retrying at the next interval: error={error}");
                    }
                }
                if let Some(path) = &metrics_file {
                    if stopping || metrics_written.is_none_or(|at| at.elapsed() >= METRICS_INTERVAL) {
                        if let Err(error) = wormvault::metrics::write_file(path, &vault.render_metrics()) {
                            log::warn!("metrics file not written: path={} error={error}", path.display());
                        }
                        metrics_written = Some(std::time::Instant::now());
                    }
                }
                drop(vault);
                if stopping {
                    return;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        })
        .expect("spawning the commit thread")
}

/// SIGTERM, SIGINT and SIGHUP unmount (lazily, so open files do not block it); the
/// session then ends and the final commit runs before exit.
fn spawn_signal_handler(mountpoint: PathBuf) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).context("cannot install signal handlers")?;
    std::thread::Builder::new().name("wormvault-signals".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            log::info!("signal received, unmounting: signal={signal}");
            unmount(&mountpoint);
        }
    })?;
    Ok(())
}

/// Detaches the mount at `mountpoint`.
pub fn unmount(mountpoint: &Path) {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let path = std::ffi::CString::new(mountpoint.as_os_str().as_bytes()).expect("paths have no NUL byte");
        // SAFETY: umount2 with a valid C string.
        if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
            return;
        }
    }
    let status = std::process::Command::new("fusermount3").arg("-u").arg("-z").arg(mountpoint).status();
    if !matches!(status, Ok(status) if status.success()) {
        log::warn!("unmount failed: mountpoint={} status={status:?}", mountpoint.display());
    }
}

/// A mountpoint left by a killed daemon fails with ENOTCONN; detach it so the new
/// mount can take its place.
/// statfs is used because stat may still answer from the kernel's attribute cache.
fn clean_dead_mountpoint(mountpoint: &Path) -> std::io::Result<()> {
    match statfs(mountpoint) {
        Err(error) if error.raw_os_error() == Some(libc::ENOTCONN) => {
            log::warn!("detaching a dead mount left by a killed daemon: mountpoint={}", mountpoint.display());
            unmount(mountpoint);
            statfs(mountpoint)
        }
        other => other,
    }
}

fn statfs(path: &Path) -> std::io::Result<()> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: statvfs writes into the zeroed struct; the path is a valid C string.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// No core dumps and no ptrace by other users: the master key is in this process.
pub fn harden_process() {
    // SAFETY: plain syscalls on this process.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        let limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &limit);
        libc::umask(0o077);
    }
}

/// Forks: the parent waits for the child's first message and exits with it; the child
/// returns the write end of the pipe.
fn fork_and_wait() -> anyhow::Result<std::fs::File> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("cannot create a pipe: {}", std::io::Error::last_os_error());
    }
    // SAFETY: no thread has been started yet, so fork is safe.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!("cannot fork: {}", std::io::Error::last_os_error());
    }
    if pid > 0 {
        // SAFETY: the descriptors come from pipe2 above and are owned here.
        unsafe { libc::close(fds[1]) };
        let mut reader = unsafe { std::fs::File::from_raw_fd(fds[0]) };
        let mut message = String::new();
        let _ = reader.read_to_string(&mut message);
        if message == "ok" {
            std::process::exit(0);
        }
        if message.is_empty() {
            message = "wormvault: the mount process exited before the mount was ready".into();
        }
        eprintln!("{message}");
        std::process::exit(1);
    }
    // SAFETY: as above; the child keeps the write end and starts its own session.
    unsafe {
        libc::close(fds[0]);
        libc::setsid();
    }
    Ok(unsafe { std::fs::File::from_raw_fd(fds[1]) })
}

/// A background daemon must not hold the caller's terminal: stdio goes to /dev/null
/// and logging to syslog.
fn detach_stdio() {
    crate::logging::use_syslog();
    // SAFETY: dup2 onto the standard descriptors of this process.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            libc::close(null);
        }
    }
}

/// Sends a state line to systemd's notify socket, when run under `Type=notify`.
fn notify_systemd(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let socket = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(socket) => socket,
        Err(error) => return log::warn!("sd_notify failed: error={error}"),
    };
    let bytes = path.as_bytes();
    let result = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name).and_then(|address| socket.send_to_addr(state.as_bytes(), &address))
    } else {
        socket.send_to(state.as_bytes(), Path::new(&path))
    };
    if let Err(error) = result {
        log::warn!("sd_notify failed: error={error}");
    }
}
