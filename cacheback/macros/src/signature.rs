//! Signature analysis: what a `#[cacheback]` function takes and returns,
//! refusing what cannot be cached with a message that says why.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type, Visibility};

/// An argument of the cached function.
pub(crate) struct Argument {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
}

/// What the generated code needs to know of the function.
pub(crate) struct Signature {
    /// A leading `&Context` argument: its name and `Context`.
    pub(crate) context: Option<(Ident, Type)>,
    /// The other arguments: the cache key and the refresh payload.
    pub(crate) arguments: Vec<Argument>,
    /// The cached value (`T` of `Result<T, E>`, or the return type).
    pub(crate) output: Type,
    /// `E` of `Result<T, E>`, or `Infallible`.
    pub(crate) error: Type,
    /// Whether the function returns a `Result`.
    pub(crate) fallible: bool,
    /// The visibility of the generated module's items.
    pub(crate) inner_vis: TokenStream2,
}

/// Checks the signature of a `#[cacheback]` function and splits it into
/// what the generated code needs.
pub(crate) fn analyze(function: &ItemFn) -> syn::Result<Signature> {
    let sig = &function.sig;
    check_form(sig)?;
    // A leading `&Context` argument; the others are keyed and queued, so owned.
    let context = context_argument(sig.inputs.first())?;
    let arguments = sig
        .inputs
        .iter()
        .skip(usize::from(context.is_some()))
        .map(owned_argument)
        .collect::<syn::Result<Vec<_>>>()?;
    let (output, error, fallible) = output_parts(&sig.output)?;
    let inner_vis = inner_visibility(&function.vis)?;
    Ok(Signature { context, arguments, output, error, fallible, inner_vis })
}

/// The function must be an `async fn`, neither generic nor variadic.
fn check_form(sig: &syn::Signature) -> syn::Result<()> {
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "#[cacheback] caches an `async fn`: its refreshes run in the background",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(&sig.generics, "#[cacheback] functions cannot be generic"));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(variadic, "#[cacheback] functions cannot be variadic"));
    }
    Ok(())
}

/// The context, if the first argument is a reference: its name and the
/// referenced type. It must be a shared reference without a lifetime.
fn context_argument(first: Option<&FnArg>) -> syn::Result<Option<(Ident, Type)>> {
    let Some(FnArg::Typed(first)) = first else { return Ok(None) };
    let Type::Reference(reference) = &*first.ty else { return Ok(None) };
    if reference.mutability.is_some() {
        return Err(syn::Error::new_spanned(
            &first.ty,
            "the context argument of a #[cacheback] function must be a shared reference (`&T`)",
        ));
    }
    if reference.lifetime.is_some() {
        return Err(syn::Error::new_spanned(
            &first.ty,
            "the context argument of a #[cacheback] function cannot name a lifetime",
        ));
    }
    Ok(Some((pattern_ident(&first.pat)?, (*reference.elem).clone())))
}

/// A cached argument (after the context): a plain name and an owned type,
/// never a `self` receiver.
fn owned_argument(input: &FnArg) -> syn::Result<Argument> {
    match input {
        FnArg::Receiver(receiver) => Err(syn::Error::new_spanned(
            receiver,
            "#[cacheback] cannot cache a method (`self` receiver): use a free `async fn`, with the receiver's state as a context or an argument",
        )),
        FnArg::Typed(typed) => {
            let ident = pattern_ident(&typed.pat)?;
            if let Type::Reference(_) = &*typed.ty {
                return Err(syn::Error::new_spanned(
                    &typed.ty,
                    format!(
                        "argument `{ident}` of a #[cacheback] function is a reference: cached arguments must be owned \
                         (they are keyed and sent to workers); only a leading context argument may be `&T`"
                    ),
                ));
            }
            Ok(Argument { ident, ty: (*typed.ty).clone() })
        }
    }
}

/// The cached value, the error and whether the function is fallible: `T`
/// and `E` of `Result<T, E>`, or the return type and `Infallible`. A
/// one-argument `Result<T>` alias is refused, its error type being unknown.
fn output_parts(output: &ReturnType) -> syn::Result<(Type, Type, bool)> {
    let ty = match output {
        ReturnType::Default => {
            return Ok((syn::parse_quote!(()), syn::parse_quote!(::std::convert::Infallible), false));
        }
        ReturnType::Type(_, ty) => ty,
    };
    if let Some(message) = result_alias(ty) {
        return Err(syn::Error::new_spanned(ty, message));
    }
    Ok(match result_parts(ty) {
        Some((ok, err)) => (ok, err, true),
        None => ((**ty).clone(), syn::parse_quote!(::std::convert::Infallible), false),
    })
}

/// The visibility of the generated module's items, for the function's own:
/// private functions' items are `pub(super)`, to be seen beside the function.
fn inner_visibility(vis: &Visibility) -> syn::Result<TokenStream2> {
    match vis {
        Visibility::Inherited => Ok(quote! { pub(super) }),
        Visibility::Public(_) => Ok(quote! { pub }),
        Visibility::Restricted(r) if r.path.is_ident("crate") => Ok(quote! { #vis }),
        other => {
            Err(syn::Error::new_spanned(other, "#[cacheback] functions are private, `pub(crate)` or `pub`"))
        }
    }
}

fn pattern_ident(pat: &Pat) -> syn::Result<Ident> {
    match pat {
        Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => Ok(ident.ident.clone()),
        other => Err(syn::Error::new_spanned(other, "#[cacheback] function arguments must be plain names")),
    }
}

/// What to write instead of a one-argument `Result<T>` alias (`loco_rs::Result<T>`,
/// `anyhow::Result<T>`): the error type must be in the signature, for the
/// function to get its own error back and for `?` in its callers.
fn result_alias(ty: &Type) -> Option<String> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let (Some(ok), None) = (types.next(), types.next()) else { return None };
    let ok = quote! { #ok }.to_string();
    let segments = &path.path.segments;
    let error = if segments.len() > 1 {
        let prefix: Vec<String> =
            segments.iter().take(segments.len() - 1).map(|s| s.ident.to_string()).collect();
        format!("{}::Error", prefix.join("::"))
    } else {
        "E".to_owned()
    };
    Some(format!(
        "#[cacheback] reads the error type from the signature: write the `Result` alias out in full, \
         `Result<{ok}, {error}>`"
    ))
}

/// `Result<T, E>` (any path ending in `Result` with two type arguments).
fn result_parts(ty: &Type) -> Option<(Type, Type)> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    });
    let ok = types.next()?;
    let err = types.next()?;
    Some((ok, err))
}
