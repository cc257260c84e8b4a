//! The `#[cacheback]` attribute, re-exported by the `cacheback` crate: see
//! its documentation there.

mod emit;
mod options;
mod signature;

use proc_macro::TokenStream;
use syn::ItemFn;

use crate::options::Options;

/// Caches an `async fn`: documented, with examples, where the `cacheback` crate re-exports it.
#[proc_macro_attribute]
pub fn cacheback(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = syn::parse_macro_input!(attr as Options);
    let function = syn::parse_macro_input!(item as ItemFn);
    signature::analyze(&function)
        .map(|signature| emit::emit(&options, &function, &signature))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
