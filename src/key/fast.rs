//! The key text of the arguments most cached functions take — integers, booleans, plain
//! strings, and tuples or lists of them — written straight into the key buffer, byte for
//! byte what [`json`](super::json) writes for them (serde_json's text), without
//! serde_json's serializer in between. Anything else (a float, an option, a map, a struct,
//! a string that needs escaping) makes it give up, and the caller writes
//! the arguments with [`json`](super::json) instead: the text, and so the key, is the same
//! either way.

use std::mem::MaybeUninit;

use serde::ser::{self, Impossible, Serialize, Serializer};

/// Why the fast writer gave up (never shown: the caller takes the JSON way).
#[derive(Debug)]
pub(super) struct GiveUp;

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a simple argument")
    }
}

impl std::error::Error for GiveUp {}

impl ser::Error for GiveUp {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        GiveUp
    }
}

/// Where the text goes: a buffer on the caller's stack, of [`Buf::CAPACITY`] bytes (what
/// does not fit gives up, and takes the JSON way). Left uninitialized past what was
/// written: a hit's key would otherwise start by zeroing all of it.
pub(super) struct Buf {
    bytes: [MaybeUninit<u8>; Buf::CAPACITY],
    /// The bytes below it are written.
    len: usize,
}

impl Buf {
    /// Arguments up to this long are written here.
    pub(super) const CAPACITY: usize = 192;

    pub(super) fn new() -> Self {
        Buf {
            bytes: [MaybeUninit::uninit(); Buf::CAPACITY],
            len: 0,
        }
    }

    /// The text written.
    pub(super) fn as_bytes(&self) -> &[u8] {
        let written = self.bytes.get(..self.len).unwrap_or_default();
        // SAFETY: every byte below `len` was written (`Text::push` and `Text::byte` are
        // the only writers, and they raise `len` only past what they wrote), and
        // `MaybeUninit<u8>` has the layout of `u8`.
        unsafe { &*(std::ptr::from_ref(written) as *const [u8]) }
    }
}

/// The two-digit numbers, `00` to `99`, one after the other.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// How many decimal digits `value` has (1 for 0): the bit length's estimate of the
/// logarithm, corrected by one comparison.
#[inline(always)]
fn decimal_len(value: u64) -> usize {
    const POWERS: [u64; 20] = {
        let mut powers = [1_u64; 20];
        let mut i = 1;
        while i < 20 {
            powers[i] = powers[i - 1] * 10;
            i += 1;
        }
        powers
    };
    // `| 1`: 0 has one digit, as 1 does; it changes no other count (each power of ten
    // above 1 is even, so an even value below it stays below once made odd).
    let value = value | 1;
    let bits = 64 - value.leading_zeros() as usize;
    // ⌊bits · log10 2⌋, at most 19: the digits of 2^(bits-1) ..= 2^bits - 1, less one or not.
    let floor = (bits * 1233) >> 12;
    floor + usize::from(POWERS.get(floor).is_some_and(|&power| value >= power))
}

/// Writes the pair of digits at `PAIRS[pair..pair + 2]` to `digits[at..at + 2]`.
#[inline(always)]
fn write_pair(digits: &mut [MaybeUninit<u8>], at: usize, pair: usize) {
    if let (Some(out), Some(pair)) = (digits.get_mut(at..at + 2), PAIRS.get(pair..pair + 2)) {
        out.write_copy_of_slice(pair);
    }
}

/// The text written so far.
struct Text<'a>(&'a mut Buf);

