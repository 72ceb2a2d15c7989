//! The text a cached function's arguments are hashed from: serde_json's compact JSON, made
//! injective.
//!
//! serde_json writes `null` for four different things: `None` (and `()`), NaN, +∞ and −∞;
//! and `Some(x)` is written as `x`, so `None` and `Some(None)` are both `null`. Hashing its
//! output as it stands gave `get(None)`, `get(Some(f64::NAN))` and `get(Some(f64::INFINITY))`
//! one key — and one entry, served for the other two calls. Here those cases are written
//! with tokens serde_json never writes outside a string:
//!
//! | value | serde_json | here |
//! | --- | --- | --- |
//! | NaN, +∞, −∞ (`f32` or `f64`) | `null` | `NaN`, `Infinity`, `-Infinity` |
//! | `Some(v)` where `v` is written `null` (`None`, `()`, a unit struct) | `null` | `?null`, one `?` per `Some` |
//!
//! Everything else is serde_json's own text, byte for byte, so the keys of ordinary
//! arguments did not change. The text is only hashed, never parsed: it need not be JSON.

use std::cell::Cell;
use std::io;

use serde::ser::{self, Serialize, Serializer};

/// Writes the injective JSON of `args` into `buf`.
///
/// # Errors
/// serde_json's, for what it cannot write (a map key that is not a string or a number).
pub(super) fn write<A: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    args: &A,
) -> Result<(), serde_json::Error> {
    let null = Cell::new(Null::Plain);
    let formatter = NullFormatter { next: &null };
    write_tapped(buf, args, &null, formatter)
}

/// Writes `value` with serde_json and `formatter`, telling `null` before each `null`
/// serde_json writes what it stands for (the formatter reads it in `write_null`, and
/// should reset it to [`Null::Plain`]).
///
/// The payload codec (`codec::body`) uses it to notice the values plain JSON would not
/// carry exactly; [`write`] to write a different token for each.
///
/// # Errors
/// serde_json's, for what it cannot write (a map key that is not a string or a number).
pub(crate) fn write_tapped<A: Serialize + ?Sized, F: serde_json::ser::Formatter>(
    buf: &mut Vec<u8>,
    value: &A,
    null: &Cell<Null>,
    formatter: F,
) -> Result<(), serde_json::Error> {
    let mut serializer = serde_json::Serializer::with_formatter(buf, formatter);
    value.serialize(Tap {
        inner: &mut serializer,
        null,
        some: 0,
    })
}

/// What the next `null` serde_json writes stands for, as the serializer in front of it
/// knows and serde_json does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Null {
    Plain,
    Nan,
    Infinity,
    NegInfinity,
    /// `None` or a unit inside this many `Some`s.
    InSome(u32),
}

/// serde_json's compact formatter, but for what it writes in place of a `null`.
struct NullFormatter<'a> {
    next: &'a Cell<Null>,
}

impl serde_json::ser::Formatter for NullFormatter<'_> {
    fn write_null<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        match self.next.replace(Null::Plain) {
            Null::Plain => writer.write_all(b"null"),
            Null::Nan => writer.write_all(b"NaN"),
            Null::Infinity => writer.write_all(b"Infinity"),
            Null::NegInfinity => writer.write_all(b"-Infinity"),
            Null::InSome(depth) => {
                for _ in 0..depth {
                    writer.write_all(b"?")?;
                }
                writer.write_all(b"null")
            }
        }
    }
}

/// A serializer in front of serde_json's (or of one of its compound serializers): passes
/// everything on, saying first what a coming `null` stands for.
struct Tap<'a, S> {
    inner: S,
    null: &'a Cell<Null>,
    /// How many `Some`s directly enclose the value (0 inside anything else).
    some: u32,
}

/// A value to be serialized through a [`Tap`].
struct Tapped<'a, T: ?Sized> {
    value: &'a T,
    null: &'a Cell<Null>,
    some: u32,
}

impl<T: Serialize + ?Sized> Serialize for Tapped<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Tap {
            inner: serializer,
            null: self.null,
            some: self.some,
        })
    }
}

impl<'a, S> Tap<'a, S> {
    /// `value`, to be serialized as an element of something (no `Some` around it).
    fn element<'v, T: ?Sized>(&self, value: &'v T) -> Tapped<'v, T>
    where
        'a: 'v,
    {
        Tapped {
            value,
            null: self.null,
            some: 0,
        }
    }

    /// A `None` or a unit: inside `Some`s it is told apart from a plain one.
    fn unit_null(&self) -> Null {
        if self.some == 0 {
            Null::Plain
        } else {
            Null::InSome(self.some)
        }
    }
}

/// Says what the `null` the inner serializer is about to write stands for, lets `write`
/// write, and forgets it again (a map key serializer refuses without writing).
fn null_as<R>(next: &Cell<Null>, null: Null, write: impl FnOnce() -> R) -> R {
    next.set(null);
    let result = write();
    next.set(Null::Plain);
    result
}

/// The `null` a non-finite float stands for (`Plain` for a finite one).
fn float_null(value: f64) -> Null {
    if value.is_nan() {
        Null::Nan
    } else if value == f64::INFINITY {
        Null::Infinity
    } else if value == f64::NEG_INFINITY {
        Null::NegInfinity
    } else {
        Null::Plain
    }
}

macro_rules! pass {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method(self, value: $ty) -> Result<S::Ok, S::Error> {
                self.inner.$method(value)
            }
        )*
    };
}

