//! Counters for monitoring, written as a Prometheus text file that node_exporter's
//! textfile collector reads. The file is replaced atomically (temporary name, rename).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests that failed with EIO or another errno caused by the store, across the process.
pub static ERRORS: AtomicU64 = AtomicU64::new(0);

/// Counters kept by the vault under its lock.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub bytes_written: u64,
    pub files_sealed: u64,
    pub files_incomplete: u64,
    pub commits: u64,
    pub commit_failures: u64,
    /// Refusals by reason.
    pub refusals: BTreeMap<&'static str, u64>,
}

/// Chunk counters read from the chunk store at render time.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChunkFigures {
    pub chunks_new: u64,
    pub chunks_deduplicated: u64,
    pub plain_bytes_new: u64,
    pub sealed_bytes_new: u64,
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
}

/// Renders the metrics in the Prometheus text format.
pub fn render(metrics: &Metrics, chunks: ChunkFigures) -> String {
    let mut out = String::new();
    counter(&mut out, "wormvault_bytes_written_total", "Bytes written through the mount.", metrics.bytes_written);
    counter(&mut out, "wormvault_chunks_new_total", "Chunks stored for the first time.", chunks.chunks_new);
    counter(&mut out, "wormvault_chunks_deduplicated_total", "Chunks found already stored.", chunks.chunks_deduplicated);
    counter(&mut out, "wormvault_chunk_plain_bytes_new_total", "Plaintext bytes of new chunks.", chunks.plain_bytes_new);
    counter(&mut out, "wormvault_chunk_sealed_bytes_new_total", "Sealed bytes of new chunks.", chunks.sealed_bytes_new);
    counter(&mut out, "wormvault_files_sealed_total", "Files sealed.", metrics.files_sealed);
    counter(&mut out, "wormvault_files_incomplete_total", "Files sealed incomplete.", metrics.files_incomplete);
    counter(&mut out, "wormvault_commits_total", "Commits made durable.", metrics.commits);
    counter(&mut out, "wormvault_commit_failures_total", "Commits that failed.", metrics.commit_failures);
    counter(&mut out, "wormvault_errors_total", "Requests that failed with a store error.", ERRORS.load(Ordering::Relaxed));
    let _ = writeln!(out, "# HELP wormvault_refusals_total Operations refused by the write-once rules.");
    let _ = writeln!(out, "# TYPE wormvault_refusals_total counter");
    for (reason, count) in &metrics.refusals {
        let _ = writeln!(out, "wormvault_refusals_total{{reason=\"{reason}\"}} {count}");
    }
    out
}

/// Writes `text` to `path` atomically.
pub fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    let temporary = path.with_extension("prom.tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_counters_and_refusals() {
        let mut metrics = Metrics { bytes_written: 42, ..Metrics::default() };
        metrics.refusals.insert("retained", 3);
        let text = render(&metrics, ChunkFigures { chunks_new: 7, ..ChunkFigures::default() });
        assert!(text.contains("wormvault_bytes_written_total 42\n"), "{text}");
        assert!(text.contains("wormvault_chunks_new_total 7\n"), "{text}");
        assert!(text.contains("wormvault_refusals_total{reason=\"retained\"} 3\n"), "{text}");
    }
}
