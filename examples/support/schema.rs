//! The `users`/`songs` schema (from `migrations/`) and its SeaORM entities, shared by the
//! examples and the test suite.

use sea_orm::{ConnectionTrait, DbBackend, DbErr};

/// The migrations of one SQL dialect, in order: `(file name, SQL)`.
pub fn migrations(backend: DbBackend) -> &'static [(&'static str, &'static str)] {
    match backend {
        DbBackend::Postgres => &[(
            "0001_users_songs.sql",
            include_str!("../../migrations/postgres/0001_users_songs.sql"),
        )],
        DbBackend::MySql => &[(
            "0001_users_songs.sql",
            include_str!("../../migrations/mysql/0001_users_songs.sql"),
        )],
        _ => &[(
            "0001_users_songs.sql",
            include_str!("../../migrations/sqlite/0001_users_songs.sql"),
        )],
    }
}

/// Applies every migration of the connection's dialect (they are idempotent), one statement
/// at a time (a MySQL connection runs one statement per query unless the client asked for
/// more when it connected).
pub async fn migrate(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    for (name, sql) in migrations(db.get_database_backend()) {
        for statement in sql.split(";\n").filter(|s| !s.trim().is_empty()) {
            db.execute_unprepared(statement)
                .await
                .map_err(|e| DbErr::Migration(format!("{name}: {e}")))?;
        }
    }
    Ok(())
}

pub mod user {
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
        pub email: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::song::Entity")]
        Song,
    }

    impl Related<super::song::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Song.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod song {
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "songs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub title: String,
        pub artist: String,
        pub author_id: i32,
        pub content: String,
        pub archived: bool,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::user::Entity",
            from = "Column::AuthorId",
            to = "super::user::Column::Id"
        )]
        User,
    }

    impl Related<super::user::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::User.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}
