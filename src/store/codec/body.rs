//! The body of a stored entry: serde_json where JSON carries the value exactly, RON where
//! it does not.
//!
//! serde_json writes `null` for `None`, `()`, a unit struct, NaN and ±∞, and writes
//! `Some(x)` as `x`: so `Some(None)` and `None` (or `Some(())` and `None`) are both `null`,
//! and a cached `Some(None)` came back as `None` (issue 18). While the value is written as
//! JSON, the key module's tap (`key::json::write_tapped`) says what each `null` stands for;
//! the formatter here notes every `null` that stands for something else, and every map key
//! that is not a string (JSON turns `1` into `"1"`, which a typed map reads back but a
//! `#[serde(flatten)]` or untagged one does not). A value with none of these is kept as
//! JSON — most values: fast to read, readable in `redis-cli`. Any other, and any value
//! serde_json refuses (a map keyed by tuples), is written as RON instead, flagged in the
//! header: RON is self-describing (untagged and internally tagged enums, flatten,
//! `serde_json::Value` read back) and tells `Some(None)` from `None`, NaN and ±∞ from
//! `null`, and keeps non-string keys, 128-bit integers and byte strings. CBOR and
//! MessagePack would not do: both write `Some(None)` as `null` too. A value neither can
//! write is an [`EncodeError`]: computed and returned, never stored.
//!
//! Floats: serde_json's parser is only exact with its `float_roundtrip` feature, which this
//! crate turns on (without it, `1.2345678901234567e-300` reads back one bit off).

use std::cell::Cell;
use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::key::json::{Null, write_tapped};

/// How a body is written; the header's flags say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFormat {
    /// serde_json's compact text: the value has nothing JSON merges with something else.
    Json,
    /// RON (`ron` 0.12, 128-bit integers on): for the values JSON would not carry exactly.
    Ron,
}

impl BodyFormat {
    fn name(self) -> &'static str {
        match self {
            BodyFormat::Json => "JSON",
            BodyFormat::Ron => "RON",
        }
    }
}

/// An encoded value, ready to be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    pub(crate) format: BodyFormat,
    pub(crate) bytes: Vec<u8>,
}

/// Why a value was not encoded (it is then not stored).
#[derive(Debug, thiserror::Error)]
pub(crate) enum EncodeError {
    /// Neither JSON (exactly) nor RON can write it.
    #[error("value cannot be stored exactly: RON refuses it ({ron}) and JSON {json}")]
    Unencodable { json: String, ron: String },
    /// Written, but what was written does not read back as the value's own type (serde
    /// attributes that disagree with each other, such as a `#[serde(flatten)]` map holding
    /// a key a field of the struct also writes): stored, every read of it would be a miss.
    #[error(
        "value of type `{type_name}` does not read back from its own {format} form ({message}); \
         not stored, since every read of it would miss"
    )]
    DoesNotReadBack {
        type_name: &'static str,
        format: &'static str,
        message: String,
    },
}

/// [`encode`], then a check that the body reads back as a `T` (see
/// [`EncodeError::DoesNotReadBack`]).
pub(crate) fn encode_checked<T: Serialize + DeserializeOwned>(
    value: &T,
) -> Result<Body, EncodeError> {
    let body = encode(value)?;
    match decode::<T>(body.format, &body.bytes) {
        Ok(_) => Ok(body),
        Err(error) => Err(EncodeError::DoesNotReadBack {
            type_name: std::any::type_name::<T>(),
            format: error.format,
            message: error.message,
        }),
    }
}

/// Why a body did not turn into the requested type (the entry is then a miss).
#[derive(Debug, thiserror::Error)]
#[error("{format} body does not read as the requested type: {message}")]
pub(crate) struct DecodeBodyError {
    format: &'static str,
    message: String,
}

/// What the JSON writer noticed that plain JSON would lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// A `null` that stands for something else (`Some(None)`, `Some(())`, NaN, ±∞).
    Null,
    /// A map key written as a string though it is not one.
    Key,
}

/// serde_json's compact formatter, noting the first thing that would not read back.
struct Noting<'a> {
    next: &'a Cell<Null>,
    loss: &'a Cell<Option<Loss>>,
    in_key: bool,
}

impl Noting<'_> {
    fn key_scalar(&self) {
        if self.in_key {
            self.loss.set(Some(Loss::Key));
        }
    }
}

macro_rules! noting_scalars {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: $ty) -> io::Result<()> {
            self.key_scalar();
            serde_json::ser::CompactFormatter.$method(writer, value)
        }
    )*};
}

impl serde_json::ser::Formatter for Noting<'_> {
    fn write_null<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.next.replace(Null::Plain) != Null::Plain {
            self.loss.set(Some(Loss::Null));
        }
        writer.write_all(b"null")
    }

    noting_scalars!(
        write_bool(bool),
        write_i8(i8),
        write_i16(i16),
        write_i32(i32),
        write_i64(i64),
        write_i128(i128),
        write_u8(u8),
        write_u16(u16),
        write_u32(u32),
        write_u64(u64),
        write_u128(u128),
        write_f32(f32),
        write_f64(f64),
    );

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.in_key = true;
        serde_json::ser::CompactFormatter.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.in_key = false;
        Ok(())
    }
}

