//! Test harness: real stores in temporary folders, mounted through the kernel by the
//! `wormvault` binary, and unmounted so the daemon's final commit runs.

#![allow(dead_code)]

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tempfile::TempDir;

pub const PASSPHRASE: &str = "correct horse battery staple";

/// Path of the binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wormvault"))
}

/// A store in a temporary folder, with its passphrase file beside it.
pub struct TestStore {
    pub dir: TempDir,
    pub root: PathBuf,
    pub passphrase_file: PathBuf,
}

impl TestStore {
    /// Makes a store with the given retention (such as "30d" or "2s").
    pub fn init(retention: &str) -> TestStore {
        let dir = tempfile::Builder::new().prefix("wormvault-test-").tempdir().expect("temporary folder");
        let root = dir.path().join("store");
        let passphrase_file = dir.path().join("passphrase");
        fs::write(&passphrase_file, PASSPHRASE).unwrap();
        fs::set_permissions(&passphrase_file, fs::Permissions::from_mode(0o600)).unwrap();
        let output = Command::new(binary())
            .arg("init")
            .arg(&root)
            .arg("--retention")
            .arg(retention)
            .arg("--passphrase-file")
            .arg(&passphrase_file)
            .output()
            .expect("running wormvault init");
        assert!(output.status.success(), "init failed: {}", String::from_utf8_lossy(&output.stderr));
        TestStore { dir, root, passphrase_file }
    }

    /// Mounts the store at a fresh mountpoint with default options.
    pub fn mount(&self) -> Mount {
        self.mount_with(&[])
    }

    /// Mounts the store with extra `-o` options.
    pub fn mount_with(&self, options: &[&str]) -> Mount {
        let mountpoint = self.dir.path().join("mnt");
        // A dead mount left by a killed daemon exists but fails stat with ENOTCONN;
        // the daemon detaches it, so only other failures stop the test.
        if let Err(error) = fs::create_dir_all(&mountpoint) {
            assert_eq!(error.kind(), io::ErrorKind::AlreadyExists, "creating {mountpoint:?}: {error}");
        }
        Mount::start(&self.root, &mountpoint, &self.passphrase_file, options, &self.state_dir())
    }

    /// Runs `wormvault -q mount` without -f on the test's mountpoint and returns its
    /// output, for mounts that are expected to fail (a successful one stays mounted
    /// in the background until the test unmounts it).
    pub fn mount_background_output(&self) -> std::process::Output {
        let mountpoint = self.dir.path().join("mnt");
        fs::create_dir_all(&mountpoint).unwrap();
        Command::new(binary())
            .args(["-q", "mount"])
            .arg(&self.root)
            .arg(&mountpoint)
            .arg("--passphrase-file")
            .arg(&self.passphrase_file)
            .env("WORMVAULT_STATE_DIR", self.state_dir())
            .output()
            .expect("running wormvault mount")
    }

    /// Folder of the host state file: inside the test's folder, not /var/lib.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs a wormvault subcommand on this store with the passphrase file.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary())
            .env("WORMVAULT_STATE_DIR", self.state_dir())
            .args(args)
            .arg(&self.root)
            .arg("--passphrase-file")
            .arg(&self.passphrase_file)
            .output()
            .expect("running wormvault")
    }
}

/// A running `wormvault mount -f` process and its mountpoint.
pub struct Mount {
    child: Option<Child>,
    pub path: PathBuf,
    log_path: PathBuf,
}

impl Mount {
    fn start(store: &Path, mountpoint: &Path, passphrase_file: &Path, options: &[&str], state_dir: &Path) -> Mount {
        let log_path = mountpoint.with_extension(format!("log.{}", std::process::id()));
        let log = fs::File::create(&log_path).unwrap();
        let mut command = Command::new(binary());
        command.arg("mount").arg(store).arg(mountpoint).arg("-f").arg("-v");
        command.arg("--passphrase-file").arg(passphrase_file);
        command.env("WORMVAULT_STATE_DIR", state_dir);
        if !options.is_empty() {
            command.arg("-o").arg(options.join(","));
        }
        let child = command.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("spawning mount");
        let mut mount = Mount { child: Some(child), path: mountpoint.to_path_buf(), log_path };
        mount.wait_until_mounted();
        mount
    }

    fn wait_until_mounted(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            // A dead mount is listed too, but statfs on it fails with ENOTCONN (stat may
            // still answer from the kernel's attribute cache).
            if is_mounted(&self.path) && statfs_answers(&self.path) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("mount exited with {status} before mounting:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mount not ready after 30 s:\n{}", self.log());
    }

    /// Returns the daemon's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Path inside the mount.
    pub fn join(&self, relative: &str) -> PathBuf {
        self.path.join(relative)
    }

    /// Unmounts and waits for the daemon to exit; returns its log. Panics if the
    /// daemon failed, since then the final commit may not have run.
    pub fn unmount(mut self) -> String {
        // A child process that another test thread is starting holds copies of this
        // process's descriptors until it execs, and then the mount is busy for a
        // moment; so a failed unmount is retried for up to 5 s.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let output = Command::new("fusermount3").arg("-u").arg(&self.path).output().expect("running fusermount3");
            if output.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "fusermount3 -u failed: {}\n{}",
                String::from_utf8_lossy(&output.stderr),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut child = self.child.take().unwrap();
        let exit = wait_with_timeout(&mut child, Duration::from_secs(60));
        let log = self.log();
        assert!(exit.success(), "daemon exited with {exit}:\n{log}");
        log
    }

