//! Retention: the store clock, and the pure decisions of what a sealed file allows.
//!
//! This module decides; it performs no I/O and keeps no namespace state.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::tree::Inode;

/// Largest forward jump of the wall clock that a mount adopts at once. A larger jump
/// (a clock set far ahead to unlock deletions) is adopted one day per mount at most.
pub const MAX_CLOCK_CATCH_UP_SECONDS: i64 = 86_400;

/// The store clock, in seconds: it never goes backwards, and it advances with the
/// monotonic clock while mounted, so changing the wall clock does not move it.
#[derive(Debug, Clone)]
pub struct StoreClock {
    base_seconds: i64,
    base_instant: Instant,
}

impl StoreClock {
    /// Starts the clock at mount from the last stored value and the wall clock.
    pub fn resume(stored_seconds: i64) -> StoreClock {
        StoreClock { base_seconds: Self::start_seconds(stored_seconds, wall_clock_seconds()), base_instant: Instant::now() }
    }

    /// Decides the store time at mount: never before the stored value, and never more
    /// than a day past it, whatever the wall clock says.
    // NOTE: the one-day limit applies per mount, so a wall clock set far ahead gains a
    // day at every remount rather than a day per elapsed day.
    pub fn start_seconds(stored_seconds: i64, wall: i64) -> i64 {
        if wall <= stored_seconds {
            if wall < stored_seconds {
                log::warn!("wall clock is behind the store clock; keeping the store clock: wall={wall} store={stored_seconds}");
            }
            stored_seconds
        } else if wall - stored_seconds > MAX_CLOCK_CATCH_UP_SECONDS && stored_seconds > 0 {
            log::warn!(
                "wall clock jumped ahead of the store clock; catching up one day only: wall={wall} store={stored_seconds}"
            );
            stored_seconds + MAX_CLOCK_CATCH_UP_SECONDS
        } else {
            wall
        }
    }

    /// Current store time, seconds.
    pub fn now(&self) -> i64 {
        self.base_seconds + self.base_instant.elapsed().as_secs() as i64
    }
}

/// Wall-clock seconds since the Unix epoch.
pub fn wall_clock_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64
}

/// Reason a change to a sealed file is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Content or size change of a sealed file.
    Sealed,
    /// Its last writable handle is closing; a reopen would race the seal.
    Closing,
    /// Deletion inside the retention window.
    Retained,
    /// Deletion under a legal hold.
    Held,
    /// Replacing an existing name, which would delete what it names.
    Replace,
    /// Hard links, which would let a name outlive the file's retention checks.
    Link,
    /// FIFOs and device nodes, which hold no backup data.
    SpecialFile,
    /// Shortening a retention date.
    Shorten,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Sealed => "sealed",
            Refusal::Closing => "closing",
            Refusal::Retained => "retained",
            Refusal::Held => "legal hold",
            Refusal::Replace => "replace existing name",
            Refusal::Link => "hard link",
            Refusal::SpecialFile => "special file",
            Refusal::Shorten => "shorter retention",
        }
    }
}

/// Decides whether a sealed file (or link) may be deleted at store time `now`.
pub fn may_delete(inode: &Inode, now: i64) -> Result<(), Refusal> {
    if inode.hold {
        return Err(Refusal::Held);
    }
    if now < inode.retain_until {
        return Err(Refusal::Retained);
    }
    Ok(())
}

/// Decides a new retain-until time: extension only.
pub fn extend_retention(inode: &Inode, requested: i64) -> Result<i64, Refusal> {
    if requested < inode.retain_until {
        return Err(Refusal::Shorten);
    }
    Ok(requested)
}

/// Parses a duration such as `30d`: a whole number and one unit of `s`, `m`, `h`,
/// `d` or `y` (365 days). Returns seconds, at least 1.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected a number followed by s, m, h, d or y, such as 30d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "y" => 365 * 86_400,
        _ => return Err(format!("invalid duration {text:?}: the unit must be one of s, m, h, d, y")),
    };
    let seconds = number.checked_mul(scale).ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
    if seconds == 0 {
        return Err(format!("invalid duration {text:?}: must be at least 1s"));
    }
    Ok(seconds)
}

/// Formats store-clock seconds as RFC 3339 UTC.
pub fn format_time(seconds: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Parses RFC 3339 UTC (as [`format_time`] writes) or plain Unix seconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    let time = humantime::parse_rfc3339(text)
        .map_err(|error| format!("invalid time {text:?}: {error}; expected RFC 3339 such as 2027-01-31T00:00:00Z"))?;
    Ok(time.duration_since(UNIX_EPOCH).map_err(|_| format!("invalid time {text:?}: before 1970"))?.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{FileState, NodeKind};

    fn sealed(retain_until: i64, hold: bool) -> Inode {
        Inode {
            ino: 5,
            kind: NodeKind::File,
            perm: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            atime_ns: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            crtime_ns: 0,
            parent: 1,
            state: FileState::Sealed { sealed_at: 100, incomplete: false },
            retain_until,
            hold,
            symlink_target: Vec::new(),
        }
    }

    #[test]
    fn delete_decisions_follow_retention_and_hold() {
        let cases = [
            (200, false, 199, Err(Refusal::Retained)),
            (200, false, 200, Ok(())),
            (200, false, 500, Ok(())),
            (200, true, 500, Err(Refusal::Held)),
        ];
        for (retain_until, hold, now, expected) in cases {
            assert_eq!(may_delete(&sealed(retain_until, hold), now), expected, "retain_until={retain_until} hold={hold} now={now}");
        }
    }

    #[test]
    fn retention_only_extends() {
        assert_eq!(extend_retention(&sealed(200, false), 300), Ok(300));
        assert_eq!(extend_retention(&sealed(200, false), 100), Err(Refusal::Shorten));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration("1y"), Ok(365 * 86_400));
        assert_eq!(parse_duration("2s"), Ok(2));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn times_round_trip_rfc3339() {
        assert_eq!(format_time(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(parse_time("2027-01-15T08:00:00Z"), Ok(1_800_000_000));
        assert_eq!(parse_time("1800000000"), Ok(1_800_000_000));
    }

    #[test]
    fn clock_start_resists_wall_clock_changes() {
        let stored = 1_800_000_000;
        let cases = [
            (stored - 10 * 86_400, stored, "wall clock set back ten days"),
            (stored + 60, stored + 60, "small forward step"),
            (stored + 30 * 86_400, stored + MAX_CLOCK_CATCH_UP_SECONDS, "wall clock set ahead thirty days"),
            (stored, stored, "unchanged"),
        ];
        for (wall, expected, case) in cases {
            assert_eq!(StoreClock::start_seconds(stored, wall), expected, "{case}");
        }
        assert_eq!(StoreClock::start_seconds(0, stored), stored, "a new store takes the wall clock");
    }

    #[test]
    fn clock_set_back_keeps_deletion_locked() {
        let stored = 1_800_000_000;
        let file = sealed(stored + 3600, false);
        let now = StoreClock::start_seconds(stored, stored - 365 * 86_400);
        assert_eq!(may_delete(&file, now), Err(Refusal::Retained));
        let jumped = StoreClock::start_seconds(stored, stored + 365 * 86_400);
        assert_eq!(may_delete(&sealed(stored + 2 * 86_400, false), jumped), Err(Refusal::Retained));
    }

    #[test]
    fn clock_never_goes_back() {
        let future = wall_clock_seconds() + 1000;
        assert!(StoreClock::resume(future).now() >= future);
    }
}