/// Writes `value` as JSON when JSON carries it exactly, as RON otherwise.
///
/// # Errors
/// [`EncodeError::Unencodable`] when RON cannot write it either.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Body, EncodeError> {
    let null = Cell::new(Null::Plain);
    let loss = Cell::new(None);
    let formatter = Noting {
        next: &null,
        loss: &loss,
        in_key: false,
    };
    let mut bytes = Vec::with_capacity(128);
    let json = match write_tapped(&mut bytes, value, &null, formatter) {
        Ok(()) => match loss.get() {
            None => {
                return Ok(Body {
                    format: BodyFormat::Json,
                    bytes,
                });
            }
            Some(Loss::Null) => "would write null for a value that is not None".to_owned(),
            Some(Loss::Key) => "would turn a map key into a string".to_owned(),
        },
        Err(error) => format!("refuses it ({error})"),
    };
    match ron::to_string(value) {
        Ok(text) => {
            tracing::trace!(reason = %json, "payload body written as RON");
            Ok(Body {
                format: BodyFormat::Ron,
                bytes: text.into_bytes(),
            })
        }
        Err(error) => Err(EncodeError::Unencodable {
            json,
            ron: error.to_string(),
        }),
    }
}

/// Reads a body written by [`encode`] as `T`.
///
/// # Errors
/// [`DecodeBodyError`] when the body is not `T` in its format.
pub(crate) fn decode<T: DeserializeOwned>(
    format: BodyFormat,
    bytes: &[u8],
) -> Result<T, DecodeBodyError> {
    let error = |message: String| DecodeBodyError {
        format: format.name(),
        message,
    };
    match format {
        BodyFormat::Json => serde_json::from_slice(bytes).map_err(|e| error(e.to_string())),
        BodyFormat::Ron => ron::de::from_bytes(bytes).map_err(|e| error(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    fn round_trip<T: Serialize + DeserializeOwned>(value: &T) -> (BodyFormat, T) {
        let body = encode(value).unwrap();
        (body.format, decode(body.format, &body.bytes).unwrap())
    }

    #[test]
    fn values_json_carries_exactly_stay_json() {
        let value = (
            Some(1),
            None::<u8>,
            "text".to_owned(),
            vec![0.1_f64 + 0.2, -0.0, 1e300],
            (u64::MAX, i64::MIN, u128::MAX, i128::MIN),
            BTreeMap::from([("a".to_owned(), Some(2))]),
        );
        let (format, back) = round_trip(&value);
        assert_eq!(format, BodyFormat::Json);
        assert_eq!(back, value);
        assert_eq!(back.3[1].to_bits(), value.3[1].to_bits(), "-0.0");
        let json = serde_json::json!({"a": [1, null, {"b": 2.5}]});
        assert_eq!(round_trip(&json), (BodyFormat::Json, json));
    }

    #[test]
    fn nulls_json_merges_go_ron() {
        assert_eq!(
            round_trip(&Some(None::<String>)),
            (BodyFormat::Ron, Some(None))
        );
        assert_eq!(
            round_trip(&Some(Some(None::<u8>))),
            (BodyFormat::Ron, Some(Some(None)))
        );
        assert_eq!(round_trip(&Some(())), (BodyFormat::Ron, Some(())));
        let (format, back) = round_trip(&(f64::NAN, f32::INFINITY, f64::NEG_INFINITY));
        assert_eq!(format, BodyFormat::Ron);
        assert!(back.0.is_nan());
        assert_eq!((back.1, back.2), (f32::INFINITY, f64::NEG_INFINITY));
        assert_eq!(
            round_trip(&Some(serde_json::Value::Null)),
            (BodyFormat::Ron, Some(serde_json::Value::Null))
        );
    }

    #[test]
    fn non_string_map_keys_go_ron() {
        let tuples = HashMap::from([((1, 2), "a".to_owned()), ((-3, 4), "b".to_owned())]);
        assert_eq!(round_trip(&tuples), (BodyFormat::Ron, tuples));
        let ints = BTreeMap::from([(i64::MIN, 1), (7, 2)]);
        assert_eq!(round_trip(&ints), (BodyFormat::Ron, ints));
    }

    #[test]
    fn a_body_of_another_type_is_an_error() {
        let body = encode(&"text").unwrap();
        let error = decode::<u32>(body.format, &body.bytes).unwrap_err();
        assert!(error.to_string().starts_with("JSON body"), "{error}");
        assert!(decode::<u32>(BodyFormat::Ron, b"Some(").is_err());
    }

    #[test]
    fn a_value_whose_own_form_does_not_read_back_is_refused() {
        #[derive(Serialize, serde::Deserialize)]
        struct Flat {
            id: u32,
            #[serde(flatten)]
            rest: BTreeMap<String, u32>,
        }
        // A flattened key that a field also writes: `{"id":1,"id":2}`, which no format
        // reads back.
        let clashing = Flat {
            id: 1,
            rest: BTreeMap::from([("id".to_owned(), 2)]),
        };
        let error = encode_checked(&clashing).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("Flat"), "names the type: {message}");
        assert!(message.contains("does not read back"), "{message}");
        // The same type with keys of its own is stored.
        let fine = Flat {
            id: 1,
            rest: BTreeMap::from([("plays".to_owned(), 2)]),
        };
        let body = encode_checked(&fine).unwrap();
        assert_eq!(body.format, BodyFormat::Json);
    }
}
