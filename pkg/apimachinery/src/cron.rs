//! Cron schedules as CronJobs read them: robfig/cron v3's standard parser, which upstream
//! uses both to validate `spec.schedule` (its error texts go verbatim into `Invalid value`)
//! and to run the schedule. Five fields or an `@` descriptor, optionally after a
//! `TZ=`/`CRON_TZ=` zone prefix. Evaluating a schedule against a clock and a time zone is
//! left to the CronJob controller.

use std::time::Duration;

use crate::goformat::quote;

/// Marks a day field written as `*` or `?` (robfig's star bit): then day of month and day
/// of week must both match, otherwise either may.
pub const STAR: u64 = 1 << 63;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Five fields, as bit sets (bit `n` set: value `n` matches).
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
    /// `@every <duration>`, rounded as robfig does: whole seconds, at least one.
    Every(Duration),
}

/// One field's bounds and the names it accepts.
struct Bounds {
    min: u64,
    max: u64,
    names: &'static [&'static str],
    first_name: u64,
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

/// Go's `strconv.Atoi` error text for `s`.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            quote(s)
        ));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", quote(s)))
}

fn must_parse_int(expr: &str) -> Result<u64, String> {
    let n = atoi(expr).map_err(|e| format!("failed to parse int from {expr}: {e}"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n.unsigned_abs())
}

fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u64, String> {
    let lower = expr.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u64 + b.first_name);
    }
    must_parse_int(expr)
}

/// robfig's `getRange`: the bits of one comma-separated part of a field.
fn get_range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let mut extra = 0;
    let (start, mut end);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        start = b.min;
        end = b.max;
        extra = STAR;
    } else {
        start = parse_int_or_name(low_and_high[0], b)?;
        end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = extra;
    let mut v = start;
    while v <= end {
        bits |= 1 << v;
        v += step;
    }
    Ok(bits)
}

fn get_field(field: &str, b: &Bounds) -> Result<u64, String> {
    field
        .split(',')
        .filter(|p| !p.is_empty())
        .try_fold(0, |bits, p| Ok(bits | get_range(p, b)?))
}

/// Go's `time.ParseDuration`: `None` where Go refuses the text; a negative duration reads
/// as zero (robfig rounds anything under a second up to one).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let negative = s.starts_with('-');
    let mut rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut seconds = 0f64;
    while !rest.is_empty() {
        // A number is digits, then at most one '.' and more digits, with a digit on at
        // least one side of it (`1`, `1.5`, `1.`, `.5`).
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut number_len = int_len;
        let mut frac_len = 0;
        if rest[int_len..].starts_with('.') {
            frac_len = rest[int_len + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            number_len += 1 + frac_len;
        }
        if int_len == 0 && frac_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].trim_end_matches('.').parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        seconds += number * scale;
        rest = &rest[unit_len..];
    }
    if negative || !seconds.is_finite() {
        return Some(Duration::ZERO);
    }
    Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

/// Splits robfig's `TZ=<zone> ` or `CRON_TZ=<zone> ` prefix off a schedule. Without a
/// space after the zone robfig panics, which upstream recovers into the error returned.
pub fn split_zone(spec: &str) -> Result<(Option<&str>, &str), String> {
    if !(spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=")) {
        return Ok((None, spec));
    }
    let Some(space) = spec.find(' ') else {
        return Err("recovered from panic: runtime error: slice bounds out of range".into());
    };
    let eq = spec.find('=').unwrap_or(0);
    let zone = spec.get(eq + 1..space).unwrap_or("");
    Ok((Some(zone), spec[space..].trim()))
}

impl Schedule {
    /// Parses a whole schedule as `cron.ParseStandard` does; `check_zone` judges the name
    /// of a `TZ=` prefix (its error is wrapped as robfig wraps `time.LoadLocation`'s).
    /// Returns the prefix's zone name with the schedule.
    pub fn parse_standard(
        spec: &str,
        check_zone: impl Fn(&str) -> Result<(), String>,
    ) -> Result<(Option<&str>, Self), String> {
        if spec.is_empty() {
            return Err("empty spec string".into());
        }
        let (zone, rest) = split_zone(spec)?;
        if let Some(name) = zone
            && let Err(e) = check_zone(name)
        {
            return Err(format!("provided bad location {name}: {e}"));
        }
        Ok((zone, Self::parse(rest)?))
    }

