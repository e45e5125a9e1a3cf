//! Property test: 6-field cron fire times against a second-by-second reference, around DST
//! transitions of zones with unusual rules.
//!
//! Independent of `schedule_props.rs` (which enumerates local wall-clock minutes and resolves
//! each match): this reference walks the UTC time line one second at a time, reads the local
//! clock at each second, and decides from what the clock shows:
//!
//! * the clock shows a matching time: fire, except that an expression with a fixed hour (a
//!   "wall-clock" expression, no `*` or `/` in the hour field) fires only the first time a local
//!   time is shown (fall-back repeats are skipped);
//! * the clock jumps forward (spring-forward): a wall-clock expression that matches any skipped
//!   local time fires once, at the first second after the jump; a cadence expression does not.
//!
//! Fire times must be strictly increasing and equal to the reference, and `count_between` must
//! agree with them.

use std::collections::HashMap;

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::Config;

use kron_core::schedule::{Schedule, ScheduleSpec};
use kron_core::time::{format_utc, EpochMs};

/// Zones whose transitions are at odd local times or by odd amounts: 30-minute DST (Lord Howe),
/// +12:45/+13:45 (Chatham), midnight transitions that skip or repeat the start of a day
/// (Havana, Santiago), negative DST in the tz database (Dublin), and plain DST zones.
const ZONES: [&str; 9] = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Havana",
    "America/Santiago",
    "Europe/Dublin",
    "Asia/Kolkata",
    "UTC",
];

/// 2025-01-01T00:00:00Z and 2028-01-01T00:00:00Z.
const RANGE_START_S: i64 = 1_735_689_600;
const RANGE_END_S: i64 = 1_830_297_600;
/// Fire times compared in (start, start + WINDOW_S].
const WINDOW_S: i64 = 3 * 3_600;
/// The reference starts reading the clock this long before the window (to know which local times
/// were already shown when the window opens inside a repeated hour).
const MARGIN_S: i64 = 3 * 3_600;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

