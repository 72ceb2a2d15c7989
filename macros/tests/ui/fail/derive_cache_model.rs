use querycache::CacheModel;

#[derive(CacheModel)]
struct NoTable;

#[derive(CacheModel)]
#[cache_model(table = "songs", colour = "blue")]
struct UnknownOption;

#[derive(CacheModel)]
#[cache_model(schema = "app")]
struct SchemaOnly;

fn main() {}
