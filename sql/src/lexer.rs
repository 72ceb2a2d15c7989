//! Tokenizer for [`crate::classify`], [`crate::locks`] and [`crate::transaction_walk`].
//!
//! SQL dialects disagree about where comments and literals end, and text that one of them
//! skips as a comment another may execute. Rather than guess the dialect, the classifier
//! lexes the text once per [`Dialect`] and unions what each lexing says is written. The
//! dialects below therefore differ exactly where a wrong guess could hide statement text:
//!
//! | construct      | `Postgres`       | `MySql`                   | `Sqlite`                 |
//! |----------------|------------------|---------------------------|--------------------------|
//! | `/* /* */ */`  | nests            | flat; `/*! .. */` is code | flat, may run to the end |
//! | `'a\'b'`       | no escapes       | backslash escapes         | no escapes               |
//! | `E'a\'b'`      | escape string    | one string (same end)     | `E`, then a string       |
//! | `#`            | operator         | line comment              | operator                 |
//! | `--x`          | comment          | minus, minus, `x`         | comment                  |
//! | `$tag$..$tag$` | string           | identifier                | parameter `$tag`, `$`    |
//! | `[name]`       | plain names only | plain names only          | any text up to `]`       |
//! | `:a`, `@a`     | operator, name   | operator, name            | named parameter          |
//!
//! The lexer never panics: bytes are read with `get`, and text is only sliced at ASCII
//! delimiters (which never occur inside a multi-byte UTF-8 sequence) through `str::get`.

use std::borrow::Cow;

/// The lexical rules to apply; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// PostgreSQL, plus SQL Server / SQLite brackets (plain names only) and MySQL backticks.
    Postgres,
    /// MySQL / MariaDB with default SQL mode.
    MySql,
    /// SQLite.
    Sqlite,
}

/// What a [`Token`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Unquoted identifier or keyword, as written.
    Word,
    /// Quoted identifier (`"x"`, `` `x` ``, `[x]`), unescaped.
    Quoted,
    /// String literal, unescaped. `exact` is false when an escape could not be decoded
    /// faithfully (the text must then not be used as a row id).
    Str { exact: bool },
    /// Numeric literal, as written.
    Number,
    /// Placeholder and its 0-based index; `None` when the index is not known for sure.
    Param(Option<usize>),
    /// One punctuation character: `(`, `)`, `,`, `;`, `.`, `[`, ...
    Punct,
    /// A run of operator characters: `=`, `<>`, `::`, `||`, ...
    Op,
}

/// One token; `text` borrows from the SQL unless unescaping had to build a new string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token<'a> {
    pub(super) kind: Kind,
    pub(super) text: Cow<'a, str>,
}

/// The tokens of a text. `complete` is false when a string, quoted identifier or comment is
/// not terminated; `tokens` then holds what came before it.
pub(super) struct Lexed<'a> {
    pub(super) tokens: Vec<Token<'a>>,
    pub(super) complete: bool,
}

/// Characters that form operators. `?` is a placeholder, backtick a quote.
const OP_CHARS: &[u8] = b"+-*/<>=~!@#%^&|:";

// Placeholder styles seen, as bits: drivers number mixed styles differently.
const ANON: u8 = 1;
const NUMBERED: u8 = 2;
const DOLLAR: u8 = 4;
const NAMED: u8 = 8;

/// Splits `sql` into tokens under `dialect`'s rules.
pub(super) fn lex(sql: &str, dialect: Dialect) -> Lexed<'_> {
    let mut lexer = Lexer {
        src: sql,
        bytes: sql.as_bytes(),
        pos: 0,
        dialect,
        tokens: Vec::new(),
        next_anon: 0,
        styles: 0,
        in_exec_comment: false,
    };
    let complete = lexer.run();
    if lexer.styles.count_ones() > 1 {
        // `?` after `?3` or `:name` is numbered differently by SQLite, sqlx and MySQL:
        // rather than risk reading the wrong parameter, forget every index.
        for token in &mut lexer.tokens {
            if let Kind::Param(index) = &mut token.kind {
                *index = None;
            }
        }
    }
    Lexed {
        tokens: lexer.tokens,
        complete,
    }
}