impl Text<'_> {
    #[inline(always)]
    fn push(&mut self, more: &[u8]) -> Result<(), GiveUp> {
        let buf = &mut *self.0;
        let end = buf.len + more.len();
        buf.bytes
            .get_mut(buf.len..end)
            .ok_or(GiveUp)?
            .write_copy_of_slice(more);
        buf.len = end;
        Ok(())
    }

    /// One byte.
    #[inline(always)]
    fn byte(&mut self, byte: u8) -> Result<(), GiveUp> {
        let buf = &mut *self.0;
        buf.bytes.get_mut(buf.len).ok_or(GiveUp)?.write(byte);
        buf.len += 1;
        Ok(())
    }

    /// A 128-bit integer in decimal, as serde_json writes it (with the same `itoa`).
    #[inline]
    fn integer(&mut self, value: impl itoa::Integer) -> Result<(), GiveUp> {
        self.push(itoa::Buffer::new().format(value).as_bytes())
    }

    /// A signed integer of up to 64 bits in decimal, as serde_json writes it.
    #[inline(always)]
    fn signed(&mut self, value: i64) -> Result<(), GiveUp> {
        if value < 0 {
            self.byte(b'-')?;
        }
        self.unsigned(value.unsigned_abs())
    }

    /// An unsigned integer of up to 64 bits in decimal, as serde_json (itoa) writes it:
    /// the digits straight into the buffer, two at a time from the last, with no copy.
    #[inline(always)]
    fn unsigned(&mut self, mut value: u64) -> Result<(), GiveUp> {
        let len = decimal_len(value);
        let buf = &mut *self.0;
        let end = buf.len + len;
        let digits = buf.bytes.get_mut(buf.len..end).ok_or(GiveUp)?;
        let mut at = len;
        while value >= 100 {
            let pair = (value % 100) as usize * 2;
            value /= 100;
            at -= 2;
            write_pair(digits, at, pair);
        }
        if value >= 10 {
            write_pair(digits, at - 2, value as usize * 2);
        } else if let Some(first) = digits.first_mut() {
            first.write(b'0' + value as u8);
        }
        buf.len = end;
        Ok(())
    }

    fn string(&mut self, value: &str) -> Result<(), GiveUp> {
        // serde_json escapes `"`, `\` and the C0 controls: leave those to it.
        if value.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
            return Err(GiveUp);
        }
        self.byte(b'"')?;
        self.push(value.as_bytes())?;
        self.byte(b'"')
    }
}

/// Writes `args`' text after what `buf` holds; `false` when the fast writer cannot, or the
/// text does not fit (what it wrote is then to be ignored).
#[inline]
pub(super) fn write<A: Serialize + ?Sized>(buf: &mut Buf, args: &A) -> bool {
    let mut text = Text(buf);
    args.serialize(Writer { text: &mut text }).is_ok()
}

/// The serializer. See the module docs.
struct Writer<'a, 'b> {
    text: &'a mut Text<'b>,
}

/// A list or tuple being written: whether an element was written yet.
struct Seq<'a, 'b> {
    text: &'a mut Text<'b>,
    first: bool,
}

impl Seq<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GiveUp> {
        if !self.first {
            self.text.byte(b',')?;
        }
        self.first = false;
        value.serialize(Writer {
            text: &mut *self.text,
        })
    }

    #[inline(always)]
    fn close(self) -> Result<(), GiveUp> {
        self.text.byte(b']')
    }
}

macro_rules! give_up {
    ($($name:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ret, GiveUp> { Err(GiveUp) })*
    };
}

impl<'a, 'b> Serializer for Writer<'a, 'b> {
    type Ok = ();
    type Error = GiveUp;
    type SerializeSeq = Seq<'a, 'b>;
    type SerializeTuple = Seq<'a, 'b>;
    type SerializeTupleStruct = Seq<'a, 'b>;
    type SerializeTupleVariant = Impossible<(), GiveUp>;
    type SerializeMap = Impossible<(), GiveUp>;
    type SerializeStruct = Impossible<(), GiveUp>;
    type SerializeStructVariant = Impossible<(), GiveUp>;

