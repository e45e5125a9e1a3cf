//! Property tests: cron fire times against a brute-force reference, and text round trips.
//!
//! The reference knows nothing of croner or of Kron's span walk: it builds each field's value set
//! from the generated grammar, walks local wall-clock minutes (plus the seconds set) over a window,
//! resolves every matching wall-clock time in the zone with jiff and applies the DST rule:
//! a time in a gap fires at the first valid wall-clock minute after it (wall-clock schedules
//! only), a repeated time fires at its earlier instant (and also its later one when the hour field
//! is a wildcard or step).

use std::collections::BTreeSet;

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::Config;

use kron_core::duration::{format_duration, parse_duration, MAX_DURATION_MS};
use kron_core::schedule::{Schedule, ScheduleSpec};
use kron_core::time::{format_utc, parse_datetime, EpochMs, MAX_EPOCH_MS, MIN_EPOCH_MS};

const ZONES: [&str; 7] = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Chatham",
];

/// 2025-01-01T00:00:00Z and 2028-01-01T00:00:00Z.
const RANGE_START_S: i64 = 1_735_689_600;
const RANGE_END_S: i64 = 1_830_297_600;
/// How far after the start instant fire times are compared.
const WINDOW_S: i64 = 2 * 86_400;
/// At most this many fires are compared per case.
const LIMIT: usize = 150;

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Never write regression files into the source tree.
        failure_persistence: None,
        ..Config::default()
    }
}

/// One cron field: its text and the set of values it allows.
#[derive(Clone)]
struct Field {
    text: String,
    values: BTreeSet<u32>,
}

