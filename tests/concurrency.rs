//! Concurrent writers: files written at the same time by several threads read back
//! intact after a remount.

mod common;

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Barrier};

use common::*;

const MIB: usize = 1024 * 1024;
const WRITERS: usize = 8;
const FILE_BYTES: usize = 32 * MIB;

/// Write sizes, cycled through: 4 KiB pages, 250-byte gzip-style writes, 1 MiB
/// blocks. Each size is used for a run of `RUN_BYTES` before the next one.
const WRITE_SIZES: [usize; 3] = [4096, 250, MIB];
const RUN_BYTES: usize = 3 * MIB / 2;

fn write_mixed(file: &mut File, data: &[u8], name: &str) {
    let mut offset = 0;
    let mut run = 0;
    while offset < data.len() {
        let size = WRITE_SIZES[run % WRITE_SIZES.len()];
        let run_end = (offset + RUN_BYTES).min(data.len());
        while offset < run_end {
            let end = (offset + size).min(run_end);
            file.write_all(&data[offset..end]).unwrap_or_else(|error| panic!("write {name} at {offset}: {error}"));
            offset = end;
        }
        run += 1;
    }
}

#[test]
fn eight_writers_read_back_intact() {
    let store = TestStore::init("30d");
    let mount = store.mount();
    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|number| {
            let path = mount.join(&format!("writer-{number}.bin"));
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let data = random_bytes(FILE_BYTES, 900 + number as u64);
                let digest = sha256(&data);
                let name = path.display().to_string();
                let mut file = File::create(&path).unwrap_or_else(|error| panic!("create {name}: {error}"));
                barrier.wait();
                write_mixed(&mut file, &data, &name);
                drop(file);
                digest
            })
        })
        .collect();
    let digests: Vec<String> = writers.into_iter().map(|writer| writer.join().expect("writer thread panicked")).collect();
    mount.unmount();

    let mount = store.mount();
    for (number, digest) in digests.iter().enumerate() {
        let path = mount.join(&format!("writer-{number}.bin"));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), FILE_BYTES as u64, "size of writer-{number}.bin after remount");
        assert_eq!(sha256_file(&path), *digest, "SHA-256 of writer-{number}.bin after remount");
    }
    mount.unmount();
}
