//! A first end-to-end check: write through a real mount, remount, read back.

mod common;

use common::*;

#[test]
fn file_survives_remount() {
    let store = TestStore::init("30d");
    let data = random_bytes(3 << 20, 1);
    let mount = store.mount();
    write_file(&mount.join("a.bin"), &data);
    mount.unmount();
    let mount = store.mount();
    let read = std::fs::read(mount.join("a.bin")).unwrap();
    assert_same_bytes(&read, &data, "a.bin after remount");
    mount.unmount();
}