impl std::fmt::Debug for Field {
    /// Just the text: failure reports stay readable.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

fn star(min: u32, max: u32) -> Field {
    Field {
        text: "*".to_string(),
        values: (min..=max).collect(),
    }
}

/// A single value or a range: the pieces a list is made of.
fn atom(min: u32, max: u32) -> impl Strategy<Value = Field> {
    prop_oneof![
        (min..=max).prop_map(|v| Field {
            text: v.to_string(),
            values: [v].into(),
        }),
        (min..=max, min..=max).prop_map(|(a, b)| {
            let (a, b) = (a.min(b), a.max(b));
            Field {
                text: format!("{a}-{b}"),
                values: (a..=b).collect(),
            }
        }),
    ]
}

/// A field grammar: `*`, value, range, `*/s`, `a-b/s`, list. `star_weight` biases toward `*`
/// so that date fields leave enough fires in a two-day window.
fn field(min: u32, max: u32, star_weight: u32) -> BoxedStrategy<Field> {
    let span = max - min;
    prop_oneof![
        star_weight => Just(star(min, max)),
        2 => atom(min, max),
        2 => (1..=span.max(1)).prop_map(move |s| Field {
            text: format!("*/{s}"),
            values: (min..=max).step_by(s as usize).collect(),
        }),
        1 => (min..=max, min..=max, 1..=span.max(1)).prop_map(|(a, b, s)| {
            let (a, b) = (a.min(b), a.max(b));
            Field {
                text: format!("{a}-{b}/{s}"),
                values: (a..=b).step_by(s as usize).collect(),
            }
        }),
        1 => prop::collection::vec(atom(min, max), 2..=3).prop_map(|atoms| Field {
            text: atoms.iter().map(|a| a.text.as_str()).collect::<Vec<_>>().join(","),
            values: atoms.iter().flat_map(|a| a.values.iter().copied()).collect(),
        }),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
struct Expr {
    seconds: Option<Field>,
    minute: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
}

impl Expr {
    fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.seconds {
            parts.push(s.text.as_str());
        }
        for f in [&self.minute, &self.hour, &self.dom, &self.month, &self.dow] {
            parts.push(f.text.as_str());
        }
        parts.join(" ")
    }

    /// Kron's classification: a wildcard or stepped hour field is a cadence.
    fn wall_clock(&self) -> bool {
        !self.hour.text.contains(['*', '/'])
    }

    fn seconds(&self) -> Vec<u32> {
        match &self.seconds {
            Some(f) => f.values.iter().copied().collect(),
            None => vec![0],
        }
    }

    /// Whether the wall-clock minute `dt` matches (seconds are checked by the caller).
    fn matches_minute(&self, dt: DateTime) -> bool {
        let day = dt.day() as u32;
        let weekday = dt.weekday().to_sunday_zero_offset() as u32;
        let dom = self.dom.values.contains(&day);
        let dow = self.dow.values.contains(&weekday);
        // Vixie semantics (croner's default): OR when both day fields are restricted.
        let day_ok = if self.dom.text == "*" || self.dow.text == "*" {
            dom && dow
        } else {
            dom || dow
        };
        day_ok
            && self.month.values.contains(&(dt.month() as u32))
            && self.hour.values.contains(&(dt.hour() as u32))
            && self.minute.values.contains(&(dt.minute() as u32))
    }
}

fn expr(with_seconds: bool) -> impl Strategy<Value = Expr> {
    let seconds = if with_seconds {
        field(0, 59, 1).prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    };
    // Hours 1-3 hold every DST transition of the test zones; favour them (alone, in ranges and
    // in lists) so gaps and folds are hit often.
    let hour = prop_oneof![
        3 => field(0, 23, 4),
        2 => (1u32..=3).prop_map(|h| Field { text: h.to_string(), values: [h].into() }),
        1 => (0u32..=2, 3u32..=5).prop_map(|(a, b)| Field {
            text: format!("{a}-{b}"),
            values: (a..=b).collect(),
        }),
        1 => (1u32..=3, 10u32..=23).prop_map(|(a, b)| Field {
            text: format!("{a},{b}"),
            values: [a, b].into(),
        }),
    ];
    (
        seconds,
        field(0, 59, 2),
        hour,
        field(1, 31, 8),
        field(1, 12, 12),
        field(0, 6, 8),
    )
        .prop_map(|(seconds, minute, hour, dom, month, dow)| Expr {
            seconds,
            minute,
            hour,
            dom,
            month,
            dow,
        })
}

/// The same bundled database Kron uses, so both sides agree on the rules.
fn zone(name: &str) -> TimeZone {
    jiff::tz::TimeZoneDatabase::bundled()
        .get(name)
        .expect("test zone")
}

/// Start instants in 2025-2027: uniform, or just before one of the zone's transitions in range.
fn start(zone_idx: usize) -> impl Strategy<Value = EpochMs> {
    let tz = zone(ZONES[zone_idx]);
    let transitions: Vec<i64> = tz
        .following(Timestamp::from_second(RANGE_START_S).expect("range"))
        .map(|t| t.timestamp().as_second())
        .take_while(|&s| s < RANGE_END_S)
        .collect();
    let uniform = (RANGE_START_S * 1000..RANGE_END_S * 1000).boxed();
    if transitions.is_empty() {
        return uniform;
    }
    let near = (
        prop::sample::select(transitions),
        -30 * 3_600_000i64..2 * 3_600_000,
    )
        .prop_map(|(tr, delta)| tr * 1000 + delta)
        .boxed();
    prop_oneof![1 => uniform, 3 => near].boxed()
}

fn case(with_seconds: bool) -> impl Strategy<Value = (Expr, usize, EpochMs)> {
    (expr(with_seconds), 0..ZONES.len()).prop_flat_map(|(e, z)| (Just(e), Just(z), start(z)))
}

fn civil(seconds: i64) -> DateTime {
    Offset::UTC.to_datetime(Timestamp::from_second(seconds).expect("civil range"))
}

fn civil_seconds(dt: DateTime) -> i64 {
    Offset::UTC
        .to_timestamp(dt)
        .expect("civil range")
        .as_second()
}

/// The instant (seconds) of the first existing wall-clock minute after `c` (a time in a gap).
fn first_valid_after(tz: &TimeZone, c: i64) -> i64 {
    let mut m = c.div_euclid(60) * 60 + 60;
    loop {
        match tz.to_ambiguous_timestamp(civil(m)).offset() {
            AmbiguousOffset::Gap { .. } => m += 60,
            AmbiguousOffset::Unambiguous { offset }
            | AmbiguousOffset::Fold { before: offset, .. } => {
                return m - i64::from(offset.seconds());
            }
        }
    }
}

/// Brute force: every fire in `(t, end]` (milliseconds), ascending, at most `LIMIT`.
fn reference(e: &Expr, tz: &TimeZone, t: EpochMs, end: EpochMs) -> Vec<EpochMs> {
    let margin = 3 * 3_600;
    let local = |ms: EpochMs| {
        let ts = Timestamp::from_millisecond(ms).expect("range");
        civil_seconds(tz.to_datetime(ts))
    };
    let lo = (local(t) - margin).div_euclid(60) * 60;
    let hi = local(end) + margin;
    let wall_clock = e.wall_clock();
    let seconds = e.seconds();
    let mut out = BTreeSet::new();
    let mut minute = lo;
    while minute <= hi {
        if e.matches_minute(civil(minute)) {
            for &s in &seconds {
                let c = minute + i64::from(s);
                match tz.to_ambiguous_timestamp(civil(c)).offset() {
                    AmbiguousOffset::Unambiguous { offset } => {
                        out.insert(c - i64::from(offset.seconds()));
                    }
                    AmbiguousOffset::Gap { .. } => {
                        if wall_clock {
                            out.insert(first_valid_after(tz, c));
                        }
                    }
                    AmbiguousOffset::Fold { before, after } => {
                        out.insert(c - i64::from(before.seconds()));
                        if !wall_clock {
                            out.insert(c - i64::from(after.seconds()));
                        }
                    }
                }
            }
        }
        minute += 60;
    }
    out.into_iter()
        .map(|s| s * 1000)
        .filter(|&ms| ms > t && ms <= end)
        .take(LIMIT)
        .collect()
}

fn check_against_reference(e: &Expr, zone_idx: usize, t: EpochMs) -> Result<(), TestCaseError> {
    let name = ZONES[zone_idx];
    let tz = zone(name);
    let spec = ScheduleSpec::Cron {
        expr: e.text().into(),
        timezone: name.into(),
    };
    let schedule = match Schedule::from_spec(spec) {
        Ok(s) => s,
        // E.g. "0 0 30 2 *": a generated combination with no real date is rightly rejected.
        Err(err) if err.to_string().contains("never matches") => {
            prop_assume!(false);
            unreachable!()
        }
        Err(err) => return Err(TestCaseError::fail(format!("{}: {err}", e.text()))),
    };
    let end = t + WINDOW_S * 1000;
    let mut ours = Vec::new();
    let mut cur = t;
    while ours.len() < LIMIT {
        match schedule.next_after(cur) {
            Some(next) if next <= end => {
                prop_assert!(next > cur, "not increasing: {} after {}", next, cur);
                ours.push(next);
                cur = next;
            }
            _ => break,
        }
    }
    let want = reference(e, &tz, t, end);
    let show = |v: &[EpochMs]| v.iter().map(|&ms| format_utc(ms)).collect::<Vec<_>>();
    prop_assert_eq!(
        show(&ours),
        show(&want),
        "{} in {} after {}",
        e.text(),
        name,
        format_utc(t)
    );
    let counted = schedule.count_between(t, end, LIMIT as u64);
    prop_assert_eq!(counted, (ours.len() as u64, ours.last().copied()));
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn five_field_cron_matches_brute_force((e, z, t) in case(false)) {
        check_against_reference(&e, z, t)?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn six_field_cron_matches_brute_force((e, z, t) in case(true)) {
        check_against_reference(&e, z, t)?;
    }

    #[test]
    fn cron_parsing_never_panics(expr in "[0-9*/,LW#?@ -]{0,24}|[0-9A-Za-z*/, -]{0,30}", z in 0..ZONES.len()) {
        let spec = ScheduleSpec::Cron { expr: expr.as_str().into(), timezone: ZONES[z].into() };
        match Schedule::from_spec(spec) {
            Ok(s) => {
                let t = 1_780_000_000_000;
                if let Some(next) = s.next_after(t) {
                    prop_assert!(next > t);
                }
            }
            Err(err) => {
                let msg = err.to_string();
                prop_assert!(msg.starts_with("invalid cron "), "{}", msg);
            }
        }
    }
}

/// Canonical duration text from components (days, hours < 24, minutes < 60, seconds < 60,
/// ms < 1000).
fn canonical_duration() -> impl Strategy<Value = String> {
    (0u64..1_000_000, 0u64..24, 0u64..60, 0u64..60, 0u64..1000)
        .prop_filter("positive", |(d, h, m, s, ms)| d + h + m + s + ms > 0)
        .prop_map(|(d, h, m, s, ms)| {
            [(d, "d"), (h, "h"), (m, "m"), (s, "s"), (ms, "ms")]
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, unit)| format!("{n}{unit}"))
                .collect()
        })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn canonical_durations_round_trip(text in canonical_duration()) {
        let ms = parse_duration("every", &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(format_duration(ms), text);
    }

    #[test]
    fn formatted_durations_parse_back(ms in 1..=MAX_DURATION_MS) {
        prop_assert_eq!(parse_duration("every", &format_duration(ms)), Ok(ms));
    }

    #[test]
    fn any_accepted_duration_is_stable(
        parts in prop::collection::vec(0u64..100_000, 6),
        present in prop::collection::vec(any::<bool>(), 6),
    ) {
        let units = ["w", "d", "h", "m", "s", "ms"];
        let text: String = parts
            .iter()
            .zip(&present)
            .zip(units)
            .filter(|((_, p), _)| **p)
            .map(|((n, _), u)| format!("{n}{u}"))
            .collect();
        if let Ok(ms) = parse_duration("every", &text) {
            prop_assert!(ms > 0);
            let canonical = format_duration(ms);
            prop_assert_eq!(parse_duration("every", &canonical), Ok(ms));
            prop_assert_eq!(format_duration(ms), canonical);
        }
    }

    #[test]
    fn duration_parsing_never_panics(text in "\\PC{0,20}|[0-9a-z. +-]{0,30}") {
        if let Ok(ms) = parse_duration("every", &text) {
            prop_assert!(ms > 0 && ms <= MAX_DURATION_MS);
        }
    }

    #[test]
    fn utc_text_round_trips(ms in MIN_EPOCH_MS..=MAX_EPOCH_MS) {
        prop_assert_eq!(parse_datetime("at", &format_utc(ms), "UTC"), Ok(ms));
    }

    #[test]
    fn every_count_is_arithmetic(
        ms in 1u64..10_000_000,
        after in -4_000_000_000_000i64..4_000_000_000_000,
        span in 0i64..100_000_000_000,
        cap in 0u64..1_000_000,
    ) {
        let s = Schedule::from_spec(ScheduleSpec::Every { ms }).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let until = after + span;
        let (count, last) = s.count_between(after, until, cap);
        let full = (span as u64) / ms;
        prop_assert_eq!(count, full.min(cap));
        match last {
            None => prop_assert_eq!(count, 0),
            Some(last) => {
                prop_assert_eq!(last, after + (count * ms) as i64);
                prop_assert!(last > after && last <= until);
            }
        }
    }
}
