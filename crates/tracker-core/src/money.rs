//! Exact sums of money that cannot overflow.
//!
//! One outcome's `monetaryValue` is a [`Decimal`] (28 significant digits, bounded by
//! `tracker.limits.max_monetary_value`), but a total is a sum of any number of them: ten values
//! of 28 nines already overflow a `Decimal`, and its `+` panics. That panic once took the
//! writer thread down for good from one public request. So every total (roll-ups, the
//! dashboard, a contact's money) is a [`MoneySum`]: an arbitrary-precision decimal, exact for
//! any number of values and never rounded.

use std::{fmt, str::FromStr};

use bigdecimal::{num_bigint::BigInt, BigDecimal};
use rust_decimal::Decimal;

/// An exact sum of monetary values, of any size.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MoneySum(BigDecimal);

impl MoneySum {
    /// Nothing.
    pub fn zero() -> Self {
        Self::default()
    }

    /// Adds one value.
    pub fn add(&mut self, value: Decimal) {
        self.0 += Self::from(value).0;
    }

    /// Adds another sum.
    pub fn add_sum(&mut self, other: &MoneySum) {
        self.0 += &other.0;
    }

    /// Whether the sum is zero.
    pub fn is_zero(&self) -> bool {
        self.0 == BigDecimal::default()
    }

    /// The sum as money is written: plain digits (never an exponent), with cents at least and
    /// more places only when there are more (`12.50`, `0.125`, `-3.00`).
    pub fn to_money_string(&self) -> String {
        let value = if self.0.fractional_digit_count() < 2 {
            self.0.with_scale(2)
        } else {
            self.0.clone()
        };
        value.to_plain_string()
    }
}

impl From<Decimal> for MoneySum {
    fn from(value: Decimal) -> Self {
        Self(BigDecimal::new(
            BigInt::from(value.mantissa()),
            i64::from(value.scale()),
        ))
    }
}

/// Plain digits, exactly as summed (`0.30`, `99999999999999999999999999990`).
impl fmt::Display for MoneySum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_plain_string())
    }
}

/// Text that is not a plain decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a decimal amount")]
pub struct NotMoney(String);

impl FromStr for MoneySum {
    type Err = NotMoney;

    /// Reads a stored sum: plain decimal digits with an optional sign and point. Exponents are
    /// refused: `1e999999999` would be a number of a billion digits.
    fn from_str(text: &str) -> Result<Self, NotMoney> {
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        let plain = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && digits.bytes().filter(|b| *b == b'.').count() <= 1
            && digits.bytes().any(|b| b.is_ascii_digit());
        if !plain {
            return Err(NotMoney(text.chars().take(64).collect()));
        }
        BigDecimal::from_str(text)
            .map(Self)
            .map_err(|_| NotMoney(text.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sums_past_a_decimal_stay_exact() {
        let max: Decimal = "9999999999999999999999999999".parse().unwrap();
        let mut sum = MoneySum::zero();
        for _ in 0..10 {
            sum.add(max);
        }
        assert_eq!(sum.to_string(), "99999999999999999999999999990");
        sum.add("-0.01".parse().unwrap());
        assert_eq!(sum.to_string(), "99999999999999999999999999989.99");
        let back: MoneySum = sum.to_string().parse().unwrap();
        assert_eq!(back, sum);
    }

    #[test]
    fn money_strings_have_cents() {
        let mut sum = MoneySum::zero();
        assert_eq!(sum.to_money_string(), "0.00");
        sum.add("12.5".parse().unwrap());
        assert_eq!(sum.to_money_string(), "12.50");
        sum.add("0.005".parse().unwrap());
        assert_eq!(sum.to_money_string(), "12.505");
    }

    /// Any sequence of valid values: no panic, and the total equals an independent exact sum
    /// (integers at a common scale, in `i128`, which these values cannot overflow).
    #[test]
    fn any_sequence_of_values_sums_exactly() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let mut sum = MoneySum::zero();
            let mut oracle: i128 = 0; // in millionths
            let count = next() % 1000;
            for _ in 0..count {
                let scale = (next() % 7) as u32;
                let digits = next() % 29;
                let mantissa = (i128::from(next()) << 64 | i128::from(next()))
                    % 10i128.pow(digits as u32).max(1)
                    * if next() % 2 == 0 { 1 } else { -1 };
                let value = Decimal::from_i128_with_scale(mantissa, scale);
                sum.add(value);
                oracle += mantissa * 10i128.pow(6 - scale);
            }
            let sign = if oracle < 0 { "-" } else { "" };
            let expected = format!(
                "{sign}{}.{:06}",
                oracle.unsigned_abs() / 1_000_000,
                oracle.unsigned_abs() % 1_000_000
            );
            assert_eq!(sum, expected.parse::<MoneySum>().unwrap(), "{expected}");
        }
    }

    #[test]
    fn only_plain_numbers_are_read() {
        for bad in ["", "-", ".", "1e5", "1.2.3", "NaN", "abc", "1 2"] {
            assert!(bad.parse::<MoneySum>().is_err(), "{bad}");
        }
        assert_eq!("-0.10".parse::<MoneySum>().unwrap().to_string(), "-0.10");
    }
}
