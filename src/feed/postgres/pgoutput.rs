//! The pgoutput messages a change feed needs (protocol version 1): Relation, Insert,
//! Update, Delete and Truncate, decoded from the `XLogData` payloads the replication client
//! hands over raw. Begin and Commit come decoded from the client; Type and Origin are
//! skipped. Anything else (a message this decoder does not know) is an error: the consumer
//! cannot tell what it would have written, so it must not carry on as if nothing happened.
//!
//! Reference: PostgreSQL's "Logical Replication Message Formats" (protocol-logicalrep-message-formats).

use std::fmt;

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A table's shape, sent before the first change to it in a session (and again after
    /// it changes).
    Relation(Relation),
    /// A row inserted into the relation `rel`; its new values.
    Insert { rel: u32, new: Tuple },
    /// A row updated: the old key (`K`) or whole old row (`O`, replica identity full) when
    /// the key changed or the identity is full, and the new row.
    Update {
        rel: u32,
        old: Option<Tuple>,
        new: Tuple,
    },
    /// A row deleted: its old key (`K`) or whole old row (`O`).
    Delete { rel: u32, old: Tuple },
    /// Relations truncated.
    Truncate { rels: Vec<u32> },
    /// Anything the feed has no use for (Type, Origin, Begin/Commit already decoded).
    Skipped,
}

/// A table as pgoutput describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relation {
    pub(crate) id: u32,
    pub(crate) schema: String,
    pub(crate) name: String,
    /// `d` default (primary key), `n` nothing, `f` full, `i` index.
    pub(crate) replica_identity: u8,
    pub(crate) columns: Vec<Column>,
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    /// Part of the replica identity key (flag bit 1).
    pub(crate) key: bool,
    pub(crate) name: String,
    pub(crate) type_oid: u32,
}

/// A row's column values, in the relation's column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tuple(pub(crate) Vec<Value>);

/// One column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    /// An unchanged TOASTed value that was not sent.
    Unchanged,
    /// The value in text format.
    Text(String),
    /// The value in binary format (only when the session asked for it; this feed does not).
    Binary(Vec<u8>),
}

/// A payload this decoder cannot read: names the message kind and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub(crate) kind: u8,
    pub(crate) reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pgoutput message {:?}: {}",
            char::from(self.kind),
            self.reason
        )
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one pgoutput message.
pub(crate) fn decode(data: &[u8]) -> Result<Message, DecodeError> {
    let (&kind, rest) = data.split_first().ok_or(DecodeError {
        kind: b'?',
        reason: "empty payload",
    })?;
    let mut r = Reader { data: rest, kind };
    let message = match kind {
        b'R' => {
            let id = r.u32()?;
            let schema = r.cstr()?;
            let name = r.cstr()?;
            let replica_identity = r.u8()?;
            let n = r.u16()?;
            let mut columns = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                let flags = r.u8()?;
                let name = r.cstr()?;
                let type_oid = r.u32()?;
                let _typmod = r.u32()?;
                columns.push(Column {
                    key: flags & 1 == 1,
                    name,
                    type_oid,
                });
            }
            Message::Relation(Relation {
                id,
                schema,
                name,
                replica_identity,
                columns,
            })
        }
        b'I' => {
            let rel = r.u32()?;
            r.expect(b'N', "insert without a new tuple")?;
            Message::Insert {
                rel,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let rel = r.u32()?;
            let mut old = None;
            let new = loop {
                match r.u8()? {
                    b'K' | b'O' if old.is_none() => old = Some(r.tuple()?),
                    b'N' => break r.tuple()?,
                    _ => return Err(r.error("update with an unknown tuple marker")),
                }
            };
            Message::Update { rel, old, new }
        }
        b'D' => {
            let rel = r.u32()?;
            match r.u8()? {
                b'K' | b'O' => Message::Delete {
                    rel,
                    old: r.tuple()?,
                },
                _ => return Err(r.error("delete without an old key")),
            }
        }
        b'T' => {
            let n = r.u32()?;
            let _options = r.u8()?;
            let rels = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
            Message::Truncate { rels }
        }
        // Begin and Commit (decoded by the client), Origin, Type; Message ('M') arrives as
        // its own client event.
        b'B' | b'C' | b'O' | b'Y' | b'M' => Message::Skipped,
        _ => {
            return Err(DecodeError {
                kind,
                reason: "unknown message kind",
            });
        }
    };
    Ok(message)
}

