//! When a timer fires. A [`ScheduleSpec`] is the definition as persisted; a [`Schedule`] is the
//! compiled form that answers one question: the next occurrence.
//!
//! All arithmetic is checked: an occurrence that would fall outside `i64` milliseconds simply does
//! not exist (`None`), so extreme inputs never panic or wrap.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cron::{describe_cron, CronSchedule};
use crate::duration::{format_duration, MAX_DURATION_MS};
use crate::time::{format_utc, EpochMs, MAX_EPOCH_MS, MIN_EPOCH_MS};
use crate::CoreError;

/// The definition of when a timer fires, as registered, persisted and shown: serializable and
/// compared to spot a changed registration. Compile it with [`Schedule::from_spec`] to ask it
/// for occurrences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ScheduleSpec {
    /// A cron expression evaluated in an IANA time zone.
    Cron {
        // Boxed and shared rather than two `String`s: every timer's definition holds a schedule,
        // and this keeps it at 32 bytes instead of 48.
        expr: Box<str>,
        timezone: std::sync::Arc<str>,
    },
    /// Every `ms` milliseconds.
    Every { ms: u64 },
    /// Once, `ms` after the timer was first created.
    After { ms: u64 },
    /// Once, at an absolute instant: `at_ms` is it rounded up to a whole millisecond (what the
    /// engine's arithmetic uses and what is shown); `at_us` keeps it exactly when it has a
    /// fraction of a millisecond, so the callback is invoked at that instant, not up to a
    /// millisecond after it.
    At {
        at_ms: EpochMs,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_us: Option<i64>,
    },
}

impl ScheduleSpec {
    /// `at` a whole-millisecond instant.
    pub fn at_ms(at_ms: EpochMs) -> ScheduleSpec {
        ScheduleSpec::At { at_ms, at_us: None }
    }

    /// `at` an instant in microseconds: rounded up to the millisecond, the exact instant kept
    /// when it is not a whole millisecond.
    pub fn at_micros(us: i64) -> ScheduleSpec {
        ScheduleSpec::At {
            at_ms: ms_rounded_up(us),
            at_us: (us.rem_euclid(1_000) != 0).then_some(us),
        }
    }

    /// The exact instant of an `at` one-shot in microseconds, when it is not a whole millisecond.
    pub fn exact_micros(&self) -> Option<i64> {
        match self {
            ScheduleSpec::At { at_us, .. } => *at_us,
            _ => None,
        }
    }

    /// `after` and `at`: fires once.
    pub fn is_one_shot(&self) -> bool {
        matches!(self, ScheduleSpec::After { .. } | ScheduleSpec::At { .. })
    }
}

/// An instant in microseconds, rounded up to the millisecond: what an `at` fires at in the
/// engine's millisecond arithmetic.
pub(crate) fn ms_rounded_up(us: i64) -> EpochMs {
    us.div_euclid(1_000) + i64::from(us.rem_euclid(1_000) != 0)
}

/// A timer's schedule, validated and compiled: it answers "when next" ([`Schedule::next_after`])
/// and is what the engine keeps per timer, so it is compact: 16 bytes, a cron's expression,
/// zone and compiled matcher behind one pointer (a [`ScheduleSpec`] is 40 bytes). Built from a
/// [`ScheduleSpec`] by [`Schedule::from_spec`]; [`Schedule::to_spec`] gives the definition back.
#[derive(Debug, Clone)]
pub struct Schedule(Form);

// Memory per timer is a target: growing a timer's schedule should be a decision.
const _: () = assert!(std::mem::size_of::<Schedule>() <= 16);

#[derive(Debug, Clone)]
enum Form {
    Every(u64),
    After(u64),
    /// An instant in whole milliseconds.
    At(EpochMs),
    /// An instant with a fraction of a millisecond, in microseconds.
    AtMicros(i64),
    // Boxed: the compiled cron is large, and most timers are intervals or one-shots.
    Cron(Box<CronForm>),
}

