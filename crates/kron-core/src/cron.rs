//! Cron expressions in a time zone.
//!
//! Parsing and field matching are croner's. Turning wall-clock matches into instants is done here,
//! because Kron promises a DST rule that differs from croner's built-in one:
//!
//! * a matching local time that does not exist (spring-forward gap) fires once, at the first
//!   instant after the gap;
//! * a matching local time that occurs twice (fall-back fold) fires once, at its first occurrence;
//! * except when the hour field is a wildcard or a step (`*`, `*/2`, `1-23/2`): such a schedule
//!   is a cadence, not a list of wall-clock times, so it fires on both copies of a repeated hour
//!   and simply has no fires in a skipped one.
//!
//! Croner classifies by "seconds, minutes and hours are all single values" instead, so with it a
//! list or range of hours (`0 1,13 * * *`) fired twice on fall-back and not at all in a gap, and a
//! minute step in a fixed hour (`*/15 2 * * *`) vanished on spring-forward day. Kron therefore asks
//! croner only for the next matching *wall-clock* time (croner on `jiff::civil::DateTime` has no
//! time zone, so none of its DST logic runs) and maps wall-clock times to instants itself, one
//! span of constant UTC offset at a time.

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use crate::cron_fields::Field;
use crate::time::{self, EpochMs};
use crate::CoreError;

/// Upper bound on constant-offset spans walked by one `next_after` call. Real zones change offset
/// at most a few times a year and every valid expression matches within a few years, so this only
/// stops pathological inputs from spinning.
const MAX_SPANS: usize = 10_000;

/// The last year with fire times: later wall-clock matches are beyond the cron library's search
/// limit (it stops early in the year 5000), so no schedule fires after this year ends.
pub const LAST_YEAR: i32 = 4999;

/// A compiled cron expression bound to a time zone: the matcher behind cron schedules, finding
/// the next wall-clock match with the DST rule applied.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: TimeZone,
    /// True when the hour field names explicit hours (values, ranges, lists): every match is a
    /// wall-clock time that fires once even when DST skips or repeats it. False for a wildcard or
    /// stepped hour field, which fires on every instant whose wall clock matches.
    wall_clock: bool,
}

/// The parser Kron uses, with every option spelled out rather than left to croner's defaults:
///
/// * `seconds: Optional` - 5 fields, or 6 with seconds first (a 5-field expression fires at :00).
/// * `year: Disallowed` - a 7th (year) field is rejected: Kron schedules are periodic.
/// * `dom_and_dow: false` - when both day-of-month and day-of-week are restricted, a day matches
///   if *either* does (`0 0 1 * MON` = the 1st and every Monday), as in Vixie cron and what cron
///   users expect. This is croner's default too. (Croner treats only a literal `*` as
///   unrestricted, so `*/2` in day-of-month also ORs with a day-of-week.)
/// * `alternative_weekdays: false` - day-of-week 0-7 with 0 and 7 = Sunday (Vixie), not Quartz's
///   1-7.
/// * `sloppy_ranges: false` - `/10` and `5/10` are rejected; write `*/10` or `5-59/10`.
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .dom_and_dow(false)
        .alternative_weekdays(false)
        .sloppy_ranges(false)
        .build()
}