struct Reader<'a> {
    data: &'a [u8],
    kind: u8,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            kind: self.kind,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.data.len() < n {
            return Err(self.error("truncated"));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), DecodeError> {
        if self.u8()? == byte {
            Ok(())
        } else {
            Err(self.error(reason))
        }
    }

    fn cstr(&mut self) -> Result<String, DecodeError> {
        let end = self
            .data
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.error("unterminated string"))?;
        let text = self.take(end)?;
        self.take(1)?;
        String::from_utf8(text.to_vec()).map_err(|_| self.error("string not UTF-8"))
    }

    fn tuple(&mut self) -> Result<Tuple, DecodeError> {
        let n = self.u16()?;
        let mut values = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            values.push(match self.u8()? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                kind @ (b't' | b'b') => {
                    let len = self.u32()?;
                    let bytes =
                        self.take(usize::try_from(len).map_err(|_| self.error("length"))?)?;
                    if kind == b't' {
                        Value::Text(
                            String::from_utf8(bytes.to_vec())
                                .map_err(|_| self.error("text value not UTF-8"))?,
                        )
                    } else {
                        Value::Binary(bytes.to_vec())
                    }
                }
                _ => return Err(self.error("unknown column value kind")),
            });
        }
        Ok(Tuple(values))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes messages the way pgoutput does, for tests.
    #[derive(Default)]
    pub(crate) struct Enc(pub(crate) Vec<u8>);

    impl Enc {
        pub(crate) fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        pub(crate) fn u16(mut self, v: u16) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        pub(crate) fn u32(mut self, v: u32) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        pub(crate) fn cstr(mut self, s: &str) -> Self {
            self.0.extend(s.as_bytes());
            self.0.push(0);
            self
        }
        pub(crate) fn tuple(mut self, values: &[Option<&str>]) -> Self {
            self = self.u16(values.len() as u16);
            for v in values {
                self = match v {
                    None => self.u8(b'n'),
                    Some(text) => {
                        let s = self.u8(b't').u32(text.len() as u32);
                        let mut s = s;
                        s.0.extend(text.as_bytes());
                        s
                    }
                };
            }
            self
        }
    }

    /// A Relation message: `columns` as (name, type oid, key).
    pub(crate) fn relation(
        id: u32,
        schema: &str,
        name: &str,
        columns: &[(&str, u32, bool)],
    ) -> Vec<u8> {
        let mut e = Enc::default()
            .u8(b'R')
            .u32(id)
            .cstr(schema)
            .cstr(name)
            .u8(b'd')
            .u16(columns.len() as u16);
        for (col, oid, key) in columns {
            e = e.u8(u8::from(*key)).cstr(col).u32(*oid).u32(u32::MAX);
        }
        e.0
    }

    #[test]
    fn relations_and_changes_decode() {
        let rel = relation(
            16385,
            "public",
            "songs",
            &[("id", 23, true), ("title", 25, false)],
        );
        let Message::Relation(r) = decode(&rel).unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.id, r.schema.as_str(), r.name.as_str()),
            (16385, "public", "songs")
        );
        assert_eq!(r.columns.len(), 2);
        assert!(r.columns[0].key && !r.columns[1].key);

        let insert = Enc::default()
            .u8(b'I')
            .u32(16385)
            .u8(b'N')
            .tuple(&[Some("7"), None])
            .0;
        assert_eq!(
            decode(&insert).unwrap(),
            Message::Insert {
                rel: 16385,
                new: Tuple(vec![Value::Text("7".into()), Value::Null])
            }
        );

        let update = Enc::default()
            .u8(b'U')
            .u32(1)
            .u8(b'K')
            .tuple(&[Some("7"), None])
            .u8(b'N')
            .tuple(&[Some("8"), Some("x")])
            .0;
        let Message::Update { old, new, .. } = decode(&update).unwrap() else {
            panic!()
        };
        assert_eq!(old.unwrap().0[0], Value::Text("7".into()));
        assert_eq!(new.0[0], Value::Text("8".into()));

        let plain_update = Enc::default()
            .u8(b'U')
            .u32(1)
            .u8(b'N')
            .tuple(&[Some("8")])
            .0;
        assert!(matches!(
            decode(&plain_update).unwrap(),
            Message::Update { old: None, .. }
        ));

        let delete = Enc::default()
            .u8(b'D')
            .u32(1)
            .u8(b'K')
            .tuple(&[Some("9")])
            .0;
        assert!(matches!(
            decode(&delete).unwrap(),
            Message::Delete { rel: 1, .. }
        ));

        let truncate = Enc::default().u8(b'T').u32(2).u8(0).u32(1).u32(2).0;
        assert_eq!(
            decode(&truncate).unwrap(),
            Message::Truncate { rels: vec![1, 2] }
        );
        assert_eq!(decode(b"Yabc").unwrap(), Message::Skipped);
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let rel = relation(1, "public", "songs", &[("id", 23, true)]);
        for cut in 0..rel.len() {
            assert!(decode(&rel[..cut]).is_err(), "cut at {cut}");
        }
        let insert = Enc::default()
            .u8(b'I')
            .u32(1)
            .u8(b'N')
            .tuple(&[Some("77")])
            .0;
        for cut in 0..insert.len() {
            assert!(decode(&insert[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"Z").is_err());
        assert!(decode(&Enc::default().u8(b'D').u32(1).u8(b'N').0).is_err());
        let err = decode(b"Z").unwrap_err().to_string();
        assert!(err.contains("'Z'"), "{err}");
    }
}
