//! Transaction control inside a statement text: which of its statements begin, end or split
//! a transaction, in order, and the other statements between them.
//!
//! The Diesel integration follows transactions driven by raw SQL (`batch_execute("BEGIN;
//! UPDATE ..")`, `sql_query("COMMIT -- done")`) with [`transaction_walk`]: the text is split
//! at top-level `;` by the classifier's lexer (comments and literals cannot hide or fake a
//! separator), each statement is read as a [`Control`] or left to the write classifier, and
//! the runs of ordinary statements come back as slices of the text, so their writes can be
//! recorded at the transaction level that is open when they run.
//!
//! Fail safe, as everywhere in the classifier: a statement that starts like transaction
//! control but is not understood is [`Control::Unknown`], and a text whose control statements
//! the three lexings (PostgreSQL, MySQL, SQLite rules) disagree on, or that cannot be lexed,
//! is [`Walk::doubtful`].

use super::lexer::{self, Dialect, Kind, Token};
use super::parser::Parser;
use super::{Acc, Env};

/// One transaction-control statement (see [`transaction_walk`]).
///
/// ```
/// use querycache_sql::{Control, Step, transaction_walk};
///
/// let walk = transaction_walk("ROLLBACK TO SAVEPOINT before_import").unwrap();
/// assert_eq!(walk.steps, vec![Step::Control(Control::RollbackTo("before_import".into()))]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `BEGIN [WORK | TRANSACTION | DEFERRED | IMMEDIATE | EXCLUSIVE | ISOLATION LEVEL ..]`,
    /// `START TRANSACTION ..`, MySQL's `XA START | BEGIN`.
    Begin,
    /// `COMMIT`, `END` (with `WORK` / `TRANSACTION`), `AND [NO] CHAIN`; `XA COMMIT .. ONE
    /// PHASE`. With `chain`, a new transaction opens at once.
    Commit {
        /// `AND CHAIN`: a new transaction opens at once.
        chain: bool,
    },
    /// `ROLLBACK`, `ABORT` (PostgreSQL), `AND [NO] CHAIN`; `XA ROLLBACK`.
    Rollback {
        /// `AND CHAIN`: a new transaction opens at once.
        chain: bool,
    },
    /// `SAVEPOINT name`.
    Savepoint(String),
    /// `RELEASE [SAVEPOINT] name`.
    Release(String),
    /// `ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name`: not an end.
    RollbackTo(String),
    /// `PREPARE TRANSACTION 'x'`, `XA PREPARE x`: the transaction leaves this connection; its
    /// outcome is decided later, possibly elsewhere.
    Prepare,
    /// `COMMIT PREPARED 'x'`, `XA COMMIT x`: commits a prepared transaction, whose writes this
    /// connection may never have seen.
    CommitPrepared,
    /// `SET autocommit = ..` (MySQL): off makes every statement part of a transaction that
    /// only `COMMIT` / `ROLLBACK` end (and a new one starts after them).
    Autocommit(bool),
    /// Control that changes nothing a cache cares about: `ROLLBACK PREPARED`, `XA END`,
    /// `XA RECOVER`.
    Neutral,
    /// A statement MySQL and MariaDB run only after committing the open transaction (their
    /// manual's "Statements That Cause an Implicit Commit"): DDL other than on temporary
    /// tables (`CREATE`, `ALTER`, `DROP`, `RENAME`, `TRUNCATE`), `LOCK` / `UNLOCK TABLES`,
    /// account statements (`GRANT`, `REVOKE`, `SET PASSWORD`), table maintenance (`ANALYZE`,
    /// `CHECK`, `OPTIMIZE`, `REPAIR TABLE`, `CACHE INDEX`, `LOAD INDEX`, `FLUSH`, `RESET`),
    /// plugins and replication control. PostgreSQL and SQLite run them inside the
    /// transaction. The statement itself follows in the walk as [`Step::Statements`], for its
    /// own writes.
    ///
    /// ```
    /// use querycache_sql::{Control, Step, transaction_walk};
    ///
    /// let walk = transaction_walk("BEGIN; UPDATE t SET a = 1; CREATE TABLE u (id INT)").unwrap();
    /// assert_eq!(walk.steps[2], Step::Control(Control::ImplicitCommit));
    /// assert_eq!(walk.steps[3], Step::Statements(" CREATE TABLE u (id INT)"));
    /// // Temporary tables commit nothing.
    /// assert_eq!(transaction_walk("CREATE TEMPORARY TABLE u (id INT)"), None);
    /// ```
    ImplicitCommit,
    /// Starts like transaction control, but what it does is not known.
    Unknown,
}

