//! Go's `time.Parse` for the two layouts Kubernetes objects carry: RFC 3339 (`metav1.Time`,
//! `2006-01-02T15:04:05Z07:00`) and RFC 3339 with microseconds (`metav1.MicroTime`,
//! `2006-01-02T15:04:05.000000Z07:00`).
//!
//! Upstream decodes timestamps with `time.Parse`, so what it accepts and the words of its
//! refusals (`parsing time "2024-01-01T12:99:00Z": minute out of range`) are Go's: a
//! one-digit hour passes, an offset of `+24:00` passes, a MicroTime needs exactly six
//! fractional digits. This module reproduces that behaviour for those two layouts.

/// The layout of `metav1.Time`.
pub const RFC3339: &str = "2006-01-02T15:04:05Z07:00";
/// The layout of `metav1.MicroTime`.
pub const RFC3339_MICRO: &str = "2006-01-02T15:04:05.000000Z07:00";

/// Checks `value` as `metav1.Time` does; the error is Go's message.
pub fn check_rfc3339(value: &str) -> Result<(), String> {
    parse(value, false)
}

/// Checks `value` as `metav1.MicroTime` does; the error is Go's message.
pub fn check_rfc3339_micro(value: &str) -> Result<(), String> {
    parse(value, true)
}

/// The elements of the two layouts, in order.
#[derive(Clone, Copy)]
enum Elem {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Micros,
    Zone,
}

impl Elem {
    /// The element as the layout writes it (Go's `stdstr`).
    fn layout(self) -> &'static str {
        match self {
            Elem::Year => "2006",
            Elem::Month => "01",
            Elem::Day => "02",
            Elem::Hour => "15",
            Elem::Minute => "04",
            Elem::Second => "05",
            Elem::Micros => ".000000",
            Elem::Zone => "Z07:00",
        }
    }
}

/// Go's `time.quote`: ASCII control and non-ASCII bytes as `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for (i, c) in s.char_indices() {
        if (c as u32) < 0x20 || (c as u32) >= 0x80 {
            for b in &s.as_bytes()[i..i + c.len_utf8()] {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

struct Parse<'a> {
    layout: &'static str,
    value: &'a str,
}

impl Parse<'_> {
    /// `parsing time "V" as "L": cannot parse "rest" as "elem"`.
    fn cannot(&self, rest: &str, elem: &str) -> String {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            quote(self.value),
            quote(self.layout),
            quote(rest),
            quote(elem)
        )
    }

    /// `parsing time "V": what out of range` and the other messages without a layout.
    fn message(&self, message: &str) -> String {
        format!("parsing time {}{message}", quote(self.value))
    }
}

