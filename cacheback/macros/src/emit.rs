//! Code emission: the function, its uncached twin, and the module holding
//! its `Spec`, `job(..)`, `uncached` and its registration for workers.

use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, Type};

use crate::options::Options;
use crate::signature::Signature;

/// The code replacing `function`: its uncached twin, the function itself
/// (a call through the cache) and the module of its cache machinery.
pub(crate) fn emit(options: &Options, function: &ItemFn, signature: &Signature) -> TokenStream2 {
    let emitter = Emitter::new(options, function, signature);
    let uncached_fn = emitter.uncached_fn();
    let cached_fn = emitter.cached_fn();
    let module = emitter.module();
    quote! {
        #uncached_fn
        #cached_fn
        #module
    }
}

/// What every step of the emission reads: the attribute's options, the
/// function and its analysed signature.
struct Emitter<'a> {
    options: &'a Options,
    function: &'a ItemFn,
    signature: &'a Signature,
    /// The uncached twin's name: `__cacheback_uncached_<name>`.
    uncached: Ident,
    /// The names of the cached arguments, in order.
    arg_idents: Vec<&'a Ident>,
}

impl<'a> Emitter<'a> {
    fn new(options: &'a Options, function: &'a ItemFn, signature: &'a Signature) -> Self {
        let uncached = format_ident!("__cacheback_uncached_{}", function.sig.ident);
        let arg_idents = signature.arguments.iter().map(|a| &a.ident).collect();
        Self { options, function, signature, uncached, arg_idents }
    }

    /// The original function under the twin's name, hidden: what the cache
    /// calls to compute a value.
    fn uncached_fn(&self) -> TokenStream2 {
        let ItemFn { vis, sig, block, .. } = self.function;
        let (uncached, inputs, ret) = (&self.uncached, &sig.inputs, &sig.output);
        quote! {
            #[doc(hidden)]
            #[allow(clippy::too_many_arguments)]
            #vis async fn #uncached(#inputs) #ret #block
        }
    }

