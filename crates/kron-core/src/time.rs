//! Instants are `i64` milliseconds since the Unix epoch, UTC. This module converts them to and from
//! text. Parsing of user datetimes lives here; time zones come from jiff's bundled tz database.

use std::sync::OnceLock;

use jiff::civil::{DateTime, Time};
use jiff::fmt::temporal::Pieces;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone, TimeZoneDatabase};
use jiff::Timestamp;

use crate::CoreError;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type EpochMs = i64;

/// Earliest instant jiff (and so Kron) can represent: -9999-01-02T01:59:59Z.
pub const MIN_EPOCH_MS: EpochMs = -377_705_023_201_000;
/// Latest instant jiff (and so Kron) can represent: 9999-12-30T22:00:00.999Z.
pub const MAX_EPOCH_MS: EpochMs = 253_402_207_200_999;

/// `2026-11-26T22:38:25.123Z` (always UTC, always milliseconds).
///
/// Values outside jiff's range (about ±9999 years) are clamped to it rather than panicking; years
/// below 0 use the signed six-digit ISO 8601 form so that [`parse_datetime`] reads them back.
pub fn format_utc(ms: EpochMs) -> String {
    let ts = to_timestamp(ms);
    let dt = Offset::UTC.to_datetime(ts);
    let year = i32::from(dt.year());
    let year = if year < 0 {
        format!("-{:06}", -year)
    } else {
        format!("{year:04}")
    };
    format!(
        "{year}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// Checks that `name` is an IANA time zone known to the bundled database (`UTC` included).
/// Error: `CoreError::InvalidArgument { arg: "timezone", .. }`.
pub fn validate_timezone(name: &str) -> Result<(), CoreError> {
    time_zone(name).map(|_| ())
}

/// Parses an ISO 8601 / RFC 3339 datetime for argument `arg`. A value with `Z` or an offset is
/// exact; a value without one is a local time in `timezone` (a time in a DST gap moves forward,
/// an ambiguous one takes the earlier instant).
///
/// Accepted: `2026-03-08T02:30:00Z`, `2026-03-08T02:30:00-05:00`, `2026-03-08T02:30:00`,
/// `2026-03-08 02:30:00`, `2026-03-08T02:30`, fractional seconds, and a bare date
/// (`2026-03-08` = local midnight). A local time in a spring-forward gap becomes the first instant
/// after the gap (02:30 on a 02:00→03:00 day is 03:00), the same rule cron uses, so `at` and cron
/// agree on when a non-existent local time happens. Precision beyond milliseconds is truncated
/// ([`parse_datetime_micros`] keeps it).
pub fn parse_datetime(arg: &'static str, text: &str, timezone: &str) -> Result<EpochMs, CoreError> {
    Ok(parse_timestamp(arg, text, timezone)?.as_millisecond())
}

/// [`parse_datetime`] to the microsecond (finer precision is truncated).
pub fn parse_datetime_micros(
    arg: &'static str,
    text: &str,
    timezone: &str,
) -> Result<i64, CoreError> {
    Ok(parse_timestamp(arg, text, timezone)?.as_microsecond())
}

fn parse_timestamp(arg: &'static str, text: &str, timezone: &str) -> Result<Timestamp, CoreError> {
    let tz = time_zone(timezone)?;
    let err = |reason: String| CoreError::invalid(arg, text, reason);
    let s = text.trim();
    if s.is_empty() {
        return Err(err(format!("datetime is empty; {DATETIME_HINT}")));
    }
    if s.contains('[') {
        // jiff would ignore the bracketed zone of an offset-less value and silently read it in
        // `timezone` instead; refuse rather than guess.
        return Err(err(format!(
            "time zone annotations like [Europe/Berlin] are not supported; give an offset or \
             pass the timezone separately; {DATETIME_HINT}"
        )));
    }
    if let Some(year) = oversized_year(s) {
        return Err(err(format!("year {year} is {}", out_of_range())));
    }
    // Split first, decide second: jiff's civil parser accepts "...-05:00" and silently drops the
    // offset, so whether an offset is present decides which reading applies.
    let pieces = Pieces::parse(s).map_err(|e| err(format!("{e}; {DATETIME_HINT}")))?;
    let dt = pieces
        .date()
        .to_datetime(pieces.time().unwrap_or(Time::midnight()));
    let ts = if let Some(offset) = pieces.offset() {
        let offset = offset.to_numeric_offset();
        if offset.seconds().unsigned_abs() >= MAX_OFFSET_SECONDS {
            return Err(err(format!(
                "offset {} is out of range: offsets must be between -23:59 and +23:59",
                show_offset(offset)
            )));
        }
        match s.parse::<Timestamp>() {
            Ok(ts) => ts,
            // A well-formed value whose instant jiff cannot represent.
            Err(_) if offset.to_timestamp(dt).is_err() => {
                return Err(err(out_of_range()));
            }
            Err(e) => return Err(err(format!("{e}; {DATETIME_HINT}"))),
        }
    } else {
        resolve_local(&tz, dt).map_err(|_| err(out_of_range()))?
    };
    Ok(ts)
}

/// Offsets are below a day: `+24:00` and beyond name no real place (jiff would take up to 25:59).
const MAX_OFFSET_SECONDS: u32 = 24 * 3600;

/// `+24:00`, `-25:00:30`: an offset as ISO 8601 writes it.
fn show_offset(offset: Offset) -> String {
    let total = offset.seconds();
    let sign = if total < 0 { '-' } else { '+' };
    let abs = total.unsigned_abs();
    let (h, m, sec) = (abs / 3600, abs / 60 % 60, abs % 60);
    if sec == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{sec:02}")
    }
}

/// The reason given for any instant outside the supported range, with that range in ISO form.
pub fn out_of_range() -> String {
    format!(
        "out of range: instants must be between {} and {}",
        format_utc(MIN_EPOCH_MS),
        format_utc(MAX_EPOCH_MS)
    )
}

const DATETIME_HINT: &str = "expected an ISO 8601 datetime such as 2026-03-08T02:30:00Z, \
     2026-03-08T02:30:00-05:00, 2026-03-08 02:30:00 (local) or 2026-03-08";

/// The instant a local wall-clock time names in `tz`: a time in a gap becomes the first instant
/// after the gap (the transition itself), an ambiguous time the earlier of its two instants.
fn resolve_local(tz: &TimeZone, dt: DateTime) -> Result<Timestamp, jiff::Error> {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt),
        // The earlier instant carries the offset in force before the clocks went back.
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt),
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the post-gap offset, `dt` lands just before the transition, so the next
            // transition is exactly the end of the gap.
            let probe = after.to_timestamp(dt)?;
            match tz.following(probe).next() {
                Some(transition) => Ok(transition.timestamp()),
                // Unreachable for a real gap; jiff's own choice is a sane fallback.
                None => tz.to_ambiguous_timestamp(dt).compatible(),
            }
        }
    }
}