#[derive(Debug, Clone)]
struct CronForm {
    expr: Box<str>,
    timezone: Arc<str>,
    compiled: CronSchedule,
}

/// An English description of a cron expression, for `kron cron`. Error: arg `cron`.
pub fn explain_cron(expr: &str) -> Result<String, CoreError> {
    describe_cron(expr)
}

/// Cron schedules have no fire times after the end of this year.
pub const CRON_LAST_YEAR: i32 = crate::cron::LAST_YEAR;

/// Validates an `every` / `after` interval: positive and small enough to add to an instant.
/// Longest `every`, `after` or `jitter`: 100 years (36,525 days). Longer values are almost
/// certainly mistakes, and instants computed from them must stay representable everywhere
/// (Python's `datetime` ends at year 9999).
pub const MAX_INTERVAL_MS: u64 = 36_525 * 86_400_000;

pub(crate) fn check_interval(arg: &'static str, ms: u64) -> Result<(), CoreError> {
    if ms == 0 {
        return Err(CoreError::invalid(arg, "0ms", "must be greater than zero"));
    }
    if ms > MAX_INTERVAL_MS.min(MAX_DURATION_MS) {
        return Err(CoreError::invalid(
            arg,
            crate::duration::format_duration(ms),
            "must be at most 36525d (100 years)",
        ));
    }
    Ok(())
}

/// `ms` as a signed offset; `from_spec` guarantees it fits, `None` otherwise.
fn signed(ms: u64) -> Option<i64> {
    i64::try_from(ms).ok()
}

