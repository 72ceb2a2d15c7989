//! The logical feed's publication: which tables it follows.
//!
//! A publication `FOR ALL TABLES` would follow every table, new ones included, but it has a
//! side effect no cache may impose: PostgreSQL then refuses `UPDATE` and `DELETE` on every
//! table without a replica identity (no primary key), breaking the application's writes to
//! them. So the publication querycache creates (marked by a comment as managed) lists the
//! tables that have a replica identity, and the feed keeps it current while it runs: a
//! table created later (a migration) is added, and, since its rows written before it was
//! added never reached the stream, its tags are bumped once it is. Tables without a
//! replica identity are not followed: the feed says so, naming them, at start-up. A
//! publication the user created is used as it is, and the tables it leaves out are named.

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::Tag;
use crate::tags::table_key;

/// The comment that marks a publication querycache created and may extend.
const MANAGED: &str = "managed by querycache: tables are added as they are created";

/// User tables (and partitioned tables, not their partitions) with whether PostgreSQL can
/// publish their updates and deletes (a replica identity: a primary key, an identity
/// index, or `FULL`), and whether `publication` holds them.
const TABLES: &str = "
SELECT n.nspname AS schema, c.relname AS name,
       (c.relreplident = 'f'
        OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
        OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))
         AS identity,
       EXISTS (SELECT 1 FROM pg_publication_tables t
               WHERE t.pubname = $1 AND t.schemaname = n.nspname AND t.tablename = c.relname)
         AS published
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2";

/// One table as [`TABLES`] lists it.
struct Table {
    schema: String,
    name: String,
    identity: bool,
    published: bool,
}

impl Table {
    fn quoted(&self) -> String {
        format!(
            "\"{}\".\"{}\"",
            self.schema.replace('"', "\"\""),
            self.name.replace('"', "\"\"")
        )
    }

    fn label(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

async fn tables(conn: &mut PgConnection, publication: &str) -> Result<Vec<Table>, sqlx::Error> {
    let rows = sqlx::query(TABLES)
        .bind(publication)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Table {
                schema: row.try_get("schema")?,
                name: row.try_get("name")?,
                identity: row.try_get("identity")?,
                published: row.try_get("published")?,
            })
        })
        .collect()
}

/// What [`ensure`] found.
pub(crate) struct Publication {
    /// Whether querycache manages it (and so extends it with new tables).
    pub(crate) managed: bool,
}

/// Makes sure `publication` exists: creates it over the tables with a replica identity
/// (marked as managed) when it does not; names the tables it does not follow.
pub(crate) async fn ensure(url: &str, publication: &str) -> Result<Publication, String> {
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(|e| format!("cannot connect to manage the publication: {e}"))?;
    let exists: Option<Option<String>> = sqlx::query_scalar(
        "SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = $1",
    )
    .bind(publication)
    .fetch_optional(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    let listed = tables(&mut conn, publication)
        .await
        .map_err(|e| e.to_string())?;
    let managed = match exists {
        Some(comment) => comment.as_deref() == Some(MANAGED),
        None => {
            let followed: Vec<String> = listed
                .iter()
                .filter(|t| t.identity)
                .map(Table::quoted)
                .collect();
            let over = if followed.is_empty() {
                String::new()
            } else {
                format!(" FOR TABLE {}", followed.join(", "))
            };
            let quoted = publication.replace('"', "\"\"");
            let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
            for sql in [
                format!(
                    "CREATE PUBLICATION \"{quoted}\"{over} WITH (publish_via_partition_root = true)"
                ),
                format!("COMMENT ON PUBLICATION \"{quoted}\" IS '{MANAGED}'"),
            ] {
                sqlx::query(AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        format!(
                            "publication {publication:?} does not exist and could not be created \
                             ({e}); create it as the tables' owner: CREATE PUBLICATION {publication} \
                             FOR TABLE ... (the tables to follow)"
                        )
                    })?;
            }
            tx.commit().await.map_err(|e| e.to_string())?;
            tracing::info!(
                publication,
                tables = followed.len(),
                "change feed: publication created over the tables with a primary key"
            );
            true
        }
    };
    let unfollowed: Vec<String> = tables(&mut conn, publication)
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .filter(|t| !t.published)
        .map(Table::label)
        .collect();
    if !unfollowed.is_empty() {
        tracing::warn!(
            publication,
            tables = ?unfollowed,
            "change feed: writes from outside the application to these tables are not seen \
             (no primary key or replica identity, or not in the publication): give them a \
             primary key, or add them to the publication"
        );
    }
    let _ = conn.close().await;
    Ok(Publication { managed })
}

/// Adds to a managed `publication` the tables with a replica identity created since it
/// was last looked at: the tags of each table added, which the caller bumps (its writes
/// before it joined the publication never reached the stream).
pub(crate) async fn extend(conn: &mut PgConnection, publication: &str) -> Result<Vec<Tag>, String> {
    let new: Vec<Table> = tables(conn, publication)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|t| t.identity && !t.published)
        .collect();
    let mut tags = Vec::new();
    let quoted = publication.replace('"', "\"\"");
    for table in new {
        let added = sqlx::query(AssertSqlSafe(format!(
            "ALTER PUBLICATION \"{quoted}\" ADD TABLE {}",
            table.quoted()
        )))
        .execute(&mut *conn)
        .await;
        match added {
            Ok(_) => {
                tracing::info!(publication, table = %table.label(), "change feed: new table followed");
                tags.extend(Tag::table_write(&table_key(
                    Some(&table.schema),
                    &table.name,
                )));
            }
            // Another process added it first.
            Err(e) if e.to_string().contains("already member") => {
                tags.extend(Tag::table_write(&table_key(
                    Some(&table.schema),
                    &table.name,
                )));
            }
            Err(e) => {
                return Err(format!(
                    "cannot add {} to the publication: {e}",
                    table.label()
                ));
            }
        }
    }
    Ok(tags)
}
