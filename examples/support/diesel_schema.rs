//! The Diesel schema of the example apps and the test suite: the `users` and `songs`
//! tables of `migrations/` (columns with defaults that Diesel code never sets are left out,
//! so one schema serves SQLite, PostgreSQL and MySQL).

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
        email -> Text,
    }
}

diesel::table! {
    songs (id) {
        id -> Integer,
        title -> Text,
        artist -> Text,
        author_id -> Integer,
        content -> Text,
        archived -> Bool,
    }
}

diesel::joinable!(songs -> users (author_id));
diesel::allow_tables_to_appear_in_same_query!(users, songs);

/// The migrations for the backend of `url` (`postgres://...`, `mysql://...` or a SQLite
/// path).
pub fn migrations(url: &str) -> &'static [(&'static str, &'static str)] {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        &[(
            "0001_users_songs.sql",
            include_str!("../../migrations/postgres/0001_users_songs.sql"),
        )]
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        &[(
            "0001_users_songs.sql",
            include_str!("../../migrations/mysql/0001_users_songs.sql"),
        )]
    } else {
        &[(
            "0001_users_songs.sql",
            include_str!("../../migrations/sqlite/0001_users_songs.sql"),
        )]
    }
}
