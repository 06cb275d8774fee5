//! The canonical form Go's `Quantity.String()` gives a quantity as written (`1024Mi` →
//! `1Gi`, `1000` → `1k`, `0.5` → `500m`): what upstream stores and prints after decoding.
//!
//! Values are handled exactly as long as the mantissa fits in 128 bits (`8Ei` stays
//! `8Ei`, where [`super::Quantity`] would clamp to an int64); anything that does not parse
//! is returned verbatim.

use super::{Format, interpret_suffix};

/// A parsed quantity: `(-1)^neg * mantissa * 10^exp`.
struct Parsed {
    neg: bool,
    mantissa: u128,
    exp: i32,
    format: Format,
}

/// Splits a quantity string into sign, integer digits, fraction digits and suffix
/// (Go's `parseQuantityString`).
fn split(s: &str) -> Option<(bool, &str, &str, &str)> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < b.len() && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= b.len() {
        return Some((positive, "0", "", ""));
    }
    let start = pos;
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = if pos == start { "0" } else { &s[start..pos] };
    let mut denom = "";
    if pos < b.len() && b[pos] == b'.' {
        pos += 1;
        let ds = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[ds..pos];
    }
    let suffix_start = pos;
    while pos < b.len() && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < b.len() && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos != b.len() {
        return None;
    }
    Some((positive, num, denom, &s[suffix_start..]))
}

/// Interprets a suffix as `(base, exponent, format)`; exponents far outside any
/// representable quantity are refused, so such quantities are kept verbatim.
fn suffix(s: &str) -> Option<(u32, i32, Format)> {
    interpret_suffix(s).ok().filter(|(_, exp, format)| {
        *format != Format::DecimalExponent || (-1000..=1000).contains(exp)
    })
}

/// Parses a quantity. `Some(Err(s))` means Go would keep the original string as its
/// rendering (already canonical per Go's fast path); `None` means it does not parse.
fn parse(s: &str) -> Option<Result<Parsed, String>> {
    let (positive, num, denom, suf) = split(s)?;
    let (base, exponent, format) = suffix(suf)?;

    // Go's fast path caches the input verbatim when it is already in canonical shape.
    let digits = num.len() + denom.len();
    match format {
        Format::DecimalSI | Format::DecimalExponent => {
            let scale = exponent - denom.len() as i32;
            if digits <= 18 && scale >= -9 {
                let shifted = format!("{num}{denom}");
                if scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0') {
                    return Some(Err(s.to_string()));
                }
            }
        }
        Format::BinarySI => {
            let precision = 15 - num.len() as i32 - (exponent as f32 * 3.0 / 10.0) as i32 - 1;
            if denom.is_empty() && precision >= 0 {
                let value: u64 = num.parse().ok()?;
                if value & 0x07 != 0 {
                    return Some(Err(s.to_string()));
                }
            }
        }
    }

    let mut mantissa: u128 = format!("{num}{denom}").parse().ok()?;
    let mut exp: i32 = -(denom.len() as i32);
    if base == 10 {
        exp += exponent;
    } else {
        mantissa = mantissa.checked_mul(1u128.checked_shl(exponent as u32)?)?;
    }
    // Values finer than a nano-unit are rounded up (away from zero) to 1n.
    if exp < -9 {
        let div = 10u128.checked_pow((-9 - exp) as u32)?;
        let rounded = mantissa / div + u128::from(!mantissa.is_multiple_of(div));
        mantissa = rounded;
        exp = -9;
    }
    let mut format = format;
    if format == Format::BinarySI && mantissa != 0 && less_than(mantissa, exp, 1) {
        format = Format::DecimalSI;
    }
    Some(Ok(Parsed {
        neg: !positive,
        mantissa,
        exp,
        format,
    }))
}