/// One step of a text, in order (see [`transaction_walk`]).
///
/// ```
/// use querycache_sql::{Control, Step, transaction_walk};
///
/// let walk = transaction_walk("UPDATE a SET x = 1; UPDATE b SET y = 2; COMMIT").unwrap();
/// assert_eq!(
///     walk.steps,
///     vec![
///         Step::Statements("UPDATE a SET x = 1; UPDATE b SET y = 2"),
///         Step::Control(Control::Commit { chain: false }),
///     ]
/// );
/// ```
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Consecutive statements that are not transaction control: a slice of the text.
    Statements(&'a str),
    /// A transaction-control statement.
    Control(Control),
}

/// What a text does to the connection's transaction, statement by statement (see
/// [`transaction_walk`]).
///
/// ```
/// use querycache_sql::transaction_walk;
///
/// // PostgreSQL and SQLite read one string; MySQL (backslash escapes) reads a COMMIT.
/// let walk = transaction_walk(r"UPDATE t SET a = 'it\'; COMMIT; --'").unwrap();
/// assert!(walk.doubtful);
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Walk<'a> {
    /// The steps, in the order the database runs them.
    pub steps: Vec<Step<'a>>,
    /// The text cannot be lexed, or the dialects' lexings disagree about its control
    /// statements: what it does to the transaction is not known for sure.
    pub doubtful: bool,
}

impl Walk<'_> {
    /// Whether its only control is [`Control::ImplicitCommit`]: a text of DDL and the like,
    /// which changes nothing outside a transaction (and whose doubtfulness, a function body
    /// in `$$` that MySQL lexes differently, matters only inside one).
    ///
    /// ```
    /// use querycache_sql::transaction_walk;
    ///
    /// assert!(transaction_walk("CREATE TABLE t (id INT); DROP TABLE u").unwrap().implicit_commits_only());
    /// assert!(!transaction_walk("CREATE TABLE t (id INT); COMMIT").unwrap().implicit_commits_only());
    /// ```
    pub fn implicit_commits_only(&self) -> bool {
        self.steps.iter().all(|step| match step {
            Step::Control(control) => *control == Control::ImplicitCommit,
            Step::Statements(_) => true,
        })
    }
}

/// Leading words of transaction-control statements.
const CONTROL_WORDS: &[&str] = &[
    "BEGIN",
    "START",
    "COMMIT",
    "END",
    "ROLLBACK",
    "ABORT",
    "SAVEPOINT",
    "RELEASE",
    "PREPARE",
    "XA",
    "SET",
    // Statements MySQL commits the open transaction before (Control::ImplicitCommit).
    "CREATE",
    "ALTER",
    "DROP",
    "RENAME",
    "TRUNCATE",
    "LOCK",
    "UNLOCK",
    "GRANT",
    "REVOKE",
    "ANALYZE",
    "CHECK",
    "OPTIMIZE",
    "REPAIR",
    "CACHE",
    "LOAD",
    "FLUSH",
    "RESET",
    "INSTALL",
    "UNINSTALL",
    "CHANGE",
    "STOP",
];

