//! Procedural macros for `ctx-runtime`. Use them through `ctx_runtime::cancellable`.
#![deny(missing_docs)]

use proc_macro::TokenStream;

/// Placeholder while the real attribute is written (issue 4): returns the item unchanged.
#[proc_macro_attribute]
pub fn cancellable(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
