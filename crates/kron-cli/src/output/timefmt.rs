//! Times and durations for people: local times with their UTC offset, "in 4m" / "3h ago",
//! "1.2s". (JSON uses [`kron_core::time::format_utc`]: ISO 8601 UTC.)

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use kron_core::time::{EpochMs, MAX_EPOCH_MS, MIN_EPOCH_MS};

/// Formats instants for people: "now" and the local time zone, fixed once per invocation so
/// every line agrees.
#[derive(Debug, Clone)]
pub struct TimeFormatter {
    pub now: EpochMs,
    pub tz: TimeZone,
}

impl TimeFormatter {
    /// The system clock and the local zone (`TZ`, else the system's setting, else UTC).
    pub fn system() -> TimeFormatter {
        TimeFormatter {
            now: Timestamp::now().as_millisecond(),
            tz: TimeZone::system(),
        }
    }

    fn zoned(&self, ms: EpochMs) -> Zoned {
        zoned_in(ms, &self.tz)
    }

    /// `2026-11-27 08:00:00+01:00`.
    pub fn local(&self, ms: EpochMs) -> String {
        self.zoned(ms).strftime("%Y-%m-%d %H:%M:%S%:z").to_string()
    }

    /// `2026-11-27 08:00:00.123+01:00`.
    pub fn local_ms(&self, ms: EpochMs) -> String {
        self.zoned(ms)
            .strftime("%Y-%m-%d %H:%M:%S%.3f%:z")
            .to_string()
    }

    /// [`TimeFormatter::local`], with milliseconds when the instant has any.
    pub fn local_auto(&self, ms: EpochMs) -> String {
        if ms.rem_euclid(1_000) == 0 {
            self.local(ms)
        } else {
            self.local_ms(ms)
        }
    }

    /// [`TimeFormatter::local_short`], with milliseconds when the instant has any.
    pub fn short_auto(&self, ms: EpochMs) -> String {
        let z = self.zoned(ms);
        let today = z.date() == self.zoned(self.now).date();
        let format = match (today, ms.rem_euclid(1_000) == 0) {
            (true, true) => "%H:%M:%S%:z",
            (true, false) => "%H:%M:%S%.3f%:z",
            (false, true) => "%Y-%m-%d %H:%M:%S%:z",
            (false, false) => "%Y-%m-%d %H:%M:%S%.3f%:z",
        };
        z.strftime(format).to_string()
    }

    /// Like [`TimeFormatter::local`], without the date when it is today.
    pub fn local_short(&self, ms: EpochMs) -> String {
        let z = self.zoned(ms);
        if z.date() == self.zoned(self.now).date() {
            z.strftime("%H:%M:%S%:z").to_string()
        } else {
            z.strftime("%Y-%m-%d %H:%M:%S%:z").to_string()
        }
    }

    /// `08:00:00+01:00 (in 4m)`, `2026-11-20 07:00:00+01:00 (6d ago)`.
    pub fn when(&self, ms: EpochMs) -> String {
        format!("{} ({})", self.local_short(ms), self.relative(ms))
    }

    /// "in 4m", "3h5m ago", "in <1s".
    pub fn relative(&self, ms: EpochMs) -> String {
        let delta = i128::from(ms) - i128::from(self.now);
        let span = u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX);
        if span < 1_000 {
            return if delta >= 0 { "in <1s" } else { "<1s ago" }.to_string();
        }
        let text = rough(span);
        if delta >= 0 {
            format!("in {text}")
        } else {
            format!("{text} ago")
        }
    }
}

/// `ms` in `tz`, clamped to the representable range.
pub fn zoned_in(ms: EpochMs, tz: &TimeZone) -> Zoned {
    let ts = Timestamp::from_millisecond(ms.clamp(MIN_EPOCH_MS, MAX_EPOCH_MS))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    ts.to_zoned(tz.clone())
}

/// A span in its two largest units, rounded down: "4m12s", "1h5m", "2d3h", "45s".
pub fn rough(ms: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ];
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let mut out = String::new();
    let mut rest = ms;
    let mut parts = 0;
    for (name, unit) in UNITS {
        let count = rest / unit;
        rest %= unit;
        if count > 0 || parts > 0 {
            if count > 0 {
                out.push_str(&format!("{count}{name}"));
            }
            parts += 1;
        }
        if parts == 2 {
            break;
        }
    }
    out
}

/// A run's duration: "3ms", "850ms", "1.2s", "42.0s", "4m12s".
pub fn duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1_000.0)
    } else {
        rough(ms)
    }
}

/// A byte count: "912 B", "4.2 KiB", "12.3 MiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

/// 100000 -> "100,000".
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatter(tz: &str) -> TimeFormatter {
        TimeFormatter {
            // 2026-11-26T13:00:00Z
            now: 1_795_698_000_000,
            tz: TimeZone::get(tz).unwrap_or(TimeZone::UTC),
        }
    }

    #[test]
    fn local_times_carry_their_offset() {
        let c = formatter("Europe/Berlin");
        assert_eq!(c.local(c.now), "2026-11-26 14:00:00+01:00");
        assert_eq!(c.local_ms(c.now + 5), "2026-11-26 14:00:00.005+01:00");
        assert_eq!(c.local_short(c.now + 240_000), "14:04:00+01:00");
        assert_eq!(
            c.local_short(c.now + 86_400_000),
            "2026-11-27 14:00:00+01:00"
        );
        assert_eq!(c.when(c.now + 240_000), "14:04:00+01:00 (in 4m)");
        assert_eq!(c.short_auto(c.now + 250), "14:00:00.250+01:00");
        assert_eq!(c.short_auto(c.now), "14:00:00+01:00");
        assert_eq!(c.local_auto(c.now + 1), "2026-11-26 14:00:00.001+01:00");
        // Summer time shows its own offset.
        assert_eq!(c.local(1_782_900_000_000), "2026-07-01 12:00:00+02:00");
    }

    #[test]
    fn relative_and_durations() {
        let c = formatter("UTC");
        assert_eq!(c.relative(c.now + 250), "in <1s");
        assert_eq!(c.relative(c.now - 250), "<1s ago");
        assert_eq!(c.relative(c.now + 252_000), "in 4m12s");
        assert_eq!(c.relative(c.now - 3_900_000), "1h5m ago");
        assert_eq!(c.relative(c.now + 2 * 86_400_000 + 7_200_000), "in 2d2h");
        assert_eq!(c.relative(c.now + 3_600_000 + 5_000), "in 1h");
        assert_eq!(duration(3), "3ms");
        assert_eq!(duration(1_234), "1.2s");
        assert_eq!(duration(252_000), "4m12s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(12 * 1024 * 1024 + 400_000), "12.4 MiB");
        assert_eq!(count(100_000), "100,000");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
    }
}