/// How backslashes behave inside a quoted token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escapes {
    /// A backslash is an ordinary character.
    None,
    /// MySQL: `\n`, `\'`, `\\`, ...; `\%` and `\_` keep their backslash.
    MySql,
    /// PostgreSQL `E'...'`: C-style escapes, octal, hex and Unicode.
    Postgres,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    dialect: Dialect,
    tokens: Vec<Token<'a>>,
    /// Index of the next anonymous `?`.
    next_anon: usize,
    /// Placeholder styles seen (bit set).
    styles: u8,
    /// Inside a MySQL `/*! ... */` comment, whose `*/` must be skipped.
    in_exec_comment: bool,
}

impl<'a> Lexer<'a> {
    fn at(&self, offset: usize) -> Option<u8> {
        self.byte(self.pos + offset)
    }

    fn byte(&self, index: usize) -> Option<u8> {
        self.bytes.get(index).copied()
    }

    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.src.get(from..to).unwrap_or("")
    }

    /// Number of bytes from `from` on that satisfy `pred`.
    fn count_from(&self, from: usize, pred: impl Fn(u8) -> bool) -> usize {
        self.bytes
            .get(from..)
            .map_or(0, |rest| rest.iter().take_while(|&&b| pred(b)).count())
    }

    fn push(&mut self, kind: Kind, text: Cow<'a, str>) {
        self.tokens.push(Token { kind, text });
    }

    /// Pushes `from..to` as a token of `kind` and moves past it.
    fn push_span(&mut self, kind: Kind, from: usize, to: usize) {
        let text = self.slice(from, to);
        self.push(kind, Cow::Borrowed(text));
        self.pos = to;
    }

    /// Returns false when the text ends inside a literal or comment.
    fn run(&mut self) -> bool {
        while let Some(b) = self.at(0) {
            let ok = match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                    self.pos += 1;
                    true
                }
                b'-' if self.at(1) == Some(b'-') && self.dash_comment(self.pos) => {
                    self.line_comment();
                    true
                }
                b'#' if self.dialect == Dialect::MySql => {
                    self.line_comment();
                    true
                }
                b'/' if self.at(1) == Some(b'*') => self.block_comment(),
                b'*' if self.in_exec_comment && self.at(1) == Some(b'/') => {
                    self.pos += 2;
                    self.in_exec_comment = false;
                    true
                }
                b'\'' => self.literal(false, b'\'', self.backslashes()),
                b'"' => self.literal(true, b'"', self.backslashes()),
                b'`' => self.literal(true, b'`', Escapes::None),
                b'[' => self.bracket(),
                b'$' => self.dollar(),
                b'?' => {
                    self.question();
                    true
                }
                b':' | b'@'
                    if self.dialect == Dialect::Sqlite
                        && self.at(1).is_some_and(is_ident_start) =>
                {
                    self.named_param();
                    true
                }
                b'.' if self.at(1).is_some_and(|c| c.is_ascii_digit()) => {
                    self.number();
                    true
                }
                _ if b.is_ascii_digit() => {
                    self.number();
                    true
                }
                _ if is_ident_start(b) => self.word(),
                _ if OP_CHARS.contains(&b) => {
                    self.op();
                    true
                }
                _ => {
                    self.punct();
                    true
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }

    fn backslashes(&self) -> Escapes {
        if self.dialect == Dialect::MySql {
            Escapes::MySql
        } else {
            Escapes::None
        }
    }

    /// Whether the `--` at `at` starts a comment: MySQL wants whitespace after it.
    fn dash_comment(&self, at: usize) -> bool {
        self.dialect != Dialect::MySql || self.byte(at + 2).is_none_or(|c| c <= b' ')
    }

    fn line_comment(&mut self) {
        self.pos += self.count_from(self.pos, |c| c != b'\n');
    }

    fn block_comment(&mut self) -> bool {
        let start = self.pos;
        if self.dialect == Dialect::MySql {
            // `/*! code */` and MariaDB's `/*M! code */` are executed, not skipped.
            let marker = match (self.at(2), self.at(3)) {
                (Some(b'!'), _) => 1,
                (Some(b'M'), Some(b'!')) => 2,
                _ => 0,
            };
            if marker > 0 {
                self.pos = start + 2 + marker;
                self.pos += self.count_from(self.pos, |c| c.is_ascii_digit()); // version
                self.in_exec_comment = true;
                return true;
            }
        }
        self.pos += 2;
        let mut depth = 1usize;
        while let Some(b) = self.at(0) {
            if b == b'*' && self.at(1) == Some(b'/') {
                self.pos += 2;
                depth -= 1;
                if depth == 0 {
                    return true;
                }
            } else if b == b'/' && self.at(1) == Some(b'*') && self.dialect == Dialect::Postgres {
                self.pos += 2;
                depth += 1;
            } else {
                self.pos += 1;
            }
        }
        // SQLite lets a comment run to the end of the input; elsewhere this is an error.
        self.dialect == Dialect::Sqlite
    }

    /// A string literal or quoted identifier opening at `self.pos`.
    fn literal(&mut self, ident: bool, quote: u8, escapes: Escapes) -> bool {
        let Some((text, exact, end)) = self.delimited(self.pos + 1, quote, escapes) else {
            return false;
        };
        let kind = if ident {
            Kind::Quoted
        } else {
            Kind::Str { exact }
        };
        self.push(kind, text);
        self.pos = end;
        true
    }

    /// Reads from `start` up to an undoubled `quote`. Returns the unescaped text, whether it
    /// was decoded faithfully, and the position after the closing quote.
    fn delimited(
        &self,
        start: usize,
        quote: u8,
        escapes: Escapes,
    ) -> Option<(Cow<'a, str>, bool, usize)> {
        let mut owned: Option<String> = None; // built only once an escape is met
        let mut segment = start; // first byte not yet copied into `owned`
        let mut exact = true;
        let mut i = start;
        loop {
            let b = self.byte(i)?;
            if b == quote {
                if self.byte(i + 1) == Some(quote) {
                    let buf = owned.get_or_insert_with(String::new);
                    buf.push_str(self.slice(segment, i + 1)); // keeps one quote
                    i += 2;
                    segment = i;
                    continue;
                }
                let text = match owned {
                    Some(mut buf) => {
                        buf.push_str(self.slice(segment, i));
                        Cow::Owned(buf)
                    }
                    None => Cow::Borrowed(self.slice(start, i)),
                };
                return Some((text, exact, i + 1));
            }
            if b == b'\\' && escapes != Escapes::None {
                let buf = owned.get_or_insert_with(String::new);
                buf.push_str(self.slice(segment, i));
                let (used, faithful) = unescape(self.src.get(i + 1..)?, escapes, buf);
                if used == 0 {
                    return None; // backslash at the very end
                }
                exact &= faithful;
                i += 1 + used;
                segment = i;
                continue;
            }
            i += 1;
        }
    }

    fn bracket(&mut self) -> bool {
        let start = self.pos + 1;
        let len = if self.dialect == Dialect::Sqlite {
            self.count_from(start, |c| c != b']')
        } else {
            // Elsewhere `[` is a subscript or an error. Reading `[name]` as a name is then
            // harmless only if the brackets cannot hide a quote, comment or `;`.
            self.count_from(start, |c| {
                c.is_ascii_alphanumeric() || c == b'_' || c == b' ' || c >= 0x80
            })
        };
        match self.byte(start + len) {
            Some(b']') if len > 0 || self.dialect == Dialect::Sqlite => {
                let text = self.slice(start, start + len);
                self.push(Kind::Quoted, Cow::Borrowed(text));
                self.pos = start + len + 1;
                true
            }
            None if self.dialect == Dialect::Sqlite => false,
            _ => {
                self.punct();
                true
            }
        }
    }

    fn dollar(&mut self) -> bool {
        if self.at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.numbered_param(DOLLAR);
            return true;
        }
        match self.dialect {
            Dialect::Postgres => self.dollar_quote(),
            Dialect::MySql => self.word(), // `$` may start a MySQL identifier
            Dialect::Sqlite => {
                if self.at(1).is_some_and(is_ident_start) {
                    self.named_param();
                } else {
                    self.punct();
                }
                true
            }
        }
    }

    /// `$$...$$` or `$tag$...$tag$`; a `$` that opens neither is punctuation.
    fn dollar_quote(&mut self) -> bool {
        let start = self.pos;
        let tag = self.count_from(start + 1, |c| is_ident_start(c) || c.is_ascii_digit());
        if self.byte(start + 1 + tag) != Some(b'$') {
            self.punct();
            return true;
        }
        let body = start + tag + 2;
        let delimiter = self.slice(start, body);
        match self.src.get(body..).and_then(|rest| rest.find(delimiter)) {
            Some(len) => {
                let text = self.slice(body, body + len);
                self.push(Kind::Str { exact: true }, Cow::Borrowed(text));
                self.pos = body + len + delimiter.len();
                true
            }
            None => false,
        }
    }

    fn question(&mut self) {
        if self.at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.numbered_param(NUMBERED);
            return;
        }
        let index = self.next_anon;
        self.next_anon += 1;
        self.styles |= ANON;
        self.push_span(Kind::Param(Some(index)), self.pos, self.pos + 1);
    }

    /// `?NNN` or `$NNN`: parameter NNN, counted from 1.
    fn numbered_param(&mut self, style: u8) {
        let start = self.pos;
        let digits = self.count_from(start + 1, |c| c.is_ascii_digit());
        let index = self
            .slice(start + 1, start + 1 + digits)
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1));
        self.styles |= style;
        self.push_span(Kind::Param(index), start, start + 1 + digits);
    }

    /// SQLite `:name`, `@name`, `$name`.
    fn named_param(&mut self) {
        let start = self.pos;
        let len = self.count_from(start + 1, is_ident_cont);
        self.styles |= NAMED;
        self.push_span(Kind::Param(None), start, start + 1 + len);
    }

    fn number(&mut self) {
        let start = self.pos;
        let hex = self.at(0) == Some(b'0') && matches!(self.at(1), Some(b'x' | b'X'));
        let mut i = start;
        while let Some(c) = self.byte(i) {
            let exponent_sign = matches!(c, b'+' | b'-')
                && !hex
                && i > start
                && matches!(self.byte(i - 1), Some(b'e' | b'E'))
                && self.byte(i + 1).is_some_and(|d| d.is_ascii_digit());
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || exponent_sign {
                i += 1;
            } else {
                break;
            }
        }
        self.push_span(Kind::Number, start, i);
    }

    fn word(&mut self) -> bool {
        let start = self.pos;
        let end = start + self.count_from(start, is_ident_cont).max(1);
        let is_e = end == start + 1 && matches!(self.byte(start), Some(b'e' | b'E'));
        if is_e && self.byte(end) == Some(b'\'') && self.dialect != Dialect::Sqlite {
            // PostgreSQL's escape string. MySQL has no `E` prefix, but it ends the string at
            // the same quote (backslashes escape in every MySQL string); reading the prefix
            // as part of the literal keeps the two lexings alike.
            self.pos = end;
            let escapes = match self.dialect {
                Dialect::Postgres => Escapes::Postgres,
                _ => Escapes::MySql,
            };
            return self.literal(false, b'\'', escapes);
        }
        self.push_span(Kind::Word, start, end);
        true
    }

    fn op(&mut self) {
        let start = self.pos;
        let mut end = start + 1;
        while let Some(c) = self.byte(end) {
            if self.op_stops(c, end) {
                break;
            }
            end += 1;
        }
        // Like PostgreSQL, `=-` is `=` then `-`: a multi-character operator only ends in
        // `+` or `-` if it also holds one of `~!@#%^&|`.
        let run = self.slice(start, end);
        if !run.bytes().any(|c| b"~!@#%^&|".contains(&c)) {
            let trimmed = run.trim_end_matches(['+', '-']).len().max(1);
            end = start + trimmed;
        }
        self.push_span(Kind::Op, start, end);
    }

    /// Whether the operator run must end before byte `c` at `at`.
    fn op_stops(&self, c: u8, at: usize) -> bool {
        let next = self.byte(at + 1);
        !OP_CHARS.contains(&c)
            || (c == b'-' && next == Some(b'-') && self.dash_comment(at))
            || (c == b'/' && next == Some(b'*'))
            || (c == b'*' && next == Some(b'/') && self.in_exec_comment)
            || (c == b'#' && self.dialect == Dialect::MySql)
            || (matches!(c, b':' | b'@')
                && self.dialect == Dialect::Sqlite
                && next.is_some_and(is_ident_start))
    }

    fn punct(&mut self) {
        let len = self
            .src
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
            .map_or(1, char::len_utf8);
        self.push_span(Kind::Punct, self.pos, self.pos + len);
    }
}

