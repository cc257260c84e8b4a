//! Code emission: the function, its uncached twin, and the module holding
//! its `Spec`, `job(..)`, `uncached` and its registration for workers.

use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, Type};

use crate::options::Options;
use crate::signature::Signature;

/// The code replacing `function`.
pub(crate) fn emit(options: &Options, function: &ItemFn, signature: &Signature) -> TokenStream2 {
    let Signature { context, arguments, output, error, fallible, inner_vis } = signature;
    let fallible = *fallible;
    let sig = &function.sig;
    let name = &sig.ident;
    let uncached = format_ident!("__cacheback_uncached_{}", name);
    let vis = &function.vis;
    let attrs = &function.attrs;
    let body = &function.block;
    let arg_idents: Vec<&Ident> = arguments.iter().map(|a| &a.ident).collect();
    let arg_types: Vec<&Type> = arguments.iter().map(|a| &a.ty).collect();
    let arg_names: Vec<String> = arguments.iter().map(|a| a.ident.to_string()).collect();
    let policy =
        options.job.clone().map_or_else(|| quote! { ::cacheback::policy::Options }, |p| quote! { #p });
    let setters = &options.setters;
    // The job's name: the attribute's `name`, or the path of the generated
    // module, which is the function's.
    let job_name =
        options.name.as_ref().map_or_else(|| quote! { ::core::module_path!() }, |name| quote! { #name });
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

    quote_spanned! {span=>
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
                const NAME: &'static str = #job_name;
                const PARAMETERS: &'static [&'static str] = &[#(#arg_names),*];
                type Context = #context_ty;
                type Args = (#(#arg_types,)*);
                type Output = #output;
                type Error = #error;
                type Policy = #policy;
                fn options() -> ::cacheback::policy::Options {
                    ::cacheback::policy::Options::default() #(#setters)*
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

            /// The function itself, without the cache (the original's `fn.fn`).
            #inner_vis use super::#uncached as uncached;

            const _: () = {
                fn __checks() {
                    #(#argument_checks)*
                    #output_check
                }
            };

            ::cacheback::__private::inventory::submit! {
                ::cacheback::__private::Submitted {
                    name: || <Spec as ::cacheback::__private::Decorated>::NAME.to_owned(),
                    refresher: ::cacheback::__private::DecoratedRefresher::<Spec>::submitted,
                }
            }
        }
    }
}
