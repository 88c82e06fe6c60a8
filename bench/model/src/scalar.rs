//! How a scenario value is read: [`ScalarField`] (one value from a TOML
//! string or integer, with what is allowed for error messages) and
//! [`Many`] (one value or a list, each making its own runs). The unit
//! types ([`crate::units`]) and settings ([`crate::settings`]) build on it.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A value that a scenario field can hold: parsed from a TOML string or
/// integer, with a description of what is allowed for error messages.
pub trait ScalarField: Sized + Clone {
    /// What the field accepts, e.g. `a size such as "512MiB"`.
    const EXPECTING: &'static str;
    /// Parse the string notation.
    fn parse_str(s: &str) -> Result<Self, String>;
    /// Parse a bare TOML integer; most units refuse this to keep units explicit.
    fn parse_int(i: i64) -> Result<Self, String> {
        Err(format!(
            "bare number {i} has no unit: expected {}",
            Self::EXPECTING
        ))
    }
}

/// A bare 0 is `zero` (nothing is nothing in any unit); other bare numbers
/// are refused for their missing unit.
pub(crate) fn zero_or_unit<T: ScalarField>(i: i64, zero: T) -> Result<T, String> {
    if i == 0 {
        Ok(zero)
    } else {
        Err(format!(
            "bare number {i} has no unit: expected {}",
            T::EXPECTING
        ))
    }
}

pub(crate) fn split_number(s: &str) -> Result<(f64, &str), String> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(s.len());
    // `e` may begin a unit (none of ours do), keep it simple: digits, dot, sign.
    let (num, unit) = s.split_at(end);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` does not start with a number"))?;
    if !value.is_finite() {
        return Err(format!("`{s}` is not a finite number"));
    }
    if value < 0.0 {
        return Err(format!("`{s}` is negative"));
    }
    Ok((value, unit.trim()))
}

/// A quantity as written: its value, the number's own text and the unit.
/// Unlike [`split_number`], a number too large for `f64` is kept (as
/// infinity) so [`scale`] refuses it with the accepted range.
pub(crate) fn split_quantity(s: &str) -> Result<(f64, &str, &str), String> {
    let t = s.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(end);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{t}` does not start with a number"))?;
    if value.is_nan() {
        return Err(format!("`{t}` is not a number"));
    }
    if value < 0.0 {
        return Err(format!("`{t}` is negative"));
    }
    Ok((value, num, unit.trim()))
}

/// `value` (written `num`) times `per` units of the base, as a whole
/// number, checked before converting: `Err` says the largest value of
/// `what` in the unit the user wrote (`unit`). Whole numbers are exact.
pub(crate) fn scale(
    s: &str,
    (value, num, unit): (f64, &str, &str),
    per: u64,
    what: &str,
) -> Result<u64, String> {
    let exact = if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
        num.parse::<u128>()
            .ok()
            .and_then(|n| n.checked_mul(per.into()))
            .and_then(|n| u64::try_from(n).ok())
    } else {
        let x = (value * per as f64).round();
        // 2^64: the first f64 above u64::MAX.
        (x.is_finite() && x < 18_446_744_073_709_551_616.0).then_some(x as u64)
    };
    exact.ok_or_else(|| {
        format!(
            "`{}` is out of range: {what} is at most {}{unit}",
            s.trim(),
            u64::MAX / per.max(1)
        )
    })
}

/// Serialise a scalar as its string notation and read it back through
/// [`ScalarField`] (strings and, where allowed, bare integers).
macro_rules! string_serde {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                crate::scalar::OneValue::<$t>::deserialize(d).map(|v| v.0)
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t as crate::scalar::ScalarField>::parse_str(s)
            }
        }
    };
}
pub(crate) use string_serde;

pub struct OneValue<T>(pub T);

struct OneVisitor<T>(PhantomData<T>);

impl<'de, T: ScalarField> Visitor<'de> for OneVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::parse_str(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::parse_int(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        match i64::try_from(v) {
            Ok(i) => T::parse_int(i).map_err(E::custom),
            Err(_) => Err(E::custom(format!(
                "{v} is out of range: expected {}",
                T::EXPECTING
            ))),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Err(E::custom(format!(
            "bare number {v} has no unit: expected {}",
            T::EXPECTING
        )))
    }
}

impl<'de, T: ScalarField> Deserialize<'de> for OneValue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OneVisitor(PhantomData)).map(OneValue)
    }
}

/// A matrix field: one value, or a list whose values each make their own runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Many<T>(pub Vec<T>);

impl<T: Clone> Many<T> {
    /// A field with a single value.
    pub fn one(v: T) -> Self {
        Many(vec![v])
    }
}

impl<T: Serialize> Serialize for Many<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.len() == 1 {
            self.0[0].serialize(s)
        } else {
            self.0.serialize(s)
        }
    }
}

struct ManyVisitor<T>(PhantomData<T>);

impl<'de, T: ScalarField + Deserialize<'de>> Visitor<'de> for ManyVisitor<T> {
    type Value = Many<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}, or a list of them", T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Many<T>, E> {
        OneVisitor::<T>(PhantomData).visit_str(v).map(Many::one)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Many<T>, E> {
        OneVisitor::<T>(PhantomData).visit_i64(v).map(Many::one)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Many<T>, E> {
        OneVisitor::<T>(PhantomData).visit_u64(v).map(Many::one)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Many<T>, E> {
        OneVisitor::<T>(PhantomData).visit_f64(v).map(Many::one)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Many<T>, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<T>()? {
            out.push(v);
        }
        if out.is_empty() {
            return Err(de::Error::custom(format!(
                "an empty list makes no runs: expected {}",
                T::EXPECTING
            )));
        }
        Ok(Many(out))
    }
}

impl<'de, T: ScalarField + Deserialize<'de>> Deserialize<'de> for Many<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ManyVisitor(PhantomData))
    }
}

/// A whole number including zero (policy step counts): a bare TOML integer.
impl ScalarField for u32 {
    const EXPECTING: &'static str = "a whole number (0 or more)";
    fn parse_str(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{s}` is not {}", Self::EXPECTING))
    }
    fn parse_int(i: i64) -> Result<Self, String> {
        u32::try_from(i).map_err(|_| format!("{i} is not {}", Self::EXPECTING))
    }
}
