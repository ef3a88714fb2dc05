//! Dumps written by scripts/mongodump-sim, which makes the system calls of mongodump
//! (mongo-tools 100.x) and writes deterministic data: each dump written into a mount
//! must be byte-for-byte the dump the same arguments write into a plain folder.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Approximate BSON size of the generated data, in MiB.
const DUMP_MIB: &str = "8";

/// Runs the generator with `args`, the output path given as `{target}`.
fn run_sim(args: &[&str], target: &Path) -> Output {
    let target = target.display().to_string();
    let args: Vec<String> = args.iter().map(|arg| arg.replace("{target}", &target)).collect();
    Command::new("python3")
        .arg(mongodump_sim())
        .args(&args)
        .args(["--size", DUMP_MIB, "--quiet"])
        .output()
        .expect("running mongodump-sim with python3")
}

#[track_caller]
fn run_sim_ok(args: &[&str], target: &Path) {
    let output = run_sim(args, target);
    assert!(
        output.status.success(),
        "mongodump-sim {args:?} into {} failed with {}:\n{}",
        target.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Paths of every file under `root`, relative to it.
fn relative_files(root: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|error| panic!("list {}: {error}", dir.display())) {
            let path = entry.unwrap().path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// Asserts that `actual` contains the same files as `expected`, byte for byte.
#[track_caller]
fn assert_same_tree(actual: &Path, expected: &Path, what: &str) {
    let expected_files = relative_files(expected);
    let actual_files = relative_files(actual);
    assert!(!expected_files.is_empty(), "{what}: the plain dump {} is empty", expected.display());
    assert_eq!(actual_files, expected_files, "{what}: file names in the mount and in the plain dump");
    for relative in &expected_files {
        let want = fs::read(expected.join(relative)).unwrap();
        let got = fs::read(actual.join(relative)).unwrap_or_else(|error| panic!("{what}: read {}: {error}", relative.display()));
        assert_same_bytes(&got, &want, &format!("{what}: {}", relative.display()));
    }
}

/// Writes a dump with `args` into a mount and into a plain folder and compares them,
/// before and after a remount.
fn check_mode(args: &[&str], name: &str) {
    let store = TestStore::init("30d");
    let plain = store.dir.path().join("plain");
    fs::create_dir(&plain).unwrap();
    run_sim_ok(args, &plain.join(name));

    let mount = store.mount();
    run_sim_ok(args, &mount.join(name));
    assert_same_tree(&mount.path, &plain, &format!("{args:?} before unmount"));
    mount.unmount();

    let mount = store.mount();
    assert_same_tree(&mount.path, &plain, &format!("{args:?} after remount"));
    mount.unmount();
}

#[test]
fn out_dump_matches_plain_copy() {
    check_mode(&["--out", "{target}"], "dump");
}

#[test]
fn gzip_out_dump_matches_plain_copy() {
    check_mode(&["--out", "{target}", "--gzip"], "dump");
}

#[test]
fn archive_matches_plain_copy() {
    check_mode(&["--archive={target}"], "dump.archive");
}

#[test]
fn gzip_archive_matches_plain_copy() {
    check_mode(&["--archive={target}", "--gzip"], "dump.archive.gz");
}

#[test]
fn parallel_out_dump_matches_plain_copy() {
    check_mode(&["--out", "{target}", "-j", "8"], "dump");
}

#[test]
fn second_run_into_sealed_dump_fails() {
    let store = TestStore::init("30d");
    let plain = store.dir.path().join("plain");
    fs::create_dir(&plain).unwrap();
    let args = ["--out", "{target}"];
    run_sim_ok(&args, &plain.join("dump"));

    let mount = store.mount();
    run_sim_ok(&args, &mount.join("dump"));
    let output = run_sim(&args, &mount.join("dump"));
    assert!(!output.status.success(), "a second mongodump-sim run into the sealed dump succeeded");
    assert_same_tree(&mount.path, &plain, "day-1 dump after a second run");
    mount.unmount();

    let mount = store.mount();
    assert_same_tree(&mount.path, &plain, "day-1 dump after a second run and a remount");
    mount.unmount();
}

#[test]
fn day_two_dump_deduplicates() {
    let store = TestStore::init("30d");
    let plain = store.dir.path().join("plain");
    fs::create_dir(&plain).unwrap();
    run_sim_ok(&["--out", "{target}", "--day", "2"], &plain.join("day2"));
    let day_two_bytes = tree_bytes(&plain);

    let mount = store.mount();
    run_sim_ok(&["--out", "{target}", "--day", "1"], &mount.join("day1"));
    mount.unmount();
    let after_day_one = tree_bytes(&store.root);

    let mount = store.mount();
    run_sim_ok(&["--out", "{target}", "--day", "2"], &mount.join("day2"));
    assert_same_tree(&mount.join("day2"), &plain.join("day2"), "day-2 dump");
    mount.unmount();
    let growth = tree_bytes(&store.root).saturating_sub(after_day_one);
    eprintln!("store bytes: {after_day_one} after day 1, growth {growth} for a day-2 dump of {day_two_bytes}");

    assert!(
        growth * 10 < day_two_bytes * 6,
        "the day-2 dump of {day_two_bytes} bytes grew the store by {growth} bytes ({:.1}%); expected under 60%",
        growth as f64 * 100.0 / day_two_bytes as f64
    );
}