    #[inline(always)]
    fn serialize_bool(self, v: bool) -> Result<(), GiveUp> {
        self.text.push(if v { b"true" } else { b"false" })
    }
    #[inline(always)]
    fn serialize_i8(self, v: i8) -> Result<(), GiveUp> {
        self.text.signed(v.into())
    }
    #[inline(always)]
    fn serialize_i16(self, v: i16) -> Result<(), GiveUp> {
        self.text.signed(v.into())
    }
    #[inline(always)]
    fn serialize_i32(self, v: i32) -> Result<(), GiveUp> {
        self.text.signed(v.into())
    }
    #[inline(always)]
    fn serialize_i64(self, v: i64) -> Result<(), GiveUp> {
        self.text.signed(v)
    }
    #[inline(always)]
    fn serialize_i128(self, v: i128) -> Result<(), GiveUp> {
        self.text.integer(v)
    }
    #[inline(always)]
    fn serialize_u8(self, v: u8) -> Result<(), GiveUp> {
        self.text.unsigned(v.into())
    }
    #[inline(always)]
    fn serialize_u16(self, v: u16) -> Result<(), GiveUp> {
        self.text.unsigned(v.into())
    }
    #[inline(always)]
    fn serialize_u32(self, v: u32) -> Result<(), GiveUp> {
        self.text.unsigned(v.into())
    }
    #[inline(always)]
    fn serialize_u64(self, v: u64) -> Result<(), GiveUp> {
        self.text.unsigned(v)
    }
    #[inline(always)]
    fn serialize_u128(self, v: u128) -> Result<(), GiveUp> {
        self.text.integer(v)
    }
    #[inline(always)]
    fn serialize_char(self, v: char) -> Result<(), GiveUp> {
        self.text.string(v.encode_utf8(&mut [0; 4]))
    }
    #[inline(always)]
    fn serialize_str(self, v: &str) -> Result<(), GiveUp> {
        self.text.string(v)
    }
    #[inline(always)]
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a, 'b>, GiveUp> {
        self.text.byte(b'[')?;
        Ok(Seq {
            text: self.text,
            first: true,
        })
    }
    #[inline(always)]
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a, 'b>, GiveUp> {
        self.serialize_seq(Some(len))
    }
    #[inline(always)]
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a, 'b>, GiveUp> {
        self.serialize_seq(Some(len))
    }
    #[inline(always)]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), GiveUp> {
        // serde_json writes a newtype struct as its content.
        value.serialize(self)
    }
    #[inline(always)]
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), GiveUp> {
        Err(GiveUp)
    }
    #[inline(always)]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), GiveUp> {
        Err(GiveUp)
    }
    give_up! {
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

impl ser::SerializeSeq for Seq<'_, '_> {
    type Ok = ();
    type Error = GiveUp;
    #[inline(always)]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GiveUp> {
        self.element(value)
    }
    #[inline(always)]
    fn end(self) -> Result<(), GiveUp> {
        self.close()
    }
}

impl ser::SerializeTuple for Seq<'_, '_> {
    type Ok = ();
    type Error = GiveUp;
    #[inline(always)]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GiveUp> {
        self.element(value)
    }
    #[inline(always)]
    fn end(self) -> Result<(), GiveUp> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Seq<'_, '_> {
    type Ok = ();
    type Error = GiveUp;
    #[inline(always)]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GiveUp> {
        self.element(value)
    }
    #[inline(always)]
    fn end(self) -> Result<(), GiveUp> {
        self.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_json<A: Serialize>(args: A) {
        let mut json = Vec::new();
        super::super::json::write(&mut json, &args).unwrap();
        let mut fast = Buf::new();
        assert!(write(&mut fast, &args), "written fast");
        assert_eq!(
            String::from_utf8_lossy(fast.as_bytes()),
            String::from_utf8_lossy(&json)
        );
    }

    #[test]
    fn writes_serde_jsons_text_or_gives_up() {
        same_as_json((7_u32,));
        same_as_json((-12_i64, u128::MAX, i128::MIN, true, 'x', "plain é 🎵"));
        same_as_json((
            0_u8,
            u64::MAX,
            u128::from(u64::MAX) + 1,
            10_u128.pow(19),
            10_u128.pow(38),
        ));
        same_as_json((i64::MIN, 10_000_000_000_000_000_000_000_u128 + 7));
        for n in (0..1_000_u64).chain((1..20).flat_map(|e| {
            let p = 10_u64.pow(e);
            [p - 1, p, p + 1]
        })) {
            same_as_json((n, -(n as i64), n as i64));
        }
        same_as_json((vec![1_u8, 2, 3], Vec::<i32>::new(), ("a", ("b", 0_u16))));
        let buf = &mut Buf::new();
        for written in [
            write(buf, &("x".repeat(Buf::CAPACITY),)),
            write(buf, &(1.5_f64,)),
            write(buf, &(Some(1),)),
            write(buf, &(None::<i32>,)),
            write(buf, &("quote \"",)),
            write(buf, &("tab\t",)),
            write(buf, &(std::collections::BTreeMap::<String, i32>::new(),)),
        ] {
            assert!(!written);
        }
    }
}
