//! TEMPORARY STUB (replaced by the real classifier).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TableName {
    pub(crate) schema: Option<String>,
    pub(crate) name: String,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rows {
    Ids(Vec<String>),
    Unknown,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableWrite {
    pub(crate) table: TableName,
    pub(crate) rows: Rows,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    Read,
    Writes(Vec<TableWrite>),
    Unknown,
}
pub(crate) fn classify(
    _sql: &str,
    _param: &dyn Fn(usize) -> Option<String>,
    _pk: &dyn Fn(&TableName) -> String,
) -> Effect {
    Effect::Unknown
}