    /// Kills the daemon with SIGKILL, as a crash would, and detaches the dead mount.
    pub fn kill(mut self) -> String {
        self.kill_daemon();
        let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(&self.path).status();
        self.log()
    }

    /// Waits for the daemon to exit on its own (after a signal), returning its status.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let status = wait_with_timeout_opt(self.child.as_mut()?, timeout);
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// Kills the daemon with SIGKILL but leaves the dead mount in place, so writers
    /// see ENOTCONN instead of writing into the folder below the mountpoint.
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // A mount whose daemon was killed stays listed until it is detached.
        if self.child.is_none() && is_mounted(&self.path) && !statfs_answers(&self.path) {
            let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(&self.path).status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(&self.path).status();
            if wait_with_timeout_opt(&mut child, Duration::from_secs(20)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn wait_with_timeout_opt(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    wait_with_timeout_opt(child, timeout).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("daemon did not exit within {timeout:?} after unmount")
    })
}

/// Returns whether statfs on `path` succeeds. FUSE sends statfs to the daemon every time.
pub fn statfs_answers(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: statvfs writes into the zeroed struct.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) == 0 }
}

/// Returns whether `path` is a FUSE mountpoint in /proc/self/mountinfo.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(canonical) = path.canonicalize().or_else(|_| Ok::<_, io::Error>(path.to_path_buf())) else { return false };
    let target = canonical.to_string_lossy().to_string();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.len() > 4 && fields[4] == target && line.contains(" - fuse")
    })
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    let mut file = fs::File::open(path).unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    hex(&hasher.finalize())
}

pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Deterministic incompressible bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in out.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    out
}

/// Writes a file in one go through the mount and closes it.
pub fn write_file(path: &Path, bytes: &[u8]) {
    let mut file = fs::File::create(path).unwrap_or_else(|error| panic!("create {}: {error}", path.display()));
    file.write_all(bytes).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
}

/// Returns the errno of an I/O error, panicking if it has none.
pub fn errno(error: &io::Error) -> i32 {
    error.raw_os_error().unwrap_or_else(|| panic!("error without errno: {error}"))
}

/// Asserts that `result` failed with `expected`, naming the operation.
#[track_caller]
pub fn assert_errno<T: std::fmt::Debug>(result: io::Result<T>, expected: i32, what: &str) {
    match result {
        Ok(value) => panic!("{what}: expected errno {expected}, but it succeeded with {value:?}"),
        Err(error) => assert_eq!(errno(&error), expected, "{what}: got {error}"),
    }
}

/// Compares two byte strings, reporting lengths and the first differing offset.
#[track_caller]
pub fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual == expected {
        return;
    }
    let first = actual.iter().zip(expected).position(|(a, b)| a != b).unwrap_or(actual.len().min(expected.len()));
    panic!("{what}: {} bytes read, {} expected, first difference at offset {first}", actual.len(), expected.len());
}

/// Total bytes of every file under `dir`.
pub fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let metadata = entry.metadata().unwrap();
        total += if metadata.is_dir() { tree_bytes(&entry.path()) } else { metadata.len() };
    }
    total
}

/// Path of the bundled mongodump-style generator.
pub fn mongodump_sim() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mongodump-sim")
}

impl Mount {
    /// Spawns a prepared `wormvault mount ... -f` command, sends its output to a log
    /// file beside `mountpoint`, and waits until `mountpoint` is mounted.
    pub fn spawn(mut command: Command, mountpoint: &Path) -> Mount {
        let log_path = mountpoint.with_extension(format!("log.{}", std::process::id()));
        let log = fs::File::create(&log_path).unwrap();
        let child = command.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("spawning mount");
        let mut mount = Mount { child: Some(child), path: mountpoint.to_path_buf(), log_path };
        mount.wait_until_mounted();
        mount
    }

    /// Returns the process id of the daemon.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon runs until unmount").id()
    }
}

/// Clears the Linux immutable attribute that the daemon sets on finished packs, key
/// slots and the config, so a test can damage a file on purpose. Does nothing on
/// filesystems without the attribute.
pub fn clear_immutable(path: &Path) {
    use std::os::unix::io::AsRawFd;
    const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
    const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;
    const FS_IMMUTABLE_FL: libc::c_long = 0x10;
    let Ok(file) = fs::File::open(path) else { return };
    let mut flags: libc::c_long = 0;
    // SAFETY: the ioctls read and write one long on an open descriptor.
    unsafe {
        if libc::ioctl(file.as_raw_fd(), FS_IOC_GETFLAGS, &mut flags) == 0 && flags & FS_IMMUTABLE_FL != 0 {
            flags &= !FS_IMMUTABLE_FL;
            libc::ioctl(file.as_raw_fd(), FS_IOC_SETFLAGS, &flags);
        }
    }
}

/// Clears the immutable attribute of every file under `dir`.
pub fn clear_immutable_tree(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            clear_immutable_tree(&path);
        } else {
            clear_immutable(&path);
        }
    }
}

impl Drop for TestStore {
    /// Lets the temporary folder be removed: immutable files would stay behind.
    fn drop(&mut self) {
        clear_immutable_tree(&self.root);
    }
}

/// Drops the kernel's cached pages of `file`, so the next read of them reaches the
/// daemon. Only clean pages are dropped.
pub fn drop_page_cache(file: &fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fadvise on an open descriptor. It returns the error number itself.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise DONTNEED failed: {}", io::Error::from_raw_os_error(rc));
}
