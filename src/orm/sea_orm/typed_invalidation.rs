//! Typed invalidation: `db.invalidate_model::<song::Entity>()` and
//! `db.invalidate_row::<song::Entity>(7)` bump exactly what a write through the connection
//! to that table or row bumps — the statement such a write would send (a `DELETE`, and an
//! `UPDATE` for the `ON UPDATE` actions of foreign keys) is built and classified as the
//! connection classifies what it runs, but not sent. So the table's name and schema, its
//! primary key as the database's catalog gives it (composite ones too), the views over it,
//! the tables its foreign keys' actions write, and the connection's database namespace are
//! all taken into account, by the code that does so for writes.

use sea_orm::sea_query::{Condition, Expr, IntoValueTuple};
use sea_orm::{
    ColumnTrait, EntityTrait, Iden, Iterable, PrimaryKeyToColumn, PrimaryKeyTrait, QueryFilter,
    QueryTrait, Statement,
};

use super::CachedConnection;
use super::statement::StatementText;
use crate::Tag;

/// The primary key value of `E`'s rows.
type PrimaryKeyOf<E> = <<E as EntityTrait>::PrimaryKey as PrimaryKeyTrait>::ValueType;

impl CachedConnection {
    /// Invalidates what a write to unknown rows of `E`'s table invalidates (an
    /// `update_many` without a filter): every cached read of the table, by-id reads
    /// included, and what the write reaches beyond it (views, cascades). For writes the
    /// connection cannot see (another process, a trigger). Returns what
    /// [`Cache::invalidate_tags`](crate::Cache::invalidate_tags) returns.
    ///
    /// ```
    /// # mod song {
    /// #     use sea_orm::entity::prelude::*;
    /// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
    /// #     #[sea_orm(table_name = "songs")]
    /// #     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub title: String }
    /// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    /// #     pub enum Relation {}
    /// #     impl ActiveModelBehavior for ActiveModel {}
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sea_orm::DbErr> {
    /// use querycache::{Cache, orm::sea_orm::{CacheQueryExt, CachedConnection}};
    /// use sea_orm::{ConnectionTrait, EntityTrait};
    ///
    /// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, Cache::new());
    /// db.execute_unprepared("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT NOT NULL)").await?;
    /// song::Entity::find().cached(&db).all().await?;
    /// song::Entity::find().cached(&db).all().await?;
    /// db.invalidate_model::<song::Entity>().await;
    /// song::Entity::find().cached(&db).all().await?;
    /// assert_eq!(db.cache().stats().misses, 2, "computed again after the invalidation");
    /// # Ok(()) }
    /// ```
    pub async fn invalidate_model<E: EntityTrait>(&self) -> usize {
        self.invalidate_written_by(written_by::<E>(self, Condition::all()))
            .await
    }

    /// Invalidates what a write to the row of `E`'s table with primary key `id` invalidates:
    /// the cached reads of the table as a whole and those that read that row (a
    /// `find_by_id(id)`), not by-id reads of other rows; and what the write reaches beyond
    /// the table (views, cascades). A composite key is given as its tuple. Returns what
    /// [`Cache::invalidate_tags`](crate::Cache::invalidate_tags) returns.
    ///
    /// ```
    /// # mod song {
    /// #     use sea_orm::entity::prelude::*;
    /// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
    /// #     #[sea_orm(table_name = "songs")]
    /// #     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub title: String }
    /// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    /// #     pub enum Relation {}
    /// #     impl ActiveModelBehavior for ActiveModel {}
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sea_orm::DbErr> {
    /// use querycache::{Cache, orm::sea_orm::{CacheQueryExt, CachedConnection}};
    /// use sea_orm::{ConnectionTrait, EntityTrait};
    ///
    /// let db = CachedConnection::new(sea_orm::Database::connect("sqlite::memory:").await?, Cache::new());
    /// db.execute_unprepared("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT NOT NULL)").await?;
    /// for id in [7, 8] {
    ///     song::Entity::find_by_id(id).cached(&db).one().await?;
    /// }
    /// db.invalidate_row::<song::Entity>(8).await;
    /// song::Entity::find_by_id(7).cached(&db).one().await?;
    /// song::Entity::find_by_id(8).cached(&db).one().await?;
    /// let stats = db.cache().stats();
    /// assert_eq!((stats.hits, stats.misses), (1, 3), "song 7 stayed, song 8 was computed again");
    /// # Ok(()) }
    /// ```
    pub async fn invalidate_row<E: EntityTrait>(&self, id: impl Into<PrimaryKeyOf<E>>) -> usize {
        let mut row = Condition::all();
        for (key, value) in E::PrimaryKey::iter().zip(id.into().into_value_tuple()) {
            row = row.add(key.into_column().eq(value));
        }
        self.invalidate_written_by(written_by::<E>(self, row)).await
    }

    /// Invalidates, in this connection's database, what `statements` would write if sent.
    async fn invalidate_written_by(&self, statements: Vec<Statement>) -> usize {
        self.learn_keys().await;
        let keys = &self.database.catalog;
        let mut tags: Vec<Tag> = statements
            .iter()
            .flat_map(|stmt| {
                // A write is never read as a read; were it, fail safe.
                StatementText::of(stmt, keys)
                    .written_tags()
                    .unwrap_or_else(|| vec![Tag::all_models()])
            })
            .collect();
        tags.sort();
        tags.dedup();
        let namespace = self.settle().namespace().await;
        self.cache
            .invalidate_written_in(namespace.as_ref(), tags)
            .await
    }
}

/// The statements of a write to the rows of `E` that `rows` selects: a `DELETE`, and an
/// `UPDATE` of a column that is not part of the key (when there is one), so that the
/// foreign key actions of both kinds are reached.
fn written_by<E: EntityTrait>(db: &CachedConnection, rows: Condition) -> Vec<Statement> {
    let backend = sea_orm::ConnectionTrait::get_database_backend(db);
    let mut statements = vec![QueryTrait::build(
        &E::delete_many().filter(rows.clone()),
        backend,
    )];
    let key: Vec<String> = E::PrimaryKey::iter()
        .map(|key| key.into_column().to_string())
        .collect();
    if let Some(column) = E::Column::iter().find(|c| !key.contains(&c.to_string())) {
        let update = E::update_many()
            .col_expr(column, Expr::col(column))
            .filter(rows);
        statements.push(QueryTrait::build(&update, backend));
    }
    statements
}
