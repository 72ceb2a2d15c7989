//! The audit of undeclared dependencies (`CACHE_AUDIT=warn`): a function that declares
//! `models` and reads a table it does not declare is found (named with the table and the
//! statement); one whose reads its declaration covers, or that declares nothing, is not; and
//! with the audit off nothing is found.

use querycache::config::Audit;
use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, cached_query};
use sea_orm::{DbErr, EntityTrait};

use super::DB;
use crate::support::{TestDb, song, user};

/// Declares the songs table, reads users too: the forgotten dependency.
#[cached_query(ttl = "1h", models = [song::Entity])]
async fn title_and_author(db: &CachedConnection, id: i32) -> Result<Option<String>, DbErr> {
    let found = song::Entity::find_by_id(id)
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    Ok(found.map(|(song, author)| {
        format!(
            "{} by {}",
            song.title,
            author.map(|a| a.name).unwrap_or_default()
        )
    }))
}

/// Declares what it reads.
#[cached_query(ttl = "1h", models = [song::Entity], row = id)]
async fn title(db: &CachedConnection, id: i32) -> Result<Option<String>, DbErr> {
    Ok(song::Entity::find_by_id(id).one(db).await?.map(|s| s.title))
}

/// Declares nothing: not audited.
#[cached_query(ttl = "1h")]
async fn card(db: &CachedConnection, id: i32) -> Result<Option<String>, DbErr> {
    title_and_author_uncached(db, id).await
}

async fn title_and_author_uncached(
    db: &CachedConnection,
    id: i32,
) -> Result<Option<String>, DbErr> {
    let found = song::Entity::find_by_id(id)
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    Ok(found.map(|(song, _)| song.title))
}

async fn fixture(audit: Audit) -> Option<(TestDb, i32)> {
    let cache = Cache::builder().audit(audit).build().unwrap();
    let t = TestDb::create(DB, cache).await?;
    let ann = t.user("ann").await;
    let song = t.song(&ann, "A").await;
    Some((t, song.id))
}

#[tokio::test]
async fn a_table_read_but_not_declared_is_found_once_naming_the_function_and_statement() {
    let Some((t, id)) = fixture(Audit::Warn).await else {
        return;
    };
    assert_eq!(title(&t.db, id).await.unwrap().as_deref(), Some("A"));
    assert_eq!(card(&t.db, id).await.unwrap().as_deref(), Some("A"));
    assert!(
        t.cache.audit_findings().is_empty(),
        "a covered declaration, or none at all, is silent: {:?}",
        t.cache.audit_findings()
    );

    assert_eq!(
        title_and_author(&t.db, id).await.unwrap().as_deref(),
        Some("A by ann")
    );
    let findings = t.cache.audit_findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let finding = &findings[0];
    assert!(
        finding.function.ends_with("::audit::title_and_author"),
        "{finding:?}"
    );
    assert_eq!(finding.table, "users");
    assert!(finding.statement.contains("users"), "{finding:?}");

    // Once per function and table: computing it again (another id) adds nothing.
    t.cache.clear().await;
    let _ = title_and_author(&t.db, id + 1000).await.unwrap();
    let _ = title_and_author(&t.db, id).await.unwrap();
    assert_eq!(t.cache.audit_findings().len(), 1);
}

#[tokio::test]
async fn with_the_audit_off_nothing_is_found() {
    let Some((t, id)) = fixture(Audit::Off).await else {
        return;
    };
    assert_eq!(
        title_and_author(&t.db, id).await.unwrap().as_deref(),
        Some("A by ann")
    );
    assert!(t.cache.audit_findings().is_empty());
}
