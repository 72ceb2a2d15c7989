//! Placeholder until the real macros land.
use proc_macro::TokenStream;
#[proc_macro_attribute]
pub fn cached_query(_a: TokenStream, i: TokenStream) -> TokenStream {
    i
}
#[proc_macro_attribute]
pub fn cache_model_query(_a: TokenStream, i: TokenStream) -> TokenStream {
    i
}
#[proc_macro_attribute]
pub fn cache_count_query(_a: TokenStream, i: TokenStream) -> TokenStream {
    i
}
#[proc_macro_attribute]
pub fn cache_skip(_a: TokenStream, i: TokenStream) -> TokenStream {
    i
}