/// Nicknames, expanded here (not by croner) so `@midnight` works and the hour field is known.
const NICKNAMES: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Parses `expr`; returns croner's compiled form and whether matches are wall-clock times.
fn compile(expr: &str) -> Result<(Cron, bool), CoreError> {
    let err = |reason: String| CoreError::invalid("cron", expr, reason);
    let trimmed = expr.trim();
    if trimmed.is_empty() {
        return Err(err("cron expression is empty".to_string()));
    }
    let expanded = if trimmed.starts_with('@') {
        match NICKNAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
        {
            Some((_, pattern)) => *pattern,
            None => {
                return Err(err(
                    "unknown nickname; use @yearly, @annually, @monthly, @weekly, @daily, \
                     @midnight or @hourly"
                        .to_string(),
                ))
            }
        }
    } else {
        trimmed
    };
    let fields: Vec<&str> = expanded.split_whitespace().collect();
    // Croner reads names (MON, JAN) in any field; a name outside month and day-of-week is a
    // mistake ("MON * * * *" would silently mean minute 1).
    if let Some(field) = fields.iter().find(|f| f.split(',').any(str::is_empty)) {
        return Err(err(format!(
            "field {field:?} has an empty item in its list"
        )));
    }
    if matches!(fields.len(), 5 | 6) {
        let offset = fields.len() - 5;
        let names = ["second", "minute", "hour", "day-of-month"];
        for (i, field) in fields.iter().enumerate().take(offset + 3) {
            let is_dom = i == offset + 2;
            let bad = field.chars().any(|c| {
                c.is_ascii_alphabetic() && !(is_dom && matches!(c, 'L' | 'W' | 'l' | 'w'))
            });
            if bad {
                let name = names[i + 1 - offset];
                return Err(err(format!(
                    "{name} field {field:?}: names are only allowed in the month and \
                     day-of-week fields"
                )));
            }
        }
    }
    if matches!(fields.len(), 5 | 6) {
        for (field, text) in Field::layout(fields.len() == 6).iter().zip(&fields) {
            field.check(text).map_err(err)?;
        }
    } else {
        return Err(err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds \
             first; got {}",
            fields.len()
        )));
    }
    let cron = parser()
        .parse(expanded)
        .map_err(|e| err(attribute(&fields, &e.to_string())))?;
    // Croner accepted the expression, so it has 5 fields or 6 with seconds first.
    let hour = if fields.len() == 6 {
        fields[2]
    } else {
        fields.get(1).copied().unwrap_or("*")
    };
    let wall_clock = !hour.contains(['*', '/']);
    // Expressions have no year, so anything that ever matches matches within 400 years; croner
    // searches ~3000. Reject "never" (30 February, 31 April) now rather than at every lookup.
    let never = DateTime::new(2000, 1, 1, 0, 0, 0, 0)
        .map(|origin| cron.find_next_occurrence(&origin, true).is_err())
        .unwrap_or(false);
    if never {
        return Err(err(
            "the expression never matches a real date (e.g. 30 February)".to_string(),
        ));
    }
    Ok((cron, wall_clock))
}

/// Croner's error `message`, prefixed with the first field croner rejects on its own (each field
/// tried with wildcards in the others), so the user knows where to look.
fn attribute(fields: &[&str], message: &str) -> String {
    let layout = Field::layout(fields.len() == 6);
    for (i, field) in layout.iter().enumerate() {
        let probe: Vec<&str> = (0..layout.len())
            .map(|j| if j == i { fields[j] } else { "*" })
            .collect();
        if parser().parse(&probe.join(" ")).is_err() {
            return format!("{} field {:?}: {message}", field.name(), fields[i]);
        }
    }
    message.to_string()
}

impl CronSchedule {
    /// Compiles `expr` (arg `cron`) in the IANA zone `timezone` (arg `timezone`).
    pub fn parse(expr: &str, timezone: &str) -> Result<CronSchedule, CoreError> {
        let tz = time::time_zone(timezone)?;
        let (cron, wall_clock) = compile(expr)?;
        Ok(CronSchedule {
            cron,
            tz,
            wall_clock,
        })
    }

