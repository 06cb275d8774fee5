//! Cron schedules as CronJobs read them (robfig/cron v3's standard parser, which
//! upstream uses): five fields or an `@` descriptor, evaluated in a time zone.

use std::time::Duration;

use k8s_openapi::jiff::civil::{Date, DateTime};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Timestamp, ToSpan, Zoned};

/// Marks a day field written as `*`/`?` (robfig's star bit): then day of month and day
/// of week must both match, otherwise either may.
const STAR: u64 = 1 << 63;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Five fields, as bit sets.
    Fields {
        /// Minutes 0-59.
        minute: u64,
        /// Hours 0-23.
        hour: u64,
        /// Days of month 1-31 (and [`STAR`]).
        dom: u64,
        /// Months 1-12.
        month: u64,
        /// Days of week 0-6, Sunday first (and [`STAR`]).
        dow: u64,
    },
    /// `@every <duration>`.
    Every(Duration),
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    first_name: u32,
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    first_name: 0,
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
    first_name: 0,
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
    first_name: 0,
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    first_name: 1,
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    first_name: 0,
};

fn value(s: &str, b: &Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + b.first_name);
    }
    s.parse::<u32>()
        .map_err(|_| format!("failed to parse int from {s}"))
}

fn range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let (range, step) = match expr.split_once('/') {
        Some((r, s)) => (
            r,
            Some(
                s.parse::<u32>()
                    .map_err(|_| format!("failed to parse int from {s}"))?,
            ),
        ),
        None => (expr, None),
    };
    let mut extra = 0;
    let (lo, mut hi) = if range == "*" || range == "?" {
        extra = STAR;
        (b.min, b.max)
    } else {
        match range.split_once('-') {
            Some((l, h)) => (value(l, b)?, value(h, b)?),
            None => {
                let v = value(range, b)?;
                (v, v)
            }
        }
    };
    let step = match step {
        Some(s) => {
            if !range.contains('-') {
                hi = b.max;
            }
            if s > 1 {
                extra = 0;
            }
            s
        }
        None => 1,
    };
    if lo < b.min || hi > b.max || lo > hi || step == 0 {
        return Err(format!("invalid range: {expr}"));
    }
    let mut bits = extra;
    let mut v = lo;
    while v <= hi {
        bits |= 1 << v;
        v += step;
    }
    Ok(bits)
}

fn field(f: &str, b: &Bounds) -> Result<u64, String> {
    f.split(',')
        .filter(|p| !p.is_empty())
        .try_fold(0, |acc, p| Ok(acc | range(p, b)?))
}

const ALL: fn(&Bounds) -> u64 = |b| {
    let mut bits = 0;
    for v in b.min..=b.max {
        bits |= 1 << v;
    }
    bits
};

/// Go's `time.ParseDuration`, for `@every`.
fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * scale;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

impl Schedule {
    /// Parses a schedule; `TZ=`/`CRON_TZ=` prefixes are refused here (split them off
    /// with [`split_zone`] first).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            return Err("TZ and CRON_TZ are not supported in schedules, use timeZone".into());
        }
        if let Some(d) = spec.strip_prefix("@every ") {
            let d = parse_go_duration(d.trim())
                .ok_or_else(|| format!("failed to parse duration {spec}"))?;
            // robfig rounds below a second up to one.
            return Ok(Self::Every(d.max(Duration::from_secs(1))));
        }
        let fields: Vec<&str> = match spec {
            "@yearly" | "@annually" => vec!["0", "0", "1", "1", "*"],
            "@monthly" => vec!["0", "0", "1", "*", "*"],
            "@weekly" => vec!["0", "0", "*", "*", "0"],
            "@daily" | "@midnight" => vec!["0", "0", "*", "*", "*"],
            "@hourly" => vec!["0", "*", "*", "*", "*"],
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
            s => s.split_whitespace().collect(),
        };
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                fields.len()
            ));
        }
        let mut dow = field(fields[4], &DOW)?;
        // robfig accepts 7 for Sunday in ranges? It does not; keep 0-6.
        dow &= ALL(&DOW) | STAR;
        Ok(Self::Fields {
            minute: field(fields[0], &MINUTES)? & !STAR,
            hour: field(fields[1], &HOURS)? & !STAR,
            dom: field(fields[2], &DOM)?,
            month: field(fields[3], &MONTHS)? & !STAR,
            dow,
        })
    }

    /// The first time after `after` (strictly) that the schedule fires, in `tz`; `None`
    /// when it never fires (e.g. February 30th) within five years.
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let (minute, hour, dom, month, dow) = match self {
            Self::Every(d) => {
                let secs = d.as_secs().max(1) as i64;
                // Fires on whole seconds, `d` after `after`.
                return Timestamp::from_second(after.as_second() + secs).ok();
            }
            Self::Fields {
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

/// Splits a `TZ=<zone> ` or `CRON_TZ=<zone> ` prefix (which robfig/cron honours and
/// older CronJobs may still carry) from the schedule.
pub fn split_zone(spec: &str) -> (Option<&str>, &str) {
    let spec = spec.trim();
    for prefix in ["TZ=", "CRON_TZ="] {
        if let Some(rest) = spec.strip_prefix(prefix) {
            let (zone, sched) = rest.split_once(' ').unwrap_or((rest, ""));
            return (Some(zone), sched.trim());
        }
    }
    (None, spec)
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
            (Some("Europe/Paris"), "0 9 * * *")
        );
        assert_eq!(split_zone("CRON_TZ=UTC @hourly"), (Some("UTC"), "@hourly"));
        assert_eq!(split_zone("*/5 * * * *"), (None, "*/5 * * * *"));
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
