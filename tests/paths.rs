//! Deep paths: a tree deeper and longer than PATH_MAX, built and read back with
//! relative paths, survives a remount.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::*;

/// Depth of the tree; with 200-byte names the full path is about 40 KiB, ten times
/// PATH_MAX, so it is walked with chdir-free relative opens (openat).
const DEPTH: usize = 200;

fn component(level: usize) -> String {
    format!("{level:03}-{}", "d".repeat(196))
}

/// Opens each level with openat relative to the previous one.
fn walk(root: &Path, create: bool) -> libc::c_int {
    let root = std::ffi::CString::new(root.as_os_str().as_bytes()).unwrap();
    // SAFETY: plain open/mkdirat/openat/close calls on descriptors this function owns.
    unsafe {
        let mut fd = libc::open(root.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
        assert!(fd >= 0, "open root: {}", std::io::Error::last_os_error());
        for level in 0..DEPTH {
            let name = std::ffi::CString::new(component(level)).unwrap();
            if create {
                let rc = libc::mkdirat(fd, name.as_ptr(), 0o755);
                assert_eq!(rc, 0, "mkdirat level {level}: {}", std::io::Error::last_os_error());
            }
            let next = libc::openat(fd, name.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            assert!(next >= 0, "openat level {level}: {}", std::io::Error::last_os_error());
            libc::close(fd);
            fd = next;
        }
        fd
    }
}

#[test]
fn tree_deeper_than_path_max_round_trips() {
    let store = TestStore::init("30d");
    let data = random_bytes(100_000, 80);
    let mount = store.mount();
    let fd = walk(&mount.path, true);
    let name = std::ffi::CString::new("leaf.bson").unwrap();
    // SAFETY: writes `data` through a descriptor opened here and closed right after.
    unsafe {
        let file = libc::openat(fd, name.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o644);
        assert!(file >= 0, "create leaf: {}", std::io::Error::last_os_error());
        assert_eq!(libc::write(file, data.as_ptr().cast(), data.len()), data.len() as isize, "write leaf");
        assert_eq!(libc::close(file), 0, "close leaf");
        libc::close(fd);
    }
    mount.unmount();

    let mount = store.mount();
    let fd = walk(&mount.path, false);
    let mut read = vec![0u8; data.len() + 10];
    // SAFETY: reads into `read` through a descriptor opened here.
    let got = unsafe {
        let file = libc::openat(fd, name.as_ptr(), libc::O_RDONLY);
        assert!(file >= 0, "open leaf after remount: {}", std::io::Error::last_os_error());
        let got = libc::read(file, read.as_mut_ptr().cast(), read.len());
        libc::close(file);
        libc::close(fd);
        got
    };
    assert_eq!(got, data.len() as isize, "bytes read from the leaf");
    assert_same_bytes(&read[..data.len()], &data, "leaf 200 levels down after remount");
    assert!(fs::metadata(mount.join(&component(0))).unwrap().is_dir(), "first level is a folder");
    mount.unmount();
}