    /// The first fire instant strictly after `t`, or `None` if there is none representable
    /// (croner stops searching at year 5000).
    ///
    /// Walks the time line one span of constant UTC offset at a time. In a span with offset `o`
    /// instant `i` shows wall clock `i + o`, so the next fire inside it is the next wall-clock
    /// match mapped back. Where a span begins the DST rule applies when `wall_clock`: after a
    /// spring-forward, a match inside the skipped wall-clock range fires at the span's first
    /// instant (the first instant after the gap); after a fall-back, wall-clock times already
    /// shown before the transition are skipped.
    pub fn next_after(&self, t: EpochMs) -> Option<EpochMs> {
        // Fires are whole seconds; "after t ms" is "after floor(t / 1000) s".
        let mut after = t.div_euclid(1000).max(Timestamp::MIN.as_second() - 1);
        for _ in 0..MAX_SPANS {
            let first_s = after.checked_add(1)?;
            let first = Timestamp::from_second(first_s).ok()?;
            let offset = i64::from(self.tz.to_offset(first).seconds());
            // Exclusive lower bound, as a wall-clock second count.
            let mut lower = after.checked_add(offset)?.max(Timestamp::MIN.as_second());
            if self.wall_clock {
                if let Some((start, before)) = self.span_start(first) {
                    if before > offset {
                        // Fall-back: [start + offset, start + before) was already shown.
                        lower = lower.max(start + before - 1);
                    } else if before < offset && start == first_s {
                        // Spring-forward right at `first`: [start + before, start + offset)
                        // never showed; a match in it fires now, once.
                        if self.next_civil_after(start + before - 1)? < start + offset {
                            return to_ms(start);
                        }
                    }
                }
            }
            let found = self.next_civil_after(lower)?;
            let Some(transition) = self.tz.following(first).next() else {
                return to_ms(found - offset);
            };
            let end = transition.timestamp().as_second();
            if found < end + offset {
                return to_ms(found - offset);
            }
            // Nothing in this span: continue with the span that begins at `end`.
            after = end - 1;
        }
        None
    }

    /// The transition that began the span containing `first` (in whole seconds) and the offset
    /// in force just before it.
    fn span_start(&self, first: Timestamp) -> Option<(i64, i64)> {
        // `preceding` is strict and transitions fall on whole seconds: this finds one <= first.
        let probe = first.checked_add(SignedDuration::from_secs(1)).ok()?;
        let transition = self.tz.preceding(probe).next()?;
        let start = transition.timestamp().as_second();
        let before = Timestamp::from_second(start.checked_sub(1)?).ok()?;
        Some((start, i64::from(self.tz.to_offset(before).seconds())))
    }

    /// The next wall-clock time (as seconds since 1970-01-01T00:00:00 local) strictly after
    /// `lower` that matches the expression, ignoring time zones entirely.
    fn next_civil_after(&self, lower: i64) -> Option<i64> {
        let origin = Offset::UTC.to_datetime(Timestamp::from_second(lower).ok()?);
        let found = self.cron.find_next_occurrence(&origin, false).ok()?;
        // Croner gives up somewhere early in its limit year, depending on the expression; a
        // fixed end (the last wall-clock second of LAST_YEAR) is one rule to document.
        if i32::from(found.year()) > LAST_YEAR {
            return None;
        }
        Some(Offset::UTC.to_timestamp(found).ok()?.as_second())
    }
}

fn to_ms(seconds: i64) -> Option<EpochMs> {
    seconds.checked_mul(1000)
}

