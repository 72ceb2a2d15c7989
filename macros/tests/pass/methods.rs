//! Methods: every receiver, `cache = ..` from the receiver, trait impls.
#![deny(warnings)]

use std::sync::Arc;

use crate::entities::song;
use querycache::{Cache, cache_count_query, cache_model_query, cached_query};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, PaginatorTrait};

struct Repo {
    db: DatabaseConnection,
    cache: Cache,
    shared: Arc<Cache>,
}

impl Repo {
    #[cached_query(cache = self.cache, models = [song::Entity], row = id)]
    pub async fn song(&self, id: i32) -> Result<Option<song::Model>, DbErr> {
        song::Entity::find_by_id(id).one(&self.db).await
    }

    #[cache_count_query(song::Entity, cache = &self.cache)]
    pub(crate) async fn count(&self) -> Result<u64, DbErr> {
        song::Entity::find().count(&self.db).await
    }

    #[cache_model_query(song::Entity, cache = self.shared)]
    async fn all_mut(&mut self, limit: u64) -> Result<Vec<song::Model>, DbErr> {
        let _ = limit;
        song::Entity::find().all(&self.db).await
    }

    #[cached_query(cache = self.shared.clone())]
    async fn consume(self, n: u32) -> u32 {
        let Repo { db, .. } = self;
        let _moved = db;
        n
    }

    #[cached_query(cache = self.cache)]
    async fn arc_receiver(self: Arc<Self>, n: u32) -> u32 {
        n
    }

    #[cached_query(ttl = 60)]
    async fn associated(db: &DatabaseConnection, n: u32) -> u32 {
        let _ = db;
        n
    }

    #[cached_query(ttl = 60)]
    async fn returns_self_type(n: u32) -> Vec<u32> {
        vec![n]
    }
}

trait Songs {
    async fn title(&self, id: i32) -> Option<String>;
}

impl Songs for Repo {
    #[cached_query(cache = self.cache, models = [song::Entity], row = id)]
    async fn title(&self, id: i32) -> Option<String> {
        song::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .ok()
            .flatten()
            .map(|s| s.title)
    }
}

struct Generic<T>(T, Cache);

impl<T: Send + Sync> Generic<T> {
    #[cached_query(cache = self.1)]
    async fn get(&self, n: u32) -> u32 {
        let _ = &self.0;
        n
    }
}

pub(crate) fn main() {
    let _ = (
        Repo::song,
        Repo::count,
        Repo::all_mut,
        Repo::consume,
        Repo::arc_receiver,
    );
    let _ = (
        Repo::associated,
        Repo::returns_self_type,
        <Repo as Songs>::title,
    );
    let _ = Generic::<u8>::get;
}
