//! Key arguments, connections and #[cache_skip].
#![deny(warnings)]

use crate::entities::song;
use querycache::cached_query;
use querycache::orm::sea_orm::{CachedConnection, CachedTransaction};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbConn, DbErr, EntityTrait,
    TransactionTrait,
};

/// Not serializable: fine as long as it is skipped.
struct RequestContext {
    id: u64,
}

#[cached_query(models = [song::Entity])]
async fn generic<C: ConnectionTrait>(db: &C, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

#[cached_query(models = [song::Entity])]
async fn generic_where<C>(db: &C, id: i32) -> Result<Option<song::Model>, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    song::Entity::find_by_id(id).one(db).await
}

#[cached_query(models = [song::Entity])]
async fn generic_by_value<C: sea_orm::ConnectionTrait + Send>(
    db: C,
    id: i32,
) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(&db).await
}

#[cached_query(models = [song::Entity])]
async fn impl_trait(db: &impl ConnectionTrait, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

#[cached_query(models = [song::Entity])]
async fn database_connection(
    db: &DatabaseConnection,
    id: i32,
) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

#[cached_query(models = [song::Entity])]
async fn db_conn(db: &DbConn, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

#[cached_query(models = [song::Entity])]
async fn database_transaction(
    tx: &DatabaseTransaction,
    id: i32,
) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(tx).await
}

#[cached_query(models = [song::Entity], row = id)]
async fn cached_connection(db: &CachedConnection, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(db).await
}

#[cached_query(models = [song::Entity])]
async fn cached_transaction(tx: &CachedTransaction, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(tx).await
}

#[cached_query(models = [song::Entity])]
async fn owned_connection(db: DatabaseConnection, id: i32) -> Result<Option<song::Model>, DbErr> {
    song::Entity::find_by_id(id).one(&db).await
}

/// Two connections, several key arguments of several types, skipped arguments.
#[cached_query(ttl = 60, tags = ["ctx:{context}"])]
#[allow(clippy::too_many_arguments)]
async fn many(
    db: &DatabaseConnection,
    title: &str,
    mut limit: u64,
    #[cache_skip] context: u64,
    filters: Vec<(String, i64)>,
    other: &impl ConnectionTrait,
    #[querycache::cache_skip] request: &RequestContext,
    _: u8,
    maybe: Option<bool>,
) -> Vec<String> {
    limit += 1;
    let _ = (db, other, maybe);
    vec![format!(
        "{title}{limit}{context}{}{}",
        filters.len(),
        request.id
    )]
}

/// A destructured argument is fine when skipped.
#[cached_query]
async fn skipped_pattern(id: i32, #[cache_skip] (a, b): (u8, u8)) -> i32 {
    id + i32::from(a) + i32::from(b)
}

/// Generic key arguments.
#[cached_query]
async fn generic_key<T>(value: T) -> String
where
    T: serde::Serialize + std::fmt::Display + Send,
{
    value.to_string()
}

/// Calls the functions whose connection type is inferred from the argument.
async fn call_inferred(db: &DatabaseConnection, context: &RequestContext) {
    let _ = impl_trait(db, 1).await;
    let _ = many(db, "t", 1, 2, vec![], db, context, 0, None).await;
}

pub(crate) fn main() {
    let _ = generic::<DatabaseConnection>;
    let _ = generic_where::<DatabaseConnection>;
    let _ = generic_by_value::<DatabaseConnection>;
    let _ = (
        database_connection,
        db_conn,
        database_transaction,
        cached_connection,
    );
    let _ = (
        cached_transaction,
        owned_connection,
        skipped_pattern,
        generic_key::<u8>,
    );
    let _ = call_inferred;
}
