//! Durations as users write them: "500ms", "10s", "30m", "1h30m", "2d".
//!
//! The grammar is deliberately strict so a typo never silently becomes a different interval:
//! one or more `<integer><unit>` components with no spaces anywhere (not even around the value),
//! each unit at most once and largest first. Units: `w`, `d`, `h`, `m`, `s`, `ms`. No signs, no
//! fractions ("1.5s" is rejected with a hint to write "1500ms"). The first component may be any
//! size ("90s", "36h"); a component after a larger one must be below what carries into the next
//! unit up ("1h60m" and "1d24h" are rejected: write "2h" and "2d").

use crate::CoreError;

const MS_PER_SECOND: u64 = 1_000;
const MS_PER_MINUTE: u64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
const MS_PER_WEEK: u64 = 7 * MS_PER_DAY;

/// Largest accepted duration: anything longer could not be added to an `EpochMs` anyway.
pub const MAX_DURATION_MS: u64 = i64::MAX as u64;

/// Units from largest to smallest; the index doubles as the ordering rank. A unit's carry (how
/// many of it make one of the unit above) is the ratio of the two entries.
const UNITS: [(&str, u64); 6] = [
    ("w", MS_PER_WEEK),
    ("d", MS_PER_DAY),
    ("h", MS_PER_HOUR),
    ("m", MS_PER_MINUTE),
    ("s", MS_PER_SECOND),
    ("ms", 1),
];

const UNIT_HINT: &str = "use ms, s, m, h, d or w (e.g. 500ms, 30s, 5m, 1h30m, 2d)";

/// Parses a duration for argument `arg` into milliseconds; must be > 0.
pub fn parse_duration(arg: &'static str, text: &str) -> Result<u64, CoreError> {
    let err = |reason: String| CoreError::invalid(arg, text, reason);
    let s = text.trim();
    if s.is_empty() {
        return Err(err(format!("duration is empty; {UNIT_HINT}")));
    }
    if s.len() != text.len() {
        return Err(err(format!(
            "remove the spaces around the duration (write {s:?})"
        )));
    }
    if s.starts_with('-') {
        return Err(err("duration must be positive".to_string()));
    }
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut total: u64 = 0;
    // Rank of the previous unit in `UNITS`; the next one must come strictly later (smaller).
    let mut prev_rank: Option<usize> = None;
    while pos < bytes.len() {
        let digits_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let digits = &s[digits_start..pos];
        if digits.is_empty() {
            let rest = &s[pos..];
            return Err(err(if rest.starts_with(char::is_whitespace) {
                "spaces are not allowed inside a duration (write 1h30m, not 1h 30m)".to_string()
            } else {
                format!("expected a number at {rest:?}; {UNIT_HINT}")
            }));
        }
        if matches!(bytes.get(pos), Some(b'.') | Some(b',')) {
            return Err(err(
                "fractions are not supported; use a smaller unit (e.g. 1500ms instead of 1.5s)"
                    .to_string(),
            ));
        }
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &s[unit_start..pos];
        if unit.is_empty() {
            return Err(err(if pos == bytes.len() {
                format!("missing unit after {digits}; {UNIT_HINT}")
            } else {
                format!("unexpected {:?}; {UNIT_HINT}", &s[pos..])
            }));
        }
        let Some(rank) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(err(format!("unknown unit {unit:?}; {UNIT_HINT}")));
        };
        if prev_rank.is_some_and(|prev| rank <= prev) {
            return Err(err(
                "each unit may appear once, largest first (e.g. 1h30m)".to_string()
            ));
        }
        // After a larger unit, a part must be below its carry: 59m after an hour, 23h after a
        // day, 6d after a week.
        let carry = match prev_rank {
            Some(_) if rank > 0 => Some(UNITS[rank - 1].1 / UNITS[rank].1),
            _ => None,
        };
        prev_rank = Some(rank);
        let too_large = || {
            err(format!(
                "duration is too large (at most {MAX_DURATION_MS}ms)"
            ))
        };
        let value: u64 = digits.parse().map_err(|_| too_large())?;
        if let Some(carry) = carry.filter(|&carry| value >= carry) {
            return Err(err(format!(
                "{digits}{unit} is out of range after a larger unit (must be below {carry}{unit}); \
                 carry it into the larger unit or write the whole duration in {unit}"
            )));
        }
        let part = value.checked_mul(UNITS[rank].1).ok_or_else(too_large)?;
        total = total.checked_add(part).ok_or_else(too_large)?;
        if total > MAX_DURATION_MS {
            return Err(too_large());
        }
    }
    if total == 0 {
        return Err(err("duration must be greater than zero".to_string()));
    }
    Ok(total)
}

