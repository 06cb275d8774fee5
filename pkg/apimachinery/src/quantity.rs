//! Resource quantities (`k8s.io/apimachinery/pkg/api/resource`): `500m`, `1.5Gi`, `2e3`.
//!
//! Parsing follows upstream's grammar, suffixes and error texts; values are held exactly
//! as a count of nano-units (upstream rounds anything finer up to 1n), and print in
//! upstream's canonical form (`1.5` → `1500m`, `1536Mi` stays, `1024Ki` → `1Mi`). Like
//! upstream, an input that is already canonical keeps its original spelling. Unlike
//! upstream (arbitrary precision), magnitudes beyond about 1.7e29 are refused with
//! [`QuantityError::OutOfRange`].

pub mod canonical;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;

const NANO: i128 = 1_000_000_000;

/// How a quantity prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `12e6`.
    DecimalExponent,
    /// Powers of two: `12Mi`.
    BinarySI,
    /// Powers of ten: `12M`, `500m`.
    DecimalSI,
}

/// Why a quantity string could not be parsed; `Display` is upstream's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string does not have the shape of a quantity.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    /// The number part has no digits.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is not one of the known ones.
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// The value is too large (or its exponent too extreme) for k1s to hold.
    #[error("quantity is too large to represent")]
    OutOfRange,
}

/// A fixed-point amount with a preferred print format.
#[derive(Debug, Clone)]
pub struct Quantity {
    /// The value in units of 10^-9.
    nanos: i128,
    format: Format,
    /// The original spelling, kept when upstream would keep it (already canonical).
    text: Option<String>,
}

/// The pieces of a quantity string, as upstream's scanner splits them.
struct Scanned<'a> {
    positive: bool,
    /// Sign, integer digits, point and fraction digits as written.
    value: &'a str,
    /// Integer digits without leading zeros ("0" if none).
    num: &'a str,
    /// Fraction digits.
    denom: &'a str,
    suffix: &'a str,
}

fn scan(s: &str) -> Result<Scanned<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut positive = true;
    let mut pos = 0;
    if let Some(&c) = b.first() {
        if c == b'-' {
            positive = false;
            pos += 1;
        } else if c == b'+' {
            pos += 1;
        }
    }
    let done = |value, num, denom, suffix| {
        Ok(Scanned {
            positive,
            value,
            num,
            denom,
            suffix,
        })
    };
    // Leading zeros.
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return done("0", "0", "", "");
    }
    // Integer digits.
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end {
        return done(s, &s[num_start..], "", "");
    }
    let num = if pos == num_start {
        "0"
    } else {
        &s[num_start..pos]
    };
    // Fraction digits.
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[denom_start..pos];
        if pos >= end {
            return done(s, num, denom, "");
        }
    }
    let value = &s[..pos];
    // Suffix: letters, then an optional sign and digits.
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    done(value, num, denom, &s[suffix_start..])
}

/// Maps a quantity suffix (`Mi`, `k`, `e3`, …) to (base, exponent, format), as Go's
/// `quantitySuffixer.interpret` does.
pub fn interpret_suffix(suffix: &str) -> Result<(u32, i32, Format), QuantityError> {
    let dec = |e| Ok((10, e, Format::DecimalSI));
    let bin = |e| Ok((2, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            let exp: i64 = s[1..].parse().map_err(|_| QuantityError::Suffix)?;
            let exp = i32::try_from(exp).map_err(|_| QuantityError::OutOfRange)?;
            Ok((10, exp, Format::DecimalExponent))
        }
        _ => Err(QuantityError::Suffix),
    }
}

fn pow10(n: u32) -> Option<u128> {
    10u128.checked_pow(n)
}

