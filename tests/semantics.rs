//! Filesystem semantics through real mounts. The tests cover the write-once rules for
//! files being written, closing, sealed and past retention. They also cover the cases
//! that backup tools rely on: shell redirection, append, shared mmap, long and non-UTF-8
//! names, large listings, statfs, fsync and the virtual extended attributes.
//!
//! Every refusal is checked for its exact errno, and every refused change is followed
//! by a re-read of the file's bytes, in the same mount and after a remount.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

/// Retention of the stores that only test states inside retention.
const LONG_RETENTION: &str = "30d";
const LONG_RETENTION_SECONDS: i64 = 30 * 86_400;
/// Retention of the stores that reach the "after retention" state by waiting.
const SHORT_RETENTION: &str = "2s";
/// Upper bound for the store clock to pass a 2 s retention, generous for loaded machines.
const RETENTION_WAIT_LIMIT: Duration = Duration::from_secs(20);
/// Upper bound for the asynchronous RELEASE to seal a file after `close()` returned.
const SEAL_WAIT_LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Process spawns against files being written.
// ---------------------------------------------------------------------------

/// Counts of running sections of each kind. A spawned child starts with a copy of this
/// process's descriptor table, and exec closing the O_CLOEXEC copies sends a FLUSH for
/// every open file. That FLUSH moves a file being written on its last writable handle
/// to closing. So spawns and sections that need a file to stay being written never run
/// at the same time, although any number of one kind may run together.
static ACTIVE_SECTIONS: Mutex<[usize; 2]> = Mutex::new([0, 0]);
static SECTIONS_CHANGED: Condvar = Condvar::new();

#[derive(Clone, Copy, PartialEq, Eq)]
enum SectionKind {
    /// Spawning a process (mount daemon, fusermount3, a shell).
    Spawn = 0,
    /// Keeping a file being written out of the closing state.
    Writing = 1,
}

/// A running section, which ends when dropped.
struct Section {
    kind: SectionKind,
}

impl Section {
    /// Waits until no section of the other kind runs, then starts one of `kind`.
    fn enter(kind: SectionKind) -> Section {
        let other = match kind {
            SectionKind::Spawn => SectionKind::Writing,
            SectionKind::Writing => SectionKind::Spawn,
        };
        let mut active = ACTIVE_SECTIONS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while active[other as usize] > 0 {
            active = SECTIONS_CHANGED
                .wait(active)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        active[kind as usize] += 1;
        Section { kind }
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        let mut active = ACTIVE_SECTIONS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        active[self.kind as usize] -= 1;
        SECTIONS_CHANGED.notify_all();
    }
}

/// Holds off process spawns of parallel tests until the returned section is dropped.
/// The caller must not spawn (mount, unmount) before dropping it.
fn hold_off_spawns() -> Section {
    Section::enter(SectionKind::Writing)
}

fn spawn_section() -> Section {
    Section::enter(SectionKind::Spawn)
}

fn init_store(retention: &str) -> TestStore {
    let _spawn = spawn_section();
    TestStore::init(retention)
}

fn mount_store(store: &TestStore) -> Mount {
    let _spawn = spawn_section();
    store.mount()
}

fn mount_store_with(store: &TestStore, options: &[&str]) -> Mount {
    let _spawn = spawn_section();
    store.mount_with(options)
}

/// Unmounts and returns the daemon's log.
fn unmount(mount: Mount) -> String {
    let _spawn = spawn_section();
    mount.unmount()
}

// ---------------------------------------------------------------------------
// System call wrappers. Every descriptor is opened with O_CLOEXEC, because other
// tests spawn mount daemons in parallel and an inherited descriptor would keep a
// file open (so never sealed) or a mount busy.
// ---------------------------------------------------------------------------

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("test paths contain no NUL byte")
}

fn c_name(name: &str) -> CString {
    CString::new(name).expect("attribute names contain no NUL byte")
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Opens `path` with raw `open(2)` flags, mode 0644 for a new file.
fn open_flags(path: &Path, flags: i32) -> io::Result<File> {
    let path = c_path(path);
    // SAFETY: open with a valid C string. The File takes ownership of the descriptor.
    let fd = check(unsafe {
        libc::open(
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            0o644 as libc::c_uint,
        )
    })?;
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `truncate(2)` on a path, which needs no open descriptor.
fn truncate_path(path: &Path, len: u64) -> io::Result<()> {
    let path = c_path(path);
    // SAFETY: truncate with a valid C string.
    check(unsafe { libc::truncate(path.as_ptr(), len as libc::off_t) }).map(drop)
}

/// `renameat2(2)` with `flags` (RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT).
fn rename_with_flags(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let from = c_path(from);
    let to = c_path(to);
    // SAFETY: renameat2 with valid C strings and AT_FDCWD.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn make_node(path: &Path, mode: libc::mode_t, device: libc::dev_t) -> io::Result<()> {
    let path = c_path(path);
    // SAFETY: mknod with a valid C string.
    check(unsafe { libc::mknod(path.as_ptr(), mode, device) }).map(drop)
}

fn make_fifo(path: &Path) -> io::Result<()> {
    let path = c_path(path);
    // SAFETY: mkfifo with a valid C string.
    check(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }).map(drop)
}

/// Reads extended attribute `name` of `path` with `getxattr(2)`.
fn get_xattr(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    let path = c_path(path);
    let name = c_name(name);
    let mut buffer = vec![0u8; 4096];
    // SAFETY: getxattr writes at most buffer.len() bytes into the buffer.
    let len = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
        )
    };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    buffer.truncate(len as usize);
    Ok(buffer)
}

