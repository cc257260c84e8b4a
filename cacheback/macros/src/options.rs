//! The attribute's options: `#[cacheback(lifetime = 30, fetch_on_miss = false, ..)]`.
//!
//! Most are policies, set on `cacheback::policy::Options`; `name` (the job's
//! identity), `job` (the policy type) and `extra(..)` (its options) are not.

use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitInt, Meta, Token};

/// What an option's value is, and so how it is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A policy in whole seconds: `.with_<name>(Duration::from_secs(n))`.
    Seconds,
    /// A policy that is `true` or `false`: `.with_<name>(b)`.
    Bool,
    /// A policy that is a number: `.with_<name>(x as f64)`.
    Number,
    /// A policy that is a string: `.with_<name>("s")`.
    Text,
    /// A policy that is a list of strings: `.with_<name>(["a", "b"])`.
    Texts,
    /// A task option (`queue`, `retry`), gathered into `with_task_options`.
    Task,
    /// `job = Type`: the custom policy type.
    Policy,
    /// `name = "path"`: the job's name, which is its identity (the prefix of
    /// its keys, the name its refreshes are queued and registered under), not
    /// a policy.
    Name,
}

/// Every option, in the order the error message lists them. A policy
/// `option = value` becomes `.with_<option>(value)` on
/// `cacheback::policy::Options`; cacheback's test suite checks that the
/// policies here are exactly `Options::NAMES` (with `queue`/`retry` standing
/// for `task_options`), besides `name`, `job` and `extra(..)`, which are not
/// policies.
const OPTIONS: &[(&str, Kind)] = &[
    ("name", Kind::Name),
    ("lifetime", Kind::Seconds),
    ("refresh_timeout", Kind::Seconds),
    ("cache_ttl", Kind::Seconds),
    ("fill_wait", Kind::Seconds),
    ("fetch_on_stale_threshold", Kind::Seconds),
    ("stale_if_error", Kind::Seconds),
    ("max_stale_age", Kind::Seconds),
    ("fetch_soft_timeout", Kind::Seconds),
    ("fetch_hard_timeout", Kind::Seconds),
    ("early_refresh", Kind::Number),
    ("fetch_on_miss", Kind::Bool),
    ("cache_alias", Kind::Text),
    ("job", Kind::Policy),
    ("queue", Kind::Task),
    ("retry", Kind::Task),
    ("set_data_kwarg", Kind::Text),
    ("tags", Kind::Texts),
];

/// The option list of error messages.
fn known() -> String {
    let names: Vec<&str> = OPTIONS.iter().map(|(name, _)| *name).collect();
    format!("{}, extra(..)", names.join(", "))
}

/// The attribute's options.
#[derive(Default)]
pub(crate) struct Options {
    /// `.with_*(..)` calls on `cacheback::policy::Options::default()`.
    pub(crate) setters: Vec<TokenStream2>,
    /// `fetch_on_miss`, if given: `false` makes a miss return `Default`.
    pub(crate) fetch_on_miss: Option<bool>,
    /// `job = Type`.
    pub(crate) job: Option<syn::Path>,
    /// `name = "path"`: the job's name, instead of the function's path.
    pub(crate) name: Option<syn::LitStr>,
}

