//! The DST contract users are told, checked on the 2026 transitions with exact UTC instants:
//!
//! * a local time in a spring-forward gap fires once, at the first valid instant after it;
//! * a fixed local time that occurs twice (fall-back) fires once, at its first occurrence;
//! * an expression whose hour field is a wildcard or step fires on both copies of a repeated hour
//!   and has no fires in a skipped one.
//!
//! America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT -> 01:00
//! EST (06:00Z). Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z); 2026-10-25 03:00
//! CEST -> 02:00 CET (01:00Z).

use kron_core::schedule::{Schedule, ScheduleSpec};
use kron_core::time::{format_utc, parse_datetime, EpochMs};

const NY: &str = "America/New_York";
const BERLIN: &str = "Europe/Berlin";

fn at(text: &str) -> EpochMs {
    parse_datetime("at", text, "UTC").expect("test instant")
}

fn schedule(expr: &str, tz: &str) -> Schedule {
    Schedule::from_spec(ScheduleSpec::Cron {
        expr: expr.into(),
        timezone: tz.into(),
    })
    .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// The next `n` fires strictly after `start`, checking they strictly increase.
fn fires(expr: &str, tz: &str, start: &str, n: usize) -> Vec<String> {
    let s = schedule(expr, tz);
    let mut t = at(start);
    let mut out = Vec::new();
    for _ in 0..n {
        let Some(next) = s.next_after(t) else { break };
        assert!(next > t, "{expr} in {tz}: {next} is not after {t}");
        out.push(format_utc(next));
        t = next;
    }
    out
}

/// (what, expression, zone, start, expected fires after start)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

fn check(cases: &[Case]) {
    for (what, expr, tz, start, want) in cases {
        let want: Vec<String> = want.iter().map(|w| format_utc(at(w))).collect();
        assert_eq!(
            fires(expr, tz, start, want.len()),
            want,
            "{what}: {expr} in {tz}"
        );
    }
}

#[test]
fn new_york_spring_forward() {
    check(&[
        (
            "fixed time in the gap fires at 03:00 EDT",
            "30 2 * * *",
            NY,
            "2026-03-07T00:00:00Z",
            &[
                "2026-03-07T07:30:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:30:00Z",
            ],
        ),
        (
            "gap start itself",
            "0 2 * * *",
            NY,
            "2026-03-07T00:00:00Z",
            &[
                "2026-03-07T07:00:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:00:00Z",
            ],
        ),
        (
            "search starting one second before the gap",
            "30 2 * * *",
            NY,
            "2026-03-08T06:59:59.999Z",
            &["2026-03-08T07:00:00Z"],
        ),
        (
            "search starting at the gap fire itself",
            "30 2 * * *",
            NY,
            "2026-03-08T07:00:00Z",
            &["2026-03-09T06:30:00Z"],
        ),
        (
            "gap time and 03:00 coincide: one fire",
            "0 2,3 * * *",
            NY,
            "2026-03-08T05:00:00Z",
            &[
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:00:00Z",
                "2026-03-09T07:00:00Z",
            ],
        ),
        (
            "list of hours is fixed time",
            "0 2,14 * * *",
            NY,
            "2026-03-08T05:00:00Z",
            &[
                "2026-03-08T07:00:00Z",
                "2026-03-08T18:00:00Z",
                "2026-03-09T06:00:00Z",
            ],
        ),
        (
            "minute step in a fixed hour: the whole skipped hour fires once",
            "*/15 2 * * *",
            NY,
            "2026-03-08T05:00:00Z",
            &[
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:00:00Z",
                "2026-03-09T06:15:00Z",
            ],
        ),
        (
            "wildcard hour skips 02:xx",
            "0 * * * *",
            NY,
            "2026-03-08T04:30:00Z",
            &[
                "2026-03-08T05:00:00Z",
                "2026-03-08T06:00:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-08T08:00:00Z",
            ],
        ),
        (
            "wildcard hour, minute step",
            "*/15 * * * *",
            NY,
            "2026-03-08T06:20:00Z",
            &[
                "2026-03-08T06:30:00Z",
                "2026-03-08T06:45:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-08T07:15:00Z",
            ],
        ),
        (
            "stepped hour skips 02:00",
            "0 */2 * * *",
            NY,
            "2026-03-08T04:30:00Z",
            &[
                "2026-03-08T05:00:00Z",
                "2026-03-08T08:00:00Z",
                "2026-03-08T10:00:00Z",
            ],
        ),
        (
            "six fields, fixed time in the gap",
            "0 30 2 * * *",
            NY,
            "2026-03-08T00:00:00Z",
            &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
        ),
        (
            "six fields, second step in a fixed minute of the gap",
            "*/20 30 2 * * *",
            NY,
            "2026-03-08T05:00:00Z",
            &[
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:30:00Z",
                "2026-03-09T06:30:20Z",
            ],
        ),
        (
            "six fields, every 20 seconds across the gap",
            "*/20 * * * * *",
            NY,
            "2026-03-08T06:59:20Z",
            &[
                "2026-03-08T06:59:40Z",
                "2026-03-08T07:00:00Z",
                "2026-03-08T07:00:20Z",
            ],
        ),
    ]);
}

#[test]
fn new_york_fall_back() {
    check(&[
        (
            "fixed time in the fold fires at its first occurrence only",
            "30 1 * * *",
            NY,
            "2026-10-31T00:00:00Z",
            &[
                "2026-10-31T05:30:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-02T06:30:00Z",
            ],
        ),
        (
            "fold start",
            "0 1 * * *",
            NY,
            "2026-10-31T00:00:00Z",
            &[
                "2026-10-31T05:00:00Z",
                "2026-11-01T05:00:00Z",
                "2026-11-02T06:00:00Z",
            ],
        ),
        (
            "fixed time, search starting inside the first copy",
            "30 1 * * *",
            NY,
            "2026-11-01T05:45:00Z",
            &["2026-11-02T06:30:00Z"],
        ),
        (
            "fixed time, search starting inside the second copy",
            "30 1 * * *",
            NY,
            "2026-11-01T06:15:00Z",
            &["2026-11-02T06:30:00Z"],
        ),
        (
            "minute step in a fixed hour: first copy only",
            "*/30 1 * * *",
            NY,
            "2026-11-01T04:00:00Z",
            &[
                "2026-11-01T05:00:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-02T06:00:00Z",
                "2026-11-02T06:30:00Z",
            ],
        ),
        (
            "list of hours is fixed time",
            "0 1,13 * * *",
            NY,
            "2026-11-01T04:00:00Z",
            &[
                "2026-11-01T05:00:00Z",
                "2026-11-01T18:00:00Z",
                "2026-11-02T06:00:00Z",
            ],
        ),
        (
            "wildcard hour fires in both copies",
            "0 * * * *",
            NY,
            "2026-11-01T03:30:00Z",
            &[
                "2026-11-01T04:00:00Z",
                "2026-11-01T05:00:00Z",
                "2026-11-01T06:00:00Z",
                "2026-11-01T07:00:00Z",
            ],
        ),
        (
            "wildcard hour, search starting inside the first copy",
            "0 * * * *",
            NY,
            "2026-11-01T05:30:00Z",
            &["2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"],
        ),
        (
            "wildcard hour, minute step through the fold",
            "*/15 * * * *",
            NY,
            "2026-11-01T05:40:00Z",
            &[
                "2026-11-01T05:45:00Z",
                "2026-11-01T06:00:00Z",
                "2026-11-01T06:15:00Z",
                "2026-11-01T06:30:00Z",
                "2026-11-01T06:45:00Z",
                "2026-11-01T07:00:00Z",
            ],
        ),
        (
            "wildcard hour, search starting inside the second copy",
            "*/30 * * * *",
            NY,
            "2026-11-01T06:15:00Z",
            &["2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"],
        ),
        (
            "stepped hour fires in both copies",
            "0 1-23/2 * * *",
            NY,
            "2026-11-01T04:00:00Z",
            &[
                "2026-11-01T05:00:00Z",
                "2026-11-01T06:00:00Z",
                "2026-11-01T08:00:00Z",
            ],
        ),
        (
            "six fields, every 20 seconds across the fold",
            "*/20 * * * * *",
            NY,
            "2026-11-01T05:59:20Z",
            &[
                "2026-11-01T05:59:40Z",
                "2026-11-01T06:00:00Z",
                "2026-11-01T06:00:20Z",
            ],
        ),
        (
            "six fields, second step in a fixed minute: first copy only",
            "*/20 30 1 * * *",
            NY,
            "2026-11-01T05:29:30Z",
            &[
                "2026-11-01T05:30:00Z",
                "2026-11-01T05:30:20Z",
                "2026-11-01T05:30:40Z",
                "2026-11-02T06:30:00Z",
            ],
        ),
    ]);
}

#[test]
fn berlin_spring_forward() {
    check(&[
        (
            "fixed time in the gap fires at 03:00 CEST",
            "30 2 * * *",
            BERLIN,
            "2026-03-28T00:00:00Z",
            &[
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z",
            ],
        ),
        (
            "fixed time with a weekday (2026-03-29 is a Sunday)",
            "15 2 * * SUN",
            BERLIN,
            "2026-03-28T00:00:00Z",
            &["2026-03-29T01:00:00Z", "2026-04-05T00:15:00Z"],
        ),
        (
            "wildcard hour skips 02:xx",
            "0 * * * *",
            BERLIN,
            "2026-03-28T22:30:00Z",
            &[
                "2026-03-28T23:00:00Z",
                "2026-03-29T00:00:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T02:00:00Z",
            ],
        ),
        (
            "wildcard hour, minute step",
            "*/15 * * * *",
            BERLIN,
            "2026-03-29T00:40:00Z",
            &[
                "2026-03-29T00:45:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:15:00Z",
            ],
        ),
    ]);
}

#[test]
fn berlin_fall_back() {
    check(&[
        (
            "fixed time in the fold fires at its first occurrence only",
            "30 2 * * *",
            BERLIN,
            "2026-10-24T00:00:00Z",
            &[
                "2026-10-24T00:30:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-26T01:30:00Z",
            ],
        ),
        (
            "fold start",
            "0 2 * * *",
            BERLIN,
            "2026-10-24T12:00:00Z",
            &["2026-10-25T00:00:00Z", "2026-10-26T01:00:00Z"],
        ),
        (
            "wildcard hour fires in both copies",
            "0 * * * *",
            BERLIN,
            "2026-10-24T23:30:00Z",
            &[
                "2026-10-25T00:00:00Z",
                "2026-10-25T01:00:00Z",
                "2026-10-25T02:00:00Z",
            ],
        ),
        (
            "wildcard hour, minute step through the fold",
            "*/15 * * * *",
            BERLIN,
            "2026-10-25T00:40:00Z",
            &[
                "2026-10-25T00:45:00Z",
                "2026-10-25T01:00:00Z",
                "2026-10-25T01:15:00Z",
                "2026-10-25T01:30:00Z",
                "2026-10-25T01:45:00Z",
                "2026-10-25T02:00:00Z",
            ],
        ),
    ]);
}

#[test]
fn hourly_counts_over_transition_days() {
    // (zone, local midnight before, local midnight after, hourly fires in between)
    let cases = [
        (NY, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", 23),
        (NY, "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", 25),
        (BERLIN, "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 23),
        (BERLIN, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 25),
    ];
    for (tz, from, to, want) in cases {
        let s = schedule("0 * * * *", tz);
        assert_eq!(
            s.count_between(at(from), at(to), 1_000),
            (want, Some(at(to))),
            "{tz} {from}"
        );
    }
    // A daily fixed-time job fires exactly once on each transition day.
    for (tz, expr, from, to) in [
        (
            NY,
            "30 2 * * *",
            "2026-03-08T05:00:00Z",
            "2026-03-09T04:00:00Z",
        ),
        (
            NY,
            "30 1 * * *",
            "2026-11-01T04:00:00Z",
            "2026-11-02T05:00:00Z",
        ),
        (
            BERLIN,
            "30 2 * * *",
            "2026-03-28T23:00:00Z",
            "2026-03-29T22:00:00Z",
        ),
        (
            BERLIN,
            "30 2 * * *",
            "2026-10-24T22:00:00Z",
            "2026-10-25T23:00:00Z",
        ),
    ] {
        assert_eq!(
            schedule(expr, tz).count_between(at(from), at(to), 10).0,
            1,
            "{tz} {expr}"
        );
    }
}
