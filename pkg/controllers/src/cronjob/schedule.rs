//! When a CronJob's schedule fires: the schedule is parsed by the shared robfig/cron
//! parser (`k1s_apimachinery::cron`, which the API server validates with) and evaluated
//! here against a clock and a time zone.

use k8s_openapi::jiff::civil::{Date, DateTime};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Timestamp, ToSpan, Zoned};

use k1s_apimachinery::cron::STAR;
pub use k1s_apimachinery::cron::{Schedule, split_zone};

/// A schedule evaluated against a clock.
pub trait Fires {
    /// The first time after `after` (strictly) that the schedule fires, in `tz`; `None`
    /// when it never fires (e.g. February 30th) within five years.
    fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp>;
}

impl Fires for Schedule {
    fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let (minute, hour, dom, month, dow) = match self {
            Schedule::Every(d) => {
                let secs = d.as_secs().max(1) as i64;
                // Fires on whole seconds, `d` after `after`.
                return Timestamp::from_second(after.as_second() + secs).ok();
            }
            Schedule::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
            } => (*minute, *hour, *dom, *month, *dow),
        };
        let day_matches = |d: Date| -> bool {
            let dom_ok = dom & (1 << d.day()) != 0;
            let dow_ok = dow & (1 << d.weekday().to_sunday_zero_offset()) != 0;
            if dom & STAR != 0 || dow & STAR != 0 {
                dom_ok && dow_ok
            } else {
                dom_ok || dow_ok
            }
        };
        let start = after.to_zoned(tz.clone());
        // The next whole minute after `after`.
        let mut t: DateTime = start
            .datetime()
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?;
        t = t.checked_add(1.minute()).ok()?;
        let limit = t.year() + 5;
        while t.year() <= limit {
            if month & (1 << t.month()) == 0 {
                let first = t.date().first_of_month().checked_add(1.month()).ok()?;
                t = first.to_datetime(Default::default());
                continue;
            }
            if !day_matches(t.date()) {
                t = t
                    .date()
                    .checked_add(1.day())
                    .ok()?
                    .to_datetime(Default::default());
                continue;
            }
            if hour & (1 << t.hour()) == 0 {
                t = t
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if minute & (1 << t.minute()) == 0 {
                t = t.checked_add(1.minute()).ok()?;
                continue;
            }
            let z: Zoned = tz.to_ambiguous_zoned(t).compatible().ok()?;
            let ts = z.timestamp();
            if ts > after {
                return Some(ts);
            }
            t = t.checked_add(1.minute()).ok()?;
        }
        None
    }
}

/// The time zone named by `spec.timeZone`, read from the system's zoneinfo as Go's
/// `time.LoadLocation` does; `None` is the controller's local zone (`TZ`, else
/// `/etc/localtime`, else UTC), as upstream's `time.Local`.
pub fn load_time_zone(name: Option<&str>) -> Result<TimeZone, String> {
    let Some(name) = name else {
        return Ok(local_time_zone());
    };
    if name == "Local" {
        return Ok(local_time_zone());
    }
    if name == "UTC" || name.is_empty() {
        return Ok(TimeZone::UTC);
    }
    if name.contains("..") || name.starts_with('/') {
        return Err(format!("invalid time zone name {name}"));
    }
    let dirs = [
        "/usr/share/zoneinfo",
        "/usr/lib/zoneinfo",
        "/usr/share/lib/zoneinfo",
        "/etc/zoneinfo",
    ];
    for d in dirs {
        if let Ok(bytes) = std::fs::read(format!("{d}/{name}")) {
            return TimeZone::tzif(name, &bytes).map_err(|e| e.to_string());
        }
    }
    Err(format!("unknown time zone {name}"))
}

