//! The cron schedule grammar CronJobs accept: robfig/cron v3's standard parser (five
//! fields, or an `@` descriptor, optionally after `TZ=`/`CRON_TZ=`), with its error texts,
//! which upstream puts verbatim into `spec.schedule: Invalid value: …`; and Go's
//! `time.LoadLocation` for time zone names.

use k1s_apimachinery::goformat::quote;
use std::path::Path as FsPath;

/// One field's bounds and names.
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

/// robfig's `getRange` for one comma-separated part.
fn get_range(expr: &str, b: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        start = b.min;
        end = b.max;
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
    Ok(())
}

fn get_field(field: &str, b: &Bounds) -> Result<(), String> {
    field
        .split(',')
        .filter(|p| !p.is_empty())
        .try_for_each(|p| get_range(p, b))
}

/// Go's `time.ParseDuration`, enough to tell valid from invalid (`@every 1h30m`).
fn parse_duration(s: &str) -> bool {
    let mut rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        // A number is digits, then at most one '.' and more digits, with a digit on
        // at least one side of it (`1`, `1.5`, `1.`, `.5`).
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        rest = &rest[int_len..];
        let mut frac_len = 0;
        if let Some(after_dot) = rest.strip_prefix('.') {
            frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            rest = &after_dot[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return false;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        if !matches!(
            &rest[..unit_len],
            "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h"
        ) {
            return false;
        }
        rest = &rest[unit_len..];
    }
    true
}

/// Parses a schedule like `cron.ParseStandard`; the error is robfig's text.
pub fn parse_standard(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        // robfig slices up to the first space; without one Go panics, which upstream
        // recovers into an error.
        let Some(space) = spec.find(' ') else {
            return Err(
                "recovered from panic: runtime error: slice bounds out of range".to_string(),
            );
        };
        let eq = spec.find('=').unwrap_or(0);
        let name = spec.get(eq + 1..space).unwrap_or("");
        if let Err(e) = load_location(name) {
            return Err(format!("provided bad location {name}: {e}"));
        }
        spec = spec[space..].trim();
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => {
                let dur = &d["every ".len()..];
                if parse_duration(dur) {
                    Ok(())
                } else {
                    Err(format!(
                        "failed to parse duration {spec}: time: invalid duration {}",
                        quote(dur)
                    ))
                }
            }
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (f, b) in fields.iter().zip([&MINUTES, &HOURS, &DOM, &MONTHS, &DOW]) {
        get_field(f, b)?;
    }
    Ok(())
}

/// Go's `time.LoadLocation` error for `name` (`unknown time zone X`), looking in the
/// system's zoneinfo. Where this machine has no zoneinfo at all the name is accepted:
/// the API server upstream embeds the database, so nothing can be refused for sure.
pub fn load_location(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(());
    }
    if name.split('/').any(|p| p == "..") || name.starts_with('/') || name.starts_with('\\') {
        return Err("time: invalid location name".into());
    }
    let mut dirs: Vec<String> = Vec::new();
    if let Ok(z) = std::env::var("ZONEINFO") {
        dirs.push(z);
    }
    dirs.extend(
        [
            "/usr/share/zoneinfo",
            "/usr/share/lib/zoneinfo",
            "/usr/lib/locale/TZ",
            "/etc/zoneinfo",
        ]
        .map(String::from),
    );
    let mut any_database = false;
    for d in &dirs {
        let dir = FsPath::new(d);
        if dir.is_dir() {
            any_database = true;
            if dir.join(name).is_file() {
                return Ok(());
            }
        }
    }
    if any_database {
        Err(format!("unknown time zone {name}"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(parse_standard(ok), Ok(()), "{ok}");
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
        ] {
            assert_eq!(parse_standard(bad), Err(msg.to_string()), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert!(parse_duration("5m") && parse_duration("1h30m") && parse_duration("1.5s"));
        assert!(!parse_duration("5") && !parse_duration("m") && !parse_duration(""));
        // One '.' per number, as Go's time.ParseDuration reads them.
        assert!(parse_duration("1.s") && parse_duration(".5s") && parse_duration("1.5h.5m"));
        assert!(!parse_duration("1.2.3s") && !parse_duration("1..2s") && !parse_duration(".s"));
        assert!(!parse_duration("1.2s.") && !parse_duration("1s2.3.4m"));
        assert!(parse_standard("@every 1.2.3s").is_err());
    }
}