/// An English description of `expr` (for `kron cron`), after validating it.
///
/// Croner's, with its day-of-month wording corrected: it describes `LW` (the last weekday,
/// Monday to Friday) as "the last day of the month", and `W` as "the weekday nearest" without
/// saying that a weekday here means Monday to Friday.
pub fn describe_cron(expr: &str) -> Result<String, CoreError> {
    let (cron, _) = compile(expr)?;
    let mut text = cron.describe();
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let dom = match fields.len() {
        5 => fields[2],
        6 => fields[3],
        _ => "",
    };
    if dom.split(',').any(|item| item.eq_ignore_ascii_case("LW")) {
        text = text.replace(
            "the last day of the month",
            "the last weekday (Monday to Friday) of the month",
        );
    }
    Ok(text.replace(
        "the weekday nearest day",
        "the weekday (Monday to Friday) nearest day",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{format_utc, parse_datetime};

    fn at(text: &str) -> EpochMs {
        parse_datetime("at", text, "UTC").expect("test instant")
    }

    /// The next `n` fires after `start` as formatted UTC strings.
    fn fires(expr: &str, tz: &str, start: &str, n: usize) -> Vec<String> {
        let schedule = CronSchedule::parse(expr, tz).expect("test expression");
        let mut t = at(start);
        let mut out = Vec::new();
        for _ in 0..n {
            match schedule.next_after(t) {
                Some(next) => {
                    assert!(next > t, "{expr}: {next} not after {t}");
                    out.push(format_utc(next));
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    #[test]
    fn accepts() {
        // (expression, wall_clock)
        let cases: &[(&str, bool)] = &[
            ("* * * * *", false),
            ("0 8 * * *", true),
            ("  0 8 * * *  ", true),
            ("30 2 * * *", true),
            ("0 * * * *", false),
            ("*/15 * * * *", false),
            ("*/15 2 * * *", true),
            ("0 */2 * * *", false),
            ("0 1-23/2 * * *", false),
            ("0 1,13 * * *", true),
            ("0 9-17 * * MON-FRI", true),
            ("0 0 1 JAN *", true),
            ("0 0 1 jan *", true),
            ("0 12 * * mon,wed,fri", true),
            ("0 0 L * *", true),
            ("0 0 * * 5L", true),
            ("0 0 * * FRI#2", true),
            ("0 0 15W * *", true),
            ("0 0 * * 7", true),
            ("0 0 ? * MON", true),
            ("0 0 1 * MON", true),
            ("5-59/5 * * * *", false),
            ("0,30 8,20 1-15 1-6 *", true),
            ("*/10 * * * * *", false),
            ("0 30 8 * * *", true),
            ("30 0 */6 * * *", false),
            ("0 0 0 29 2 *", true),
            ("@hourly", false),
            ("@daily", true),
            ("@midnight", true),
            ("@weekly", true),
            ("@monthly", true),
            ("@yearly", true),
            ("@annually", true),
            ("@DAILY", true),
        ];
        for (expr, wall_clock) in cases {
            let (_, got) = compile(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(got, *wall_clock, "{expr}");
            assert!(CronSchedule::parse(expr, "Europe/Berlin").is_ok(), "{expr}");
        }
    }

    #[test]
    fn rejects() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("* * * *", "expected 5 fields"),
            ("*", "got 1"),
            ("0 0 * * * 2026", "day-of-week 2026 is out of range 0-7"),
            ("* * * * * * *", "or 6 with seconds first; got 7"),
            ("0 0 0 1 1 * 2026", "got 7"),
            ("60 * * * *", "minute 60 is out of range 0-59"),
            ("* 24 * * *", "hour 24 is out of range 0-23"),
            ("* * 0 * *", "day-of-month 0 is out of range 1-31"),
            ("* * 32 * *", "day-of-month 32 is out of range 1-31"),
            ("* * * 13 *", "month 13 is out of range 1-12"),
            ("* * * * 8", "day-of-week 8 is out of range 0-7"),
            ("61 * * * * *", "second 61 is out of range 0-59"),
            ("5-1 * * * *", "minute range 5-1 goes backwards"),
            (
                "*/0 * * * *",
                "minute step \"*/0\": the step must be at least 1",
            ),
            (", * * * *", "empty item"),
            ("1,,2 * * * *", "empty item"),
            ("/10 * * * *", "a step applies to * or a range"),
            ("5/10 * * * *", "a step applies to * or a range"),
            ("a * * * *", "names are only allowed"),
            ("MON * * * *", "minute field"),
            ("0 0 JAN * *", "day-of-month field"),
            ("0 8 * * FUNDAY", "day-of-week field \"FUNDAY\""),
            ("0 8 * * * ;rm", ""),
            ("0 0 30 2 *", "never matches"),
            ("0 0 31 4 *", "never matches"),
            ("@reboot", "unknown nickname"),
            ("@every 5m", "unknown nickname"),
            ("@", "unknown nickname"),
            ("0 0 * * *\0", ""),
            ("0 25 * * *", "hour 25 is out of range 0-23"),
            (
                "0 0 * * FRI#6",
                "day-of-week \"FRI#6\": the occurrence after # must be 1 to 5",
            ),
            ("0 0 32W * *", "day-of-month 32 is out of range 1-31"),
            ("0 0 * * MON-9", "day-of-week 9 is out of range 0-7"),
            ("0 0 1-40/2 * *", "day-of-month 40 is out of range 1-31"),
            ("*/x * * * *", "minute field \"*/x\""),
        ];
        for (expr, fragment) in cases {
            let e = compile(expr).expect_err(expr).to_string();
            assert!(e.starts_with("invalid cron "), "{expr:?}: {e}");
            assert!(e.contains(&format!("{expr:?}")), "{expr:?}: {e}");
            assert!(e.contains(fragment), "{expr:?}: {e}");
        }
        let e = CronSchedule::parse("0 8 * * *", "Mars/Olympus").expect_err("bad zone");
        assert!(
            e.to_string()
                .starts_with("invalid timezone \"Mars/Olympus\""),
            "{e}"
        );
    }

    #[test]
    fn next_after_in_utc() {
        // (expression, start, expected fires)
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "0 8 * * *",
                "2026-11-26T07:59:59.999Z",
                &["2026-11-26T08:00:00.000Z", "2026-11-27T08:00:00.000Z"],
            ),
            // Strictly after: an instant that is itself a fire is skipped.
            (
                "0 8 * * *",
                "2026-11-26T08:00:00Z",
                &["2026-11-27T08:00:00.000Z"],
            ),
            (
                "0 8 * * *",
                "2026-11-26T08:00:00.001Z",
                &["2026-11-27T08:00:00.000Z"],
            ),
            (
                "*/15 * * * *",
                "2026-11-26T22:38:25.123Z",
                &[
                    "2026-11-26T22:45:00.000Z",
                    "2026-11-26T23:00:00.000Z",
                    "2026-11-26T23:15:00.000Z",
                ],
            ),
            (
                "*/20 * * * * *",
                "2026-11-26T22:38:25.123Z",
                &[
                    "2026-11-26T22:38:40.000Z",
                    "2026-11-26T22:39:00.000Z",
                    "2026-11-26T22:39:20.000Z",
                ],
            ),
            (
                "0 0 L * *",
                "2026-01-31T00:00:00Z",
                &["2026-02-28T00:00:00.000Z", "2026-03-31T00:00:00.000Z"],
            ),
            (
                "0 0 * * 5L",
                "2026-01-01T00:00:00Z",
                &["2026-01-30T00:00:00.000Z", "2026-02-27T00:00:00.000Z"],
            ),
            (
                "0 0 * * MON#2",
                "2026-01-01T00:00:00Z",
                &["2026-01-12T00:00:00.000Z", "2026-02-09T00:00:00.000Z"],
            ),
            // Day-of-month OR day-of-week (Vixie): the 13th, and every Friday.
            (
                "0 0 13 * FRI",
                "2026-02-01T00:00:00Z",
                &[
                    "2026-02-06T00:00:00.000Z",
                    "2026-02-13T00:00:00.000Z",
                    "2026-02-20T00:00:00.000Z",
                    "2026-02-27T00:00:00.000Z",
                    "2026-03-06T00:00:00.000Z",
                    "2026-03-13T00:00:00.000Z",
                ],
            ),
            // A step on `*` restricts the day of month, so it ORs with the day of week too:
            // odd days (1, 3, 5, ...) and every Monday (2026-02-02, 2026-02-16).
            (
                "0 0 */2 * MON",
                "2026-02-01T00:00:00Z",
                &[
                    "2026-02-02T00:00:00.000Z",
                    "2026-02-03T00:00:00.000Z",
                    "2026-02-05T00:00:00.000Z",
                    "2026-02-07T00:00:00.000Z",
                    "2026-02-09T00:00:00.000Z",
                    "2026-02-11T00:00:00.000Z",
                    "2026-02-13T00:00:00.000Z",
                    "2026-02-15T00:00:00.000Z",
                    "2026-02-16T00:00:00.000Z",
                ],
            ),
            // `?` is `*`: only Mondays.
            (
                "0 0 ? * MON",
                "2026-02-01T00:00:00Z",
                &["2026-02-02T00:00:00.000Z", "2026-02-09T00:00:00.000Z"],
            ),
            // LW: the last Monday-to-Friday day (2026-01-31 is a Saturday, 2026-05-31 a Sunday).
            (
                "0 0 LW * *",
                "2026-01-01T00:00:00Z",
                &[
                    "2026-01-30T00:00:00.000Z",
                    "2026-02-27T00:00:00.000Z",
                    "2026-03-31T00:00:00.000Z",
                    "2026-04-30T00:00:00.000Z",
                    "2026-05-29T00:00:00.000Z",
                ],
            ),
            // 15W: the weekday nearest the 15th (2026-02-15 is a Sunday, 2026-08-15 a Saturday).
            (
                "0 0 15W * *",
                "2026-02-01T00:00:00Z",
                &["2026-02-16T00:00:00.000Z", "2026-03-16T00:00:00.000Z"],
            ),
            (
                "0 0 29 2 *",
                "2026-01-01T00:00:00Z",
                &["2028-02-29T00:00:00.000Z", "2032-02-29T00:00:00.000Z"],
            ),
            (
                "@weekly",
                "2026-11-26T00:00:00Z",
                &["2026-11-29T00:00:00.000Z", "2026-12-06T00:00:00.000Z"],
            ),
            (
                "@yearly",
                "2026-11-26T00:00:00Z",
                &["2027-01-01T00:00:00.000Z", "2028-01-01T00:00:00.000Z"],
            ),
            (
                "0 0 1 1 *",
                "1969-12-31T23:59:59.999Z",
                &["1970-01-01T00:00:00.000Z", "1971-01-01T00:00:00.000Z"],
            ),
        ];
        for (expr, start, want) in cases {
            assert_eq!(
                fires(expr, "UTC", start, want.len()),
                *want,
                "{expr} after {start}"
            );
        }
    }

    #[test]
    fn next_after_in_zones() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            (
                "0 8 * * *",
                "Europe/Berlin",
                "2026-01-15T00:00:00Z",
                &["2026-01-15T07:00:00.000Z", "2026-01-16T07:00:00.000Z"],
            ),
            (
                "0 8 * * *",
                "Asia/Kolkata",
                "2026-01-15T00:00:00Z",
                &["2026-01-15T02:30:00.000Z", "2026-01-16T02:30:00.000Z"],
            ),
            // Lord Howe springs forward 02:00 -> 02:30 (+10:30 -> +11) on 2026-10-04.
            (
                "15 2 * * *",
                "Australia/Lord_Howe",
                "2026-10-03T12:00:00Z",
                &["2026-10-03T15:30:00.000Z", "2026-10-04T15:15:00.000Z"],
            ),
            // ... and falls back 02:00 -> 01:30 on 2026-04-05: 01:30-02:00 repeats.
            (
                "*/15 * * * *",
                "Australia/Lord_Howe",
                "2026-04-04T14:20:00Z",
                &[
                    "2026-04-04T14:30:00.000Z",
                    "2026-04-04T14:45:00.000Z",
                    "2026-04-04T15:00:00.000Z",
                    "2026-04-04T15:15:00.000Z",
                    "2026-04-04T15:30:00.000Z",
                ],
            ),
            (
                "45 1 * * *",
                "Australia/Lord_Howe",
                "2026-04-04T12:00:00Z",
                &["2026-04-04T14:45:00.000Z", "2026-04-05T15:15:00.000Z"],
            ),
        ];
        for (expr, tz, start, want) in cases {
            assert_eq!(fires(expr, tz, start, want.len()), *want, "{expr} in {tz}");
        }
    }

    #[test]
    fn extremes_do_not_panic() {
        let s = CronSchedule::parse("*/15 * * * *", "America/New_York").expect("valid");
        for t in [
            i64::MIN,
            i64::MIN + 1,
            -1,
            0,
            time::MIN_EPOCH_MS,
            time::MAX_EPOCH_MS,
            i64::MAX - 1,
            i64::MAX,
        ] {
            if let Some(next) = s.next_after(t) {
                assert!(next > t);
            }
        }
        assert_eq!(s.next_after(i64::MAX), None);
        // The last fire is in the year 4999, whatever the expression.
        for (expr, from, last) in [
            (
                "*/15 * * * *",
                "4999-12-30T00:00:00Z",
                "4999-12-31T23:45:00.000Z",
            ),
            (
                "0 0 1 1 *",
                "4990-01-01T00:00:00Z",
                "4999-01-01T00:00:00.000Z",
            ),
            (
                "*/10 * * * * *",
                "4999-12-31T23:00:00Z",
                "4999-12-31T23:59:50.000Z",
            ),
        ] {
            let s = CronSchedule::parse(expr, "UTC").expect("valid");
            let t = at(from);
            let mut fires = std::iter::successors(s.next_after(t), |&f| s.next_after(f));
            let final_fire = fires.by_ref().take(2_000_000).last().map(format_utc);
            assert_eq!(final_fire.as_deref(), Some(last), "{expr}");
        }
        // Croner stops at year 5000.
        assert_eq!(s.next_after(at("5000-12-31T23:59:00Z")), None);
        assert!(s.next_after(i64::MIN).is_some());
    }

    /// Why Kron maps wall-clock times itself: croner's own zoned search (4.0.3) classifies by
    /// "seconds, minutes and hours all single values", which breaks the contract for hour lists
    /// and for minute steps in a fixed hour. If this starts failing croner changed its rule; the
    /// `tests/dst.rs` contract is what matters.
    #[test]
    fn croner_zoned_rule_differs_from_kron() {
        let ny = time::time_zone("America/New_York").expect("zone");
        let croner_next = |expr: &str, start: &str| {
            let cron = parser().parse(expr).expect("valid");
            let from = jiff::Timestamp::from_millisecond(at(start))
                .expect("range")
                .to_zoned(ny.clone());
            let next = cron.find_next_occurrence(&from, false).expect("next");
            format_utc(next.timestamp().as_millisecond())
        };
        let kron_next = |expr: &str, start: &str| {
            let s = CronSchedule::parse(expr, "America/New_York").expect("valid");
            s.next_after(at(start)).map(format_utc).expect("next")
        };
        // (expression, start, croner's answer, Kron's answer)
        let cases = [
            // Fall-back: croner repeats 01:00 for an hour list; Kron fires the first copy only.
            (
                "0 1,13 * * *",
                "2026-11-01T05:00:00Z",
                "2026-11-01T06:00:00.000Z",
                "2026-11-01T18:00:00.000Z",
            ),
            // Spring-forward: croner drops 02:00 of a list; Kron fires at 03:00 EDT.
            (
                "0 2,14 * * *",
                "2026-03-08T05:00:00Z",
                "2026-03-08T18:00:00.000Z",
                "2026-03-08T07:00:00.000Z",
            ),
            (
                "*/15 2 * * *",
                "2026-03-08T05:00:00Z",
                "2026-03-09T06:00:00.000Z",
                "2026-03-08T07:00:00.000Z",
            ),
            // Where both rules agree.
            (
                "30 2 * * *",
                "2026-03-08T05:00:00Z",
                "2026-03-08T07:00:00.000Z",
                "2026-03-08T07:00:00.000Z",
            ),
            (
                "0 * * * *",
                "2026-11-01T05:30:00Z",
                "2026-11-01T06:00:00.000Z",
                "2026-11-01T06:00:00.000Z",
            ),
        ];
        for (expr, start, croner, kron) in cases {
            assert_eq!(croner_next(expr, start), croner, "croner: {expr}");
            assert_eq!(kron_next(expr, start), kron, "kron: {expr}");
        }
    }

    #[test]
    fn describes() {
        let cases: &[(&str, &str)] = &[
            ("0 12 * * MON-FRI", "12:00"),
            ("0 12 * * MON-FRI", "Monday"),
            ("@daily", "00:00"),
            ("*/15 * * * *", "15"),
        ];
        for (expr, fragment) in cases {
            let text = describe_cron(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert!(text.contains(fragment), "{expr}: {text}");
        }
        // Croner calls LW "the last day of the month"; it is the last weekday.
        let cases: &[(&str, &str)] = &[
            (
                "0 0 LW * *",
                "on the last weekday (Monday to Friday) of the month",
            ),
            (
                "0 0 lw * *",
                "on the last weekday (Monday to Friday) of the month",
            ),
            ("0 0 L * *", "on the last day of the month"),
            (
                "0 0 15W * *",
                "on the weekday (Monday to Friday) nearest day 15",
            ),
            ("0 0 * * FRI#2", "on the 2nd Friday of the month"),
            ("0 0 * * 5L", "on the last Friday of the month"),
        ];
        for (expr, fragment) in cases {
            let text = describe_cron(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert!(text.contains(fragment), "{expr}: {text}");
        }
        assert!(!describe_cron("0 0 LW * *")
            .expect("valid")
            .contains("last day"));
        assert!(describe_cron("61 * * * *").is_err());
        assert!(describe_cron("@reboot").is_err());
    }
}
