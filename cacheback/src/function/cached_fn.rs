//! [`CachedFn`]: the shapes of async function [`FunctionJob`](super::FunctionJob)
//! caches, told apart by marker types as axum's `Handler` does.

use std::future::Future;
use std::marker::PhantomData;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::FetchError;

/// An async function that [`FunctionJob`](super::FunctionJob) can cache: `async fn(A, B, ..) ->
/// Result<T, E>` with up to six owned serde arguments, optionally after a
/// leading context argument taken by value (`async fn(C, A, ..)`).
///
/// `M` only tells the implementations apart; it is inferred.
pub trait CachedFn<M>: Copy + Send + Sync + 'static {
    /// The leading context argument's type; `()` when there is none.
    type Context: Clone + Send + Sync + 'static;
    /// The other arguments, as a tuple.
    type Args: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// The `T` of `Result<T, E>`.
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Calls the function.
    fn call(
        &self,
        context: &Self::Context,
        args: &Self::Args,
    ) -> BoxFuture<'static, Result<Self::Output, FetchError>>;
}

/// Marks the [`CachedFn`] implementations for functions without a context.
#[doc(hidden)]
pub struct Plain<Args>(PhantomData<Args>);

/// Marks the [`CachedFn`] implementations for functions with a leading context.
#[doc(hidden)]
pub struct WithContext<C, Args>(PhantomData<(C, Args)>);

macro_rules! cached_fn {
    ($($arg:ident),*) => {
        impl<F, Fut, T, E, $($arg,)*> CachedFn<Plain<($($arg,)*)>> for F
        where
            F: Fn($($arg),*) -> Fut + Copy + Send + Sync + 'static,
            Fut: Future<Output = Result<T, E>> + Send + 'static,
            E: Into<FetchError>,
            T: Serialize + DeserializeOwned + Send + Sync + 'static,
            $($arg: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,)*
        {
            type Context = ();
            type Args = ($($arg,)*);
            type Output = T;
            #[allow(non_snake_case)]
            fn call(&self, _: &(), args: &Self::Args) -> BoxFuture<'static, Result<T, FetchError>> {
                let ($($arg,)*) = args.clone();
                let future = self($($arg),*);
                Box::pin(async move { future.await.map_err(Into::into) })
            }
        }

        impl<F, Fut, T, E, C, $($arg,)*> CachedFn<WithContext<C, ($($arg,)*)>> for F
        where
            F: Fn(C, $($arg),*) -> Fut + Copy + Send + Sync + 'static,
            Fut: Future<Output = Result<T, E>> + Send + 'static,
            E: Into<FetchError>,
            T: Serialize + DeserializeOwned + Send + Sync + 'static,
            C: Clone + Send + Sync + 'static,
            $($arg: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,)*
        {
            type Context = C;
            type Args = ($($arg,)*);
            type Output = T;
            #[allow(non_snake_case)]
            fn call(&self, context: &C, args: &Self::Args) -> BoxFuture<'static, Result<T, FetchError>> {
                let ($($arg,)*) = args.clone();
                let future = self(context.clone(), $($arg),*);
                Box::pin(async move { future.await.map_err(Into::into) })
            }
        }
    };
}

cached_fn!();
cached_fn!(A1);
cached_fn!(A1, A2);
cached_fn!(A1, A2, A3);
cached_fn!(A1, A2, A3, A4);
cached_fn!(A1, A2, A3, A4, A5);
cached_fn!(A1, A2, A3, A4, A5, A6);
