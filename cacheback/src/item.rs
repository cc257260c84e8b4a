//! Items as stored: `(expiry, data)`, shared in memory or encoded as JSON.

use std::any::Any;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::store::{Representation, StoredValue};

/// An item as the cache holds it: when it goes stale, and its data (`None` for
/// the [empty](crate::Job::empty) placeholder of a MISS being refreshed).
///
/// In Redis an item is the JSON array `[expiry, data]`, readable from any
/// language.
///
/// ```
/// use std::sync::Arc;
/// let item = cacheback::CachedItem { expiry: 1_458_483_300.0, data: Some(Arc::new("x")) };
/// assert_eq!(item.data.as_deref(), Some(&"x"));
/// ```
#[derive(Debug, PartialEq)]
pub struct CachedItem<T> {
    /// When the item goes stale, in seconds since the Unix epoch.
    pub expiry: Timestamp,
    /// The cached data.
    pub data: Option<Arc<T>>,
}

impl<T> Clone for CachedItem<T> {
    fn clone(&self) -> Self {
        Self { expiry: self.expiry, data: self.data.clone() }
    }
}

pub(crate) fn encode<T: Serialize + Send + Sync + 'static>(
    representation: Representation,
    expiry: Timestamp,
    data: Option<Arc<T>>,
) -> Result<StoredValue, Error> {
    match representation {
        Representation::Shared => Ok(StoredValue::Shared(Arc::new(CachedItem { expiry, data }))),
        Representation::Encoded => serde_json::to_vec(&(expiry, data.as_deref()))
            .map(|bytes| StoredValue::Encoded(bytes.into()))
            .map_err(|e| Error::Encode { type_name: std::any::type_name::<T>(), message: e.to_string() }),
    }
}

pub(crate) fn decode<T: DeserializeOwned + Send + Sync + 'static>(
    key: &str,
    value: StoredValue,
) -> Result<CachedItem<T>, Error> {
    let type_name = std::any::type_name::<T>();
    match value {
        StoredValue::Shared(any) => {
            let any: Arc<dyn Any + Send + Sync> = any;
            any.downcast::<CachedItem<T>>().map(|item| (*item).clone()).map_err(|_| Error::Decode {
                key: key.to_owned(),
                type_name,
                message: "the item was stored by a job with another output type".to_owned(),
            })
        }
        StoredValue::Encoded(bytes) => serde_json::from_slice::<(Timestamp, Option<T>)>(&bytes)
            .map(|(expiry, data)| CachedItem { expiry, data: data.map(Arc::new) })
            .map_err(|e| Error::Decode { key: key.to_owned(), type_name, message: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_items_are_a_json_pair() {
        let StoredValue::Encoded(bytes) =
            encode(Representation::Encoded, 1_458_483_300.0, Some(Arc::new(vec!["a"]))).unwrap()
        else {
            panic!("expected bytes")
        };
        assert_eq!(&bytes[..], br#"[1458483300.0,["a"]]"#);
        let item: CachedItem<Vec<String>> = decode("k", StoredValue::Encoded(bytes)).unwrap();
        assert_eq!(item.expiry, 1_458_483_300.0);
        assert_eq!(item.data.unwrap().as_slice(), ["a"]);
    }

    #[test]
    fn a_wrong_type_is_a_decode_error() {
        let shared = encode(Representation::Shared, 1.0, Some(Arc::new(1u32))).unwrap();
        let err = decode::<String>("k", shared).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err}");
        let err = decode::<u32>("k", StoredValue::Encoded("not json".into())).unwrap_err();
        assert!(err.to_string().contains("does not decode as `u32`"), "{err}");
    }
}
