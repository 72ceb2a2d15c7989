//! Whether a computed value says "nothing found": it serializes to `null` (`Option::None`,
//! `()`, a newtype around either, or `Ok` of one). Such values are kept at most `CACHE_NEGATIVE_TTL`, so
//! that lookups of ids that do not exist cannot fill the store for long.
//!
//! Answered by a serializer that stops at the first thing that is not a `null`: no
//! allocation, and one call for any value that is present.

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Whether `value` serializes to `null`.
pub(crate) fn is_absent<T: Serialize + ?Sized>(value: &T) -> bool {
    value.serialize(NullProbe).is_ok()
}

/// The serializer of [`is_absent`]: `Ok` for a `null`, [`Present`] for anything else.
struct NullProbe;

/// What [`NullProbe`] answers for anything but a `null`.
#[derive(Debug)]
struct Present;

impl std::fmt::Display for Present {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value is present")
    }
}

impl std::error::Error for Present {}

impl ser::Error for Present {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Present
    }
}

/// The methods of [`NullProbe`] that answer "present" whatever their argument.
macro_rules! present {
    ($($method:ident($($arg:ty),*) -> $out:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$out, Present> { Err(Present) })*
    };
}

impl ser::Serializer for NullProbe {
    type Ok = ();
    type Error = Present;
    type SerializeSeq = Impossible<(), Present>;
    type SerializeTuple = Impossible<(), Present>;
    type SerializeTupleStruct = Impossible<(), Present>;
    type SerializeTupleVariant = Impossible<(), Present>;
    type SerializeMap = Impossible<(), Present>;
    type SerializeStruct = Impossible<(), Present>;
    type SerializeStructVariant = Impossible<(), Present>;

    fn serialize_none(self) -> Result<(), Present> {
        Ok(())
    }

    fn serialize_unit(self) -> Result<(), Present> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Present> {
        value.serialize(self)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Present> {
        Err(Present)
    }

    /// `Ok(None)` of a cached `Result` is absent too; any other variant is present.
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Present> {
        if (name, variant) == ("Result", "Ok") {
            value.serialize(self)
        } else {
            Err(Present)
        }
    }

    present! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_i128(i128) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_u128(u128) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

#[cfg(test)]
mod tests {
    use super::is_absent;

    #[derive(serde::Serialize)]
    struct Wrapped(Option<u32>);

    #[derive(serde::Serialize)]
    struct Song {
        id: u32,
    }

    #[test]
    fn nulls_are_absent_and_everything_else_is_present() {
        assert!(is_absent(&None::<Song>));
        assert!(is_absent(&()));
        assert!(is_absent(&Wrapped(None)));
        assert!(!is_absent(&Wrapped(Some(0))));
        assert!(!is_absent(&Some(Song { id: 1 })));
        assert!(!is_absent(&Some(None::<u32>)), "Some(None) is an answer");
        assert!(
            !is_absent(&Vec::<Song>::new()),
            "an empty list is an answer"
        );
        assert!(!is_absent(&0_u64));
        assert!(!is_absent(""));
        assert!(!is_absent(&Song { id: 1 }));
        assert!(is_absent(&Ok::<Option<u32>, String>(None)));
        assert!(!is_absent(&Ok::<Option<u32>, String>(Some(1))));
        assert!(!is_absent(&Err::<Option<u32>, String>("failed".into())));
    }
}
