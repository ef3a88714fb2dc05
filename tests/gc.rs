//! `wormvault gc`: deletes only packs that no file uses, keeps every chunk a file
//! still needs, and leaves a store whose index can still be rebuilt from the packs.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;

fn pack_count(store: &TestStore) -> usize {
    fs::read_dir(store.root.join("packs")).unwrap().count()
}

fn gc(store: &TestStore) -> String {
    let output = store.command(&["gc"]);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "gc failed:\n{text}");
    text
}

/// Returns the byte count from gc's summary line.
fn reclaimed_bytes(text: &str) -> u64 {
    let before = text.split(" bytes reclaimed").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("no byte count in gc output:\n{text}"))
}

/// Deletes `path` once the store clock passes its retention, polling with a deadline.
fn delete_after_retention(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match fs::remove_file(path) {
            Ok(()) => return,
            Err(error) if errno(&error) == libc::EPERM && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(error) => panic!("deleting {path:?} after retention: {error}"),
        }
    }
}

#[test]
fn gc_deletes_only_unused_packs() {
    let store = TestStore::init("2s");
    let kept = random_bytes(2 << 20, 50);
    let mount = store.mount();
    write_file(&mount.join("old.bson"), &random_bytes(3 << 20, 51));
    mount.unmount();
    let mount = store.mount();
    write_file(&mount.join("kept.bson"), &kept);
    mount.unmount();
    let before = pack_count(&store);

    let mount = store.mount();
    delete_after_retention(&mount.join("old.bson"));
    mount.unmount();
    let text = gc(&store);
    let reclaimed = reclaimed_bytes(&text);
    assert!(reclaimed >= 3 << 20, "gc reclaimed {reclaimed} bytes, less than old.bson's 3 MiB:\n{text}");
    assert!(reclaimed < 5 << 20, "gc reclaimed {reclaimed} bytes, so it took kept.bson's pack too:\n{text}");
    assert!(pack_count(&store) <= before, "gc added packs: {before} before, {} after", pack_count(&store));

    let mount = store.mount();
    assert_same_bytes(&fs::read(mount.join("kept.bson")).unwrap(), &kept, "kept.bson after gc");
    assert!(fs::metadata(mount.join("old.bson")).is_err(), "old.bson came back after gc");
    mount.unmount();

    let check = store.command(&["check", "--read-data"]);
    assert!(check.status.success(), "check after gc failed: {}", String::from_utf8_lossy(&check.stdout));
    let repair = store.command(&["repair", "--rebuild-index"]);
    assert!(repair.status.success(), "index rebuild after gc failed: {}", String::from_utf8_lossy(&repair.stderr));
    let mount = store.mount();
    assert_same_bytes(&fs::read(mount.join("kept.bson")).unwrap(), &kept, "kept.bson after gc and an index rebuild");
    mount.unmount();
}

#[test]
fn gc_keeps_chunks_shared_with_retained_files() {
    let store = TestStore::init("2s");
    let shared = random_bytes(2 << 20, 60);
    let mount = store.mount();
    write_file(&mount.join("first.bson"), &shared);
    mount.unmount();
    let mount = store.mount();
    // Same bytes: every chunk deduplicates against the first file's pack.
    write_file(&mount.join("second.bson"), &shared);
    delete_after_retention(&mount.join("first.bson"));
    mount.unmount();
    let text = gc(&store);
    let reclaimed = reclaimed_bytes(&text);
    assert!(reclaimed < 1 << 20, "gc reclaimed {reclaimed} bytes, so it deleted the pack second.bson uses:\n{text}");
    assert!(text.contains("1 packs kept"), "gc output:\n{text}");
    let mount = store.mount();
    assert_same_bytes(&fs::read(mount.join("second.bson")).unwrap(), &shared, "second.bson after gc");
    mount.unmount();
}

#[test]
fn stats_reports_reclaimable_space() {
    let store = TestStore::init("2s");
    let mount = store.mount();
    write_file(&mount.join("old.bson"), &random_bytes(1 << 20, 70));
    mount.unmount();
    let mount = store.mount();
    delete_after_retention(&mount.join("old.bson"));
    mount.unmount();
    let stats = store.command(&["stats", "--json"]);
    let text = String::from_utf8_lossy(&stats.stdout).into_owned();
    assert!(stats.status.success(), "stats failed: {}", String::from_utf8_lossy(&stats.stderr));
    let reclaimable: u64 = text
        .split("\"reclaimable_bytes\":")
        .nth(1)
        .and_then(|rest| rest.trim_end_matches(['}', '\n']).parse().ok())
        .unwrap_or_else(|| panic!("no reclaimable_bytes in {text}"));
    assert!(reclaimable >= 1 << 20, "stats reports {reclaimable} reclaimable bytes after deleting a 1 MiB file");
    gc(&store);
    let after = String::from_utf8_lossy(&store.command(&["stats", "--json"]).stdout).into_owned();
    let left: u64 = after.split("\"reclaimable_bytes\":").nth(1).and_then(|rest| rest.trim_end_matches(['}', '\n']).parse().ok()).unwrap();
    // Only the pack holding gc's own namespace snapshot may be left: the next gc,
    // after writing a newer snapshot, deletes it.
    assert!(left < 4096, "{left} reclaimable bytes left after gc: {after}");
}