impl<'a, S: Serializer> Serializer for Tap<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Tap<'a, S::SerializeSeq>;
    type SerializeTuple = Tap<'a, S::SerializeTuple>;
    type SerializeTupleStruct = Tap<'a, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Tap<'a, S::SerializeTupleVariant>;
    type SerializeMap = Tap<'a, S::SerializeMap>;
    type SerializeStruct = Tap<'a, S::SerializeStruct>;
    type SerializeStructVariant = Tap<'a, S::SerializeStructVariant>;

    pass!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
    );

    fn serialize_f32(self, value: f32) -> Result<S::Ok, S::Error> {
        let null = float_null(f64::from(value));
        null_as(self.null, null, || self.inner.serialize_f32(value))
    }

    fn serialize_f64(self, value: f64) -> Result<S::Ok, S::Error> {
        null_as(self.null, float_null(value), || {
            self.inner.serialize_f64(value)
        })
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        let (next, null) = (self.null, self.unit_null());
        null_as(next, null, || self.inner.serialize_none())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let inner = Tapped {
            value,
            null: self.null,
            some: self.some.saturating_add(1),
        };
        self.inner.serialize_some(&inner)
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        let (next, null) = (self.null, self.unit_null());
        null_as(next, null, || self.inner.serialize_unit())
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        let (next, null) = (self.null, self.unit_null());
        null_as(next, null, || self.inner.serialize_unit_struct(name))
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_variant(name, index, variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        // Transparent in JSON: `Some(Wrapper(None))` is still a `None` inside a `Some`.
        let inner = Tapped {
            value,
            null: self.null,
            some: self.some,
        };
        self.inner.serialize_newtype_struct(name, &inner)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let inner = self.element(value);
        self.inner
            .serialize_newtype_variant(name, index, variant, &inner)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        let inner = self.inner.serialize_seq(len)?;
        Ok(Tap {
            inner,
            null: self.null,
            some: 0,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        let inner = self.inner.serialize_tuple(len)?;
        Ok(Tap {
            inner,
            null: self.null,
            some: 0,
        })
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        let inner = self.inner.serialize_tuple_struct(name, len)?;
        Ok(Tap {
            inner,
            null: self.null,
            some: 0,
        })
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        let inner = self
            .inner
            .serialize_tuple_variant(name, index, variant, len)?;
        Ok(Tap {
            inner,
            null: self.null,
            some: 0,
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let inner = self.inner.serialize_map(len)?;
        Ok(Tap {
            inner,
            null: self.null,
            some: 0,
        })
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let inner = self.inner.serialize_struct(name, len)?;
        Ok(Tap {
            inner,
            null: self.null,
            some: 0,
        })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        let inner = self
            .inner
            .serialize_struct_variant(name, index, variant, len)?;
        Ok(Tap {
            inner,
            null: self.null,
            some: 0,
        })
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// The compound serializers whose one method serializes an element or a field: each taps
/// it and forwards it.
macro_rules! forward_elements {
    ($($compound:ident :: $method:ident),* $(,)?) => {$(
        impl<S: ser::$compound> ser::$compound for Tap<'_, S> {
            type Ok = S::Ok;
            type Error = S::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
                let value = self.element(value);
                self.inner.$method(&value)
            }

            fn end(self) -> Result<S::Ok, S::Error> {
                self.inner.end()
            }
        }
    )*};
}

forward_elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl<S: ser::SerializeMap> ser::SerializeMap for Tap<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        let key = self.element(key);
        self.inner.serialize_key(&key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        let value = self.element(value);
        self.inner.serialize_value(&value)
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), S::Error> {
        let (key, value) = (self.element(key), self.element(value));
        self.inner.serialize_entry(&key, &value)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

impl<S: ser::SerializeStruct> ser::SerializeStruct for Tap<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        let value = self.element(value);
        self.inner.serialize_field(key, &value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.inner.skip_field(key)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

impl<S: ser::SerializeStructVariant> ser::SerializeStructVariant for Tap<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        let value = self.element(value);
        self.inner.serialize_field(key, &value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.inner.skip_field(key)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<A: Serialize + ?Sized>(args: &A) -> String {
        let mut buf = Vec::new();
        write(&mut buf, args).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn nulls_serde_json_merges_are_told_apart() {
        assert_eq!(text(&(None::<f64>,)), "[null]");
        assert_eq!(text(&(Some(f64::NAN),)), "[NaN]");
        assert_eq!(
            text(&(f64::INFINITY, f32::NEG_INFINITY)),
            "[Infinity,-Infinity]"
        );
        assert_eq!(text(&Some(None::<u8>)), "?null");
        assert_eq!(text(&(Some(Some(None::<u8>)), Some(()))), "[??null,?null]");
        assert_eq!(
            text(&Some(Some(7))),
            "7",
            "a Some around a value changes nothing"
        );
        assert_eq!(text(&()), "null");
    }

    #[test]
    fn everything_else_is_serde_jsons_text() {
        let value = (
            -0.0_f64,
            1e300_f64,
            "a\"\\\u{1}é",
            vec![Some(1.5_f32), None],
            std::collections::BTreeMap::from([(1_i32, 'x'), (-2, 'y')]),
            (u128::MAX, i128::MIN),
        );
        assert_eq!(text(&value), serde_json::to_string(&value).unwrap());
    }

    #[test]
    fn map_key_errors_are_serde_jsons() {
        let map = std::collections::BTreeMap::from([((1, 2), 3)]);
        let mut buf = Vec::new();
        assert!(write(&mut buf, &map).is_err());
        let nan_key = std::collections::BTreeMap::from([(Key(f64::NAN), 1)]);
        assert!(write(&mut Vec::new(), &nan_key).is_err());

        struct Key(f64);
        impl PartialEq for Key {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other).is_eq()
            }
        }
        impl Eq for Key {}
        impl PartialOrd for Key {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for Key {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.0.total_cmp(&other.0)
            }
        }
        impl Serialize for Key {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_f64(self.0)
            }
        }
    }
}