/// Reads extended attribute `name` as UTF-8 text, panicking if it is missing.
#[track_caller]
fn xattr_text(path: &Path, name: &str) -> String {
    let value = get_xattr(path, name)
        .unwrap_or_else(|error| panic!("getxattr {name} on {}: {error}", path.display()));
    String::from_utf8(value).unwrap_or_else(|error| {
        panic!(
            "getxattr {name} on {}: value is not UTF-8: {error}",
            path.display()
        )
    })
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let path = c_path(path);
    let name = c_name(name);
    // SAFETY: setxattr reads value.len() bytes from the value.
    check(unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

/// Lists extended attribute names of `path`, asking for the size first as `cp -a` does.
fn list_xattr(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let path = c_path(path);
    // SAFETY: a null buffer of size 0 requests only the size of the list.
    let size = unsafe { libc::listxattr(path.as_ptr(), std::ptr::null_mut(), 0) };
    if size < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buffer = vec![0u8; size as usize + 4096];
    // SAFETY: listxattr writes at most buffer.len() bytes into the buffer.
    let len = unsafe { libc::listxattr(path.as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    buffer.truncate(len as usize);
    Ok(buffer
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// Sets access and modification times, in whole seconds, with `utimensat(2)`.
fn set_times(path: &Path, atime_seconds: i64, mtime_seconds: i64) -> io::Result<()> {
    let path = c_path(path);
    let times = [
        libc::timespec {
            tv_sec: atime_seconds as libc::time_t,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: mtime_seconds as libc::time_t,
            tv_nsec: 0,
        },
    ];
    // SAFETY: utimensat with a valid C string and an array of two timespecs.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) }).map(drop)
}

fn statvfs(path: &Path) -> libc::statvfs {
    let c_path = c_path(path);
    // SAFETY: statvfs fills the zeroed struct.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    check(unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) })
        .unwrap_or_else(|error| panic!("statvfs {}: {error}", path.display()));
    stats
}

fn fsync_data(file: &File) -> io::Result<()> {
    // SAFETY: fdatasync on an open descriptor.
    check(unsafe { libc::fdatasync(file.as_raw_fd()) }).map(drop)
}

/// Drops the clean cached pages of `file`, so the next read reaches the daemon.

// ---------------------------------------------------------------------------
// Paths, listings and waiting.
// ---------------------------------------------------------------------------

fn path_of(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

/// Names in `dir` as raw bytes, in readdir order, without `.` and `..`.
fn list_names(dir: &Path) -> Vec<Vec<u8>> {
    fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("readdir {}: {error}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|error| panic!("readdir {}: {error}", dir.display()))
                .file_name()
                .as_bytes()
                .to_vec()
        })
        .collect()
}

fn list_contains(dir: &Path, name: &[u8]) -> bool {
    list_names(dir).iter().any(|listed| listed == name)
}

#[track_caller]
fn assert_file_bytes(path: &Path, expected: &[u8], what: &str) {
    let actual =
        fs::read(path).unwrap_or_else(|error| panic!("{what}: read {}: {error}", path.display()));
    assert_same_bytes(&actual, expected, what);
}

#[track_caller]
fn assert_missing(path: &Path, what: &str) {
    assert_errno(fs::symlink_metadata(path), libc::ENOENT, what);
}

/// Waits until the asynchronous RELEASE after `close()` has sealed `path`, which is when
/// `user.wormvault.sealed_at` becomes readable.
#[track_caller]
fn wait_until_sealed(path: &Path) {
    let deadline = Instant::now() + SEAL_WAIT_LIMIT;
    loop {
        match get_xattr(path, "user.wormvault.sealed_at") {
            Ok(_) => return,
            Err(error) if errno(&error) == libc::ENODATA => {}
            Err(error) => panic!(
                "getxattr user.wormvault.sealed_at on {}: {error}",
                path.display()
            ),
        }
        assert!(
            Instant::now() < deadline,
            "{} not sealed {SEAL_WAIT_LIMIT:?} after its last close",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes `bytes` to a new file, closes it and waits until it is sealed.
fn write_sealed(path: &Path, bytes: &[u8]) {
    write_file(path, bytes);
    wait_until_sealed(path);
}

/// Polls `unlink(control)` until the store clock passes the retain-until time of the
/// sealed file `control`, in a store with a 2 s retention. The first attempt must fail
/// with EPERM, which proves the file was inside retention when the wait began. Every
/// file sealed before `control` is past retention too when this returns.
#[track_caller]
fn wait_until_retention_passed(control: &Path) {
    wait_until_sealed(control);
    assert_errno(
        fs::remove_file(control),
        libc::EPERM,
        "unlink of a file just sealed, inside retention",
    );
    let deadline = Instant::now() + RETENTION_WAIT_LIMIT;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        match fs::remove_file(control) {
            Ok(()) => return,
            Err(error) if errno(&error) == libc::EPERM => {}
            Err(error) => panic!(
                "unlink of {} while waiting for retention to pass: {error}",
                control.display()
            ),
        }
        assert!(
            Instant::now() < deadline,
            "unlink of {} still EPERM {RETENTION_WAIT_LIMIT:?} after sealing with a 2 s retention",
            control.display()
        );
    }
}

fn wall_clock_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

// ---------------------------------------------------------------------------
// RFC 3339 UTC timestamps of the form 2027-01-15T08:00:00Z.
// ---------------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date (years counted from March).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let march_year = if month <= 2 { year - 1 } else { year };
    let era = march_year.div_euclid(400);
    let year_of_era = march_year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SSZ` into seconds since the epoch, panicking otherwise.
#[track_caller]
fn parse_utc(text: &str) -> i64 {
    let bytes = text.as_bytes();
    let layout_ok = bytes.len() == 20
        && bytes.iter().enumerate().all(|(i, byte)| match i {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            13 | 16 => *byte == b':',
            19 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        });
    assert!(
        layout_ok,
        "{text:?} is not an RFC 3339 UTC time of the form 2027-01-15T08:00:00Z"
    );
    let field =
        |range: std::ops::Range<usize>| text[range].parse::<i64>().expect("digits checked above");
    let (month, day, hour, minute, second) = (
        field(5..7),
        field(8..10),
        field(11..13),
        field(14..16),
        field(17..19),
    );
    assert!((1..=12).contains(&month), "{text:?} has an invalid month");
    assert!((1..=31).contains(&day), "{text:?} has an invalid day");
    assert!(hour < 24, "{text:?} has an invalid hour");
    assert!(minute < 60, "{text:?} has an invalid minute");
    assert!(second < 60, "{text:?} has an invalid second");
    days_from_civil(field(0..4), month, day) * 86_400 + hour * 3600 + minute * 60 + second
}

fn format_utc(seconds: i64) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

// ---------------------------------------------------------------------------
// Checks used by several tests.
// ---------------------------------------------------------------------------

/// Open flags that request writing or truncation. Each must fail with EPERM on a sealed
/// or closing file.
const WRITING_OPENS: &[(i32, &str)] = &[
    (libc::O_WRONLY, "O_WRONLY"),
    (libc::O_RDWR, "O_RDWR"),
    (libc::O_WRONLY | libc::O_APPEND, "O_WRONLY|O_APPEND"),
    (libc::O_WRONLY | libc::O_TRUNC, "O_WRONLY|O_TRUNC"),
    (libc::O_RDONLY | libc::O_TRUNC, "O_RDONLY|O_TRUNC"),
    (libc::O_CREAT | libc::O_WRONLY, "O_CREAT|O_WRONLY"),
    (libc::O_CREAT | libc::O_RDWR, "O_CREAT|O_RDWR"),
    (
        libc::O_CREAT | libc::O_RDONLY | libc::O_TRUNC,
        "O_CREAT|O_RDONLY|O_TRUNC",
    ),
];

/// Asserts that every writable or truncating open and every `truncate(2)` that changes
/// the size of `path` (currently `len` bytes) fails with EPERM. Together these cover
/// writes, appends and `ftruncate`, which all need a writable descriptor.
#[track_caller]
fn assert_rejects_content_changes(path: &Path, len: u64, state: &str) {
    for (flags, name) in WRITING_OPENS {
        assert_errno(
            open_flags(path, *flags),
            libc::EPERM,
            &format!("{state}: open with {name}"),
        );
    }
    let mut sizes = vec![len + 1, len + (1 << 20)];
    if len > 0 {
        sizes.extend([0, len - 1]);
    }
    for size in sizes {
        assert_errno(
            truncate_path(path, size),
            libc::EPERM,
            &format!("{state}: truncate from {len} to {size} bytes"),
        );
    }
}

/// Asserts that `O_CREAT` without a write or truncate opens the existing file for
/// reading, and that `O_CREAT|O_EXCL` fails with EEXIST.
#[track_caller]
fn assert_create_opens_existing(path: &Path, expected: &[u8], state: &str) {
    let mut file = open_flags(path, libc::O_CREAT | libc::O_RDONLY)
        .unwrap_or_else(|error| panic!("{state}: open with O_CREAT|O_RDONLY: {error}"));
    let mut read = Vec::new();
    file.read_to_end(&mut read)
        .unwrap_or_else(|error| panic!("{state}: read after O_CREAT|O_RDONLY: {error}"));
    assert_same_bytes(
        &read,
        expected,
        &format!("{state}: bytes read after O_CREAT|O_RDONLY"),
    );
    drop(file);
    assert_errno(
        open_flags(path, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY),
        libc::EEXIST,
        &format!("{state}: O_CREAT|O_EXCL"),
    );
    assert_errno(
        open_flags(path, libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY),
        libc::EEXIST,
        &format!("{state}: O_CREAT|O_EXCL|O_RDONLY"),
    );
}

/// Asserts that renames onto the existing name `target`, exchanges and whiteouts fail
/// with EPERM, and RENAME_NOREPLACE with EEXIST, leaving both names in place.
#[track_caller]
fn assert_rejects_replacing_rename(source: &Path, target: &Path, state: &str) {
    assert_errno(
        fs::rename(source, target),
        libc::EPERM,
        &format!("{state}: rename onto an existing name"),
    );
    assert_errno(
        rename_with_flags(source, target, libc::RENAME_EXCHANGE),
        libc::EPERM,
        &format!("{state}: RENAME_EXCHANGE"),
    );
    assert_errno(
        rename_with_flags(source, target, libc::RENAME_WHITEOUT),
        libc::EPERM,
        &format!("{state}: RENAME_WHITEOUT onto an existing name"),
    );
    assert_errno(
        rename_with_flags(source, target, libc::RENAME_NOREPLACE),
        libc::EEXIST,
        &format!("{state}: RENAME_NOREPLACE onto an existing name"),
    );
    assert!(
        fs::symlink_metadata(source).is_ok(),
        "{state}: {} is gone after refused renames",
        source.display()
    );
    assert!(
        fs::symlink_metadata(target).is_ok(),
        "{state}: {} is gone after refused renames",
        target.display()
    );
}

// ---------------------------------------------------------------------------
// Creating names and writing files.
// ---------------------------------------------------------------------------

#[test]
fn new_names_open_for_writing() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let cases: &[(i32, &str)] = &[
        (libc::O_CREAT | libc::O_WRONLY, "O_CREAT|O_WRONLY"),
        (libc::O_CREAT | libc::O_RDWR, "O_CREAT|O_RDWR"),
        (
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
            "O_CREAT|O_EXCL|O_WRONLY",
        ),
        (
            libc::O_CREAT | libc::O_TRUNC | libc::O_WRONLY,
            "O_CREAT|O_TRUNC|O_WRONLY",
        ),
        (
            libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_RDWR,
            "O_CREAT|O_EXCL|O_TRUNC|O_RDWR",
        ),
    ];
    let mut expected = Vec::new();
    for (index, (flags, name)) in cases.iter().enumerate() {
        let path = mount.join(&format!("new-{index}"));
        let mut data = random_bytes(70_000 + index, index as u64 + 10);
        let mut file = open_flags(&path, *flags)
            .unwrap_or_else(|error| panic!("open new name with {name}: {error}"));
        file.write_all(&data)
            .unwrap_or_else(|error| panic!("write after {name}: {error}"));
        // A write at an earlier offset shows the file is still being written.
        file.write_all_at(b"rewritten", 100)
            .unwrap_or_else(|error| panic!("pwrite after {name}: {error}"));
        data[100..109].copy_from_slice(b"rewritten");
        drop(file);
        assert_file_bytes(&path, &data, &format!("file created with {name}"));
        expected.push((path, data));
    }
    unmount(mount);

    let mount = mount_store(&store);
    for (path, data) in &expected {
        assert_file_bytes(
            &mount.join(path.file_name().unwrap().to_str().unwrap()),
            data,
            "created file after remount",
        );
    }
    unmount(mount);
}

#[test]
fn create_on_written_name_opens_it() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("shared-name");
    let writing_state = hold_off_spawns();
    let mut first = open_flags(&path, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    first
        .write_all(b"first-")
        .expect("write through the first descriptor");
    let first_ino = first.metadata().unwrap().ino();

    let mut second =
        open_flags(&path, libc::O_CREAT | libc::O_WRONLY).expect("O_CREAT on a name being written");
    assert_eq!(
        second.metadata().unwrap().ino(),
        first_ino,
        "O_CREAT on a name being written returns the same inode"
    );
    second.seek(SeekFrom::End(0)).unwrap();
    second
        .write_all(b"second")
        .expect("write through the second descriptor");
    assert_errno(
        open_flags(&path, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY),
        libc::EEXIST,
        "O_CREAT|O_EXCL on a name being written",
    );
    drop(second);
    drop(first);
    drop(writing_state);
    wait_until_sealed(&path);
    assert_file_bytes(&path, b"first-second", "bytes of both descriptors");
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("shared-name"),
        b"first-second",
        "bytes of both descriptors after remount",
    );
    unmount(mount);
}

#[test]
fn create_on_sealed_name_rejects_writing() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("sealed");
    let data = random_bytes(100_000, 3);
    write_sealed(&path, &data);
    let ino = fs::metadata(&path).unwrap().ino();

    for (flags, name) in [
        (libc::O_CREAT | libc::O_WRONLY, "O_CREAT|O_WRONLY"),
        (libc::O_CREAT | libc::O_RDWR, "O_CREAT|O_RDWR"),
        (
            libc::O_CREAT | libc::O_WRONLY | libc::O_APPEND,
            "O_CREAT|O_WRONLY|O_APPEND",
        ),
        (
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
            "O_CREAT|O_WRONLY|O_TRUNC",
        ),
        (
            libc::O_CREAT | libc::O_RDONLY | libc::O_TRUNC,
            "O_CREAT|O_RDONLY|O_TRUNC",
        ),
    ] {
        assert_errno(
            open_flags(&path, flags),
            libc::EPERM,
            &format!("sealed file: open with {name}"),
        );
    }
    assert_create_opens_existing(&path, &data, "sealed file");
    assert_eq!(
        fs::metadata(&path).unwrap().ino(),
        ino,
        "O_CREAT on a sealed name keeps its inode"
    );
    assert_file_bytes(&path, &data, "sealed file after refused creates");
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("sealed"),
        &data,
        "sealed file after refused creates and a remount",
    );
    unmount(mount);
}

#[test]
fn writing_file_accepts_writes_anywhere() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("scattered");
    let mut expected = random_bytes(300_000, 4);
    let writing_state = hold_off_spawns();
    let mut file =
        open_flags(&path, libc::O_CREAT | libc::O_RDWR | libc::O_EXCL).expect("create file");
    let mut written = 0;
    for size in [1usize, 7, 4096, 65_537, 1000].iter().cycle() {
        let end = (written + size).min(expected.len());
        file.write_all(&expected[written..end])
            .expect("sequential write");
        written = end;
        if written == expected.len() {
            break;
        }
    }

    // Rewrites before the end, inside one page and across a page boundary.
    let patch = random_bytes(5000, 5);
    file.write_all_at(&patch, 1000)
        .expect("pwrite at an earlier offset");
    expected[1000..6000].copy_from_slice(&patch);
    file.write_all_at(b"ZZ", 4095)
        .expect("pwrite across a page boundary");
    expected[4095..4097].copy_from_slice(b"ZZ");

    // A write far beyond the end leaves a zero-filled gap.
    let gap_end = 8 << 20;
    file.write_all_at(b"far tail", gap_end as u64)
        .expect("pwrite beyond the end");
    expected.resize(gap_end, 0);
    expected.extend_from_slice(b"far tail");
    assert_eq!(
        file.metadata().unwrap().len(),
        expected.len() as u64,
        "size after a write beyond the end"
    );

    // ftruncate down, then up. The regrown range must read as zeros.
    file.set_len(200_000)
        .expect("ftruncate down while being written");
    expected.truncate(200_000);
    file.set_len(250_000)
        .expect("ftruncate up while being written");
    expected.resize(250_000, 0);
    file.write_all_at(b"after regrow", 250_000)
        .expect("write at the end after ftruncate");
    expected.extend_from_slice(b"after regrow");

    let mut read_back = Vec::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut read_back)
        .expect("read through the writing descriptor");
    assert_same_bytes(&read_back, &expected, "bytes while being written");
    drop(file);
    drop(writing_state);
    wait_until_sealed(&path);
    assert_file_bytes(&path, &expected, "bytes after sealing");
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(&mount.join("scattered"), &expected, "bytes after remount");
    unmount(mount);
}

#[test]
fn writing_file_allows_reopen_and_truncate() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("reopened");
    let writing_state = hold_off_spawns();
    let first = open_flags(&path, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    first
        .write_all_at(&random_bytes(4096, 6), 0)
        .expect("first write");

    let second =
        open_flags(&path, libc::O_WRONLY).expect("second writable open while being written");
    truncate_path(&path, 1000).expect("truncate(2) while being written");
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        1000,
        "size after truncate(2)"
    );
    drop(
        open_flags(&path, libc::O_RDONLY | libc::O_TRUNC)
            .expect("O_RDONLY|O_TRUNC while being written"),
    );
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        0,
        "size after O_RDONLY|O_TRUNC"
    );
    second
        .write_all_at(b"from the second descriptor", 0)
        .expect("write through the second descriptor");
    // Closing a writable handle that is not the last one must not start closing.
    drop(second);

    let third = open_flags(&path, libc::O_WRONLY | libc::O_TRUNC)
        .expect("O_WRONLY|O_TRUNC after another handle closed");
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        0,
        "size after O_WRONLY|O_TRUNC"
    );
    third
        .write_all_at(b"final bytes", 0)
        .expect("write through the third descriptor");
    drop(third);
    drop(first);
    drop(writing_state);
    wait_until_sealed(&path);
    assert_file_bytes(&path, b"final bytes", "bytes after reopen and truncations");
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("reopened"),
        b"final bytes",
        "bytes after reopen and truncations, remounted",
    );
    unmount(mount);
}

#[test]
fn writing_file_readable_while_open() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("growing");
    let part_one = random_bytes(100_000, 7);
    let part_two = random_bytes(150_000, 8);
    let mut writer = open_flags(&path, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    writer.write_all(&part_one).expect("first write");

    assert!(
        list_contains(&mount.path, b"growing"),
        "readdir lists a file being written"
    );
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        part_one.len() as u64,
        "stat size after the first write"
    );
    assert_file_bytes(&path, &part_one, "read after the first write");

    writer.write_all(&part_two).expect("second write");
    let mut expected = part_one.clone();
    expected.extend_from_slice(&part_two);
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        expected.len() as u64,
        "stat size after the second write"
    );
    assert_file_bytes(&path, &expected, "read after the second write");

    // After fsync the pages are clean and can be dropped, so the read below is served
    // by the daemon rather than by the kernel's page cache.
    writer.sync_all().expect("fsync while being written");
    let mut reader = File::open(&path).expect("open for reading while being written");
    drop_page_cache(&reader);
    let mut read = Vec::new();
    reader
        .read_to_end(&mut read)
        .expect("read after dropping cached pages");
    assert_same_bytes(&read, &expected, "read from the daemon while being written");
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        expected.len() as u64,
        "stat size after fsync"
    );

    // A write into the middle of a page that is no longer cached makes the kernel read
    // the page from the daemon first and send it back whole.
    drop_page_cache(&reader);
    writer
        .write_all_at(b"mid", 5000)
        .expect("partial-page write into an uncached page");
    expected[5000..5003].copy_from_slice(b"mid");
    drop(reader);
    drop(writer);
    wait_until_sealed(&path);
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(&mount.join("growing"), &expected, "bytes after remount");
    unmount(mount);
}

#[test]
fn writing_file_can_be_unlinked() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("partial");
    let writing_state = hold_off_spawns();
    let mut writer = open_flags(&path, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    writer
        .write_all(&random_bytes(50_000, 9))
        .expect("write before unlink");
    fs::remove_file(&path).expect("unlink of a file being written");
    assert_missing(&path, "stat after unlinking a file being written");
    assert!(
        !list_contains(&mount.path, b"partial"),
        "readdir after unlinking a file being written"
    );
    writer
        .write_all(b"more")
        .expect("write through the descriptor after unlink");
    drop(writer);
    drop(writing_state);
    std::thread::sleep(Duration::from_millis(200));
    assert_missing(&path, "stat after closing an unlinked file");

    // The name is free again for a new file.
    write_sealed(&path, b"replacement");
    assert_file_bytes(&path, b"replacement", "new file under the unlinked name");
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("partial"),
        b"replacement",
        "new file under the unlinked name, remounted",
    );
    unmount(mount);
}

#[test]
fn closing_file_rejects_reopen_and_truncate() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("closing");
    let head = random_bytes(40_000, 11);
    let tail = random_bytes(30_000, 12);
    let mut writer = open_flags(&path, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    writer
        .write_all(&head)
        .expect("write before the first FLUSH");
    // Closing a duplicate sends FLUSH on the last writable handle, so the file is closing.
    drop(writer.try_clone().expect("dup"));

    assert_rejects_content_changes(&path, head.len() as u64, "closing file");
    assert_errno(
        writer.set_len(1),
        libc::EPERM,
        "closing file: ftruncate through the flushed descriptor",
    );
    assert_errno(fs::remove_file(&path), libc::EPERM, "closing file: unlink");
    assert_file_bytes(
        &path,
        &head,
        "closing file: read through a new read-only open",
    );

    writer
        .write_all(&tail)
        .expect("closing file: write through the flushed descriptor");
    drop(writer);
    wait_until_sealed(&path);
    let mut expected = head.clone();
    expected.extend_from_slice(&tail);
    assert_file_bytes(
        &path,
        &expected,
        "bytes written before and after the first FLUSH",
    );
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("closing"),
        &expected,
        "bytes written before and after the first FLUSH, remounted",
    );
    unmount(mount);
}

// ---------------------------------------------------------------------------
// Sealed files inside retention.
// ---------------------------------------------------------------------------

#[test]
fn sealed_file_rejects_content_changes() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("sealed.bson");
    let data = random_bytes(200_000, 13);
    write_sealed(&path, &data);

    assert_rejects_content_changes(&path, data.len() as u64, "sealed file");
    assert_errno(
        fs::remove_file(&path),
        libc::EPERM,
        "sealed file: unlink inside retention",
    );
    assert_errno(
        fs::hard_link(&path, mount.join("second-name")),
        libc::EPERM,
        "sealed file: link",
    );
    assert_missing(&mount.join("second-name"), "name of a refused link");
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        data.len() as u64,
        "sealed file: size after refusals"
    );
    assert_file_bytes(&path, &data, "sealed file after refusals");
    unmount(mount);

    let mount = mount_store(&store);
    let path = mount.join("sealed.bson");
    assert_file_bytes(&path, &data, "sealed file after refusals and a remount");
    assert_rejects_content_changes(&path, data.len() as u64, "sealed file after remount");
    assert_errno(
        fs::remove_file(&path),
        libc::EPERM,
        "sealed file after remount: unlink inside retention",
    );
    assert_file_bytes(
        &path,
        &data,
        "sealed file after refusals in the second mount",
    );
    unmount(mount);
}

#[test]
fn sealed_file_allows_metadata_changes() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("meta");
    let data = random_bytes(64_000, 14);
    write_sealed(&path, &data);

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod of a sealed file");
    std::os::unix::fs::chown(&path, Some(1234), Some(5678)).expect("chown of a sealed file");
    set_times(&path, 1_500_000_000, 1_600_000_000).expect("utimes of a sealed file");
    let metadata = fs::metadata(&path).unwrap();
    assert_eq!(metadata.mode() & 0o7777, 0o600, "mode after chmod");
    assert_eq!(
        (metadata.uid(), metadata.gid()),
        (1234, 5678),
        "owner after chown"
    );
    assert_eq!(metadata.mtime(), 1_600_000_000, "mtime after utimes");
    assert_eq!(metadata.atime(), 1_500_000_000, "atime after utimes");
    assert_eq!(
        metadata.len(),
        data.len() as u64,
        "size after metadata changes"
    );
    assert_file_bytes(&path, &data, "sealed file after metadata changes");

    // The same operations on a file being written.
    let writing = mount.join("writing-meta");
    let mut writer = open_flags(&writing, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    writer.write_all(b"some bytes").unwrap();
    fs::set_permissions(&writing, fs::Permissions::from_mode(0o640))
        .expect("chmod of a file being written");
    std::os::unix::fs::chown(&writing, Some(4321), Some(8765))
        .expect("chown of a file being written");
    set_times(&writing, 1_500_000_000, 1_600_000_000).expect("utimes of a file being written");
    writer
        .write_all(b" and more")
        .expect("write after metadata changes");
    drop(writer);
    wait_until_sealed(&writing);
    let metadata = fs::metadata(&writing).unwrap();
    assert_eq!(
        metadata.mode() & 0o7777,
        0o640,
        "mode after chmod while being written"
    );
    assert_eq!(
        (metadata.uid(), metadata.gid()),
        (4321, 8765),
        "owner after chown while being written"
    );
    assert_file_bytes(
        &writing,
        b"some bytes and more",
        "file given metadata changes while being written",
    );
    unmount(mount);

    let mount = mount_store(&store);
    let path = mount.join("meta");
    let metadata = fs::metadata(&path).unwrap();
    assert_eq!(metadata.mode() & 0o7777, 0o600, "mode after remount");
    assert_eq!(
        (metadata.uid(), metadata.gid()),
        (1234, 5678),
        "owner after remount"
    );
    assert_eq!(metadata.mtime(), 1_600_000_000, "mtime after remount");
    assert_file_bytes(
        &path,
        &data,
        "sealed file after metadata changes and a remount",
    );
    assert_file_bytes(
        &mount.join("writing-meta"),
        b"some bytes and more",
        "file given metadata changes, remounted",
    );
    unmount(mount);
}

// ---------------------------------------------------------------------------
// Renames, directories, links and special files.
// ---------------------------------------------------------------------------

#[test]
fn rename_onto_existing_name_rejected() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let sealed_a = mount.join("a.bson");
    let sealed_b = mount.join("b.bson");
    let data_a = random_bytes(30_000, 15);
    let data_b = random_bytes(40_000, 16);
    write_sealed(&sealed_a, &data_a);
    write_sealed(&sealed_b, &data_b);
    fs::create_dir(mount.join("dir-a")).unwrap();
    fs::create_dir(mount.join("dir-b")).unwrap();
    let writing = mount.join("writing.bson");
    let mut writer = open_flags(&writing, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    writer.write_all(b"being written").unwrap();

    assert_rejects_replacing_rename(&sealed_a, &sealed_b, "sealed onto sealed");
    assert_rejects_replacing_rename(&sealed_a, &writing, "sealed onto a file being written");
    assert_rejects_replacing_rename(&writing, &sealed_a, "file being written onto sealed");
    assert_rejects_replacing_rename(
        &mount.join("dir-a"),
        &mount.join("dir-b"),
        "directory onto an empty directory",
    );
    assert_errno(
        rename_with_flags(&sealed_a, &mount.join("fresh-name"), libc::RENAME_WHITEOUT),
        libc::EPERM,
        "RENAME_WHITEOUT to a new name",
    );
    assert_missing(
        &mount.join("fresh-name"),
        "target of a refused RENAME_WHITEOUT",
    );
    assert!(
        sealed_a.exists(),
        "source of a refused RENAME_WHITEOUT is still there"
    );

    writer
        .write_all(b", still")
        .expect("write after refused renames");
    drop(writer);
    wait_until_sealed(&writing);
    assert_file_bytes(&sealed_a, &data_a, "a.bson after refused renames");
    assert_file_bytes(&sealed_b, &data_b, "b.bson after refused renames");
    assert_file_bytes(
        &writing,
        b"being written, still",
        "file being written after refused renames",
    );
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("a.bson"),
        &data_a,
        "a.bson after refused renames and a remount",
    );
    assert_file_bytes(
        &mount.join("b.bson"),
        &data_b,
        "b.bson after refused renames and a remount",
    );
    assert_file_bytes(
        &mount.join("writing.bson"),
        b"being written, still",
        "writing.bson after remount",
    );
    assert!(
        mount.join("dir-a").is_dir(),
        "dir-a after refused renames and a remount"
    );
    assert!(
        mount.join("dir-b").is_dir(),
        "dir-b after refused renames and a remount"
    );
    unmount(mount);
}

#[test]
fn rename_to_new_name_across_directories() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    fs::create_dir_all(mount.join("src/sub")).unwrap();
    fs::create_dir(mount.join("dst")).unwrap();
    let sealed_data = random_bytes(80_000, 17);
    let inner_data = random_bytes(20_000, 18);
    write_sealed(&mount.join("src/sealed.bson"), &sealed_data);
    write_sealed(&mount.join("src/sub/inner.bson"), &inner_data);

    fs::rename(mount.join("src/sealed.bson"), mount.join("dst/moved.bson"))
        .expect("rename of a sealed file across directories");
    assert_missing(
        &mount.join("src/sealed.bson"),
        "old name of a renamed sealed file",
    );
    assert_file_bytes(
        &mount.join("dst/moved.bson"),
        &sealed_data,
        "sealed file under its new name",
    );
    rename_with_flags(
        &mount.join("dst/moved.bson"),
        &mount.join("dst/moved-again.bson"),
        libc::RENAME_NOREPLACE,
    )
    .expect("RENAME_NOREPLACE to a new name");
    fs::rename(mount.join("src/sub"), mount.join("dst/sub-moved"))
        .expect("rename of a directory across directories");
    assert_missing(&mount.join("src/sub"), "old name of a renamed directory");
    assert_file_bytes(
        &mount.join("dst/sub-moved/inner.bson"),
        &inner_data,
        "file inside a renamed directory",
    );
    assert_eq!(
        list_names(&mount.join("src")),
        Vec::<Vec<u8>>::new(),
        "source directory after renames"
    );
    let listed: BTreeSet<Vec<u8>> = list_names(&mount.join("dst")).into_iter().collect();
    let expected: BTreeSet<Vec<u8>> = [b"moved-again.bson".to_vec(), b"sub-moved".to_vec()].into();
    assert_eq!(listed, expected, "target directory after renames");
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("dst/moved-again.bson"),
        &sealed_data,
        "renamed sealed file after remount",
    );
    assert_file_bytes(
        &mount.join("dst/sub-moved/inner.bson"),
        &inner_data,
        "file in a renamed directory after remount",
    );
    assert_missing(&mount.join("src/sub"), "old directory name after remount");
    unmount(mount);
}

#[test]
fn writing_file_renamed_then_sealed() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    fs::create_dir(mount.join("tmp")).unwrap();
    fs::create_dir(mount.join("final")).unwrap();
    let temporary = mount.join("tmp/.data.XXXXXX");
    let target = mount.join("final/data.bson");
    let head = random_bytes(120_000, 19);
    let tail = random_bytes(90_000, 20);
    let writing_state = hold_off_spawns();
    let mut writer =
        open_flags(&temporary, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY).expect("create file");
    writer.write_all(&head).unwrap();
    fs::rename(&temporary, &target).expect("rename of a file being written across directories");
    assert_missing(&temporary, "old name of a renamed file being written");
    writer.write_all(&tail).expect("write after rename");
    drop(writer);
    drop(writing_state);
    wait_until_sealed(&target);
    let mut expected = head.clone();
    expected.extend_from_slice(&tail);
    assert_file_bytes(&target, &expected, "file sealed under its new name");
    assert_rejects_content_changes(&target, expected.len() as u64, "file sealed after a rename");
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("final/data.bson"),
        &expected,
        "file sealed under its new name, remounted",
    );
    assert_missing(&mount.join("tmp/.data.XXXXXX"), "old name after remount");
    unmount(mount);
}

#[test]
fn rmdir_rejects_non_empty_directories() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    for dir in ["with-writing", "with-sealed", "with-subdir", "empty"] {
        fs::create_dir(mount.join(dir)).unwrap();
    }
    let writing = mount.join("with-writing/part");
    let writing_state = hold_off_spawns();
    let writer = open_flags(&writing, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    write_sealed(&mount.join("with-sealed/file"), b"sealed bytes");
    fs::create_dir(mount.join("with-subdir/child")).unwrap();

    assert_errno(
        fs::remove_dir(mount.join("with-writing")),
        libc::ENOTEMPTY,
        "rmdir of a directory with a file being written",
    );
    assert_errno(
        fs::remove_dir(mount.join("with-sealed")),
        libc::ENOTEMPTY,
        "rmdir of a directory with a sealed file",
    );
    assert_errno(
        fs::remove_dir(mount.join("with-subdir")),
        libc::ENOTEMPTY,
        "rmdir of a directory with a subdirectory",
    );
    fs::remove_dir(mount.join("empty")).expect("rmdir of an empty directory");
    assert_missing(&mount.join("empty"), "removed empty directory");

    // Deleting the file being written empties its directory.
    fs::remove_file(&writing).expect("unlink of a file being written");
    drop(writer);
    drop(writing_state);
    fs::remove_dir(mount.join("with-writing"))
        .expect("rmdir after unlinking the file being written");
    fs::remove_dir(mount.join("with-subdir/child")).expect("rmdir of an empty subdirectory");
    fs::remove_dir(mount.join("with-subdir")).expect("rmdir after removing its subdirectory");
    assert_file_bytes(
        &mount.join("with-sealed/file"),
        b"sealed bytes",
        "sealed file after a refused rmdir",
    );
    unmount(mount);

    let mount = mount_store(&store);
    let listed: BTreeSet<Vec<u8>> = list_names(&mount.path).into_iter().collect();
    assert_eq!(
        listed,
        [b"with-sealed".to_vec()].into(),
        "root listing after rmdirs and a remount"
    );
    assert_errno(
        fs::remove_dir(mount.join("with-sealed")),
        libc::ENOTEMPTY,
        "rmdir with a sealed file after remount",
    );
    unmount(mount);
}

#[test]
fn link_rejected_in_every_state() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let sealed = mount.join("sealed");
    write_sealed(&sealed, b"sealed bytes");
    fs::create_dir(mount.join("dir")).unwrap();
    let writing = mount.join("writing");
    let writing_state = hold_off_spawns();
    let mut writer = open_flags(&writing, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    writer.write_all(b"partial").unwrap();
    assert_errno(
        fs::hard_link(&writing, mount.join("writing-link")),
        libc::EPERM,
        "link of a file being written",
    );
    drop(writing_state);

    assert_errno(
        fs::hard_link(&sealed, mount.join("sealed-link")),
        libc::EPERM,
        "link of a sealed file",
    );
    assert_errno(
        fs::hard_link(&sealed, mount.join("dir/sealed-link")),
        libc::EPERM,
        "link of a sealed file into a subdirectory",
    );
    for name in ["writing-link", "sealed-link", "dir/sealed-link"] {
        assert_missing(&mount.join(name), &format!("{name} after a refused link"));
    }
    drop(writer.try_clone().unwrap());
    assert_errno(
        fs::hard_link(&writing, mount.join("closing-link")),
        libc::EPERM,
        "link of a closing file",
    );
    drop(writer);
    wait_until_sealed(&writing);
    assert_file_bytes(&sealed, b"sealed bytes", "sealed file after a refused link");
    assert_file_bytes(&writing, b"partial", "written file after a refused link");
    unmount(mount);
}

#[test]
fn special_files_rejected() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    assert_errno(make_fifo(&mount.join("fifo")), libc::EPERM, "mkfifo");
    assert_errno(
        make_node(&mount.join("fifo-node"), libc::S_IFIFO | 0o644, 0),
        libc::EPERM,
        "mknod S_IFIFO",
    );
    assert_errno(
        make_node(
            &mount.join("char"),
            libc::S_IFCHR | 0o644,
            libc::makedev(1, 3),
        ),
        libc::EPERM,
        "mknod S_IFCHR",
    );
    assert_errno(
        make_node(
            &mount.join("block"),
            libc::S_IFBLK | 0o644,
            libc::makedev(7, 0),
        ),
        libc::EPERM,
        "mknod S_IFBLK",
    );
    for name in ["fifo", "fifo-node", "char", "block"] {
        assert_missing(&mount.join(name), &format!("{name} after a refused mknod"));
    }
    assert_eq!(
        list_names(&mount.path),
        Vec::<Vec<u8>>::new(),
        "root listing after refused mknods"
    );
    unmount(mount);
}

#[test]
fn symlinks_created_and_read() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    fs::create_dir(mount.join("dir")).unwrap();
    write_sealed(&mount.join("dir/target.bson"), b"target bytes");
    let links: [(&str, &str); 3] = [
        ("relative", "dir/target.bson"),
        ("dangling", "../nowhere/at/all"),
        ("dir/absolute", "/etc/hostname-not-needed"),
    ];
    for (name, target) in links {
        std::os::unix::fs::symlink(target, mount.join(name))
            .unwrap_or_else(|error| panic!("symlink {name}: {error}"));
    }
    let check_links = |mount: &Mount, when: &str| {
        for (name, target) in links {
            let path = mount.join(name);
            assert!(
                fs::symlink_metadata(&path)
                    .unwrap()
                    .file_type()
                    .is_symlink(),
                "{when}: lstat of {name} is a symlink"
            );
            assert_eq!(
                fs::read_link(&path).unwrap(),
                Path::new(target),
                "{when}: readlink of {name}"
            );
        }
        assert_file_bytes(
            &mount.join("relative"),
            b"target bytes",
            &format!("{when}: read through a symlink"),
        );
        let listed: BTreeSet<Vec<u8>> = list_names(&mount.path).into_iter().collect();
        let expected: BTreeSet<Vec<u8>> =
            [b"dir".to_vec(), b"relative".to_vec(), b"dangling".to_vec()].into();
        assert_eq!(listed, expected, "{when}: root listing with symlinks");
        assert!(
            list_contains(&mount.join("dir"), b"absolute"),
            "{when}: subdirectory listing contains its symlink"
        );
    };
    check_links(&mount, "same mount");
    unmount(mount);

    let mount = mount_store(&store);
    check_links(&mount, "after remount");
    unmount(mount);
}

// ---------------------------------------------------------------------------
// After retention.
// ---------------------------------------------------------------------------

#[test]
fn after_retention_only_deletion_unlocks() {
    let store = init_store(SHORT_RETENTION);
    let mount = mount_store(&store);
    fs::create_dir(mount.join("dir")).unwrap();
    let data = random_bytes(90_000, 21);
    let other_data = random_bytes(10_000, 22);
    write_sealed(&mount.join("old.bson"), &data);
    write_sealed(&mount.join("other.bson"), &other_data);
    write_sealed(&mount.join("dir/inner.bson"), b"inner");
    write_sealed(&mount.join("control"), b"control");
    wait_until_retention_passed(&mount.join("control"));

    let old = mount.join("old.bson");
    let other = mount.join("other.bson");
    assert_rejects_content_changes(&old, data.len() as u64, "after retention");
    assert_create_opens_existing(&old, &data, "after retention");
    assert_rejects_replacing_rename(&old, &other, "after retention");
    assert_errno(
        rename_with_flags(&old, &mount.join("fresh"), libc::RENAME_WHITEOUT),
        libc::EPERM,
        "after retention: RENAME_WHITEOUT",
    );
    assert_errno(
        fs::hard_link(&old, mount.join("old-link")),
        libc::EPERM,
        "after retention: link",
    );
    assert_errno(
        fs::remove_dir(mount.join("dir")),
        libc::ENOTEMPTY,
        "after retention: rmdir of a non-empty directory",
    );
    fs::set_permissions(&old, fs::Permissions::from_mode(0o400)).expect("after retention: chmod");
    std::os::unix::fs::chown(&old, Some(2000), Some(2000)).expect("after retention: chown");
    set_times(&old, 1_400_000_000, 1_400_000_000).expect("after retention: utimes");
    assert_eq!(
        fs::metadata(&old).unwrap().mode() & 0o7777,
        0o400,
        "after retention: mode after chmod"
    );
    assert_file_bytes(&old, &data, "after retention: bytes after refusals");
    fs::rename(&other, mount.join("dir/other-moved.bson"))
        .expect("after retention: rename to a new name across directories");
    assert_file_bytes(
        &mount.join("dir/other-moved.bson"),
        &other_data,
        "after retention: renamed file",
    );
    unmount(mount);

    let mount = mount_store(&store);
    let old = mount.join("old.bson");
    assert_file_bytes(
        &old,
        &data,
        "after retention: bytes after refusals and a remount",
    );
    assert_rejects_content_changes(&old, data.len() as u64, "after retention, remounted");
    fs::remove_file(&old).expect("after retention: unlink");
    assert_missing(&old, "unlinked file after retention");
    fs::remove_file(mount.join("dir/inner.bson"))
        .expect("after retention: unlink in a subdirectory");
    fs::remove_file(mount.join("dir/other-moved.bson"))
        .expect("after retention: unlink of a renamed file");
    fs::remove_dir(mount.join("dir")).expect("after retention: rmdir once empty");
    assert_eq!(
        list_names(&mount.path),
        Vec::<Vec<u8>>::new(),
        "root listing after deleting everything"
    );
    unmount(mount);

    let mount = mount_store(&store);
    assert_eq!(
        list_names(&mount.path),
        Vec::<Vec<u8>>::new(),
        "root listing after deletions and a remount"
    );
    unmount(mount);
}

#[test]
fn legal_hold_blocks_deletion_until_lifted() {
    let store = init_store(SHORT_RETENTION);
    let mount = mount_store(&store);
    let held_file = mount.join("held.bson");
    let data = random_bytes(20_000, 23);
    write_sealed(&held_file, &data);
    assert_eq!(
        xattr_text(&held_file, "user.wormvault.hold"),
        "0",
        "hold before it is set"
    );
    set_xattr(&held_file, "trusted.wormvault.hold", b"1")
        .expect("setxattr trusted.wormvault.hold=1");
    assert_eq!(
        xattr_text(&held_file, "user.wormvault.hold"),
        "1",
        "hold after setting it"
    );

    write_sealed(&mount.join("control"), b"control");
    wait_until_retention_passed(&mount.join("control"));
    assert_errno(
        fs::remove_file(&held_file),
        libc::EPERM,
        "unlink under a legal hold after retention passed",
    );
    unmount(mount);

    let mount = mount_store(&store);
    let held_file = mount.join("held.bson");
    assert_eq!(
        xattr_text(&held_file, "user.wormvault.hold"),
        "1",
        "hold after remount"
    );
    assert_errno(
        fs::remove_file(&held_file),
        libc::EPERM,
        "unlink under a legal hold after remount",
    );
    assert_file_bytes(&held_file, &data, "held_file file after a refused unlink");
    set_xattr(&held_file, "trusted.wormvault.hold", b"0")
        .expect("setxattr trusted.wormvault.hold=0");
    assert_eq!(
        xattr_text(&held_file, "user.wormvault.hold"),
        "0",
        "hold after lifting it"
    );
    fs::remove_file(&held_file).expect("unlink after the hold is lifted");
    assert_missing(&held_file, "held_file file after unlink");
    unmount(mount);
}

#[test]
fn retention_extends_but_never_shortens() {
    let store = init_store(SHORT_RETENTION);
    let mount = mount_store(&store);
    let extended_file = mount.join("kept.bson");
    let data = random_bytes(20_000, 24);
    write_sealed(&extended_file, &data);
    let original = parse_utc(&xattr_text(&extended_file, "user.wormvault.retain_until"));
    let extended = original + 3600;

    set_xattr(
        &extended_file,
        "trusted.wormvault.retain_until",
        format_utc(extended).as_bytes(),
    )
    .expect("extend retain_until by an hour");
    assert_eq!(
        xattr_text(&extended_file, "user.wormvault.retain_until"),
        format_utc(extended),
        "retain_until after extension"
    );
    assert_errno(
        set_xattr(
            &extended_file,
            "trusted.wormvault.retain_until",
            format_utc(original).as_bytes(),
        ),
        libc::EPERM,
        "shortening retain_until back to the original time",
    );
    assert_errno(
        set_xattr(
            &extended_file,
            "trusted.wormvault.retain_until",
            format_utc(extended - 1).as_bytes(),
        ),
        libc::EPERM,
        "shortening retain_until by one second",
    );
    assert_eq!(
        xattr_text(&extended_file, "user.wormvault.retain_until"),
        format_utc(extended),
        "retain_until after refused shortening"
    );

    write_sealed(&mount.join("control"), b"control");
    wait_until_retention_passed(&mount.join("control"));
    assert_errno(
        fs::remove_file(&extended_file),
        libc::EPERM,
        "unlink after the original retention passed but inside the extension",
    );
    unmount(mount);

    let mount = mount_store(&store);
    let extended_file = mount.join("kept.bson");
    assert_eq!(
        xattr_text(&extended_file, "user.wormvault.retain_until"),
        format_utc(extended),
        "retain_until after remount"
    );
    assert_errno(
        fs::remove_file(&extended_file),
        libc::EPERM,
        "unlink inside the extension after remount",
    );
    assert_file_bytes(
        &extended_file,
        &data,
        "file with extended retention after refusals",
    );
    unmount(mount);
}

// ---------------------------------------------------------------------------
// Cases that backup tools depend on.
// ---------------------------------------------------------------------------

#[test]
fn shell_redirect_keeps_all_bytes() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let data = random_bytes(500_000, 25);

    // The steps of `cmd > f`: open, duplicate, close the original (a FLUSH before the
    // first byte), write through the duplicate, close. F_DUPFD_CLOEXEC replaces dup2
    // onto a fixed number, which could close a descriptor of a parallel test.
    let redirected = mount.join("redirected.bson");
    let original = open_flags(&redirected, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC)
        .expect("open for redirection");
    // SAFETY: fcntl on an open descriptor returns a new descriptor owned by the File below.
    let duplicate = check(unsafe { libc::fcntl(original.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) })
        .expect("duplicate descriptor");
    let mut duplicate = unsafe { File::from_raw_fd(duplicate) };
    drop(original);
    for piece in data.chunks(8192) {
        duplicate
            .write_all(piece)
            .expect("write after the original descriptor closed");
    }
    drop(duplicate);
    wait_until_sealed(&redirected);
    assert_file_bytes(
        &redirected,
        &data,
        "bytes written through a duplicated descriptor",
    );

    // A real shell redirection.
    let source = store.dir.path().join("redirect-source");
    fs::write(&source, &data).unwrap();
    let shell_target = mount.join("shell.bson");
    let spawn = spawn_section();
    let status = Command::new("sh")
        .arg("-c")
        .arg("cat \"$1\" > \"$2\"")
        .arg("sh")
        .arg(&source)
        .arg(&shell_target)
        .status()
        .expect("running sh");
    drop(spawn);
    assert!(status.success(), "sh -c 'cat > file' exited with {status}");
    wait_until_sealed(&shell_target);
    assert_file_bytes(&shell_target, &data, "bytes written by a shell redirection");
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("redirected.bson"),
        &data,
        "duplicated-descriptor file after remount",
    );
    assert_file_bytes(
        &mount.join("shell.bson"),
        &data,
        "shell redirection after remount",
    );
    unmount(mount);
}

#[test]
fn append_mode_writes_at_end() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("appended.log");
    let parts: Vec<Vec<u8>> = (0..4)
        .map(|index| random_bytes(3000 + index * 1111, 26 + index as u64))
        .collect();

    let writing_state = hold_off_spawns();
    let mut first = open_flags(&path, libc::O_CREAT | libc::O_WRONLY | libc::O_APPEND)
        .expect("create with O_APPEND");
    first.write_all(&parts[0]).unwrap();
    let mut second = open_flags(&path, libc::O_WRONLY | libc::O_APPEND)
        .expect("second O_APPEND open while being written");
    second.write_all(&parts[1]).unwrap();
    first
        .write_all(&parts[2])
        .expect("append through the first descriptor after the second wrote");
    first.seek(SeekFrom::Start(0)).unwrap();
    first
        .write_all(&parts[3])
        .expect("append after seeking to the start");
    drop(second);
    drop(first);
    drop(writing_state);
    wait_until_sealed(&path);
    let expected = parts.concat();
    assert_file_bytes(&path, &expected, "bytes written with O_APPEND");
    assert_errno(
        open_flags(&path, libc::O_WRONLY | libc::O_APPEND),
        libc::EPERM,
        "O_APPEND open of a sealed file",
    );
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("appended.log"),
        &expected,
        "bytes written with O_APPEND, remounted",
    );
    unmount(mount);
}

#[test]
fn shared_mmap_writes_are_stored() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("mapped.bin");
    let len = 300_000 + 123;
    let data = random_bytes(len, 30);
    let writing_state = hold_off_spawns();
    let file = open_flags(&path, libc::O_CREAT | libc::O_RDWR).expect("create file");
    file.set_len(len as u64)
        .expect("ftruncate to the mapped size");
    drop(writing_state);
    // SAFETY: maps `len` bytes of an open read-write descriptor; the mapping is used
    // only inside this block and unmapped before the descriptor closes.
    unsafe {
        let address = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(
            address,
            libc::MAP_FAILED,
            "mmap MAP_SHARED: {}",
            io::Error::last_os_error()
        );
        std::ptr::copy_nonoverlapping(data.as_ptr(), address.cast::<u8>(), len);
        check(libc::msync(address, len, libc::MS_SYNC)).expect("msync");
        check(libc::munmap(address, len)).expect("munmap");
    }
    drop(file);
    wait_until_sealed(&path);
    assert_file_bytes(&path, &data, "bytes written through a shared mapping");
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("mapped.bin"),
        &data,
        "bytes written through a shared mapping, remounted",
    );
    unmount(mount);
}

#[test]
fn names_up_to_255_bytes() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let file_name = format!("{}.bson", "f".repeat(250));
    let dir_name = "d".repeat(255);
    let link_name = "l".repeat(255);
    let renamed_name = "€".repeat(85);
    assert_eq!(
        (file_name.len(), renamed_name.len()),
        (255, 255),
        "names of exactly 255 bytes"
    );

    write_sealed(&mount.join(&file_name), b"long name");
    fs::create_dir(mount.join(&dir_name)).expect("mkdir with a 255-byte name");
    std::os::unix::fs::symlink(&file_name, mount.join(&link_name))
        .expect("symlink with a 255-byte name");
    write_sealed(&mount.join(&dir_name).join("to-rename"), b"renamed");
    fs::rename(
        mount.join(&dir_name).join("to-rename"),
        mount.join(&dir_name).join(&renamed_name),
    )
    .expect("rename to a 255-byte name");

    let too_long = "x".repeat(256);
    let too_long_multibyte = format!("{renamed_name}x");
    for name in [&too_long, &too_long_multibyte] {
        let path = mount.join(name);
        assert_errno(
            File::create(&path),
            libc::ENAMETOOLONG,
            "create with a 256-byte name",
        );
        assert_errno(
            fs::create_dir(&path),
            libc::ENAMETOOLONG,
            "mkdir with a 256-byte name",
        );
        assert_errno(
            std::os::unix::fs::symlink("target", &path),
            libc::ENAMETOOLONG,
            "symlink with a 256-byte name",
        );
        assert_errno(
            fs::rename(mount.join(&file_name), &path),
            libc::ENAMETOOLONG,
            "rename to a 256-byte name",
        );
        assert_errno(
            fs::metadata(&path),
            libc::ENAMETOOLONG,
            "stat of a 256-byte name",
        );
    }

    let check_names = |mount: &Mount, when: &str| {
        assert_file_bytes(
            &mount.join(&file_name),
            b"long name",
            &format!("{when}: file with a 255-byte name"),
        );
        assert_file_bytes(
            &mount.join(&link_name),
            b"long name",
            &format!("{when}: read through a 255-byte symlink"),
        );
        assert_file_bytes(
            &mount.join(&dir_name).join(&renamed_name),
            b"renamed",
            &format!("{when}: file renamed to a 255-byte name"),
        );
        let listed: BTreeSet<Vec<u8>> = list_names(&mount.path).into_iter().collect();
        let expected: BTreeSet<Vec<u8>> = [
            file_name.as_bytes().to_vec(),
            dir_name.as_bytes().to_vec(),
            link_name.as_bytes().to_vec(),
        ]
        .into();
        assert_eq!(listed, expected, "{when}: root listing of 255-byte names");
        assert_eq!(
            list_names(&mount.join(&dir_name)),
            vec![renamed_name.as_bytes().to_vec()],
            "{when}: listing of the long directory"
        );
    };
    check_names(&mount, "same mount");
    unmount(mount);

    let mount = mount_store(&store);
    check_names(&mount, "after remount");
    unmount(mount);
}

#[test]
fn arbitrary_name_bytes_round_trip() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let mut names: Vec<Vec<u8>> = vec![
        (0x80..=0xffu8).collect(),
        vec![0xff],
        vec![0xc3, 0x28],
        b"caf\xe9.bson".to_vec(),
        b"\xed\xa0\x80surrogate".to_vec(),
        "日本語.json".as_bytes().to_vec(),
        b"Report".to_vec(),
        b"report".to_vec(),
        b"REPORT".to_vec(),
        b"with space".to_vec(),
        b"new\nline".to_vec(),
        b"tab\there".to_vec(),
        b"back\\slash".to_vec(),
        b"*?:<>|\"'".to_vec(),
        b"\x01\x02\x1f control".to_vec(),
        b"-leading-dash".to_vec(),
        b".hidden".to_vec(),
        b"...".to_vec(),
    ];
    names.extend((0x80..=0xffu8).step_by(17).map(|byte| vec![byte]));
    for (index, name) in names.iter().enumerate() {
        write_file(
            &path_of(&mount.path, name),
            &random_bytes(500 + index, 100 + index as u64),
        );
    }
    fs::create_dir(path_of(&mount.path, b"dir\x80\xfe")).expect("mkdir with a non-UTF-8 name");
    names.push(b"dir\x80\xfe".to_vec());

    let check_names = |mount: &Mount, when: &str| {
        let listed = list_names(&mount.path);
        let unique: HashSet<&Vec<u8>> = listed.iter().collect();
        assert_eq!(
            unique.len(),
            listed.len(),
            "{when}: readdir returns no name twice"
        );
        let listed: BTreeSet<Vec<u8>> = listed.into_iter().collect();
        let expected: BTreeSet<Vec<u8>> = names.iter().cloned().collect();
        assert_eq!(
            listed, expected,
            "{when}: readdir returns every name byte for byte"
        );
        for (index, name) in names.iter().enumerate().take(names.len() - 1) {
            let what = format!("{when}: file named {:?}", String::from_utf8_lossy(name));
            assert_file_bytes(
                &path_of(&mount.path, name),
                &random_bytes(500 + index, 100 + index as u64),
                &what,
            );
        }
        assert!(
            path_of(&mount.path, b"dir\x80\xfe").is_dir(),
            "{when}: directory with a non-UTF-8 name"
        );
    };
    check_names(&mount, "same mount");
    unmount(mount);

    let mount = mount_store(&store);
    check_names(&mount, "after remount");
    unmount(mount);
}

#[test]
fn readdir_lists_10000_entries_once() {
    const ENTRIES: usize = 10_000;
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let dir = mount.join("collection");
    fs::create_dir(&dir).unwrap();
    // Names of varied length and prefix, so that no ordering by name is assumed.
    let names: Vec<Vec<u8>> = (0..ENTRIES)
        .map(|index| format!("{}-{index}.bson", "ab".repeat(index % 23)).into_bytes())
        .collect();
    for name in &names {
        File::create(path_of(&dir, name))
            .unwrap_or_else(|error| panic!("create {}: {error}", String::from_utf8_lossy(name)));
    }

    let check_listing = |dir: &Path, when: &str| -> Vec<Vec<u8>> {
        let listed = list_names(dir);
        let unique: HashSet<&Vec<u8>> = listed.iter().collect();
        assert_eq!(listed.len(), ENTRIES, "{when}: readdir entry count");
        assert_eq!(unique.len(), ENTRIES, "{when}: distinct names in readdir");
        let expected: HashSet<&Vec<u8>> = names.iter().collect();
        assert!(
            unique == expected,
            "{when}: readdir returns exactly the created names"
        );
        listed
    };
    let first = check_listing(&dir, "same mount");
    let second = check_listing(&dir, "same mount, second listing");
    assert_eq!(
        first, second,
        "two listings of an unchanged directory return the same order"
    );
    unmount(mount);

    let mount = mount_store(&store);
    check_listing(&mount.join("collection"), "after remount");
    unmount(mount);
}

#[test]
fn stat_reports_nonzero_blocks() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("data.bson");
    let data = random_bytes(100_000, 31);
    write_sealed(&path, &data);
    let metadata = fs::metadata(&path).unwrap();
    assert_eq!(metadata.len(), data.len() as u64, "size of a sealed file");
    assert!(
        metadata.blocks() > 0,
        "st_blocks of a sealed 100 kB file is {}",
        metadata.blocks()
    );
    let empty = mount.join("empty");
    write_sealed(&empty, b"");
    assert_eq!(
        fs::metadata(&empty).unwrap().len(),
        0,
        "size of an empty file"
    );
    unmount(mount);

    let mount = mount_store(&store);
    let metadata = fs::metadata(mount.join("data.bson")).unwrap();
    assert!(
        metadata.blocks() > 0,
        "st_blocks of a sealed 100 kB file after remount is {}",
        metadata.blocks()
    );
    unmount(mount);
}

#[test]
fn statfs_reports_capacity_and_inodes() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    write_sealed(&mount.join("some.bson"), &random_bytes(10_000, 32));
    let stats = statvfs(&mount.path);
    assert!(stats.f_bsize > 0, "statfs f_bsize is 0");
    assert!(stats.f_frsize > 0, "statfs f_frsize is 0");
    assert!(stats.f_blocks > 0, "statfs f_blocks is 0");
    assert!(stats.f_bfree > 0, "statfs f_bfree is 0");
    assert!(stats.f_bavail > 0, "statfs f_bavail is 0");
    assert!(stats.f_files > 0, "statfs f_files is 0");
    assert!(stats.f_ffree > 0, "statfs f_ffree is 0");
    assert!(
        stats.f_bfree <= stats.f_blocks,
        "statfs f_bfree {} exceeds f_blocks {}",
        stats.f_bfree,
        stats.f_blocks
    );
    unmount(mount);
}

#[test]
fn tmpfile_open_not_supported() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    fs::create_dir(mount.join("dir")).unwrap();
    for dir in [mount.path.clone(), mount.join("dir")] {
        assert_errno(
            open_flags(&dir, libc::O_TMPFILE | libc::O_RDWR),
            libc::EOPNOTSUPP,
            &format!("O_TMPFILE|O_RDWR in {}", dir.display()),
        );
        assert_errno(
            open_flags(&dir, libc::O_TMPFILE | libc::O_WRONLY | libc::O_EXCL),
            libc::EOPNOTSUPP,
            &format!("O_TMPFILE|O_WRONLY|O_EXCL in {}", dir.display()),
        );
    }
    assert_eq!(
        list_names(&mount.path),
        vec![b"dir".to_vec()],
        "root listing after refused O_TMPFILE opens"
    );
    assert_eq!(
        list_names(&mount.join("dir")),
        Vec::<Vec<u8>>::new(),
        "subdirectory listing after refused O_TMPFILE opens"
    );
    unmount(mount);
}

#[test]
fn fsync_succeeds_on_files_and_directories() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    fs::create_dir(mount.join("dir")).unwrap();
    let path = mount.join("dir/synced.bson");
    let data = random_bytes(70_000, 33);
    let mut writer = open_flags(&path, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    writer.write_all(&data[..30_000]).unwrap();
    writer.sync_all().expect("fsync of a file being written");
    writer.write_all(&data[30_000..]).unwrap();
    fsync_data(&writer).expect("fdatasync of a file being written");
    drop(writer);
    wait_until_sealed(&path);

    let reader = File::open(&path).unwrap();
    reader
        .sync_all()
        .expect("fsync of a sealed file opened read-only");
    fsync_data(&reader).expect("fdatasync of a sealed file opened read-only");
    drop(reader);
    for dir in [mount.path.clone(), mount.join("dir")] {
        let handle = File::open(&dir)
            .unwrap_or_else(|error| panic!("open directory {}: {error}", dir.display()));
        handle
            .sync_all()
            .unwrap_or_else(|error| panic!("fsync of directory {}: {error}", dir.display()));
        fsync_data(&handle)
            .unwrap_or_else(|error| panic!("fdatasync of directory {}: {error}", dir.display()));
    }
    assert_file_bytes(&path, &data, "file after fsync calls");
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("dir/synced.bson"),
        &data,
        "file after fsync calls and a remount",
    );
    unmount(mount);
}

#[test]
fn empty_file_seals_as_valid_file() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("empty.bson");
    drop(File::create(&path).expect("create file"));
    wait_until_sealed(&path);
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        0,
        "size of an empty sealed file"
    );
    assert_file_bytes(&path, b"", "empty sealed file");
    assert_eq!(
        xattr_text(&path, "user.wormvault.incomplete"),
        "0",
        "incomplete attribute of an empty file"
    );
    parse_utc(&xattr_text(&path, "user.wormvault.retain_until"));
    assert_rejects_content_changes(&path, 0, "empty sealed file");
    assert_errno(
        fs::remove_file(&path),
        libc::EPERM,
        "unlink of an empty sealed file inside retention",
    );
    unmount(mount);

    let mount = mount_store(&store);
    let path = mount.join("empty.bson");
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        0,
        "size of an empty sealed file after remount"
    );
    assert_rejects_content_changes(&path, 0, "empty sealed file after remount");
    assert_file_bytes(&path, b"", "empty sealed file after refusals and a remount");
    unmount(mount);
}

#[test]
fn virtual_xattrs_readable_not_listed() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("attributes.bson");
    let before = wall_clock_seconds();
    write_sealed(&path, &random_bytes(10_000, 34));
    let after = wall_clock_seconds();

    let sealed_at = parse_utc(&xattr_text(&path, "user.wormvault.sealed_at"));
    assert!(
        (before - 2..=after + 2).contains(&sealed_at),
        "sealed_at {sealed_at} is not between {before} and {after}, the wall-clock seconds around the close"
    );
    let retain_until = parse_utc(&xattr_text(&path, "user.wormvault.retain_until"));
    assert_eq!(
        retain_until - sealed_at,
        LONG_RETENTION_SECONDS,
        "retain_until is sealed_at plus 30 days"
    );
    assert_eq!(
        xattr_text(&path, "user.wormvault.hold"),
        "0",
        "hold of a new file"
    );
    assert_eq!(
        xattr_text(&path, "user.wormvault.incomplete"),
        "0",
        "incomplete of a fully written file"
    );

    let names = list_xattr(&path).expect("listxattr");
    let virtual_names: Vec<String> = names
        .iter()
        .filter(|name| name.windows(9).any(|window| window == b"wormvault"))
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    assert!(
        virtual_names.is_empty(),
        "listxattr returns virtual attributes: {virtual_names:?}"
    );

    // Extension by root through the trusted namespace, visible through the user name.
    let later = retain_until + 86_400;
    set_xattr(
        &path,
        "trusted.wormvault.retain_until",
        format_utc(later).as_bytes(),
    )
    .expect("extend retain_until by a day");
    assert_eq!(
        xattr_text(&path, "user.wormvault.retain_until"),
        format_utc(later),
        "retain_until after extension"
    );
    assert_errno(
        set_xattr(
            &path,
            "trusted.wormvault.retain_until",
            format_utc(retain_until).as_bytes(),
        ),
        libc::EPERM,
        "setting retain_until earlier than its current value",
    );
    assert_eq!(
        xattr_text(&path, "user.wormvault.retain_until"),
        format_utc(later),
        "retain_until after a refused shortening"
    );
    assert_eq!(
        parse_utc(&xattr_text(&path, "user.wormvault.sealed_at")),
        sealed_at,
        "sealed_at after extension"
    );
    unmount(mount);

    let mount = mount_store(&store);
    let path = mount.join("attributes.bson");
    assert_eq!(
        parse_utc(&xattr_text(&path, "user.wormvault.sealed_at")),
        sealed_at,
        "sealed_at after remount"
    );
    assert_eq!(
        xattr_text(&path, "user.wormvault.retain_until"),
        format_utc(later),
        "retain_until after remount"
    );
    unmount(mount);
}

#[test]
fn writing_file_fills_distant_gap() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("sparse.bin");
    let head = random_bytes(200_000, 35);
    let middle = random_bytes(1 << 20, 36);
    let far_offset = 80usize << 20;
    let middle_offset = 40usize << 20;
    let mut writer = open_flags(&path, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    writer.write_all(&head).unwrap();
    // Write the far end first, then fill part of the gap, as out-of-order writers do.
    writer
        .write_all_at(b"far end", far_offset as u64)
        .expect("pwrite 80 MiB beyond the start");
    writer
        .write_all_at(&middle, middle_offset as u64)
        .expect("pwrite into the gap");
    drop(writer);
    wait_until_sealed(&path);

    let mut expected = vec![0u8; far_offset + 7];
    expected[..head.len()].copy_from_slice(&head);
    expected[middle_offset..middle_offset + middle.len()].copy_from_slice(&middle);
    expected[far_offset..].copy_from_slice(b"far end");
    assert_file_bytes(&path, &expected, "file with a filled gap");
    unmount(mount);

    let mount = mount_store(&store);
    assert_file_bytes(
        &mount.join("sparse.bin"),
        &expected,
        "file with a filled gap after remount",
    );
    unmount(mount);
}

#[test]
fn nonblocking_writes_never_eagain() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let path = mount.join("nonblocking.bson");
    let data = random_bytes(16 << 20, 37);
    let mut writer = open_flags(&path, libc::O_CREAT | libc::O_WRONLY | libc::O_NONBLOCK)
        .expect("create with O_NONBLOCK");
    let mut offset = 0;
    for size in [4096usize, 1 << 20, 250, 65_536].iter().cycle() {
        if offset == data.len() {
            break;
        }
        let end = (offset + size).min(data.len());
        // Every write must complete in full, because after a short write or EAGAIN a Go
        // writer waits for a readiness event that never comes.
        match writer.write(&data[offset..end]) {
            Ok(written) => assert_eq!(
                written,
                end - offset,
                "length of a non-blocking write at offset {offset}"
            ),
            Err(error) => panic!("non-blocking write at offset {offset} failed: {error}"),
        }
        offset = end;
    }
    writer.sync_all().expect("fsync of a non-blocking file");
    drop(writer);
    wait_until_sealed(&path);
    assert_file_bytes(&path, &data, "file written without blocking");
    unmount(mount);
}

#[test]
fn parallel_writers_keep_their_bytes() {
    const WRITERS: u64 = 4;
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for writer_index in 0..WRITERS {
            let path = mount.join(&format!("collection-{writer_index}.bson"));
            scope.spawn(move || {
                let data = random_bytes(4 << 20, 40 + writer_index);
                let mut file = File::create(&path)
                    .unwrap_or_else(|error| panic!("create {}: {error}", path.display()));
                for piece in data.chunks(64 * 1024) {
                    file.write_all(piece)
                        .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
                }
            });
        }
    });
    // Two descriptors of one file written by two threads at once, in disjoint ranges.
    let shared = mount.join("shared.bson");
    let first = open_flags(&shared, libc::O_CREAT | libc::O_WRONLY).expect("create file");
    let second = first.try_clone().expect("dup");
    let even = random_bytes(1 << 20, 50);
    let odd = random_bytes(1 << 20, 51);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for (index, piece) in even.chunks(64 * 1024).enumerate() {
                first
                    .write_all_at(piece, (2 * index * 64 * 1024) as u64)
                    .expect("write of even pieces");
            }
        });
        scope.spawn(|| {
            for (index, piece) in odd.chunks(64 * 1024).enumerate() {
                second
                    .write_all_at(piece, ((2 * index + 1) * 64 * 1024) as u64)
                    .expect("write of odd pieces");
            }
        });
    });
    drop(second);
    drop(first);
    // A loose bound (18 MiB in total) that catches writers serialized behind each
    // other, not small slowdowns.
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(30),
        "4 parallel writers of 4 MiB and 2 MiB interleaved took {elapsed:?}"
    );

    let mut interleaved = Vec::new();
    for (even_piece, odd_piece) in even.chunks(64 * 1024).zip(odd.chunks(64 * 1024)) {
        interleaved.extend_from_slice(even_piece);
        interleaved.extend_from_slice(odd_piece);
    }
    let check_files = |mount: &Mount, when: &str| {
        for writer_index in 0..WRITERS {
            let path = mount.join(&format!("collection-{writer_index}.bson"));
            wait_until_sealed(&path);
            assert_file_bytes(
                &path,
                &random_bytes(4 << 20, 40 + writer_index),
                &format!("{when}: parallel writer {writer_index}"),
            );
        }
        wait_until_sealed(&mount.join("shared.bson"));
        assert_file_bytes(
            &mount.join("shared.bson"),
            &interleaved,
            &format!("{when}: file written by two threads"),
        );
    };
    check_files(&mount, "same mount");
    unmount(mount);

    let mount = mount_store(&store);
    check_files(&mount, "after remount");
    unmount(mount);
}

#[test]
fn create_below_reserve_fails_enospc() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let data = random_bytes(30_000, 38);
    write_sealed(&mount.join("before.bson"), &data);
    unmount(mount);

    // A reserve larger than any test disk puts the store below it from the start.
    let mount = mount_store_with(&store, &["reserve=1000000G"]);
    let stats = statvfs(&mount.path);
    assert_eq!(
        stats.f_bavail, 0,
        "statfs f_bavail with a reserve larger than the disk"
    );
    assert_eq!(
        stats.f_bfree, 0,
        "statfs f_bfree with a reserve larger than the disk"
    );
    assert!(
        stats.f_blocks > 0,
        "statfs f_blocks with a reserve larger than the disk"
    );
    assert_errno(
        File::create(mount.join("new.bson")),
        libc::ENOSPC,
        "create below the space reserve",
    );
    assert_errno(
        open_flags(
            &mount.join("new-excl.bson"),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
        ),
        libc::ENOSPC,
        "O_CREAT|O_EXCL below the space reserve",
    );
    assert_missing(
        &mount.join("new.bson"),
        "name of a create refused for space",
    );
    assert_file_bytes(
        &mount.join("before.bson"),
        &data,
        "existing file below the space reserve",
    );
    unmount(mount);
}

#[test]
fn no_plaintext_on_backing_disk() {
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let marker = format!(
        "plaintext-marker-{:016x}",
        u64::from_le_bytes(random_bytes(8, 39).try_into().unwrap())
    );
    let name = format!("{marker}.bson");
    // Compressible content, so that a compressed but unencrypted copy would still hold
    // the marker in its first block.
    let content = marker.repeat(20_000).into_bytes();
    let path = mount.join(&name);
    let mut writer = File::create(&path).expect("create file");
    writer.write_all(&content).unwrap();
    writer.sync_all().expect("fsync while being written");
    let found_while_writing = files_containing(&store.root, marker.as_bytes());
    assert!(
        found_while_writing.is_empty(),
        "marker in backing files while being written: {found_while_writing:?}"
    );
    drop(writer);
    wait_until_sealed(&path);
    unmount(mount);

    let found = files_containing(&store.root, marker.as_bytes());
    assert!(
        found.is_empty(),
        "file name or content in plaintext in backing files: {found:?}"
    );
    let mount = mount_store(&store);
    assert_file_bytes(&mount.join(&name), &content, "marker file after remount");
    unmount(mount);
}

#[test]
fn refusals_logged_without_paths() {
    const REFUSED: usize = 300;
    let store = init_store(LONG_RETENTION);
    let mount = mount_store(&store);
    let dir = mount.join("dump");
    fs::create_dir(&dir).unwrap();
    let marker = "secret-collection-name";
    for index in 0..REFUSED {
        write_file(&dir.join(format!("{marker}-{index}.bson")), b"{}");
    }
    let first = dir.join(format!("{marker}-0.bson"));
    wait_until_sealed(&first);
    let first_ino = fs::metadata(&first).unwrap().ino();
    for index in 0..REFUSED {
        let path = dir.join(format!("{marker}-{index}.bson"));
        assert_errno(
            fs::remove_file(&path),
            libc::EPERM,
            "unlink of a sealed file in an rm -rf",
        );
    }
    let log = unmount(mount);

    let ino_token = first_ino.to_string();
    let names_inode = log.lines().any(|line| {
        line.to_lowercase().contains("refus")
            && line
                .split(|c: char| !c.is_ascii_digit())
                .any(|token| token == ino_token)
    });
    assert!(
        names_inode,
        "no refusal line names inode {first_ino}:\n{log}"
    );
    assert!(
        !log.contains(marker),
        "a file name appears in the info-level log:\n{log}"
    );
    let refusal_lines = log
        .lines()
        .filter(|line| line.to_lowercase().contains("refus"))
        .count();
    assert!(
        refusal_lines <= 20,
        "{REFUSED} refused unlinks produced {refusal_lines} refusal lines:\n{log}"
    );
}

/// Files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in
        fs::read_dir(dir).unwrap_or_else(|error| panic!("readdir {}: {error}", dir.display()))
    {
        let path = entry.unwrap().path();
        let metadata = fs::symlink_metadata(&path).unwrap();
        if metadata.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if metadata.is_file() {
            let bytes =
                fs::read(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
            if bytes.windows(needle.len()).any(|window| window == needle) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn utc_time_helpers_round_trip() {
    assert_eq!(
        format_utc(1_800_000_000),
        "2027-01-15T08:00:00Z",
        "formatting a known time"
    );
    assert_eq!(
        parse_utc("2027-01-15T08:00:00Z"),
        1_800_000_000,
        "parsing a known time"
    );
    assert_eq!(parse_utc("1970-01-01T00:00:00Z"), 0, "parsing the epoch");
    for seconds in [951_782_400, 1_709_164_800, 4_107_542_399, 1_234_567_890] {
        assert_eq!(
            parse_utc(&format_utc(seconds)),
            seconds,
            "round trip of {seconds}"
        );
    }
}