/// `digits × 10^exp10 × 2^exp2` in nano-units, rounded away from zero.
fn to_nanos(digits: &str, exp10: i64, exp2: u32) -> Result<u128, QuantityError> {
    let digits = digits.trim_start_matches('0');
    let trimmed = digits.trim_end_matches('0');
    let exp10 = exp10 + (digits.len() - trimmed.len()) as i64;
    if trimmed.is_empty() {
        return Ok(0);
    }
    let mut m: u128 = trimmed.parse().map_err(|_| QuantityError::OutOfRange)?;
    m = m
        .checked_mul(1u128 << exp2)
        .ok_or(QuantityError::OutOfRange)?;
    let k = exp10 + 9;
    if k >= 0 {
        let k = u32::try_from(k).map_err(|_| QuantityError::OutOfRange)?;
        return pow10(k)
            .and_then(|p| m.checked_mul(p))
            .ok_or(QuantityError::OutOfRange);
    }
    let Some(div) = u32::try_from(-k).ok().and_then(pow10) else {
        // Smaller than a nano-unit: rounds up to one.
        return Ok(1);
    };
    Ok(m / div + u128::from(!m.is_multiple_of(div)))
}

impl Quantity {
    /// Parses a quantity string with upstream's grammar and errors.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if s == "0" {
            return Ok(Quantity {
                nanos: 0,
                format: Format::DecimalSI,
                text: Some(s.to_string()),
            });
        }
        let sc = scan(s)?;
        let (base, exponent, mut format) = interpret_suffix(sc.suffix)?;

        // Upstream first tries an int64 fast path; what it accepts there, and whether it
        // keeps the original spelling, must match so that printing matches.
        let digits = format!("{}{}", sc.num, sc.denom);
        let fast = fast_path(&sc, exponent, format);
        if fast.is_none() && !sc.value.bytes().any(|c| c.is_ascii_digit()) {
            return Err(QuantityError::Numeric);
        }
        let (exp10, exp2) = if base == 2 {
            (
                -(sc.denom.len() as i64),
                u32::try_from(exponent).map_err(|_| QuantityError::OutOfRange)?,
            )
        } else {
            (i64::from(exponent) - sc.denom.len() as i64, 0)
        };
        let magnitude = to_nanos(&digits, exp10, exp2)?;
        let mut magnitude = i128::try_from(magnitude).map_err(|_| QuantityError::OutOfRange)?;
        if fast.is_none() {
            if format == Format::BinarySI && magnitude > i128::from(i64::MAX) * NANO {
                magnitude = i128::from(i64::MAX) * NANO;
            }
            if format == Format::BinarySI && magnitude > 0 && magnitude < NANO {
                format = Format::DecimalSI;
            }
        }
        let nanos = if sc.positive { magnitude } else { -magnitude };
        let text = (fast == Some(true)).then(|| s.to_string());
        Ok(Quantity {
            nanos,
            format,
            text,
        })
    }

    /// `value` whole units, printed in `format`.
    pub fn from_i64(value: i64, format: Format) -> Quantity {
        Quantity {
            nanos: i128::from(value) * NANO,
            format,
            text: None,
        }
    }

    /// `milli` thousandths of a unit, printed in `format`.
    pub fn from_milli(milli: i64, format: Format) -> Quantity {
        Quantity {
            nanos: i128::from(milli) * 1_000_000,
            format,
            text: None,
        }
    }

    /// The preferred print format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        self.nanos.signum() as i32
    }

    /// The value in whole units, rounded away from zero (`1500m` → 2), saturating.
    pub fn value(&self) -> i64 {
        scaled(self.nanos, NANO)
    }

    /// The value in thousandths, rounded away from zero (`1.5` → 1500), saturating.
    pub fn milli_value(&self) -> i64 {
        scaled(self.nanos, 1_000_000)
    }

    /// An approximate floating-point value.
    pub fn as_f64(&self) -> f64 {
        self.nanos as f64 / NANO as f64
    }

    /// `self + other`, or `None` when out of range; takes `other`'s format if `self` is 0.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        Some(Quantity {
            nanos: self.nanos.checked_add(other.nanos)?,
            format,
            text: None,
        })
    }

    /// `self - other`, or `None` when out of range; takes `other`'s format if `self` is 0.
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        Some(Quantity {
            nanos: self.nanos.checked_sub(other.nanos)?,
            format,
            text: None,
        })
    }

    /// The canonical spelling, ignoring any kept original spelling.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI && (self.nanos.abs() < 1024 * NANO || self.nanos % NANO != 0)
        {
            format = Format::DecimalSI;
        }
        match format {
            Format::BinarySI => {
                let mut n = self.nanos / NANO;
                let mut times = 0;
                while n.abs() >= 1024 && n % 1024 == 0 {
                    n /= 1024;
                    times += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                    .get(times)
                    .copied()
                    .unwrap_or("");
                format!("{n}{suffix}")
            }
            Format::DecimalSI | Format::DecimalExponent => {
                let mut m = self.nanos;
                let mut exp: i32 = -9;
                while m.abs() >= 10 && m % 10 == 0 {
                    m /= 10;
                    exp += 1;
                }
                while exp.rem_euclid(3) != 0 {
                    m *= 10;
                    exp -= 1;
                }
                let suffix = if format == Format::DecimalExponent {
                    if exp == 0 {
                        String::new()
                    } else {
                        format!("e{exp}")
                    }
                } else {
                    match exp {
                        -9 => "n",
                        -6 => "u",
                        -3 => "m",
                        3 => "k",
                        6 => "M",
                        9 => "G",
                        12 => "T",
                        15 => "P",
                        18 => "E",
                        // Upstream has no suffix for other exponents and prints none.
                        _ => "",
                    }
                    .to_string()
                };
                format!("{m}{suffix}")
            }
        }
    }
}

