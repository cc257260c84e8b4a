//! The `#[cacheback]` attribute, re-exported by the `cacheback` crate: see
//! its documentation there.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericArgument, Ident, ItemFn, Lit, LitInt, Meta, Pat, PathArguments, ReturnType, Token,
    Type, Visibility,
};

/// Caches an `async fn`: documented, with examples, where the `cacheback` crate re-exports it.
#[proc_macro_attribute]
pub fn cacheback(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = syn::parse_macro_input!(attr as Options);
    let function = syn::parse_macro_input!(item as ItemFn);
    expand(options, function).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// The attribute's options.
#[derive(Default)]
struct Options {
    setters: Vec<TokenStream2>,
    fetch_on_miss: Option<bool>,
    job: Option<syn::Path>,
}

impl Parse for Options {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut options = Options::default();
        let mut task = Vec::new();
        let mut first = true;
        while !input.is_empty() {
            // `#[cacheback(5)]`: the lifetime, as the seed's `@cacheback(5)`.
            if first && input.peek(LitInt) {
                let lifetime: LitInt = input.parse()?;
                options.setters.push(seconds_setter("lifetime", &lifetime)?);
            } else {
                options.option(input.parse()?, &mut task)?;
            }
            first = false;
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        if !task.is_empty() {
            options
                .setters
                .push(quote! { .with_task_options(::cacheback::TaskOptions::default() #(#task)*) });
        }
        Ok(options)
    }
}

const KNOWN: &str = "lifetime, refresh_timeout, cache_ttl, fetch_on_stale_threshold, fetch_on_miss, \
                     cache_alias, job, queue, retry, set_data_kwarg, extra(..)";

impl Options {
    fn option(&mut self, meta: Meta, task: &mut Vec<TokenStream2>) -> syn::Result<()> {
        let name = meta.path().get_ident().map(Ident::to_string).unwrap_or_default();
        if let Meta::List(list) = &meta
            && name == "extra"
        {
            let entries =
                list.parse_args_with(Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated)?;
            for entry in entries {
                let key = entry
                    .path
                    .get_ident()
                    .ok_or_else(|| syn::Error::new_spanned(&entry.path, "expected a name"))?;
                let key = key.to_string();
                let value = literal(&entry.value)?;
                self.setters.push(quote! { .with_extra(#key, #value) });
            }
            return Ok(());
        }
        let Meta::NameValue(pair) = &meta else {
            return Err(syn::Error::new_spanned(
                &meta,
                format!("expected `name = value`; the options are: {KNOWN}"),
            ));
        };
        let value = &pair.value;
        match name.as_str() {
            "lifetime" | "refresh_timeout" | "cache_ttl" => {
                self.setters.push(seconds_setter(&name, &int(value)?)?);
            }
            "fetch_on_stale_threshold" => {
                let secs = int(value)?;
                self.setters
                    .push(quote! { .with_fetch_on_stale_threshold(::std::time::Duration::from_secs(#secs)) });
            }
            "fetch_on_miss" => {
                let fetch = boolean(value)?;
                self.fetch_on_miss = Some(fetch);
                self.setters.push(quote! { .with_fetch_on_miss(#fetch) });
            }
            "cache_alias" | "set_data_kwarg" => {
                let text = string(value)?;
                let setter = format_ident!("with_{}", name);
                self.setters.push(quote! { .#setter(#text) });
            }
            "queue" => {
                let queue = string(value)?;
                task.push(quote! { .queue(#queue) });
            }
            "retry" => task.push(match value {
                Expr::Lit(syn::ExprLit { lit: Lit::Bool(b), .. }) => {
                    quote! { .retry(::cacheback::Retry::Enabled(#b)) }
                }
                Expr::Lit(syn::ExprLit { lit: Lit::Int(n), .. }) => {
                    quote! { .retry(::cacheback::Retry::Count(#n)) }
                }
                other => {
                    return Err(syn::Error::new_spanned(other, "`retry` takes `true`, `false` or a count"));
                }
            }),
            "job" => match value {
                Expr::Path(path) => self.job = Some(path.path.clone()),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "`job` takes a type implementing `cacheback::function::Policy`",
                    ));
                }
            },
            _ => {
                return Err(syn::Error::new_spanned(
                    meta.path(),
                    format!("unknown #[cacheback] option `{name}`; the options are: {KNOWN}"),
                ));
            }
        }
        Ok(())
    }
}

fn seconds_setter(name: &str, secs: &LitInt) -> syn::Result<TokenStream2> {
    secs.base10_parse::<u64>()?;
    let setter = format_ident!("with_{}", name);
    Ok(quote! { .#setter(::std::time::Duration::from_secs(#secs)) })
}

fn int(value: &Expr) -> syn::Result<LitInt> {
    match value {
        Expr::Lit(syn::ExprLit { lit: Lit::Int(n), .. }) => Ok(n.clone()),
        other => Err(syn::Error::new_spanned(other, "expected a whole number of seconds")),
    }
}

fn boolean(value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(syn::ExprLit { lit: Lit::Bool(b), .. }) => Ok(b.value),
        other => Err(syn::Error::new_spanned(other, "expected `true` or `false`")),
    }
}

fn string(value: &Expr) -> syn::Result<syn::LitStr> {
    match value {
        Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Ok(s.clone()),
        other => Err(syn::Error::new_spanned(other, "expected a string")),
    }
}

fn literal(value: &Expr) -> syn::Result<TokenStream2> {
    match value {
        Expr::Lit(syn::ExprLit { lit: Lit::Str(_) | Lit::Int(_) | Lit::Bool(_) | Lit::Float(_), .. }) => {
            Ok(quote! { #value })
        }
        other => Err(syn::Error::new_spanned(other, "extra options take literals")),
    }
}

/// An argument of the cached function.
struct Argument {
    ident: Ident,
    ty: Type,
}

fn expand(options: Options, function: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &function.sig;
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

    // A leading `&Context` argument; the others are keyed and queued, so owned.
    let mut inputs = sig.inputs.iter().peekable();
    let mut context: Option<(Ident, Type)> = None;
    if let Some(FnArg::Typed(first)) = inputs.peek()
        && let Type::Reference(reference) = &*first.ty
    {
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
        context = Some((pattern_ident(&first.pat)?, (*reference.elem).clone()));
        inputs.next();
    }
    let mut arguments = Vec::new();
    for input in inputs {
        match input {
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new_spanned(
                    receiver,
                    "#[cacheback] cannot cache a method (`self` receiver): use a free `async fn`, with the receiver's state as a context or an argument",
                ));
            }
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
                arguments.push(Argument { ident, ty: (*typed.ty).clone() });
            }
        }
    }

    let (output, error, fallible) = match &sig.output {
        ReturnType::Default => (syn::parse_quote!(()), syn::parse_quote!(::std::convert::Infallible), false),
        ReturnType::Type(_, ty) => match result_parts(ty) {
            Some((ok, err)) => (ok, err, true),
            None => ((**ty).clone(), syn::parse_quote!(::std::convert::Infallible), false),
        },
    };

    let name = &sig.ident;
    let uncached = format_ident!("__cacheback_uncached_{}", name);
    let vis = &function.vis;
    let inner_vis: TokenStream2 = match vis {
        Visibility::Inherited => quote! { pub(super) },
        Visibility::Public(_) => quote! { pub },
        Visibility::Restricted(r) if r.path.is_ident("crate") => quote! { #vis },
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "#[cacheback] functions are private, `pub(crate)` or `pub`",
            ));
        }
    };

    let attrs = &function.attrs;
    let body = &function.block;
    let arg_idents: Vec<&Ident> = arguments.iter().map(|a| &a.ident).collect();
    let arg_types: Vec<&Type> = arguments.iter().map(|a| &a.ty).collect();
    let arg_names: Vec<String> = arguments.iter().map(|a| a.ident.to_string()).collect();
    let policy =
        options.job.clone().map_or_else(|| quote! { ::cacheback::function::Options }, |p| quote! { #p });
    let setters = &options.setters;
    let empty = if options.fetch_on_miss == Some(false) {
        quote! { ::core::option::Option::Some(::core::default::Default::default()) }
    } else {
        quote! { ::core::option::Option::None }
    };

    let (context_ty, context_arg, context_pass) = match &context {
        Some((ident, ty)) => (quote! { #ty }, quote! { #ident }, quote! { __context, }),
        None => (quote! { () }, quote! { &() }, quote! {}),
    };
    let ok_wrap = |call: TokenStream2| {
        if fallible {
            call
        } else {
            quote! { ::core::result::Result::Ok(#call) }
        }
    };
    let direct_call = ok_wrap(quote! { #uncached(#context_pass #(#arg_idents),*).await });
    let spec_call = ok_wrap(quote! { super::#uncached(#context_pass #(#arg_idents),*).await });
    let unwrap_result = if fallible {
        quote! { __result }
    } else {
        quote! { match __result { ::core::result::Result::Ok(value) => value, ::core::result::Result::Err(never) => match never {} } }
    };
    let ret = &sig.output;
    let unused_context = if context.is_none() {
        quote! { let _ = __context; }
    } else {
        quote! {}
    };

    // Each argument type must be a serde value, with the error on the argument.
    let argument_checks = arguments.iter().map(|a| {
        let ty = &a.ty;
        quote_spanned! { ty.span()=> ::cacheback::__private::assert_argument::<#ty>(); }
    });
    let output_check = quote_spanned! { output.span()=> ::cacheback::__private::assert_output::<#output>(); };

    let job_fn = match &context {
        Some((_, ty)) => quote! {
            /// This function's job on the global engine, with the whole job API.
            #inner_vis fn job(context: &#ty) -> ::core::result::Result<
                ::cacheback::JobHandle<::cacheback::function::DecoratedJob<'_, Spec>>, ::cacheback::Error> {
                ::cacheback::__private::handle::<Spec>(context)
            }
        },
        None => quote! {
            /// This function's job on the global engine, with the whole job API.
            #inner_vis fn job() -> ::core::result::Result<
                ::cacheback::JobHandle<::cacheback::function::DecoratedJob<'static, Spec>>, ::cacheback::Error> {
                ::cacheback::__private::handle::<Spec>(&())
            }
        },
    };
    let inputs = &sig.inputs;
    let span = Span::call_site();
    let name_doc = format!("The cache machinery of [`{name}`](fn@super::{name}).");

    Ok(quote_spanned! {span=>
        #[doc(hidden)]
        #[allow(clippy::too_many_arguments)]
        #vis async fn #uncached(#inputs) #ret #body

        #(#attrs)*
        #vis async fn #name(#inputs) #ret {
            let __result = ::cacheback::__private::call::<#name::Spec, _, _>(
                #context_arg,
                (#(#arg_idents,)*),
                |__context, (#(#arg_idents,)*)| async move {
                    #unused_context
                    #direct_call
                },
            ).await;
            #unwrap_result
        }

        #[doc = #name_doc]
        #vis mod #name {
            #[allow(unused_imports)]
            use super::*;

            /// Describes the function to the engine.
            #[doc(hidden)]
            #inner_vis struct Spec;

            impl ::cacheback::__private::Decorated for Spec {
                const NAME: &'static str = ::core::module_path!();
                const PARAMETERS: &'static [&'static str] = &[#(#arg_names),*];
                type Context = #context_ty;
                type Args = (#(#arg_types,)*);
                type Output = #output;
                type Error = #error;
                type Policy = #policy;
                fn options() -> ::cacheback::function::Options {
                    ::cacheback::function::Options::default() #(#setters)*
                }
                fn empty() -> ::core::option::Option<Self::Output> {
                    #empty
                }
                fn call(
                    __context: &Self::Context,
                    (#(#arg_idents,)*): Self::Args,
                ) -> ::cacheback::__private::BoxFuture<'_, ::core::result::Result<Self::Output, Self::Error>> {
                    #unused_context
                    ::std::boxed::Box::pin(async move { #spec_call })
                }
            }

            #job_fn

            /// The function itself, without the cache (the seed's `fn.fn`).
            #inner_vis use super::#uncached as uncached;

            const _: () = {
                fn __checks() {
                    #(#argument_checks)*
                    #output_check
                }
            };

            ::cacheback::__private::inventory::submit! {
                ::cacheback::__private::Submitted {
                    name: || ::core::module_path!().to_owned(),
                    refresher: ::cacheback::__private::DecoratedRefresher::<Spec>::submitted,
                }
            }
        }
    })
}

fn pattern_ident(pat: &Pat) -> syn::Result<Ident> {
    match pat {
        Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => Ok(ident.ident.clone()),
        other => Err(syn::Error::new_spanned(other, "#[cacheback] function arguments must be plain names")),
    }
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