/// The steps of `sql`, or `None` when it holds no transaction control (the common case: the
/// caller classifies the whole text as one write, with its bound values).
///
/// The text is split at top-level `;` by the classifier's lexer (comments and literals cannot
/// hide or fake a separator); each statement is read as a [`Control`] or left to
/// [`classify`](crate::classify), and the runs of ordinary statements come back as slices of
/// the text. A statement that starts like transaction control but is not understood is
/// [`Control::Unknown`]; a text whose control statements the three lexings (PostgreSQL,
/// MySQL, SQLite rules) disagree on, or that cannot be lexed, is [`Walk::doubtful`].
///
/// ```
/// use querycache_sql::{Control, Step, transaction_walk};
///
/// assert_eq!(transaction_walk("UPDATE songs SET title = 'x' WHERE id = 1"), None);
/// let walk = transaction_walk("BEGIN; UPDATE songs SET title = 'x' WHERE id = 1").unwrap();
/// assert!(!walk.doubtful);
/// assert_eq!(
///     walk.steps,
///     vec![
///         Step::Control(Control::Begin),
///         Step::Statements(" UPDATE songs SET title = 'x' WHERE id = 1"),
///     ]
/// );
/// ```
pub fn transaction_walk(sql: &str) -> Option<Walk<'_>> {
    if !may_control(sql) {
        return None;
    }
    let primary = lexer::lex(sql, Dialect::Postgres);
    if !primary.complete {
        // An unterminated literal or comment may hide anything, a COMMIT included.
        return Some(Walk {
            steps: vec![Step::Statements(sql)],
            doubtful: true,
        });
    }
    let steps = steps(sql, &primary.tokens);
    let controls = |steps: &[Step<'_>]| -> Vec<Control> {
        steps
            .iter()
            .filter_map(|step| match step {
                Step::Control(control) => Some(control.clone()),
                Step::Statements(_) => None,
            })
            .collect()
    };
    let expected = controls(&steps);
    if expected.is_empty() {
        return None;
    }
    let doubtful = [Dialect::MySql, Dialect::Sqlite]
        .into_iter()
        .any(|dialect| {
            let alternate = lexer::lex(sql, dialect);
            let tokens = super::runnable_prefix(&alternate.tokens, alternate.complete);
            tokens != primary.tokens.as_slice() && controls(&self::steps(sql, tokens)) != expected
        });
    Some(Walk { steps, doubtful })
}

/// A cheap test that lets most statements skip the lexer: a single statement (no `;`)
/// whose first word is not a control word.
fn may_control(sql: &str) -> bool {
    let text = sql.trim_start();
    if text.contains(';') || !text.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return true;
    }
    let first = text
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default();
    CONTROL_WORDS.iter().any(|w| first.eq_ignore_ascii_case(w))
}