/// Decodes the escape after a backslash (`rest` starts just after it) into `out`. Returns the
/// bytes used (0 at end of input) and whether the decoding is faithful.
fn unescape(rest: &str, escapes: Escapes, out: &mut String) -> (usize, bool) {
    let Some(c) = rest.chars().next() else {
        return (0, false);
    };
    let len = c.len_utf8();
    if escapes == Escapes::MySql {
        match c {
            '0' => out.push('\0'),
            'b' => out.push('\u{8}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'Z' => out.push('\u{1a}'),
            '%' | '_' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        return (len, true);
    }
    match c {
        'b' => out.push('\u{8}'),
        'f' => out.push('\u{c}'),
        'n' => out.push('\n'),
        'r' => out.push('\r'),
        't' => out.push('\t'),
        '0'..='7' => {
            let digits = count_digits(rest, 0, 3, 8);
            return (digits, push_byte(rest.get(..digits), 8, out));
        }
        'x' => {
            let digits = count_digits(rest, 1, 2, 16);
            if digits == 0 {
                out.push('x');
                return (1, true);
            }
            return (1 + digits, push_byte(rest.get(1..1 + digits), 16, out));
        }
        'u' | 'U' => {
            let want = if c == 'u' { 4 } else { 8 };
            if count_digits(rest, 1, want, 16) < want {
                return (1, false); // an error in PostgreSQL; keep lexing
            }
            let code = rest
                .get(1..1 + want)
                .and_then(|h| u32::from_str_radix(h, 16).ok());
            match code.filter(|&v| v != 0).and_then(char::from_u32) {
                Some(ch) => out.push(ch),
                None => return (1 + want, false),
            }
            return (1 + want, true);
        }
        _ => out.push(c),
    }
    (len, true)
}

/// How many digits of `radix` follow `skip` bytes into `s`, at most `max`.
fn count_digits(s: &str, skip: usize, max: usize, radix: u32) -> usize {
    s.bytes()
        .skip(skip)
        .take(max)
        .take_while(|b| char::from(*b).is_digit(radix))
        .count()
}

/// Pushes the byte written in `digits`; only ASCII (1..=127) is decoded faithfully, as other
/// bytes would have to combine into UTF-8 sequences.
fn push_byte(digits: Option<&str>, radix: u32, out: &mut String) -> bool {
    match digits.and_then(|d| u32::from_str_radix(d, radix).ok()) {
        Some(v @ 1..=0x7f) => {
            out.extend(char::from_u32(v));
            true
        }
        _ => false,
    }
}
