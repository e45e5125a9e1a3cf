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