/// Detects a leading year of five or more digits whose value jiff cannot represent, so the error
/// says "year out of range" instead of jiff's "invalid digit in month".
fn oversized_year(s: &str) -> Option<&str> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let end = unsigned
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unsigned.len());
    let digits = &unsigned[..end];
    // Five or more digits followed by '-' is a year; a compact date (`20260308`) is not.
    let is_year = digits.len() >= 5 && unsigned[end..].starts_with('-');
    let too_big = digits.trim_start_matches('0').len() > 4;
    (is_year && too_big).then_some(digits)
}

/// The instant `ms` as a jiff timestamp, clamped to jiff's range.
pub(crate) fn to_timestamp(ms: EpochMs) -> Timestamp {
    match Timestamp::from_millisecond(ms.clamp(MIN_EPOCH_MS, MAX_EPOCH_MS)) {
        Ok(ts) => ts,
        // The clamp keeps `ms` in range, so this arm is only reachable by a jiff bug.
        Err(_) if ms < 0 => Timestamp::MIN,
        Err(_) => Timestamp::MAX,
    }
}

/// The bundled tz database. Kron never reads the host's zoneinfo: schedules must compute the
/// same instants on every machine, whatever tzdata version the OS ships.
fn tz_db() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// Looks up an IANA time zone by name (ASCII case-insensitive, as jiff does).
pub(crate) fn time_zone(name: &str) -> Result<TimeZone, CoreError> {
    let err = |reason: &str| {
        CoreError::invalid(
            "timezone",
            name,
            format!("{reason}; use an IANA name such as UTC, Europe/Berlin or America/New_York"),
        )
    };
    if name.is_empty() {
        return Err(err("time zone is empty"));
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(err(
            "time zone names contain no spaces or control characters",
        ));
    }
    match tz_db().get(name) {
        // `Etc/Unknown` is jiff's placeholder for "no idea", not a zone anyone can schedule in.
        Ok(tz) if tz.is_unknown() => Err(err("not a real time zone")),
        Ok(tz) => Ok(tz),
        Err(_) => Err(err("unknown time zone")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_matches_jiff() {
        assert_eq!(MIN_EPOCH_MS, Timestamp::MIN.as_millisecond());
        assert_eq!(MAX_EPOCH_MS, Timestamp::MAX.as_millisecond());
    }

    #[test]
    fn formats_utc() {
        let cases: &[(EpochMs, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (1_795_000_000_123, "2026-11-18T11:06:40.123Z"),
            (1_796_337_505_123, "2026-12-03T22:38:25.123Z"),
            (1_772_955_000_000, "2026-03-08T07:30:00.000Z"),
            (MAX_EPOCH_MS, "9999-12-30T22:00:00.999Z"),
            (i64::MAX, "9999-12-30T22:00:00.999Z"),
            (MIN_EPOCH_MS, "-009999-01-02T01:59:59.000Z"),
            (i64::MIN, "-009999-01-02T01:59:59.000Z"),
            (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
            (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(format_utc(*ms), *want, "{ms}");
        }
    }

    #[test]
    fn timezones() {
        for name in [
            "UTC",
            "utc",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
            "Etc/GMT+5",
            "US/Eastern",
        ] {
            assert_eq!(validate_timezone(name), Ok(()), "{name}");
        }
        for name in [
            "",
            " ",
            "Mars/Olympus",
            "UTC\0",
            "\0",
            "Europe/Berlin ",
            "Local",
            "localtime",
            "Etc/Unknown",
            "../etc/passwd",
            "/usr/share/zoneinfo/UTC",
            "EST5EDT,M3.2.0,M11.1.0",
            "+01:00",
        ] {
            let e = validate_timezone(name).expect_err(name).to_string();
            assert!(e.contains("timezone"), "{name:?}: {e}");
            assert!(e.contains(&format!("{name:?}")), "{name:?}: {e}");
        }
    }

    #[test]
    fn parses_datetimes_to_the_microsecond() {
        let base = parse_datetime_micros("at", "2026-03-08T02:30:00Z", "UTC").expect("parse");
        let cases = [
            ("2026-03-08T02:30:00.123456Z", 123_456),
            ("2026-03-08T02:30:00.123456789Z", 123_456),
            ("2026-03-08T03:30:00.000001+01:00", 1),
            ("2026-03-08T02:30:00.5", 500_000),
        ];
        for (text, micros) in cases {
            assert_eq!(
                parse_datetime_micros("at", text, "UTC").ok(),
                Some(base + micros),
                "{text}"
            );
        }
        assert!(parse_datetime_micros("at", "soon", "UTC").is_err());
    }

    #[test]
    fn parses_datetimes() {
        let ny = "America/New_York";
        let cases: &[(&str, &str, &str)] = &[
            ("2026-03-08T02:30:00-05:00", ny, "2026-03-08T07:30:00.000Z"),
            ("2026-03-08T02:30:00Z", ny, "2026-03-08T02:30:00.000Z"),
            ("2026-03-08T02:30:00z", ny, "2026-03-08T02:30:00.000Z"),
            (
                "2026-03-08T02:30:00.123Z",
                "UTC",
                "2026-03-08T02:30:00.123Z",
            ),
            (
                "2026-03-08T02:30:00.123456789Z",
                "UTC",
                "2026-03-08T02:30:00.123Z",
            ),
            (
                "2026-03-08 02:30:00+01:00",
                "UTC",
                "2026-03-08T01:30:00.000Z",
            ),
            (
                "  2026-11-26T08:00:00Z  ",
                "UTC",
                "2026-11-26T08:00:00.000Z",
            ),
            // Naive values are local in `timezone`.
            (
                "2026-01-15T08:00:00",
                "Europe/Berlin",
                "2026-01-15T07:00:00.000Z",
            ),
            (
                "2026-01-15 08:00:00",
                "Europe/Berlin",
                "2026-01-15T07:00:00.000Z",
            ),
            (
                "2026-01-15T08:00",
                "Europe/Berlin",
                "2026-01-15T07:00:00.000Z",
            ),
            ("2026-01-15T08:00:00.25", "UTC", "2026-01-15T08:00:00.250Z"),
            ("2026-07-15T08:00:00", ny, "2026-07-15T12:00:00.000Z"),
            ("2026-03-08", ny, "2026-03-08T05:00:00.000Z"),
            ("2026-03-08", "UTC", "2026-03-08T00:00:00.000Z"),
            // Spring-forward gap (02:00 EST -> 03:00 EDT): moves to the end of the gap.
            ("2026-03-08T02:30:00", ny, "2026-03-08T07:00:00.000Z"),
            ("2026-03-08T02:00:00", ny, "2026-03-08T07:00:00.000Z"),
            ("2026-03-08T03:00:00", ny, "2026-03-08T07:00:00.000Z"),
            ("2026-03-08T01:59:59", ny, "2026-03-08T06:59:59.000Z"),
            (
                "2026-03-29T02:30:00",
                "Europe/Berlin",
                "2026-03-29T01:00:00.000Z",
            ),
            // Fall-back fold (02:00 EDT -> 01:00 EST): the earlier instant.
            ("2026-11-01T01:30:00", ny, "2026-11-01T05:30:00.000Z"),
            ("2026-11-01T01:00:00", ny, "2026-11-01T05:00:00.000Z"),
            ("2026-11-01T02:00:00", ny, "2026-11-01T07:00:00.000Z"),
            (
                "2026-10-25T02:30:00",
                "Europe/Berlin",
                "2026-10-25T00:30:00.000Z",
            ),
            (
                "2026-03-08T02:30:00+23:59",
                "UTC",
                "2026-03-07T02:31:00.000Z",
            ),
            (
                "2026-03-08T02:30:00-23:59",
                "UTC",
                "2026-03-09T02:29:00.000Z",
            ),
            // Extremes that jiff supports.
            ("9999-12-30T22:00:00Z", "UTC", "9999-12-30T22:00:00.000Z"),
            ("0001-01-01T00:00:00Z", "UTC", "0001-01-01T00:00:00.000Z"),
        ];
        for (text, tz, want) in cases {
            let got = parse_datetime("at", text, tz).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(format_utc(got), *want, "{text} in {tz}");
        }
    }

    #[test]
    fn rejects_datetimes() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("tomorrow", "expected an ISO 8601"),
            ("2026-13-01", "month"),
            ("2026-02-30", "day"),
            ("2026-03-08T25:00:00", "hour"),
            ("2026-03-08T24:00:00", "hour"),
            ("2026-03-08T02:30:00+26:00", "expected an ISO 8601"),
            (
                "2026-03-08T02:30:00+24:00",
                "offset +24:00 is out of range: offsets must be between -23:59 and +23:59",
            ),
            ("2026-03-08T02:30:00-25:00", "offset -25:00 is out of range"),
            (
                "2026-03-08T02:30:00+24:00:30",
                "offset +24:00:30 is out of range",
            ),
            ("2026-03-08T02:30:00+05:00junk", "expected an ISO 8601"),
            ("2026-03-08T02:30:00Zjunk", "expected an ISO 8601"),
            ("10000-01-01", "out of range"),
            ("10000-01-01T00:00:00Z", "out of range"),
            ("+010000-01-01T00:00:00Z", "out of range"),
            ("-10000-01-01", "out of range"),
            ("99999999999999999999-01-01", "out of range"),
            (
                "10000-01-01",
                "year 10000 is out of range: instants must be between",
            ),
            (
                "9999-12-31T23:59:59Z",
                "out of range: instants must be between -009999-01-02T01:59:59.000Z and \
                 9999-12-30T22:00:00.999Z",
            ),
            (
                "9999-12-31T23:59:59",
                "out of range: instants must be between",
            ),
            (
                "9999-12-31T00:00:00-05:00",
                "out of range: instants must be between",
            ),
            (
                "-009999-01-01T00:00:00Z",
                "out of range: instants must be between",
            ),
            ("2026-03-08T02:30:00[Europe/Berlin]", "annotations"),
            ("2026-03-08T02:30:00-05:00[America/New_York]", "annotations"),
            ("1700000000000", "expected an ISO 8601"),
            ("2026-03-08T02:30:00\0", "expected an ISO 8601"),
        ];
        for (text, fragment) in cases {
            let e = parse_datetime("at", text, "UTC")
                .expect_err(text)
                .to_string();
            assert!(e.contains("invalid at"), "{text:?}: {e}");
            assert!(e.contains(&format!("{text:?}")), "{text:?}: {e}");
            assert!(e.contains(fragment), "{text:?}: {e}");
        }
        let e = parse_datetime("at", "2026-03-08", "Mars/Olympus").expect_err("bad zone");
        assert!(
            e.to_string().contains("invalid timezone \"Mars/Olympus\""),
            "{e}"
        );
    }

    #[test]
    fn format_then_parse_round_trips() {
        for ms in [
            0,
            -1,
            1,
            1_795_000_000_123,
            MIN_EPOCH_MS,
            MAX_EPOCH_MS,
            -62_167_219_200_001,
        ] {
            assert_eq!(parse_datetime("at", &format_utc(ms), "UTC"), Ok(ms), "{ms}");
        }
    }
}