fn digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`), and the rest.
fn getnum(s: &str, fixed: bool) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    if !digit(b, 0) {
        return None;
    }
    if !digit(b, 1) {
        if fixed {
            return None;
        }
        return Some((i64::from(b[0] - b'0'), &s[1..]));
    }
    Some((
        i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0'),
        &s[2..],
    ))
}

/// Go's `atoi`: an optional sign and digits, nothing else.
fn atoi(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some(if neg { -n } else { n })
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `parse` for the RFC 3339 layouts (the strict fast path accepts a subset of what
/// this accepts, so this alone decides).
fn parse(value: &str, micro: bool) -> Result<(), String> {
    let p = Parse {
        layout: if micro { RFC3339_MICRO } else { RFC3339 },
        value,
    };
    let elems: &[(&str, Elem)] = if micro {
        &[
            ("", Elem::Year),
            ("-", Elem::Month),
            ("-", Elem::Day),
            ("T", Elem::Hour),
            (":", Elem::Minute),
            (":", Elem::Second),
            ("", Elem::Micros),
            ("", Elem::Zone),
        ]
    } else {
        &[
            ("", Elem::Year),
            ("-", Elem::Month),
            ("-", Elem::Day),
            ("T", Elem::Hour),
            (":", Elem::Minute),
            (":", Elem::Second),
            ("", Elem::Zone),
        ]
    };
    let (mut year, mut month, mut day) = (0, 1, 1);
    let mut rest = value;
    for &(prefix, elem) in elems {
        match rest.strip_prefix(prefix) {
            Some(r) => rest = r,
            None => return Err(p.cannot(rest, prefix)),
        }
        let hold = rest;
        let mut range: Option<&str> = None;
        let ok = match elem {
            Elem::Year => {
                if rest.len() < 4 || !digit(rest.as_bytes(), 0) || !rest.is_char_boundary(4) {
                    None
                } else {
                    let (y, r) = rest.split_at(4);
                    rest = r;
                    atoi(y).map(|y| year = y)
                }
            }
            Elem::Month | Elem::Day | Elem::Hour | Elem::Minute | Elem::Second => {
                let fixed = !matches!(elem, Elem::Hour);
                getnum(rest, fixed).map(|(n, r)| {
                    rest = r;
                    match elem {
                        Elem::Month => {
                            month = n;
                            if !(1..=12).contains(&n) {
                                range = Some("month");
                            }
                        }
                        Elem::Day => day = n,
                        Elem::Hour if n >= 24 => range = Some("hour"),
                        Elem::Minute if n >= 60 => range = Some("minute"),
                        Elem::Second if n >= 60 => range = Some("second"),
                        _ => {}
                    }
                    // A fraction the layout does not name is read here.
                    if matches!(elem, Elem::Second) && range.is_none() && !micro {
                        let b = rest.as_bytes();
                        if b.len() >= 2 && matches!(b[0], b'.' | b',') && digit(b, 1) {
                            let n = 2 + b[2..].iter().take_while(|c| c.is_ascii_digit()).count();
                            rest = &rest[n..];
                        }
                    }
                })
            }
            Elem::Micros => {
                let b = rest.as_bytes();
                if b.len() < 7 || !matches!(b[0], b'.' | b',') || !rest.is_char_boundary(7) {
                    None
                } else {
                    match atoi(&rest[1..7]) {
                        Some(ns) => {
                            if ns < 0 {
                                range = Some("fractional second");
                            }
                            rest = &rest[7..];
                            Some(())
                        }
                        None => None,
                    }
                }
            }
            Elem::Zone => zone(&mut rest, &mut range),
        };
        if let Some(what) = range {
            return Err(p.message(&format!(": {what} out of range")));
        }
        if ok.is_none() {
            return Err(p.cannot(hold, elem.layout()));
        }
    }
    if !rest.is_empty() {
        return Err(p.message(&format!(": extra text: {}", quote(rest))));
    }
    if day < 1 || day > days_in(month, year) {
        return Err(p.message(": day out of range"));
    }
    Ok(())
}

/// `Z07:00`: `Z`, or a sign, two-digit hours, a colon and two-digit minutes (Go allows
/// up to 24 hours and 60 minutes here).
fn zone(rest: &mut &str, range: &mut Option<&str>) -> Option<()> {
    if let Some(r) = rest.strip_prefix('Z') {
        *rest = r;
        return Some(());
    }
    let b = rest.as_bytes();
    if b.len() < 6 || b[3] != b':' || !rest.is_char_boundary(6) {
        return None;
    }
    let two = |i: usize| {
        (digit(b, i) && digit(b, i + 1))
            .then(|| i64::from(b[i] - b'0') * 10 + i64::from(b[i + 1] - b'0'))
    };
    let hour = two(1)?;
    let minute = two(4)?;
    if hour > 24 {
        *range = Some("time zone offset hour");
    }
    if minute > 60 {
        *range = Some("time zone offset minute");
    }
    if !matches!(b[0], b'+' | b'-') {
        return None;
    }
    *rest = &rest[6..];
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_timestamps_pass_as_go_reads_them() {
        for v in [
            "2024-01-01T12:00:00Z",
            "2024-01-01T12:00:00.5Z",
            "2024-01-01T12:00:00+02:00",
            "2024-02-29T00:00:00Z",
            "2024-01-01T1:00:00Z",
            "2024-01-01T12:00:00+24:00",
        ] {
            assert_eq!(check_rfc3339(v), Ok(()), "{v}");
        }
        assert_eq!(check_rfc3339_micro("2024-01-01T12:00:00.123456Z"), Ok(()));
    }

    #[test]
    fn refusals_carry_gos_words() {
        let cases = [
            (
                "2024-01-01T12:99:00Z",
                r#"parsing time "2024-01-01T12:99:00Z": minute out of range"#,
            ),
            (
                "",
                r#"parsing time "" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "2006""#,
            ),
            (
                "12:99",
                r#"parsing time "12:99" as "2006-01-02T15:04:05Z07:00": cannot parse "12:99" as "2006""#,
            ),
            (
                "2024-13-01T00:00:00Z",
                r#"parsing time "2024-13-01T00:00:00Z": month out of range"#,
            ),
            (
                "2023-02-29T00:00:00Z",
                r#"parsing time "2023-02-29T00:00:00Z": day out of range"#,
            ),
            (
                "2024-01-01 12:00:00Z",
                r#"parsing time "2024-01-01 12:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse " 12:00:00Z" as "T""#,
            ),
            (
                "2024-01-01T12:00:00",
                r#"parsing time "2024-01-01T12:00:00" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00""#,
            ),
            (
                "2024-01-01T12:00:00Zjunk",
                r#"parsing time "2024-01-01T12:00:00Zjunk": extra text: "junk""#,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(check_rfc3339(v), Err(want.to_string()), "{v}");
        }
        assert_eq!(
            check_rfc3339_micro("2024-01-01T12:00:00Z"),
            Err(r#"parsing time "2024-01-01T12:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000""#.to_string())
        );
        assert_eq!(
            check_rfc3339_micro("12:99"),
            Err(r#"parsing time "12:99" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "12:99" as "2006""#.to_string())
        );
    }

    #[test]
    fn any_input_is_judged_without_panicking() {
        for v in [
            "é",
            "2024-é",
            "2024-01-01T12:00:00é",
            "2024-01-01T12:00:00+é:00",
            "9",
        ] {
            let _ = check_rfc3339(v);
            let _ = check_rfc3339_micro(v);
        }
    }
}
