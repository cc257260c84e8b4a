//! The handle `#[cacheback]` functions use: [`Cacheback::install_global`].

use std::sync::RwLock;

use super::Cacheback;

/// The handle decorated functions use (see [`Cacheback::install_global`]).
static GLOBAL: RwLock<Option<Cacheback>> = RwLock::new(None);

impl Cacheback {
    /// Makes this handle the one [`global`](Self::global) returns: the engine
    /// behind `#[cacheback]` functions. The loco initializer installs its
    /// handle. Installing again replaces it.
    ///
    /// ```
    /// let cache = cacheback::Cacheback::builder().build().unwrap();
    /// cache.install_global();
    /// assert!(cacheback::Cacheback::global().is_some());
    /// ```
    pub fn install_global(&self) {
        *GLOBAL.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(self.clone());
    }

    /// Removes the global handle: `#[cacheback]` functions are plain calls again.
    ///
    /// ```
    /// cacheback::Cacheback::uninstall_global();
    /// assert!(cacheback::Cacheback::global().is_none());
    /// ```
    pub fn uninstall_global() {
        *GLOBAL.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The handle installed with [`install_global`](Self::install_global), if any.
    ///
    /// ```
    /// let _maybe = cacheback::Cacheback::global();
    /// ```
    pub fn global() -> Option<Cacheback> {
        GLOBAL.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
