//! Option values: times, durations, event kinds, timer names.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use kron_core::duration::parse_duration;
use kron_core::event::EventKind;
use kron_core::time::{parse_datetime, validate_timezone, EpochMs};
use kron_core::timer::validate_timer_id;

use crate::error::{one_line, CliError, CliResult};

/// A time given on the command line: a duration back from `now` ("30m", "2d"), or a datetime
/// ("2026-03-08T02:30:00Z", "2026-03-08T02:30:00+01:00"; without an offset it is local time in
/// `tz`).
pub fn time_or_ago(
    arg: &'static str,
    text: &str,
    now: EpochMs,
    tz: &TimeZone,
) -> CliResult<EpochMs> {
    let duration = match parse_duration(arg, text) {
        Ok(ms) => {
            let back = i64::try_from(ms).unwrap_or(i64::MAX);
            return Ok(now.saturating_sub(back));
        }
        Err(e) => e,
    };
    // Report the reading the value was meant for: a date starts with its year and a dash (or is
    // a compact 20260308...), a duration with a number; anything else gets both forms, not a parser's internals.
    let s = text.trim();
    let year_digits = s
        .strip_prefix(['+', '-'])
        .unwrap_or(s)
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    let looks_like_date = year_digits >= 4
        && s.as_bytes().get(year_digits).is_some_and(|&b| b == b'-')
        || year_digits >= 8
        || s.starts_with(['+', '-']);
    if looks_like_date {
        return datetime(arg, text, tz);
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(CliError::from(duration));
    }
    Err(CliError::usage(format!(
        "invalid {arg} {text:?}: expected a duration back from now (30m, 2h, 1d) or an ISO 8601 \
         time (2026-03-08T02:30:00Z, 2026-03-08T02:30:00+01:00, or local 2026-03-08 02:30)"
    )))
}

/// A datetime; without an offset, local time in `tz` (the same rules as `at=` timers: a time in
/// a DST gap moves forward, an ambiguous one is the earlier instant).
pub fn datetime(arg: &'static str, text: &str, tz: &TimeZone) -> CliResult<EpochMs> {
    match tz.iana_name() {
        Some(name) if validate_timezone(name).is_ok() => {
            parse_datetime(arg, text, name).map_err(CliError::from)
        }
        // A zone without an IANA name (a POSIX TZ string, say): read offset-less values with jiff.
        _ => {
            let s = text.trim();
            if let Ok(ts) = s.parse::<Timestamp>() {
                return Ok(ts.as_millisecond());
            }
            let dt = s
                .parse::<DateTime>()
                .or_else(|_| {
                    s.parse::<Date>()
                        .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
                })
                .map_err(|e| CliError::usage(format!("invalid {arg} {text:?}: {e}")))?;
            let ts = tz
                .to_ambiguous_timestamp(dt)
                .compatible()
                .map_err(|e| CliError::usage(format!("invalid {arg} {text:?}: {e}")))?;
            Ok(ts.as_millisecond())
        }
    }
}

/// A duration ("30s", "2m"), or a bare number of seconds, as milliseconds.
pub fn seconds_or_duration(arg: &'static str, text: &str) -> CliResult<u64> {
    let trimmed = text.trim();
    if let Ok(secs) = trimmed.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok((secs * 1_000.0) as u64);
        }
        return Err(CliError::usage(format!(
            "invalid {arg} {text:?}: must be a positive number of seconds or a duration such as 30s"
        )));
    }
    parse_duration(arg, trimmed).map_err(CliError::from)
}

/// A count option (`--limit`, `-n`): a whole number. Clap's own message for `-1` would be
/// "unexpected argument", and for a huge value "number too large to fit in target type".
pub fn count(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .map_err(|_| format!("must be a whole number from 0 to {}", usize::MAX))
}

/// Event kinds as people type them: `RUN_FAILED`, `run_failed`, `failed`, `paused`.
pub fn kinds(values: &[String]) -> CliResult<Vec<EventKind>> {
    let mut out = Vec::new();
    for value in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        let upper = value.to_ascii_uppercase().replace('-', "_");
        let kind = EventKind::parse(&upper)
            .or_else(|| EventKind::parse(&format!("RUN_{upper}")))
            .or_else(|| EventKind::parse(&format!("TIMER_{upper}")))
            .ok_or_else(|| {
                let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                CliError::usage(format!(
                    "unknown event kind {value:?}; kinds are {}",
                    all.join(", ")
                ))
            })?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    Ok(out)
}

/// A timer name must be well-formed (a malformed one is a usage error).
pub fn timer_name(name: &str) -> CliResult<&str> {
    validate_timer_id(name)
        .map(|()| name)
        .map_err(|e| CliError::usage(one_line(&e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        let tz = TimeZone::get("Europe/Berlin").unwrap_or(TimeZone::UTC);
        let now = 1_795_698_000_000; // 2026-11-26T13:00:00Z
        assert_eq!(
            time_or_ago("since", "30m", now, &tz).ok(),
            Some(now - 1_800_000)
        );
        assert_eq!(
            time_or_ago("since", "2026-11-26T12:00:00Z", now, &tz).ok(),
            Some(now - 3_600_000)
        );
        // Local (Berlin, +01:00) when no offset is given.
        assert_eq!(
            time_or_ago("since", "2026-11-26 13:00", now, &tz).ok(),
            Some(now - 3_600_000)
        );
        let e = time_or_ago("since", "yesterday", now, &tz);
        assert!(matches!(e, Err(CliError::Usage(_))), "{e:?}");
        // The error is the one of the reading the value was meant for, never a parser's
        // internals.
        let cases = [
            ("1h60m", "invalid since \"1h60m\": 60m is out of range"),
            (" 30m", "remove the spaces around the duration"),
            ("2026-01-01T00:00:00+24:00", "offset +24:00 is out of range"),
            (
                "9999-12-31T23:59:59Z",
                "out of range: instants must be between",
            ),
            (
                "yesterday",
                "expected a duration back from now (30m, 2h, 1d) or an ISO 8601",
            ),
        ];
        for (text, want) in cases {
            match time_or_ago("since", text, now, &tz) {
                Err(CliError::Usage(message)) => {
                    assert!(message.contains(want), "{text}: {message}");
                    assert!(!message.contains("four digit"), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(time_or_ago("since", "20261126T120000Z", now, &tz).is_ok());
        assert_eq!(seconds_or_duration("timeout", "2").ok(), Some(2_000));
        assert_eq!(seconds_or_duration("timeout", "1.5").ok(), Some(1_500));
        assert_eq!(seconds_or_duration("timeout", "2m").ok(), Some(120_000));
        assert!(seconds_or_duration("timeout", "-1").is_err());
    }

    #[test]
    fn kinds_are_forgiving() {
        let got = kinds(&[
            "RUN_FAILED".to_string(),
            "dead".to_string(),
            "paused".to_string(),
            "run-started".to_string(),
            "failed".to_string(),
        ])
        .unwrap_or_default();
        assert_eq!(
            got,
            vec![
                EventKind::RunFailed,
                EventKind::RunDead,
                EventKind::TimerPaused,
                EventKind::RunStarted
            ]
        );
        assert!(kinds(&["nope".to_string()]).is_err());
    }
}
