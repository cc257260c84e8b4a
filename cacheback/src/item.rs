//! Items as stored: `(expiry, data)`, shared in memory or encoded as JSON.

use std::any::Any;
use std::sync::Arc;

use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::Timestamp;
use crate::error::Error;
use crate::store::{Representation, StoredValue};

/// An item as the cache holds it: when it goes stale, and its data (`None` for
/// the [empty](crate::Job::empty) placeholder of a MISS being refreshed).
///
/// In Redis an item is the JSON array `[expiry, data]`, readable from any
/// language; the placeholder is `[expiry]`, so data that is JSON `null` (an
/// `Option` that is `None`) stays data.
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
        Representation::Encoded => serde_json::to_vec(&Wire { expiry, data: data.as_deref() })
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
        StoredValue::Encoded(bytes) => serde_json::from_slice::<Wire<T>>(&bytes)
            .map(|Wire { expiry, data }| CachedItem { expiry, data: data.map(Arc::new) })
            .map_err(|e| Error::Decode { key: key.to_owned(), type_name, message: e.to_string() }),
    }
}

/// An item on the wire: `[expiry, data]`, or `[expiry]` for the placeholder.
///
/// By hand rather than as a tuple of `Option`: `[expiry, null]` would make
/// data that serializes to `null` indistinguishable from the placeholder.
struct Wire<T> {
    expiry: Timestamp,
    data: Option<T>,
}

impl<T: Serialize> Serialize for Wire<&T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(1 + usize::from(self.data.is_some())))?;
        seq.serialize_element(&self.expiry)?;
        if let Some(data) = self.data {
            seq.serialize_element(data)?;
        }
        seq.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Wire<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WireVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for WireVisitor<T> {
            type Value = Wire<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an item: `[expiry, data]` or `[expiry]`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Wire<T>, A::Error> {
                let expiry = seq.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                let data = seq.next_element()?;
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(3, &self));
                }
                Ok(Wire { expiry, data })
            }
        }
        deserializer.deserialize_seq(WireVisitor(std::marker::PhantomData))
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
    fn the_placeholder_is_the_expiry_alone_and_null_data_stays_data() {
        let encoded =
            |data: Option<Arc<Option<u32>>>| match encode(Representation::Encoded, 2.5, data).unwrap() {
                StoredValue::Encoded(bytes) => bytes,
                StoredValue::Shared(_) => panic!("expected bytes"),
            };
        let placeholder = encoded(None);
        assert_eq!(&placeholder[..], b"[2.5]");
        let none = encoded(Some(Arc::new(None)));
        assert_eq!(&none[..], b"[2.5,null]");

        let item: CachedItem<Option<u32>> = decode("k", StoredValue::Encoded(placeholder)).unwrap();
        assert_eq!((item.expiry, item.data), (2.5, None));
        let item: CachedItem<Option<u32>> = decode("k", StoredValue::Encoded(none)).unwrap();
        assert_eq!(item.data.as_deref(), Some(&None), "`None` data is data, not the placeholder");

        for bad in [&b"[]"[..], b"[1.0,2,3]", b"{}", b"[\"x\"]"] {
            let err = decode::<Option<u32>>("k", StoredValue::Encoded(bytes::Bytes::copy_from_slice(bad)));
            assert!(matches!(err, Err(Error::Decode { .. })), "{}", String::from_utf8_lossy(bad));
        }
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