impl Parse for Options {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut options = Options::default();
        let mut task = Vec::new();
        let mut first = true;
        while !input.is_empty() {
            // `#[cacheback(5)]`: the lifetime, as the original's `@cacheback(5)`.
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

impl Options {
    fn option(&mut self, meta: Meta, task: &mut Vec<TokenStream2>) -> syn::Result<()> {
        let name = meta.path().get_ident().map(Ident::to_string).unwrap_or_default();
        if let Meta::List(list) = &meta
            && name == "extra"
        {
            return self.extra(list);
        }
        let Meta::NameValue(pair) = &meta else {
            return Err(syn::Error::new_spanned(
                &meta,
                format!("expected `name = value`; the options are: {}", known()),
            ));
        };
        let Some(&(_, kind)) = OPTIONS.iter().find(|(known, _)| *known == name) else {
            return Err(syn::Error::new_spanned(
                meta.path(),
                format!("unknown #[cacheback] option `{name}`; the options are: {}", known()),
            ));
        };
        let value = &pair.value;
        let setter = format_ident!("with_{}", name);
        match kind {
            Kind::Seconds => self.setters.push(seconds_setter(&name, &int(value)?)?),
            Kind::Bool => {
                let flag = boolean(value)?;
                if name == "fetch_on_miss" {
                    self.fetch_on_miss = Some(flag);
                }
                self.setters.push(quote! { .#setter(#flag) });
            }
            Kind::Number => {
                let number = number(value)?;
                self.setters.push(quote! { .#setter(#number) });
            }
            Kind::Text => {
                let text = string(value)?;
                self.setters.push(quote! { .#setter(#text) });
            }
            Kind::Texts => {
                let texts = strings(value)?;
                self.setters.push(quote! { .#setter([#(#texts),*]) });
            }
            Kind::Task => task.push(task_option(&name, value)?),
            Kind::Name => self.name = Some(job_name(value, self.name.is_some())?),
            Kind::Policy => match value {
                Expr::Path(path) => self.job = Some(path.path.clone()),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "`job` takes a type implementing `cacheback::policy::Policy`",
                    ));
                }
            },
        }
        Ok(())
    }

    /// `extra(key = literal, ..)`: options of a custom policy.
    fn extra(&mut self, list: &syn::MetaList) -> syn::Result<()> {
        let entries = list.parse_args_with(Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated)?;
        for entry in entries {
            let key = entry
                .path
                .get_ident()
                .ok_or_else(|| syn::Error::new_spanned(&entry.path, "expected a name"))?;
            let key = key.to_string();
            let value = literal(&entry.value)?;
            self.setters.push(quote! { .with_extra(#key, #value) });
        }
        Ok(())
    }
}

/// `name = "path"`: a job name, given once and not blank.
fn job_name(value: &Expr, given: bool) -> syn::Result<syn::LitStr> {
    let name = string(value)?;
    if given {
        return Err(syn::Error::new_spanned(&name, "`name` is given twice"));
    }
    if name.value().trim().is_empty() {
        return Err(syn::Error::new_spanned(
            &name,
            "`name` cannot be empty: it is the job's name, the prefix of its cache keys and the name \
             its refreshes are queued and registered under (for example `name = \"app::jobs::fetch\"`)",
        ));
    }
    Ok(name)
}

/// `queue = "name"` or `retry = true | false | n`, as a `TaskOptions` setter.
fn task_option(name: &str, value: &Expr) -> syn::Result<TokenStream2> {
    if name == "queue" {
        let queue = string(value)?;
        return Ok(quote! { .queue(#queue) });
    }
    match value {
        Expr::Lit(syn::ExprLit { lit: Lit::Bool(b), .. }) => {
            Ok(quote! { .retry(::cacheback::Retry::Enabled(#b)) })
        }
        Expr::Lit(syn::ExprLit { lit: Lit::Int(n), .. }) => {
            Ok(quote! { .retry(::cacheback::Retry::Count(#n)) })
        }
        other => Err(syn::Error::new_spanned(other, "`retry` takes `true`, `false` or a count")),
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

/// A number (`1.0`, or `2`), as an `f64` expression.
fn number(value: &Expr) -> syn::Result<TokenStream2> {
    match value {
        Expr::Lit(syn::ExprLit { lit: Lit::Float(x), .. }) => Ok(quote! { (#x as f64) }),
        Expr::Lit(syn::ExprLit { lit: Lit::Int(n), .. }) => Ok(quote! { (#n as f64) }),
        other => Err(syn::Error::new_spanned(other, "expected a number")),
    }
}

fn boolean(value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(syn::ExprLit { lit: Lit::Bool(b), .. }) => Ok(b.value),
        other => Err(syn::Error::new_spanned(other, "expected `true` or `false`")),
    }
}

/// `["a", "b"]`: string literals in brackets.
fn strings(value: &Expr) -> syn::Result<Vec<syn::LitStr>> {
    match value {
        Expr::Array(array) => array.elems.iter().map(string).collect(),
        other => Err(syn::Error::new_spanned(other, "expected a list of strings: `[\"a\", \"b\"]`")),
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