/// Splits `tokens` (a lexing of `sql`) at top-level `;` into steps.
fn steps<'a>(sql: &'a str, tokens: &[Token<'a>]) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    // The pending run of ordinary statements: byte range in `sql`.
    let mut run: Option<(usize, usize)> = None;
    let flush = |run: &mut Option<(usize, usize)>, steps: &mut Vec<Step<'a>>| {
        if let Some((from, to)) = run.take()
            && let Some(text) = sql.get(from..to)
        {
            steps.push(Step::Statements(text));
        }
    };
    let mut depth = 0usize;
    let mut start_tok = 0;
    let mut start_byte = 0;
    for (i, token) in tokens.iter().enumerate() {
        let end = i + 1 == tokens.len();
        let separator = token.kind == Kind::Punct && token.text == ";" && depth == 0;
        if token.kind == Kind::Punct {
            match token.text.as_ref() {
                "(" => depth += 1,
                ")" => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if !separator && !end {
            continue;
        }
        let (statement, end_byte) = if separator {
            (tokens.get(start_tok..i).unwrap_or(&[]), offset(sql, token))
        } else {
            (tokens.get(start_tok..).unwrap_or(&[]), sql.len())
        };
        if !statement.is_empty() {
            match control(statement) {
                Some(Control::ImplicitCommit) => {
                    // The commit, then the statement itself (it may write: TRUNCATE).
                    flush(&mut run, &mut steps);
                    steps.push(Step::Control(Control::ImplicitCommit));
                    run = Some((start_byte, end_byte));
                }
                Some(control) => {
                    flush(&mut run, &mut steps);
                    steps.push(Step::Control(control));
                }
                None => {
                    let from = run.map_or(start_byte, |(from, _)| from);
                    run = Some((from, end_byte));
                }
            }
        }
        start_tok = i + 1;
        start_byte = (end_byte + 1).min(sql.len());
    }
    flush(&mut run, &mut steps);
    steps
}

/// The byte offset of a token borrowed from `sql` (separators always are).
fn offset(sql: &str, token: &Token<'_>) -> usize {
    let at = (token.text.as_ptr() as usize).wrapping_sub(sql.as_ptr() as usize);
    at.min(sql.len())
}

/// The control a statement performs; `None` for any other statement.
fn control(tokens: &[Token<'_>]) -> Option<Control> {
    let words = Words(tokens);
    let first = words.word(0)?;
    let control = match first.as_str() {
        "BEGIN" | "START" => {
            if first == "START" && words.word(1).as_deref() != Some("TRANSACTION") {
                // `START SLAVE`, `START REPLICA`...
                return implicitly_commits(&words).then_some(Control::ImplicitCommit);
            }
            if transaction_modes(tokens) {
                Control::Begin
            } else {
                Control::Unknown
            }
        }
        "COMMIT" | "END" => {
            if first == "COMMIT" && words.word(1).as_deref() == Some("PREPARED") {
                Control::CommitPrepared
            } else {
                match words.chain(1) {
                    Some(chain) => Control::Commit { chain },
                    None => Control::Unknown,
                }
            }
        }
        "ROLLBACK" | "ABORT" => {
            let mut at = 1;
            if matches!(words.word(at).as_deref(), Some("WORK" | "TRANSACTION")) {
                at += 1;
            }
            if first == "ROLLBACK" && words.word(1).as_deref() == Some("PREPARED") {
                Control::Neutral
            } else if first == "ROLLBACK" && words.word(at).as_deref() == Some("TO") {
                at += 1;
                if words.word(at).as_deref() == Some("SAVEPOINT") {
                    at += 1;
                }
                words
                    .last_name(at)
                    .map_or(Control::Unknown, Control::RollbackTo)
            } else {
                match words.chain(1) {
                    Some(chain) => Control::Rollback { chain },
                    None => Control::Unknown,
                }
            }
        }
        "SAVEPOINT" => words
            .last_name(1)
            .map_or(Control::Unknown, Control::Savepoint),
        "RELEASE" => {
            let at = if words.word(1).as_deref() == Some("SAVEPOINT") {
                2
            } else {
                1
            };
            words
                .last_name(at)
                .map_or(Control::Unknown, Control::Release)
        }
        "PREPARE" => match words.word(1).as_deref() {
            Some("TRANSACTION") => Control::Prepare,
            _ => return None,
        },
        "XA" => match words.word(1).as_deref() {
            Some("START" | "BEGIN") => Control::Begin,
            Some("END" | "RECOVER") => Control::Neutral,
            Some("PREPARE") => Control::Prepare,
            Some("ROLLBACK") => Control::Rollback { chain: false },
            Some("COMMIT") => {
                let n = tokens.len();
                if n >= 2 && words.word(n - 2).as_deref() == Some("ONE") {
                    Control::Commit { chain: false }
                } else {
                    Control::CommitPrepared
                }
            }
            _ => Control::Unknown,
        },
        "SET" if words.word(1).as_deref() == Some("PASSWORD") => Control::ImplicitCommit,
        "SET" => return autocommit(tokens),
        _ if implicitly_commits(&words) => Control::ImplicitCommit,
        _ => return None,
    };
    Some(control)
}

/// Whether MySQL commits the open transaction before running the statement of `words` (see
/// [`Control::ImplicitCommit`]; `BEGIN`, `START TRANSACTION` and `SET autocommit = 1` are
/// placed as what they are). Broad where the manual is narrow (`UNLOCK TABLES` commits only
/// with tables locked, `LOAD DATA` only on NDB): a commit assumed in vain costs only an
/// extra invalidation.
fn implicitly_commits(words: &Words<'_, '_>) -> bool {
    let Some(first) = words.word(0) else {
        return false;
    };
    let second = words.word(1);
    match first.as_str() {
        "CREATE" | "DROP" => {
            // `CREATE [OR REPLACE] TEMPORARY TABLE`, `DROP TEMPORARY TABLE`.
            !(1..4).any(|i| matches!(words.word(i).as_deref(), Some("TEMPORARY" | "TEMP")))
        }
        "ALTER" | "RENAME" | "TRUNCATE" | "LOCK" | "UNLOCK" | "GRANT" | "REVOKE" | "ANALYZE"
        | "OPTIMIZE" | "REPAIR" | "FLUSH" | "RESET" | "INSTALL" | "UNINSTALL" | "CHANGE" => true,
        "CHECK" | "CACHE" => matches!(second.as_deref(), Some("TABLE" | "TABLES" | "INDEX")),
        "LOAD" => second.as_deref() == Some("INDEX"),
        "START" | "STOP" => matches!(
            second.as_deref(),
            Some("SLAVE" | "REPLICA" | "ALL" | "GROUP_REPLICATION")
        ),
        _ => false,
    }
}

/// Whether a `BEGIN` / `START TRANSACTION` carries transaction modes only (the classifier's
/// own test: anything else may be a compound block).
fn transaction_modes(tokens: &[Token<'_>]) -> bool {
    let no_param = |_: usize| None;
    let primary_key = |_: &super::TableName| Vec::new();
    let env = Env {
        param: &no_param,
        pk: &primary_key,
    };
    let close = vec![0; tokens.len()];
    let parser = Parser {
        toks: tokens,
        close: &close,
        env: &env,
        lenient: false,
    };
    let mut acc = Acc::default();
    parser.begin(0, tokens.len(), &mut acc);
    !acc.unknown
}

/// `SET [GLOBAL | SESSION | LOCAL | @@[scope.]]autocommit {= | TO} value`: `None` when the
/// statement does not name `autocommit`, `Unknown` when it does in another shape.
fn autocommit(tokens: &[Token<'_>]) -> Option<Control> {
    let words = Words(tokens);
    let named = (0..tokens.len()).any(|i| words.word(i).as_deref() == Some("AUTOCOMMIT"));
    if !named {
        return None;
    }
    // Skip the scope: words and `@@`, `.` before the name.
    let mut at = 1;
    while at < tokens.len() && words.word(at).as_deref() != Some("AUTOCOMMIT") {
        let scope = matches!(
            words.word(at).as_deref(),
            Some("SESSION" | "LOCAL" | "GLOBAL")
        ) || tokens
            .get(at)
            .is_some_and(|t| matches!(t.kind, Kind::Op | Kind::Punct) && t.text != ",");
        if !scope {
            return Some(Control::Unknown);
        }
        at += 1;
    }
    let assign = tokens.get(at + 1).is_some_and(|t| {
        (t.kind == Kind::Op && t.text == "=") || t.text.eq_ignore_ascii_case("TO")
    });
    let value = tokens.get(at + 2).filter(|_| tokens.len() == at + 3);
    let on = match value.map(|t| t.text.to_ascii_uppercase()).as_deref() {
        Some("1" | "ON" | "TRUE") => true,
        Some("0" | "OFF" | "FALSE") => false,
        _ => return Some(Control::Unknown),
    };
    Some(if assign {
        Control::Autocommit(on)
    } else {
        Control::Unknown
    })
}

/// Word access over one statement's tokens.
struct Words<'t, 'a>(&'t [Token<'a>]);

impl Words<'_, '_> {
    /// The `i`-th token, upper-cased, if it is an unquoted word.
    fn word(&self, i: usize) -> Option<String> {
        self.0
            .get(i)
            .filter(|t| t.kind == Kind::Word)
            .map(|t| t.text.to_ascii_uppercase())
    }

    /// After `COMMIT` / `ROLLBACK` at 0, from `at`: `[WORK | TRANSACTION] [AND [NO] CHAIN]`
    /// and nothing else. `Some(chain)`, or `None` for another shape.
    fn chain(&self, at: usize) -> Option<bool> {
        let mut at = at;
        if matches!(self.word(at).as_deref(), Some("WORK" | "TRANSACTION")) {
            at += 1;
        }
        let rest: Vec<String> = (at..self.0.len())
            .map(|i| self.word(i).unwrap_or_default())
            .collect();
        match rest
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] | ["AND", "NO", "CHAIN"] => Some(false),
            ["AND", "CHAIN"] => Some(true),
            _ => None,
        }
    }

    /// The one name that ends the statement at `at` (a word or a quoted name), ASCII
    /// lower-cased; `None` when something else follows or it is missing.
    fn last_name(&self, at: usize) -> Option<String> {
        let token = self.0.get(at)?;
        (self.0.len() == at + 1 && matches!(token.kind, Kind::Word | Kind::Quoted))
            .then(|| token.text.to_ascii_lowercase())
    }
}