/// The canonical short form: 5_400_000 -> "1h30m", 500 -> "500ms", 90_061_000 -> "1d1h1m1s".
///
/// Days are the largest unit emitted (so "14d", not "2w"), zero components are left out, and
/// `0` is "0ms". `parse_duration` reads every output back to the same value.
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        return "0ms".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    // Weeks are skipped on purpose: "every 14d" reads better than "every 2w".
    for (name, unit_ms) in &UNITS[1..] {
        let count = rest / unit_ms;
        rest %= unit_ms;
        if count > 0 {
            out.push_str(&count.to_string());
            out.push_str(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts() {
        let cases: &[(&str, u64)] = &[
            ("500ms", 500),
            ("1ms", 1),
            ("10s", 10_000),
            ("30m", 1_800_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("2d", 172_800_000),
            ("1w", 604_800_000),
            ("1w2d", 777_600_000),
            ("1d2h3m4s5ms", 93_784_005),
            ("90s", 90_000),
            ("36h", 129_600_000),
            ("1h59m59s999ms", 7_199_999),
            ("1d23h", 169_200_000),
            ("1w6d23h59m59s999ms", 1_209_599_999),
            ("1h0m", 3_600_000),
            ("90m", 5_400_000),
            ("0h1m", 60_000),
            ("007s", 7_000),
            ("1000ms", 1_000),
            ("9223372036854775807ms", MAX_DURATION_MS),
            ("15250284452w", 9_223_372_036_569_600_000),
            ("106751991167d7h12m55s807ms", MAX_DURATION_MS),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration("every", text), Ok(*want), "{text:?}");
        }
    }

    #[test]
    fn rejects() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("0s", "greater than zero"),
            ("0ms", "greater than zero"),
            ("0h0m", "greater than zero"),
            ("-5s", "positive"),
            ("+5s", "expected a number"),
            ("1.5s", "fractions"),
            ("1,5s", "fractions"),
            ("10", "missing unit"),
            ("10x", "unknown unit"),
            ("10 s", "unexpected"),
            ("1h 30m", "spaces"),
            ("10S", "unknown unit"),
            ("1H", "unknown unit"),
            ("10sec", "unknown unit"),
            ("1y", "unknown unit"),
            ("s", "expected a number"),
            ("ms", "expected a number"),
            ("30m1h", "largest first"),
            ("1s1s", "largest first"),
            ("1m1m", "largest first"),
            ("1ms1s", "largest first"),
            ("99999999999999999999999s", "too large"),
            ("9223372036854775808ms", "too large"),
            ("9223372036854776s", "too large"),
            ("18446744073709551615ms", "too large"),
            ("18446744073709551616ms", "too large"),
            ("15250284453w", "too large"),
            ("106751991167d8h", "too large"),
            ("106751991167d7h12m55s808ms", "too large"),
            ("1s\0", "expected a number"),
            (" 10s", "spaces around"),
            ("10s ", "spaces around"),
            ("  10s \t", "spaces around"),
            ("\n1h30m\n", "spaces around"),
            (
                "1h60m",
                "60m is out of range after a larger unit (must be below 60m)",
            ),
            (
                "1d24h",
                "24h is out of range after a larger unit (must be below 24h)",
            ),
            ("1w7d", "below 7d"),
            ("1m60s", "below 60s"),
            ("1h90s", "below 60s"),
            ("1s1000ms", "below 1000ms"),
            ("1d1440m", "below 60m"),
            ("５s", "expected a number"),
            ("1秒", "unexpected"),
        ];
        for (text, fragment) in cases {
            let err = parse_duration("every", text).expect_err(text);
            let msg = err.to_string();
            assert!(msg.contains("every"), "{text:?}: {msg}");
            assert!(msg.contains(&format!("{text:?}")), "{text:?}: {msg}");
            assert!(msg.contains(fragment), "{text:?}: {msg}");
        }
    }

    #[test]
    fn formats() {
        let cases: &[(u64, &str)] = &[
            (0, "0ms"),
            (1, "1ms"),
            (500, "500ms"),
            (1_000, "1s"),
            (1_500, "1s500ms"),
            (60_500, "1m500ms"),
            (1_800_000, "30m"),
            (5_400_000, "1h30m"),
            (86_400_000, "1d"),
            (172_800_000, "2d"),
            (1_209_600_000, "14d"),
            (90_061_000, "1d1h1m1s"),
            (93_784_005, "1d2h3m4s5ms"),
            (3_600_001, "1h1ms"),
            (MAX_DURATION_MS, "106751991167d7h12m55s807ms"),
            (u64::MAX, "213503982334d14h25m51s615ms"),
        ];
        for (ms, want) in cases {
            assert_eq!(format_duration(*ms), *want, "{ms}");
            if *ms > 0 && *ms <= MAX_DURATION_MS {
                assert_eq!(parse_duration("every", want), Ok(*ms), "{want}");
            }
        }
    }
}