/// Go's `time.Local`: `TZ` when set (empty is UTC), else `/etc/localtime`, else UTC.
pub fn local_time_zone() -> TimeZone {
    match std::env::var("TZ") {
        Ok(name) if name.is_empty() || name == "Local" => TimeZone::UTC,
        Ok(name) => load_time_zone(Some(name.trim_start_matches(':'))).unwrap_or(TimeZone::UTC),
        Err(_) => std::fs::read("/etc/localtime")
            .ok()
            .and_then(|b| TimeZone::tzif("Local", &b).ok())
            .unwrap_or(TimeZone::UTC),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn next(spec: &str, after: &str) -> String {
        Schedule::parse(spec)
            .expect("parse")
            .next(ts(after), &TimeZone::UTC)
            .expect("next")
            .to_string()
    }

    #[test]
    fn next_times_follow_robfig_cron() {
        assert_eq!(
            next("*/1 * * * *", "2026-01-01T10:00:30Z"),
            "2026-01-01T10:01:00Z"
        );
        assert_eq!(
            next("*/1 * * * *", "2026-01-01T10:01:00Z"),
            "2026-01-01T10:02:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-01-01T10:16:00Z"),
            "2026-01-01T10:30:00Z"
        );
        assert_eq!(
            next("@hourly", "2026-01-01T10:16:00Z"),
            "2026-01-01T11:00:00Z"
        );
        assert_eq!(
            next("@daily", "2026-01-01T10:16:00Z"),
            "2026-01-02T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", "2026-01-31T10:16:00Z"),
            "2026-02-01T00:00:00Z"
        );
        assert_eq!(
            next("@yearly", "2026-03-01T00:00:00Z"),
            "2027-01-01T00:00:00Z"
        );
        // 2026-01-01 is a Thursday; `@weekly` is Sunday midnight.
        assert_eq!(
            next("@weekly", "2026-01-01T00:00:00Z"),
            "2026-01-04T00:00:00Z"
        );
        assert_eq!(
            next("0 9 * * mon-fri", "2026-01-02T10:00:00Z"),
            "2026-01-05T09:00:00Z"
        );
        // Day of month and day of week, both restricted: either matches.
        assert_eq!(
            next("0 0 13 * 5", "2026-01-01T00:00:00Z"),
            "2026-01-02T00:00:00Z"
        );
        assert_eq!(
            next("0 0 29 2 *", "2026-01-01T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        assert_eq!(
            next("30 2 * * *", "2026-01-01T00:00:00Z"),
            "2026-01-01T02:30:00Z"
        );
        assert_eq!(
            next("@every 90s", "2026-01-01T00:00:00Z"),
            "2026-01-01T00:01:30Z"
        );
        assert!(
            Schedule::parse("0 0 30 2 *")
                .expect("parse")
                .next(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC)
                .is_none()
        );
    }

    #[test]
    fn bad_schedules_are_refused() {
        for s in [
            "* * * *",
            "61 * * * *",
            "TZ=UTC * * * * *",
            "@fortnightly",
            "*/0 * * * *",
            "5-1 * * * *",
        ] {
            assert!(Schedule::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn zones_in_schedules_are_split_off() {
        assert_eq!(
            split_zone("TZ=Europe/Paris 0 9 * * *"),
            Ok((Some("Europe/Paris"), "0 9 * * *"))
        );
        assert_eq!(
            split_zone("CRON_TZ=UTC @hourly"),
            Ok((Some("UTC"), "@hourly"))
        );
        assert_eq!(split_zone("*/5 * * * *"), Ok((None, "*/5 * * * *")));
    }

    #[test]
    fn time_zones_shift_the_schedule() {
        let Ok(tz) = load_time_zone(Some("America/New_York")) else {
            // No zoneinfo on this machine: nothing to check.
            return;
        };
        let s = Schedule::parse("0 9 * * *").expect("parse");
        let n = s.next(ts("2026-01-01T00:00:00Z"), &tz).expect("next");
        assert_eq!(n.to_string(), "2026-01-01T14:00:00Z");
        assert!(load_time_zone(Some("Mars/Olympus")).is_err());
    }
}