fn scaled(nanos: i128, unit: i128) -> i64 {
    let q = nanos / unit;
    let q = if nanos % unit != 0 {
        q + nanos.signum()
    } else {
        q
    };
    i64::try_from(q).unwrap_or(if q < 0 { i64::MIN } else { i64::MAX })
}

/// Whether upstream's int64 fast path takes this input (`Some`), and if so whether it keeps
/// the original spelling (`Some(true)`).
fn fast_path(sc: &Scanned<'_>, exponent: i32, format: Format) -> Option<bool> {
    let digits = sc.num.len() + sc.denom.len();
    let (mut scale, precision, mantissa): (i64, i64, i64) = match format {
        Format::DecimalSI | Format::DecimalExponent => (i64::from(exponent), 18 - digits as i64, 1),
        Format::BinarySI if exponent >= 0 && sc.denom.is_empty() => {
            let p = 15 - sc.num.len() as i64 - i64::from(exponent) * 3 / 10 - 1;
            (0, p, 1i64.checked_shl(u32::try_from(exponent).ok()?)?)
        }
        Format::BinarySI => (0, -1, 1),
    };
    if precision < 0 {
        return None;
    }
    scale -= sc.denom.len() as i64;
    if scale < -9 {
        return None;
    }
    let shifted = format!("{}{}", sc.num, sc.denom);
    let value: i64 = shifted.parse().ok()?;
    value.checked_mul(mantissa)?;
    Some(match format {
        Format::BinarySI => exponent % 10 == 0 && value & 0x07 != 0,
        _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
    })
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.text {
            Some(t) => f.write_str(t),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl std::hash::Hash for Quantity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Like upstream, a JSON number is read through its text.
        let v = serde_json::Value::deserialize(deserializer)?;
        let text = match &v {
            serde_json::Value::String(s) => s.trim().to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Err(serde::de::Error::custom(
                    "quantity must be a string or a number",
                ));
            }
        };
        Quantity::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    fn canon(s: &str) -> String {
        q(s).to_string()
    }

    #[test]
    fn decimal_fractions_print_in_milli() {
        assert_eq!(canon("1.5"), "1500m");
        assert_eq!(canon("0.5"), "500m");
        assert_eq!(canon("0.1"), "100m");
        assert_eq!(canon("-1.5"), "-1500m");
        assert_eq!(canon("1.0"), "1");
    }

    #[test]
    fn canonical_inputs_keep_their_spelling() {
        for s in [
            "100m", "1Ki", "1536Mi", "1Gi", "5", "250M", "1e3", "1E6", "+1", "01",
        ] {
            assert_eq!(canon(s), s, "{s}");
        }
    }

    #[test]
    fn non_canonical_inputs_are_normalized() {
        assert_eq!(canon("1000"), "1k");
        assert_eq!(canon("1000m"), "1");
        assert_eq!(canon("1024Ki"), "1Mi");
        assert_eq!(canon("8Ki"), "8Ki");
        assert_eq!(canon("0.5Gi"), "512Mi");
        assert_eq!(canon("0.5Ki"), "512");
        assert_eq!(canon("1.5Ki"), "1536");
        assert_eq!(canon("1.5e3"), "1500");
        assert_eq!(canon("50k"), "50k");
        assert_eq!(canon("10000T"), "10P");
        assert_eq!(canon("1E"), "1E");
        assert_eq!(canon("000"), "0");
        assert_eq!(canon("0Mi"), "0");
        assert_eq!(canon("1e-12"), "1e-9");
        assert_eq!(canon("0.0000000001"), "1n");
        assert_eq!(canon("5Pi"), "5Pi");
        assert_eq!(canon("3Ei"), "3Ei");
    }

    #[test]
    fn binary_quantities_are_capped_at_max_int64() {
        assert_eq!(canon("16Ei"), "9223372036854775807");
    }

    #[test]
    fn degenerate_numbers_parse_like_upstream() {
        assert!(q(".").is_zero());
        assert!(q("Ki").is_zero());
        assert!(q("m").is_zero());
        assert_eq!(canon("1."), "1.");
    }

    #[test]
    fn malformed_strings_are_rejected_with_upstream_messages() {
        let fmt = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
        for s in ["", "abc", "1.2.3", "1 Gi", "1Gi ", "1µ"] {
            assert_eq!(Quantity::parse(s).unwrap_err().to_string(), fmt, "{s:?}");
        }
        for s in ["1Gi1", "1iK", "1e", "1Ee", "1kk", "--1"] {
            assert_eq!(
                Quantity::parse(s).unwrap_err().to_string(),
                "unable to parse quantity's suffix",
                "{s}"
            );
        }
        assert_eq!(
            Quantity::parse("e-20").unwrap_err().to_string(),
            "unable to parse numeric part of quantity"
        );
    }

    #[test]
    fn value_and_milli_value_round_away_from_zero() {
        assert_eq!(q("1500m").value(), 2);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("-1500m").value(), -2);
        assert_eq!(q("100m").milli_value(), 100);
    }

    #[test]
    fn comparison_is_by_value_across_formats() {
        assert_eq!(q("1Ki"), q("1024"));
        assert!(q("10000T") > q("100Gi"));
        assert!(q("50m") < q("100m"));
        assert_eq!(q("1").cmp(&q("1000m")), Ordering::Equal);
    }

    #[test]
    fn arithmetic_keeps_exactness() {
        let sum = q("100m").checked_add(&q("1.9")).unwrap();
        assert_eq!(sum.to_string(), "2");
        let diff = Quantity::from_i64(0, Format::DecimalSI)
            .checked_sub(&q("1Gi"))
            .unwrap();
        assert_eq!(diff.to_string(), "-1Gi");
        assert_eq!(
            Quantity::from_milli(1500, Format::DecimalSI).to_string(),
            "1500m"
        );
    }

    #[test]
    fn serde_uses_the_string_form_and_accepts_numbers() {
        assert_eq!(serde_json::to_string(&q("1.5")).unwrap(), "\"1500m\"");
        let v: Quantity = serde_json::from_str("\"2Gi\"").unwrap();
        assert_eq!(v.value(), 2 << 30);
        let v: Quantity = serde_json::from_str("0.25").unwrap();
        assert_eq!(v.to_string(), "250m");
        assert!(serde_json::from_str::<Quantity>("\"x\"").is_err());
    }

    /// `m × 10^e` in nano-units.
    fn dec(m: i128, e: i32) -> i128 {
        if e + 9 >= 0 {
            m * 10i128.pow((e + 9) as u32)
        } else {
            m / 10i128.pow((-(e + 9)) as u32)
        }
    }

    #[test]
    fn parse_values_and_formats_match_upstream_table() {
        use Format::{BinarySI as B, DecimalExponent as X, DecimalSI as D};
        // Cases from upstream's TestQuantityParse.
        let max = i128::from(i64::MAX) * NANO;
        let table: &[(&str, i128, Format)] = &[
            ("0", 0, D),
            ("0n", 0, D),
            ("0Ki", 0, B),
            ("0Ti", 0, B),
            ("1", dec(1, 0), D),
            ("1Ki", dec(1024, 0), B),
            ("7Mi", dec(7 << 20, 0), B),
            ("3Ei", dec(3 << 60, 0), B),
            ("100Ti", dec(100 << 40, 0), B),
            ("5n", dec(5, -9), D),
            ("4u", dec(4, -6), D),
            ("50k", dec(5, 4), D),
            ("300T", dec(3, 14), D),
            ("1E", dec(1, 18), D),
            ("1E-3", dec(1, -3), X),
            ("1e15", dec(1, 15), X),
            ("100.035k", dec(100035, 0), D),
            ("0.0005k", dec(5, -1), D),
            ("0.00500", dec(5, -3), D),
            ("0.5e-2", dec(5, -3), X),
            ("10.035M", dec(10035, 3), D),
            ("1.2e3", dec(12, 2), X),
            ("1.3E+6", dec(13, 5), X),
            ("1.40e9", dec(14, 8), X),
            ("1.7E18", dec(17, 17), X),
            ("9.01", dec(901, -2), D),
            ("6.987654321G", dec(6987654321, 0), D),
            ("1.01E", dec(101, 16), D),
            ("3.001n", dec(4, -9), D),
            ("1.1E-9", dec(2, -9), X),
            ("0.0000000005", dec(1, -9), D),
            ("0.5e-9", dec(1, -9), X),
            ("0.9n", dec(1, -9), D),
            ("0.00000012345", dec(124, -9), D),
            ("0.00000012354", dec(124, -9), D),
            ("9Ei", max, B),
            ("9223372036854775807Ki", max, B),
            ("12E", dec(12, 18), D),
            ("100.035Ki", dec(10243584, -2), B),
            ("0.5Mi", dec(1 << 19, 0), B),
            ("0.05Gi", dec(536870912, -1), B),
            ("0.025Ti", dec(274877906944, -1), B),
            ("0.000000000001Ki", dec(2, -9), D),
            (".001", dec(1, -3), D),
            (".0001k", dec(100, -3), D),
            ("1.", dec(1, 0), D),
            ("1.G", dec(1, 9), D),
        ];
        for &(input, nanos, format) in table {
            for (prefix, sign) in [("", 1), ("-", -1), ("+", 1)] {
                let got = Quantity::parse(&format!("{prefix}{input}")).unwrap();
                assert_eq!(
                    (got.nanos, got.format),
                    (sign * nanos, format),
                    "{prefix}{input}"
                );
            }
        }
    }

    #[test]
    fn canonical_strings_round_trip_and_alternates_normalize() {
        // Cases from upstream's TestQuantityString: the canonical text parses back keeping
        // its spelling; the alternate spelling prints as the canonical one.
        let table = [
            ("1Gi", "1024Mi"),
            ("300Mi", "307200Ki"),
            ("6Ki", ""),
            ("1001Gi", "1025024Mi"),
            ("1Ti", "1024Gi"),
            ("5", "5000m"),
            ("500m", "0.5"),
            ("1G", "1000M"),
            ("1G", "0.001T"),
            ("1m", "1000u"),
            ("80m", ""),
            ("1080m", "1.08"),
            ("1080m", "1080000000n"),
            ("300M", ""),
            ("1T", ""),
            ("1234567M", ""),
            ("1234567m", ""),
            ("3k", ""),
            ("1025", ""),
            ("0", ""),
            ("1e9", ".001e12"),
            ("1e-3", "0.001e0"),
            ("1e-9", "1000e-12"),
            ("80e-3", ""),
            ("300e6", ""),
            ("1e12", ""),
            ("3e3", ""),
            ("0", "00"),
            ("1n", ""),
            ("80n", ""),
            ("1080n", ""),
            ("1u", ""),
            ("1080u", ""),
        ];
        for (canonical, alternate) in table {
            let q = q(canonical);
            assert_eq!(q.to_string(), canonical);
            assert!(q.text.is_some(), "{canonical} should keep its spelling");
            if !alternate.is_empty() {
                let a = super::Quantity::parse(alternate).unwrap();
                assert!(a.text.is_none(), "{alternate} should not keep its spelling");
                assert_eq!(a.to_string(), canonical, "{alternate}");
            }
        }
        // From upstream's TestQuantityParseEmit.
        for (input, out) in [
            ("1024Mi", "1Gi"),
            ("1000M", "1G"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
        ] {
            assert_eq!(canon(input), out, "{input}");
        }
    }

    #[test]
    fn huge_values_are_refused_rather_than_wrapped() {
        assert_eq!(
            Quantity::parse("1e100").unwrap_err(),
            QuantityError::OutOfRange
        );
    }
}