    /// Parses a schedule without a zone prefix: an `@` descriptor or five fields.
    pub fn parse(spec: &str) -> Result<Self, String> {
        if let Some(descriptor) = spec.strip_prefix('@') {
            let fields = match descriptor {
                "yearly" | "annually" => ["0", "0", "1", "1", "*"],
                "monthly" => ["0", "0", "1", "*", "*"],
                "weekly" => ["0", "0", "*", "*", "0"],
                "daily" | "midnight" => ["0", "0", "*", "*", "*"],
                "hourly" => ["0", "*", "*", "*", "*"],
                d if d.starts_with("every ") => {
                    let text = &d["every ".len()..];
                    let every = parse_go_duration(text).ok_or_else(|| {
                        format!(
                            "failed to parse duration {spec}: time: invalid duration {}",
                            quote(text)
                        )
                    })?;
                    let whole = Duration::from_secs(every.as_secs());
                    return Ok(Self::Every(whole.max(Duration::from_secs(1))));
                }
                _ => return Err(format!("unrecognized descriptor: {spec}")),
            };
            return Self::fields(&fields);
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            ));
        }
        Self::fields(&fields)
    }

    fn fields(fields: &[&str]) -> Result<Self, String> {
        let [minute, hour, dom, month, dow] = fields else {
            return Err(format!("expected exactly 5 fields, found {}", fields.len()));
        };
        Ok(Self::Fields {
            minute: get_field(minute, &MINUTES)? & !STAR,
            hour: get_field(hour, &HOURS)? & !STAR,
            dom: get_field(dom, &DOM)?,
            month: get_field(month, &MONTHS)? & !STAR,
            dow: get_field(dow, &DOW)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<Schedule, String> {
        Schedule::parse_standard(spec, |_| Ok(())).map(|(_, s)| s)
    }

    #[test]
    fn atoi_errors_quote_like_go() {
        // strconv.Quote, not JSON: a bell is \a and a zero-width space is escaped.
        assert_eq!(
            atoi("\u{7}\u{200b}"),
            Err("strconv.Atoi: parsing \"\\a\\u200b\": invalid syntax".to_string())
        );
    }

    #[test]
    fn schedules_parse_like_robfig() {
        for ok in [
            "*/1 * * * *",
            "0 0 * * 0",
            "@hourly",
            "@every 1h30m",
            "5 4 * * sun",
            "0 22 * * 1-5",
            "0 0 1 jan,jul *",
            "TZ=UTC 0 * * * *",
            "30 2 ? * MON-FRI",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for (bad, msg) in [
            ("", "empty spec string"),
            ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("@sometimes", "unrecognized descriptor: @sometimes"),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("0 0 * * 7", "end of range (7) above maximum (6): 7"),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("1/2/3 * * * *", "too many slashes: 1/2/3"),
            (
                "TZ=UTC",
                "recovered from panic: runtime error: slice bounds out of range",
            ),
            (
                "@every 5",
                "failed to parse duration @every 5: time: invalid duration \"5\"",
            ),
        ] {
            assert_eq!(parse(bad), Err(msg.to_string()), "{bad}");
        }
    }

    #[test]
    fn a_bad_zone_is_reported_before_the_fields() {
        let refuse = |name: &str| Err(format!("unknown time zone {name}"));
        assert_eq!(
            Schedule::parse_standard("TZ=Mars/Base x x", refuse),
            Err("provided bad location Mars/Base: unknown time zone Mars/Base".to_string())
        );
        assert_eq!(
            Schedule::parse_standard("CRON_TZ=Europe/Paris 0 9 * * *", |_| Ok(()))
                .map(|(zone, _)| zone),
            Ok(Some("Europe/Paris"))
        );
    }

    #[test]
    fn fields_become_bit_sets_with_robfigs_star() {
        let Ok(Schedule::Fields {
            minute,
            hour,
            dom,
            month,
            dow,
        }) = parse("*/15 9-10 * jan,dec 1-5")
        else {
            panic!("parse");
        };
        assert_eq!(minute, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(hour, 1 << 9 | 1 << 10);
        assert_eq!(dom & STAR, STAR);
        assert_eq!(month, 1 << 1 | 1 << 12);
        assert_eq!(dow, 0b11_1110);
        // A step over 1 drops the star: both day fields then match either way.
        let Ok(Schedule::Fields { dom, .. }) = parse("0 0 */2 * *") else {
            panic!("parse");
        };
        assert_eq!(dom & STAR, 0);
        assert_eq!(parse("@weekly"), parse("0 0 * * 0"));
    }

    #[test]
    fn durations_read_as_go_reads_them() {
        let d = |s: &str| parse_go_duration(s);
        assert_eq!(d("5m"), Some(Duration::from_secs(300)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(d("-5m"), Some(Duration::ZERO));
        assert!(d("5").is_none() && d("m").is_none() && d("").is_none());
        // One '.' per number, with a digit on at least one side.
        assert!(d("1.s").is_some() && d(".5s").is_some() && d("1.5h.5m").is_some());
        assert!(d("1.2.3s").is_none() && d("1..2s").is_none() && d(".s").is_none());
        assert!(d("1.2s.").is_none() && d("1s2.3.4m").is_none());
        // robfig keeps whole seconds, one at least.
        assert_eq!(
            parse("@every 1500ms"),
            Ok(Schedule::Every(Duration::from_secs(1)))
        );
        assert_eq!(
            parse("@every 90s"),
            Ok(Schedule::Every(Duration::from_secs(90)))
        );
    }
}