impl Schedule {
    pub fn from_spec(spec: ScheduleSpec) -> Result<Schedule, CoreError> {
        let cron = match &spec {
            ScheduleSpec::Cron { expr, timezone } => {
                Some(Box::new(CronSchedule::parse(expr, timezone)?))
            }
            ScheduleSpec::Every { ms } => {
                check_interval("every", *ms)?;
                None
            }
            ScheduleSpec::After { ms } => {
                check_interval("after", *ms)?;
                None
            }
            ScheduleSpec::At { at_ms, at_us } => {
                // A stored definition is checked too: the exact instant must round to `at_ms`.
                if let Some(us) = at_us {
                    if ScheduleSpec::at_micros(*us) != spec {
                        return Err(CoreError::invalid(
                            "at",
                            format!("{us}us"),
                            format!("does not round up to the instant {at_ms}ms"),
                        ));
                    }
                }
                // Only instants jiff can represent, so `describe` shows the real value.
                if !(MIN_EPOCH_MS..=MAX_EPOCH_MS).contains(at_ms) {
                    return Err(CoreError::invalid(
                        "at",
                        format!("{at_ms} ms after 1970-01-01T00:00:00Z"),
                        crate::time::out_of_range(),
                    ));
                }
                None
            }
        };
        Ok(Schedule(match (spec, cron) {
            (ScheduleSpec::Cron { expr, timezone }, Some(compiled)) => {
                Form::Cron(Box::new(CronForm {
                    expr,
                    timezone,
                    compiled: *compiled,
                }))
            }
            (ScheduleSpec::Cron { expr, timezone }, None) => {
                // Unreachable: a cron definition always compiles to a cron above.
                Form::Cron(Box::new(CronForm {
                    compiled: CronSchedule::parse(&expr, &timezone)?,
                    expr,
                    timezone,
                }))
            }
            (ScheduleSpec::Every { ms }, _) => Form::Every(ms),
            (ScheduleSpec::After { ms }, _) => Form::After(ms),
            (
                ScheduleSpec::At {
                    at_us: Some(us), ..
                },
                _,
            ) => Form::AtMicros(us),
            (ScheduleSpec::At { at_ms, .. }, _) => Form::At(at_ms),
        }))
    }
    /// The definition (validated `at` instants round-trip exactly: see [`Schedule::from_spec`]).
    pub fn to_spec(&self) -> ScheduleSpec {
        match &self.0 {
            Form::Every(ms) => ScheduleSpec::Every { ms: *ms },
            Form::After(ms) => ScheduleSpec::After { ms: *ms },
            Form::At(at_ms) => ScheduleSpec::at_ms(*at_ms),
            Form::AtMicros(us) => ScheduleSpec::at_micros(*us),
            Form::Cron(cron) => ScheduleSpec::Cron {
                expr: cron.expr.clone(),
                timezone: cron.timezone.clone(),
            },
        }
    }
    /// A cron's zone name replaced by `share`'s copy of it (the engine keeps one per name).
    pub(crate) fn share_timezone(&mut self, share: impl FnOnce(&Arc<str>) -> Arc<str>) {
        if let Form::Cron(cron) = &mut self.0 {
            cron.timezone = share(&cron.timezone);
        }
    }
    /// The exact instant of an `at` one-shot in microseconds, when it is not a whole millisecond.
    pub fn exact_micros(&self) -> Option<i64> {
        match self.0 {
            Form::AtMicros(us) => Some(us),
            _ => None,
        }
    }
    /// The interval of an `every` schedule.
    pub fn every_ms(&self) -> Option<u64> {
        match self.0 {
            Form::Every(ms) => Some(ms),
            _ => None,
        }
    }
    /// `after` and `at`: fires once.
    pub fn is_one_shot(&self) -> bool {
        matches!(self.0, Form::After(_) | Form::At(_) | Form::AtMicros(_))
    }
    /// The first occurrence of a timer created at `created_at`.
    pub fn first(&self, created_at: EpochMs) -> Option<EpochMs> {
        match self.0 {
            Form::Cron(_) => self.next_after(created_at),
            Form::Every(ms) | Form::After(ms) => created_at.checked_add(signed(ms)?),
            Form::At(at_ms) => Some(at_ms),
            Form::AtMicros(us) => Some(ms_rounded_up(us)),
        }
    }
    /// The next occurrence strictly after `t`; `None` for one-shots.
    ///
    /// For `Every` this is `t + ms`: the caller passes the previous occurrence (not "now") to keep
    /// the grid.
    pub fn next_after(&self, t: EpochMs) -> Option<EpochMs> {
        match &self.0 {
            Form::Cron(cron) => cron.compiled.next_after(t),
            Form::Every(ms) => t.checked_add(signed(*ms)?),
            Form::After(_) | Form::At(_) | Form::AtMicros(_) => None,
        }
    }
    /// Occurrences in `(after, until]`, counting at most `cap`: `(count, last)`.
    ///
    /// These are the occurrences of the grid that continues from `after` (what repeated
    /// `next_after` calls starting at `after` yield). `last` is the last occurrence *counted*: when
    /// the cap is hit it is the `cap`-th one, so `(count, last)` always describe the same prefix.
    /// `Every` is O(1) whatever the ratio of span to interval; cron iterates and stops at `cap`.
    /// One-shots have no grid: `(0, None)`.
    pub fn count_between(
        &self,
        after: EpochMs,
        until: EpochMs,
        cap: u64,
    ) -> (u64, Option<EpochMs>) {
        if until <= after || cap == 0 {
            return (0, None);
        }
        match &self.0 {
            Form::Every(ms) => {
                let ms = *ms;
                if ms == 0 {
                    return (0, None);
                }
                let span = i128::from(until) - i128::from(after);
                let fits = span / i128::from(ms);
                let count = u64::try_from(fits).unwrap_or(u64::MAX).min(cap);
                if count == 0 {
                    return (0, None);
                }
                // after < last <= until, so the result fits in i64.
                let last = i128::from(after) + i128::from(count) * i128::from(ms);
                (count, i64::try_from(last).ok())
            }
            Form::Cron(_) => {
                let mut count = 0;
                let mut last = None;
                let mut t = after;
                while count < cap {
                    match self.next_after(t) {
                        Some(next) if next <= until => {
                            count += 1;
                            last = Some(next);
                            t = next;
                        }
                        _ => break,
                    }
                }
                (count, last)
            }
            Form::After(_) | Form::At(_) | Form::AtMicros(_) => (0, None),
        }
    }
    /// "every 30m", "cron 0 8 * * * (Europe/Berlin)", "after 10s", "at 2026-11-26T08:00:00.000Z".
    pub fn describe(&self) -> String {
        match &self.0 {
            Form::Cron(cron) => format!("cron {} ({})", cron.expr.trim(), cron.timezone),
            Form::Every(ms) => format!("every {}", format_duration(*ms)),
            Form::After(ms) => format!("after {}", format_duration(*ms)),
            Form::At(at_ms) => format!("at {}", format_utc(*at_ms)),
            Form::AtMicros(us) => format!("at {}", format_utc(ms_rounded_up(*us))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_datetime;

    fn at(text: &str) -> EpochMs {
        parse_datetime("at", text, "UTC").expect("test instant")
    }

    fn cron(expr: &str, timezone: &str) -> ScheduleSpec {
        ScheduleSpec::Cron {
            expr: expr.into(),
            timezone: timezone.into(),
        }
    }

    fn compile(spec: ScheduleSpec) -> Schedule {
        Schedule::from_spec(spec).expect("valid spec")
    }

    #[test]
    fn from_spec_accepts() {
        let specs = [
            cron("0 8 * * *", "Europe/Berlin"),
            cron("*/10 * * * * *", "UTC"),
            cron("@hourly", "America/New_York"),
            ScheduleSpec::Every { ms: 1 },
            ScheduleSpec::Every {
                ms: MAX_INTERVAL_MS,
            },
            ScheduleSpec::After { ms: 10_000 },
            ScheduleSpec::at_ms(0),
            ScheduleSpec::at_ms(-1),
            ScheduleSpec::at_ms(MIN_EPOCH_MS),
            ScheduleSpec::at_ms(MAX_EPOCH_MS),
        ];
        for spec in specs {
            let schedule = Schedule::from_spec(spec.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(schedule.to_spec(), spec);
        }
    }

    #[test]
    fn from_spec_rejects() {
        let cases: &[(ScheduleSpec, &str)] = &[
            (ScheduleSpec::Every { ms: 0 }, "invalid every \"0ms\""),
            (ScheduleSpec::After { ms: 0 }, "invalid after \"0ms\""),
            (
                ScheduleSpec::Every { ms: u64::MAX },
                "invalid every \"213503982334d14h25m51s615ms\"",
            ),
            (
                ScheduleSpec::After {
                    ms: MAX_DURATION_MS + 1,
                },
                "invalid after",
            ),
            (
                ScheduleSpec::at_ms(i64::MAX),
                "invalid at \"9223372036854775807 ms after 1970-01-01T00:00:00Z\": out of range: \
                 instants must be between -009999-01-02T01:59:59.000Z and 9999-12-30T22:00:00.999Z",
            ),
            (ScheduleSpec::at_ms(MIN_EPOCH_MS - 1), "out of range"),
            (cron("0 8 * *", "UTC"), "invalid cron \"0 8 * *\""),
            (cron("0 0 30 2 *", "UTC"), "never matches"),
            (
                cron("0 8 * * *", "Mars/Olympus"),
                "invalid timezone \"Mars/Olympus\"",
            ),
            (cron("0 8 * * *", ""), "invalid timezone \"\""),
        ];
        for (spec, fragment) in cases {
            let e = Schedule::from_spec(spec.clone())
                .expect_err("invalid")
                .to_string();
            assert!(e.contains(fragment), "{spec:?}: {e}");
        }
    }

    #[test]
    fn at_keeps_a_fraction_of_a_millisecond_and_rounds_up() {
        assert_eq!(ScheduleSpec::at_micros(5_000), ScheduleSpec::at_ms(5));
        assert_eq!(
            ScheduleSpec::at_micros(5_001),
            ScheduleSpec::At {
                at_ms: 6,
                at_us: Some(5_001)
            }
        );
        assert_eq!(
            ScheduleSpec::at_micros(-1_500),
            ScheduleSpec::At {
                at_ms: -1,
                at_us: Some(-1_500)
            }
        );
        assert_eq!(ScheduleSpec::at_micros(5_001).exact_micros(), Some(5_001));
        assert_eq!(ScheduleSpec::at_ms(5).exact_micros(), None);
        // Whole milliseconds are stored as before; a fraction adds one field.
        let json = |spec: &ScheduleSpec| serde_json::to_string(spec).expect("json");
        assert_eq!(json(&ScheduleSpec::at_ms(5)), r#"{"kind":"at","at_ms":5}"#);
        assert_eq!(
            json(&ScheduleSpec::at_micros(5_001)),
            r#"{"kind":"at","at_ms":6,"at_us":5001}"#
        );
        let back: ScheduleSpec =
            serde_json::from_str(r#"{"kind":"at","at_ms":6,"at_us":5001}"#).expect("parse");
        assert_eq!(back, ScheduleSpec::at_micros(5_001));
        // A stored exact instant that does not round to its millisecond is refused.
        let bad = ScheduleSpec::At {
            at_ms: 7,
            at_us: Some(5_001),
        };
        let err = Schedule::from_spec(bad).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("at") && e.contains("5001us")),
            "{err:?}"
        );
        let whole = ScheduleSpec::At {
            at_ms: 5,
            at_us: Some(5_000),
        };
        assert!(Schedule::from_spec(whole).is_err());
    }

    #[test]
    fn first_and_next() {
        let created = at("2026-11-26T22:38:25.123Z");
        // (spec, first, next_after(first))
        let cases: &[(ScheduleSpec, Option<&str>, Option<&str>)] = &[
            (
                cron("0 8 * * *", "Europe/Berlin"),
                Some("2026-11-27T07:00:00.000Z"),
                Some("2026-11-28T07:00:00.000Z"),
            ),
            (
                ScheduleSpec::Every { ms: 1_800_000 },
                Some("2026-11-26T23:08:25.123Z"),
                Some("2026-11-26T23:38:25.123Z"),
            ),
            (
                ScheduleSpec::After { ms: 10_000 },
                Some("2026-11-26T22:38:35.123Z"),
                None,
            ),
            (
                ScheduleSpec::at_ms(at("2026-11-26T08:00:00Z")),
                Some("2026-11-26T08:00:00.000Z"),
                None,
            ),
        ];
        for (spec, first, next) in cases {
            let s = compile(spec.clone());
            let got_first = s.first(created);
            assert_eq!(got_first.map(format_utc).as_deref(), *first, "{spec:?}");
            let got_next = got_first.and_then(|f| s.next_after(f));
            assert_eq!(got_next.map(format_utc).as_deref(), *next, "{spec:?}");
        }
    }

    #[test]
    fn one_shot_flags() {
        assert!(!compile(cron("@daily", "UTC")).is_one_shot());
        assert!(!compile(ScheduleSpec::Every { ms: 5 }).is_one_shot());
        assert!(compile(ScheduleSpec::After { ms: 5 }).is_one_shot());
        assert!(compile(ScheduleSpec::at_ms(5)).is_one_shot());
    }

    #[test]
    fn describes() {
        let cases: &[(ScheduleSpec, &str)] = &[
            (ScheduleSpec::Every { ms: 1_800_000 }, "every 30m"),
            (ScheduleSpec::Every { ms: 5_400_000 }, "every 1h30m"),
            (ScheduleSpec::Every { ms: 500 }, "every 500ms"),
            (
                cron("0 8 * * *", "Europe/Berlin"),
                "cron 0 8 * * * (Europe/Berlin)",
            ),
            (cron(" @daily ", "UTC"), "cron @daily (UTC)"),
            (ScheduleSpec::After { ms: 10_000 }, "after 10s"),
            (
                ScheduleSpec::at_ms(at("2026-11-26T08:00:00Z")),
                "at 2026-11-26T08:00:00.000Z",
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(compile(spec.clone()).describe(), *want);
        }
    }

    #[test]
    fn extremes_never_panic() {
        let schedules = [
            compile(ScheduleSpec::Every { ms: 1 }),
            compile(ScheduleSpec::Every {
                ms: MAX_INTERVAL_MS,
            }),
            compile(ScheduleSpec::After {
                ms: MAX_INTERVAL_MS,
            }),
            compile(ScheduleSpec::at_ms(MAX_EPOCH_MS)),
            compile(cron("* * * * * *", "Pacific/Chatham")),
        ];
        let instants = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        for s in &schedules {
            for &t in &instants {
                let _ = s.first(t);
                if let Some(next) = s.next_after(t) {
                    assert!(next > t, "{}: {next} <= {t}", s.describe());
                }
                for &u in &instants {
                    let (count, last) = s.count_between(t, u, 3);
                    assert!(count <= 3);
                    assert_eq!(count == 0, last.is_none());
                }
            }
            let _ = s.describe();
        }
        let every = compile(ScheduleSpec::Every { ms: 1 });
        assert_eq!(every.next_after(i64::MAX), None);
        assert_eq!(every.first(i64::MAX), None);
    }

    #[test]
    fn count_between_every() {
        let s = compile(ScheduleSpec::Every { ms: 1_800_000 });
        let a = at("2026-01-01T00:00:00Z");
        // (until, cap, count, last)
        let cases: &[(&str, u64, u64, Option<&str>)] = &[
            ("2026-01-01T00:00:00Z", 100, 0, None),
            ("2026-01-01T00:29:59.999Z", 100, 0, None),
            (
                "2026-01-01T00:30:00Z",
                100,
                1,
                Some("2026-01-01T00:30:00.000Z"),
            ),
            (
                "2026-01-01T02:15:00Z",
                100,
                4,
                Some("2026-01-01T02:00:00.000Z"),
            ),
            (
                "2026-01-01T02:15:00Z",
                2,
                2,
                Some("2026-01-01T01:00:00.000Z"),
            ),
            ("2026-01-01T02:15:00Z", 0, 0, None),
            ("2025-12-31T00:00:00Z", 100, 0, None),
        ];
        for (until, cap, count, last) in cases {
            let (c, l) = s.count_between(a, at(until), *cap);
            assert_eq!(
                (c, l.map(format_utc).as_deref()),
                (*count, *last),
                "{until} cap {cap}"
            );
        }
        // O(1): a 1 ms grid over the whole representable range.
        let fine = compile(ScheduleSpec::Every { ms: 1 });
        assert_eq!(
            fine.count_between(i64::MIN, i64::MAX, u64::MAX),
            (u64::MAX, Some(i64::MAX))
        );
        assert_eq!(
            fine.count_between(0, 10 * 365 * 86_400_000, u64::MAX),
            (315_360_000_000, Some(315_360_000_000))
        );
        assert_eq!(fine.count_between(0, i64::MAX, 5), (5, Some(5)));
    }

    #[test]
    fn count_between_cron_and_one_shots() {
        let s = compile(cron("0 * * * *", "UTC"));
        let a = at("2026-01-01T00:00:00Z");
        assert_eq!(
            s.count_between(a, at("2026-01-02T00:00:00Z"), 1_000),
            (24, Some(at("2026-01-02T00:00:00Z")))
        );
        assert_eq!(
            s.count_between(a, at("2027-01-01T00:00:00Z"), 5),
            (5, Some(at("2026-01-01T05:00:00Z")))
        );
        assert_eq!(s.count_between(a, a + 1, 5), (0, None));
        for spec in [ScheduleSpec::After { ms: 1 }, ScheduleSpec::at_ms(a + 1)] {
            assert_eq!(compile(spec).count_between(a, a + 10, 5), (0, None));
        }
    }

    #[test]
    fn explains_cron() {
        let text = explain_cron("0 12 * * MON-FRI").expect("valid");
        assert!(text.contains("12:00"), "{text}");
        let e = explain_cron("0 8 * *").expect_err("invalid").to_string();
        assert!(e.starts_with("invalid cron \"0 8 * *\""), "{e}");
    }
}
