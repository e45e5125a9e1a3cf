//! The next fire times of a timer, in its time zone, with daylight-saving changes marked.

use kron_core::engine::TimerView;
use kron_core::schedule::Schedule;
use kron_core::time::EpochMs;
use kron_core::timer::Lifecycle;
use serde::Serialize;

/// One upcoming fire time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fire {
    pub at: EpochMs,
    /// In the timer's zone: `2026-03-29 03:00:00 +02:00 CEST`.
    pub local: String,
    /// The zone's offset from UTC at that instant, in seconds.
    pub offset_seconds: i32,
    /// The offset differs from the previous fire time's: a daylight-saving change lies between.
    pub dst_change: bool,
}

/// The next `n` fire times: from the timer's next occurrence on (a paused timer: what resuming
/// now would give), nominal (before jitter). Finished and orphaned timers have none.
pub fn next_fires(view: &TimerView, now: EpochMs, n: usize) -> Vec<Fire> {
    let rec = &view.record;
    if matches!(
        rec.lifecycle,
        Lifecycle::Orphaned | Lifecycle::Completed | Lifecycle::Dead
    ) {
        return Vec::new();
    }
    let Ok(schedule) = Schedule::from_spec(rec.def.schedule.clone()) else {
        return Vec::new();
    };
    // A paused timer shows what resuming now would give; so does a recurring one whose next
    // occurrence waits for the run in progress.
    let first = if !schedule.is_one_shot()
        && (rec.lifecycle == Lifecycle::Paused || rec.next_scheduled_at.is_none())
    {
        schedule.next_after(now)
    } else {
        rec.next_scheduled_at.or(view.next_run_at)
    };
    let zone = jiff::tz::TimeZone::get(&rec.def.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let mut out: Vec<Fire> = Vec::new();
    let mut at = first;
    while let Some(t) = at {
        if out.len() >= n {
            break;
        }
        let (local, offset_seconds) = local(t, &zone);
        let dst_change = out
            .last()
            .is_some_and(|prev| prev.offset_seconds != offset_seconds);
        out.push(Fire {
            at: t,
            local,
            offset_seconds,
            dst_change,
        });
        at = schedule.next_after(t);
    }
    out
}

/// `ms` in `zone` as text, and the zone's offset then.
fn local(ms: EpochMs, zone: &jiff::tz::TimeZone) -> (String, i32) {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => {
            let zoned = ts.to_zoned(zone.clone());
            (
                zoned.strftime("%Y-%m-%d %H:%M:%S %:z %Z").to_string(),
                zoned.offset().seconds(),
            )
        }
        Err(_) => (ms.to_string(), 0),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kron_core::engine::{Engine, EngineConfig};
    use kron_core::input::Input;
    use kron_core::schedule::ScheduleSpec;
    use kron_core::timer::{Catchup, Overlap, TimerDef};

    use super::next_fires;

    /// 2026-03-24T00:00:00Z: five days before Europe/Berlin moves from +01:00 to +02:00.
    const MARCH_24: i64 = 1_774_310_400_000;

    #[test]
    fn the_fire_after_a_utc_offset_change_is_marked() {
        let mut engine = Engine::new(EngineConfig::default(), 7);
        let def = TimerDef {
            id: "nightly".into(),
            schedule: ScheduleSpec::Cron {
                expr: "30 2 * * *".into(),
                timezone: Arc::from("Europe/Berlin"),
            },
            timezone: "Europe/Berlin".into(),
            max_attempts: 1,
            overlap: Overlap::Delay,
            catchup: Catchup::Once,
            jitter_ms: 0,
            fn_name: "nightly".into(),
            task: None,
        };
        engine.apply(Input::Register { at: MARCH_24, def }).unwrap();
        let view = engine.view("nightly").unwrap();
        let fires = next_fires(&view, MARCH_24, 10);
        let local: Vec<&str> = fires.iter().map(|f| f.local.as_str()).collect();
        assert_eq!(fires.len(), 10, "{local:?}");
        assert_eq!(local[0], "2026-03-24 02:30:00 +01:00 CET");
        // 02:30 does not exist on 29 March: the first instant after the gap.
        assert_eq!(local[5], "2026-03-29 03:00:00 +02:00 CEST");
        assert_eq!(local[6], "2026-03-30 02:30:00 +02:00 CEST");
        let marked: Vec<usize> = (0..fires.len()).filter(|&i| fires[i].dst_change).collect();
        assert_eq!(marked, vec![5], "{local:?}");
        assert_eq!(fires[4].offset_seconds, 3_600);
        assert_eq!(fires[5].offset_seconds, 7_200);
    }
}
