//! The logger: env_logger on stderr, switched to syslog once a background daemon has
//! detached from its terminal. Under systemd (`mount -f`) stderr goes to the journal.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};

static TO_SYSLOG: AtomicBool = AtomicBool::new(false);

struct Logger {
    stderr: env_logger::Logger,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.stderr.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if !self.stderr.matches(record) {
            return;
        }
        if !TO_SYSLOG.load(Ordering::Relaxed) {
            return self.stderr.log(record);
        }
        let priority = match record.level() {
            log::Level::Error => libc::LOG_ERR,
            log::Level::Warn => libc::LOG_WARNING,
            log::Level::Info => libc::LOG_INFO,
            log::Level::Debug | log::Level::Trace => libc::LOG_DEBUG,
        };
        let text = format!("{} {}", record.target(), record.args()).replace('\0', " ");
        let Ok(message) = CString::new(text) else { return };
        // SAFETY: a constant format string with one C string argument.
        unsafe { libc::syslog(priority | libc::LOG_DAEMON, c"%s".as_ptr(), message.as_ptr()) };
    }

    fn flush(&self) {
        self.stderr.flush();
    }
}

/// Installs the logger with an env_logger filter specification.
pub fn install(filters: &str) {
    let stderr = env_logger::Builder::new().parse_filters(filters).format_timestamp_millis().build();
    let max_level = stderr.filter();
    log::set_boxed_logger(Box::new(Logger { stderr })).expect("the logger is installed once");
    log::set_max_level(max_level);
}

/// Sends every later log line to syslog, tagged `wormvault` with the pid.
pub fn use_syslog() {
    // SAFETY: openlog keeps the pointer; the identifier is a static C string.
    unsafe { libc::openlog(c"wormvault".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
    TO_SYSLOG.store(true, Ordering::Relaxed);
}