/// Whether `mantissa * 10^exp < bound`.
fn less_than(mantissa: u128, exp: i32, bound: u128) -> bool {
    if exp >= 0 {
        match 10u128
            .checked_pow(exp as u32)
            .and_then(|p| mantissa.checked_mul(p))
        {
            Some(v) => v < bound,
            None => false,
        }
    } else {
        match 10u128
            .checked_pow((-exp) as u32)
            .and_then(|p| bound.checked_mul(p))
        {
            Some(b) => mantissa < b,
            None => true,
        }
    }
}

/// Renders a parsed quantity in canonical form (Go's `CanonicalizeBytes`).
fn render(p: Parsed) -> String {
    if p.mantissa == 0 {
        return "0".to_string();
    }
    let sign = if p.neg { "-" } else { "" };
    let mut format = p.format;
    let mut integer: Option<u128> = None;
    if format == Format::BinarySI {
        if less_than(p.mantissa, p.exp, 1024) {
            format = Format::DecimalSI;
        } else {
            integer = as_integer(p.mantissa, p.exp);
            if integer.is_none() {
                format = Format::DecimalSI;
            }
        }
    }
    if let (Format::BinarySI, Some(mut v)) = (format, integer) {
        let mut e = 0;
        while v % 1024 == 0 && e < 6 {
            v /= 1024;
            e += 1;
        }
        let suf = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][e];
        return format!("{sign}{v}{suf}");
    }
    let (mut m, mut e) = (p.mantissa, p.exp);
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    while e.rem_euclid(3) != 0 {
        match m.checked_mul(10) {
            Some(x) => m = x,
            None => break,
        }
        e -= 1;
    }
    let suf = match (format, e) {
        (_, 0) => String::new(),
        (Format::DecimalSI, -9) => "n".into(),
        (Format::DecimalSI, -6) => "u".into(),
        (Format::DecimalSI, -3) => "m".into(),
        (Format::DecimalSI, 3) => "k".into(),
        (Format::DecimalSI, 6) => "M".into(),
        (Format::DecimalSI, 9) => "G".into(),
        (Format::DecimalSI, 12) => "T".into(),
        (Format::DecimalSI, 15) => "P".into(),
        (Format::DecimalSI, 18) => "E".into(),
        _ => format!("e{e}"),
    };
    format!("{sign}{m}{suf}")
}

/// `mantissa * 10^exp` as an integer, if it is one.
fn as_integer(mantissa: u128, exp: i32) -> Option<u128> {
    if exp >= 0 {
        10u128
            .checked_pow(exp as u32)
            .and_then(|p| mantissa.checked_mul(p))
    } else {
        let div = 10u128.checked_pow((-exp) as u32)?;
        mantissa.is_multiple_of(div).then_some(mantissa / div)
    }
}

/// Canonical form of a quantity string (the input itself when it does not parse).
pub fn canonical_form(s: &str) -> String {
    if s == "0" {
        return s.to_string();
    }
    match parse(s) {
        Some(Ok(p)) => render(p),
        Some(Err(cached)) => cached,
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_form as canonical;

    #[test]
    fn canonical_forms() {
        let cases = [
            ("4Gi", "4Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1000", "1k"),
            ("1500m", "1500m"),
            ("0.5", "500m"),
            ("100m", "100m"),
            ("10", "10"),
            ("1", "1"),
            ("0", "0"),
            ("0Gi", "0"),
            ("2048Ki", "2Mi"),
            ("0.5Gi", "512Mi"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("1.5", "1500m"),
            ("200M", "200M"),
            ("5000M", "5G"),
            ("-1024Mi", "-1Gi"),
            ("1n", "1n"),
            ("0.1n", "1n"),
            ("12e6", "12e6"),
            ("1e2", "100"),
            ("garbage", "garbage"),
            ("1e2147483647", "1e2147483647"),
            ("1.5e-2147483648", "1.5e-2147483648"),
            (
                "1.23456789012345678901234567890123456789e5",
                "123456789012346e-9",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input), want, "input {input}");
        }
        // Mantissas beyond 128 bits are not canonicalized, but never panic.
        assert!(!canonical("99999999999999999999999999999999999999999Ei").is_empty());
    }
}