    /// The function under its own name, with its attributes: a call through
    /// the cache, computing a value with the uncached twin.
    fn cached_fn(&self) -> TokenStream2 {
        let ItemFn { attrs, vis, sig, .. } = self.function;
        let (name, inputs, ret) = (&sig.ident, &sig.inputs, &sig.output);
        let arg_idents = &self.arg_idents;
        let context_arg = match &self.signature.context {
            Some((ident, _)) => quote! { #ident },
            None => quote! { &() },
        };
        let unused_context = self.unused_context();
        let uncached = &self.uncached;
        let direct_call = self.call_uncached(quote! { #uncached });
        let unwrap_result = self.unwrap_result();
        quote! {
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
        }
    }

    /// `mod <name>`, the function's cache machinery: its `Spec`, `job(..)`,
    /// `uncached`, the checks of its types and its registration for workers.
    fn module(&self) -> TokenStream2 {
        let ItemFn { vis, sig, .. } = self.function;
        let name = &sig.ident;
        let name_doc = format!("The cache machinery of [`{name}`](fn@super::{name}).");
        let inner_vis = &self.signature.inner_vis;
        let uncached = &self.uncached;
        let spec = self.spec();
        let job_fn = self.job_fn();
        let checks = self.checks();
        let registration = registration();
        quote! {
            #[doc = #name_doc]
            #vis mod #name {
                #[allow(unused_imports)]
                use super::*;

                #spec

                #job_fn

                /// The function itself, without the cache (the original's `fn.fn`).
                #inner_vis use super::#uncached as uncached;

                #checks

                #registration
            }
        }
    }

    /// `Spec`, which describes the function to the engine: its name,
    /// arguments, value, error and policies, and how to call it.
    fn spec(&self) -> TokenStream2 {
        let Signature { context, arguments, output, error, inner_vis, .. } = self.signature;
        let arg_idents = &self.arg_idents;
        let arg_names: Vec<String> = arguments.iter().map(|a| a.ident.to_string()).collect();
        let arg_types: Vec<&Type> = arguments.iter().map(|a| &a.ty).collect();
        let context_ty = match context {
            Some((_, ty)) => quote! { #ty },
            None => quote! { () },
        };
        let job_name = self.job_name();
        let policy = self.policy();
        let setters = &self.options.setters;
        let empty = self.empty();
        let unused_context = self.unused_context();
        let uncached = &self.uncached;
        let spec_call = self.call_uncached(quote! { super::#uncached });
        quote! {
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
        }
    }

    /// The job's name: the attribute's `name`, or the path of the generated
    /// module, which is the function's.
    fn job_name(&self) -> TokenStream2 {
        match &self.options.name {
            Some(name) => quote! { #name },
            None => quote! { ::core::module_path!() },
        }
    }

    /// The policy type: the attribute's `job`, or the default options.
    fn policy(&self) -> TokenStream2 {
        match &self.options.job {
            Some(policy) => quote! { #policy },
            None => quote! { ::cacheback::policy::Options },
        }
    }

    /// The value of a miss that does not fetch (`fetch_on_miss = false`):
    /// the output's default; otherwise none, and the miss fetches.
    fn empty(&self) -> TokenStream2 {
        if self.options.fetch_on_miss == Some(false) {
            quote! { ::core::option::Option::Some(::core::default::Default::default()) }
        } else {
            quote! { ::core::option::Option::None }
        }
    }

    /// `job(..)`: the function's job on the global engine, taking the
    /// context if the function has one.
    fn job_fn(&self) -> TokenStream2 {
        let inner_vis = &self.signature.inner_vis;
        match &self.signature.context {
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
        }
    }

    /// Each argument type must be a serde value, and so must the output, with
    /// the error on the type.
    fn checks(&self) -> TokenStream2 {
        let argument_checks = self.signature.arguments.iter().map(|a| {
            let ty = &a.ty;
            quote_spanned! { ty.span()=> ::cacheback::__private::assert_argument::<#ty>(); }
        });
        let output = &self.signature.output;
        let output_check =
            quote_spanned! { output.span()=> ::cacheback::__private::assert_output::<#output>(); };
        quote! {
            const _: () = {
                fn __checks() {
                    #(#argument_checks)*
                    #output_check
                }
            };
        }
    }

    /// A call of the uncached twin at `callee` with the context (if any) and
    /// the arguments, as a `Result`: an infallible function's value is `Ok`.
    fn call_uncached(&self, callee: TokenStream2) -> TokenStream2 {
        let arg_idents = &self.arg_idents;
        let context_pass = match &self.signature.context {
            Some(_) => quote! { __context, },
            None => quote! {},
        };
        let call = quote! { #callee(#context_pass #(#arg_idents),*).await };
        if self.signature.fallible {
            call
        } else {
            quote! { ::core::result::Result::Ok(#call) }
        }
    }

    /// The function's answer from the cache's `__result`: the `Result` itself,
    /// or the value of an infallible function.
    fn unwrap_result(&self) -> TokenStream2 {
        if self.signature.fallible {
            quote! { __result }
        } else {
            quote! { match __result { ::core::result::Result::Ok(value) => value, ::core::result::Result::Err(never) => match never {} } }
        }
    }

    /// Ignores `__context` where the function takes no context.
    fn unused_context(&self) -> TokenStream2 {
        match &self.signature.context {
            Some(_) => quote! {},
            None => quote! { let _ = __context; },
        }
    }
}

/// The function's registration for workers, by its job name.
fn registration() -> TokenStream2 {
    quote! {
        ::cacheback::__private::inventory::submit! {
            ::cacheback::__private::Submitted {
                name: || <Spec as ::cacheback::__private::Decorated>::NAME.to_owned(),
                refresher: ::cacheback::__private::DecoratedRefresher::<Spec>::submitted,
            }
        }
    }
}