#[derive(Clone)]
struct Field {
    text: String,
    values: Vec<bool>,
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl Field {
    fn new(text: String, min: u32, max: u32, allowed: impl Iterator<Item = u32>) -> Field {
        let mut values = vec![false; max as usize + 1];
        for v in allowed {
            if (min..=max).contains(&v) {
                values[v as usize] = true;
            }
        }
        Field { text, values }
    }
    fn has(&self, v: u32) -> bool {
        self.values.get(v as usize).copied().unwrap_or(false)
    }
}

fn field(min: u32, max: u32, favoured: &'static [u32]) -> BoxedStrategy<Field> {
    let span = max - min;
    prop_oneof![
        3 => Just(Field::new("*".into(), min, max, min..=max)),
        2 => (min..=max).prop_map(move |v| Field::new(v.to_string(), min, max, [v].into_iter())),
        2 => prop::sample::select(favoured)
            .prop_map(move |v| Field::new(v.to_string(), min, max, [v].into_iter())),
        2 => (1..=span.max(1)).prop_map(move |s| {
            Field::new(format!("*/{s}"), min, max, (min..=max).step_by(s as usize))
        }),
        1 => (min..=max, min..=max, 1..=span.max(1)).prop_map(move |(a, b, s)| {
            let (a, b) = (a.min(b), a.max(b));
            Field::new(format!("{a}-{b}/{s}"), min, max, (a..=b).step_by(s as usize))
        }),
        1 => (min..=max, min..=max).prop_map(move |(a, b)| {
            let (a, b) = (a.min(b), a.max(b));
            Field::new(format!("{a}-{b}"), min, max, a..=b)
        }),
        1 => prop::collection::vec(min..=max, 2..=4).prop_map(move |vs| {
            let text = vs.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            Field::new(text, min, max, vs.into_iter())
        }),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
struct Expr {
    second: Field,
    minute: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
}

impl Expr {
    fn text(&self) -> String {
        [
            &self.second,
            &self.minute,
            &self.hour,
            &self.dom,
            &self.month,
            &self.dow,
        ]
        .iter()
        .map(|f| f.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
    }

    fn wall_clock(&self) -> bool {
        !self.hour.text.contains(['*', '/'])
    }

    fn matches(&self, dt: DateTime) -> bool {
        let dom = self.dom.has(dt.day() as u32);
        let dow = self.dow.has(dt.weekday().to_sunday_zero_offset() as u32);
        let day_ok = if self.dom.text == "*" || self.dow.text == "*" {
            dom && dow
        } else {
            dom || dow
        };
        day_ok
            && self.month.has(dt.month() as u32)
            && self.hour.has(dt.hour() as u32)
            && self.minute.has(dt.minute() as u32)
            && self.second.has(dt.second() as u32)
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    // Transitions happen at local 00:00-03:00 in these zones (23:00 for the day before a
    // midnight jump); seconds and minutes favour the edges of an hour.
    (
        field(0, 59, &[0, 1, 29, 30, 59]),
        field(0, 59, &[0, 1, 15, 30, 45, 59]),
        field(0, 23, &[0, 1, 2, 3, 23]),
        prop_oneof![6 => Just(Field::new("*".into(), 1, 31, 1..=31)), 1 => field(1, 31, &[1, 31])],
        prop_oneof![6 => Just(Field::new("*".into(), 1, 12, 1..=12)), 1 => field(1, 12, &[3, 10, 11])],
        prop_oneof![6 => Just(Field::new("*".into(), 0, 6, 0..=6)), 1 => field(0, 6, &[0, 6])],
    )
        .prop_map(|(second, minute, hour, dom, month, dow)| Expr {
            second,
            minute,
            hour,
            dom,
            month,
            dow,
        })
}

fn zone(name: &str) -> TimeZone {
    jiff::tz::TimeZoneDatabase::bundled()
        .get(name)
        .expect("test zone")
}

/// Window starts in 2025-2027: mostly shortly before one of the zone's transitions.
fn start(zone_idx: usize) -> BoxedStrategy<EpochMs> {
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
        -(WINDOW_S * 1000)..(WINDOW_S * 1000 / 3),
    )
        .prop_map(|(tr, delta)| tr * 1000 + delta)
        .boxed();
    prop_oneof![1 => uniform, 4 => near].boxed()
}

fn case() -> impl Strategy<Value = (Expr, usize, EpochMs)> {
    (expr(), 0..ZONES.len()).prop_flat_map(|(e, z)| (Just(e), Just(z), start(z)))
}

/// The civil date-time shown by a clock reading `local` seconds since 1970-01-01T00:00 local.
struct Civil {
    days: HashMap<i64, DateTime>,
}

impl Civil {
    fn at(&mut self, local: i64) -> DateTime {
        let day = local.div_euclid(86_400);
        let midnight = *self.days.entry(day).or_insert_with(|| {
            Offset::UTC.to_datetime(Timestamp::from_second(day * 86_400).expect("civil range"))
        });
        let secs = local.rem_euclid(86_400);
        midnight.date().at(
            (secs / 3600) as i8,
            ((secs / 60) % 60) as i8,
            (secs % 60) as i8,
            0,
        )
    }
}

/// Fire instants (ms) in `(t, end]`, reading the local clock once per UTC second.
fn reference(e: &Expr, tz: &TimeZone, t: EpochMs, end: EpochMs) -> Vec<EpochMs> {
    let wall_clock = e.wall_clock();
    let mut civil = Civil {
        days: HashMap::new(),
    };
    let first = t.div_euclid(1000) + 1;
    let last = end.div_euclid(1000);
    let local_of = |s: i64| {
        s + i64::from(
            tz.to_offset(Timestamp::from_second(s).expect("range"))
                .seconds(),
        )
    };
    let mut prev_local = local_of(first - MARGIN_S - 1);
    let mut max_shown = prev_local;
    let mut out = Vec::new();
    for s in (first - MARGIN_S)..=last {
        let local = local_of(s);
        let mut fire = false;
        if local > prev_local + 1 && wall_clock {
            // Spring-forward: local times prev_local+1 .. local-1 were never shown.
            fire = (prev_local + 1..local).any(|c| e.matches(civil.at(c)));
        }
        if e.matches(civil.at(local)) && (!wall_clock || local > max_shown) {
            fire = true;
        }
        if fire && s >= first {
            out.push(s * 1000);
        }
        max_shown = max_shown.max(local);
        prev_local = local;
    }
    out
}

fn check(e: &Expr, zone_idx: usize, t: EpochMs) -> Result<(), TestCaseError> {
    let name = ZONES[zone_idx];
    let tz = zone(name);
    let spec = ScheduleSpec::Cron {
        expr: e.text().into(),
        timezone: name.into(),
    };
    let schedule = match Schedule::from_spec(spec) {
        Ok(s) => s,
        Err(err) if err.to_string().contains("never matches") => {
            prop_assume!(false);
            unreachable!()
        }
        Err(err) => return Err(TestCaseError::fail(format!("{}: {err}", e.text()))),
    };
    let end = t + WINDOW_S * 1000;
    let mut ours = Vec::new();
    let mut cur = t;
    while let Some(next) = schedule.next_after(cur) {
        if next > end {
            break;
        }
        prop_assert!(next > cur, "not increasing: {} after {}", next, cur);
        ours.push(next);
        cur = next;
    }
    let want = reference(e, &tz, t, end);
    if ours != want {
        let show = |v: &[EpochMs]| v.iter().map(|&ms| format_utc(ms)).collect::<Vec<_>>();
        let missing: Vec<_> = want.iter().filter(|w| !ours.contains(w)).copied().collect();
        let extra: Vec<_> = ours.iter().filter(|o| !want.contains(o)).copied().collect();
        return Err(TestCaseError::fail(format!(
            "{} in {} after {}: {} fires, reference {}; missing {:?}, extra {:?}",
            e.text(),
            name,
            format_utc(t),
            ours.len(),
            want.len(),
            show(&missing[..missing.len().min(5)]),
            show(&extra[..extra.len().min(5)]),
        )));
    }
    let counted = schedule.count_between(t, end, u64::MAX);
    prop_assert_eq!(counted, (ours.len() as u64, ours.last().copied()));
    Ok(())
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn six_field_cron_matches_second_by_second_reference((e, z, t) in case()) {
        check(&e, z, t)?;
    }
}

/// Hand-picked days the generator may miss: each zone's 2026 transitions, every second.
#[test]
fn every_second_across_each_2026_transition() {
    let every = Expr {
        second: Field::new("*".into(), 0, 59, 0..=59),
        minute: Field::new("*".into(), 0, 59, 0..=59),
        hour: Field::new("*".into(), 0, 23, 0..=23),
        dom: Field::new("*".into(), 1, 31, 1..=31),
        month: Field::new("*".into(), 1, 12, 1..=12),
        dow: Field::new("*".into(), 0, 6, 0..=6),
    };
    let fixed = Expr {
        second: Field::new("30".into(), 0, 59, [30].into_iter()),
        minute: Field::new("30".into(), 0, 59, [30].into_iter()),
        hour: Field::new("0,1,2".into(), 0, 23, [0, 1, 2].into_iter()),
        ..every.clone()
    };
    for (idx, name) in ZONES.iter().enumerate() {
        let tz = zone(name);
        let from = Timestamp::from_second(1_767_225_600).expect("2026"); // 2026-01-01
        for tr in tz.following(from).take(2) {
            let t = (tr.timestamp().as_second() - WINDOW_S / 2) * 1000;
            for e in [&every, &fixed] {
                if let Err(err) = check(e, idx, t) {
                    panic!("{err}");
                }
            }
        }
    }
}
