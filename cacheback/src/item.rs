//! Items as stored: `(expiry, data)` and when the data was fetched, shared in
//! memory or encoded as JSON.

use std::any::Any;
use std::sync::Arc;

use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::Timestamp;
use crate::error::Error;
use crate::store::{Representation, StoredValue};

/// The versions of an item's tags when its data was fetched: `(tag,
/// version)` for each tag that had one (see [`crate::tags`]).
pub(crate) type TagVersions = Arc<[(Box<str>, Box<str>)]>;

/// An item as the cache holds it: when it goes stale, its data (`None` for
/// the [empty](crate::Job::empty) placeholder of a MISS being refreshed), and
/// when that data was fetched.
///
/// In Redis an item is the JSON array `[expiry, data, {"fetched_at": t, "took": d}]`
/// (and `"refreshing_until": u` while an early refresh is pending, `"tags":
/// {"<tag>": "<version>"}` for a tagged item whose tags had versions when it
/// was fetched), readable from any language; an item written before `fetched_at` existed
/// is `[expiry, data]` and still reads. The placeholder is `[expiry]`, so data
/// that is JSON `null` (an `Option` that is `None`) stays data.
///
/// ```
/// use std::sync::Arc;
/// let item = cacheback::CachedItem::new(1_458_483_300.0, Some(Arc::new("x")), Some(1_458_482_700.0));
/// assert_eq!(item.data.as_deref(), Some(&"x"));
/// assert_eq!(item.fetched_at, Some(1_458_482_700.0));
/// ```
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub struct CachedItem<T> {
    /// When the item goes stale, in seconds since the Unix epoch.
    pub expiry: Timestamp,
    /// The cached data.
    pub data: Option<Arc<T>>,
    /// When the data was fetched (a re-store for a refresh keeps it); `None`
    /// for the placeholder and for items stored by versions before 0.2.
    pub fetched_at: Option<Timestamp>,
    /// How long the fetch of the data took, in seconds on the engine's
    /// clock: the δ of [`early_refresh`](crate::policy::Options::early_refresh).
    /// `None` for data that was `set`, and for items stored before 0.2.
    pub took: Option<f64>,
    /// Until when an early refresh of this item is pending (its claim); `None`
    /// when none is.
    pub refreshing_until: Option<Timestamp>,
    /// The versions of the item's tags when its data was fetched (see
    /// [`Job::tags`](crate::Job::tags)); `None` for an untagged item.
    pub(crate) tags: Option<TagVersions>,
}

impl<T> CachedItem<T> {
    /// An item.
    ///
    /// ```
    /// let placeholder = cacheback::CachedItem::<u32>::new(60.0, None, None);
    /// assert!(placeholder.data.is_none());
    /// ```
    pub fn new(expiry: Timestamp, data: Option<Arc<T>>, fetched_at: Option<Timestamp>) -> Self {
        Self { expiry, data, fetched_at, took: None, refreshing_until: None, tags: None }
    }

    /// The item, recording that its fetch took `took` seconds.
    ///
    /// ```
    /// let item = cacheback::CachedItem::<u32>::new(60.0, None, Some(0.0)).with_took(0.25);
    /// assert_eq!(item.took, Some(0.25));
    /// ```
    #[must_use]
    pub fn with_took(self, took: f64) -> Self {
        Self { took: Some(took), ..self }
    }

    /// The item, stored with the versions its tags had when its fetch began.
    #[must_use]
    pub(crate) fn with_tags(self, tags: Option<TagVersions>) -> Self {
        Self { tags, ..self }
    }
}

impl<T> Clone for CachedItem<T> {
    fn clone(&self) -> Self {
        Self {
            expiry: self.expiry,
            data: self.data.clone(),
            fetched_at: self.fetched_at,
            took: self.took,
            refreshing_until: self.refreshing_until,
            tags: self.tags.clone(),
        }
    }
}

pub(crate) fn encode<T: Serialize + Send + Sync + 'static>(
    representation: Representation,
    item: CachedItem<T>,
) -> Result<StoredValue, Error> {
    match representation {
        Representation::Shared => Ok(StoredValue::Shared(Arc::new(item))),
        Representation::Encoded => serde_json::to_vec(&Wire {
            expiry: item.expiry,
            data: item.data.as_deref(),
            meta: Meta::of(&item),
        })
        .map(|bytes| StoredValue::Encoded(bytes.into()))
        .map_err(|e| Error::Encode { type_name: std::any::type_name::<T>(), message: e.to_string() }),
    }
}

/// `item` (the data `value` holds, with a new expiry and fetch time) as
/// stored, its data as it is: shared, the same `Arc`; encoded, `value`'s
/// bytes, neither decoded nor encoded again (a refresh that found its data
/// not modified).
pub(crate) fn renew<T: Send + Sync + 'static>(
    value: &StoredValue,
    item: &CachedItem<T>,
) -> Result<StoredValue, Error> {
    let bytes = match value {
        StoredValue::Shared(_) => return Ok(StoredValue::Shared(Arc::new(item.clone()))),
        StoredValue::Encoded(bytes) => bytes,
    };
    let type_name = std::any::type_name::<T>();
    let invalid = |message: String| Error::Encode { type_name, message };
    // `[expiry, data]` or `[expiry, data, meta]`: the data's JSON as it is.
    let parts: Vec<&serde_json::value::RawValue> =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("the stored item does not parse: {e}")))?;
    let Some(data) = parts.get(1) else {
        return Err(invalid("the stored item holds no data".to_owned()));
    };
    let meta = serde_json::to_string(&Meta::of(item)).map_err(|e| invalid(e.to_string()))?;
    let expiry = serde_json::to_string(&item.expiry).map_err(|e| invalid(e.to_string()))?;
    Ok(StoredValue::Encoded(format!("[{expiry},{},{meta}]", data.get()).into_bytes().into()))
}

/// The item a stored value holds. By reference: a shared item is cloned (an
/// `Arc` of the data), not the value, so reading costs no more than before
/// the value was kept for a compare-and-set.
pub(crate) fn decode<T: DeserializeOwned + Send + Sync + 'static>(
    key: &str,
    value: &StoredValue,
) -> Result<CachedItem<T>, Error> {
    let type_name = std::any::type_name::<T>();
    match value {
        StoredValue::Shared(any) => {
            let any: &(dyn Any + Send + Sync) = &**any;
            any.downcast_ref::<CachedItem<T>>().cloned().ok_or_else(|| Error::Decode {
                key: key.to_owned(),
                type_name,
                message: "the item was stored by a job with another output type".to_owned(),
            })
        }
        StoredValue::Encoded(bytes) => serde_json::from_slice::<Wire<T>>(bytes)
            .map(|Wire { expiry, data, meta }| CachedItem {
                expiry,
                data: data.map(Arc::new),
                fetched_at: meta.fetched_at,
                took: meta.took,
                refreshing_until: meta.refreshing_until,
                tags: meta.tags.map(|tags| tags.into_iter().collect()),
            })
            .map_err(|e| Error::Decode { key: key.to_owned(), type_name, message: e.to_string() }),
    }
}

/// An item on the wire: `[expiry, data, {"fetched_at": t}]`, `[expiry, data]`
/// (no fetch time), or `[expiry]` for the placeholder.
///
/// By hand rather than as a tuple of `Option`: `[expiry, null]` would make
/// data that serializes to `null` indistinguishable from the placeholder.
struct Wire<T> {
    expiry: Timestamp,
    data: Option<T>,
    meta: Meta,
}

/// The third element: what is known of the data besides itself. An object,
/// so that later fields can be added without breaking older readers (which
/// ignore the fields they do not know).
#[derive(Default, Serialize, Deserialize)]
struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fetched_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    took: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refreshing_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags: Option<std::collections::BTreeMap<Box<str>, Box<str>>>,
}

impl Meta {
    fn of<T>(item: &CachedItem<T>) -> Self {
        Self {
            fetched_at: item.fetched_at,
            took: item.took,
            refreshing_until: item.refreshing_until,
            tags: item.tags.as_deref().map(|tags| tags.iter().cloned().collect()),
        }
    }

    fn is_empty(&self) -> bool {
        self.fetched_at.is_none()
            && self.took.is_none()
            && self.refreshing_until.is_none()
            && self.tags.is_none()
    }
}

impl<T: Serialize> Serialize for Wire<&T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let meta = self.data.and(Some(&self.meta)).filter(|meta| !meta.is_empty());
        let len = 1 + usize::from(self.data.is_some()) + usize::from(meta.is_some());
        let mut seq = serializer.serialize_seq(Some(len))?;
        seq.serialize_element(&self.expiry)?;
        if let Some(data) = self.data {
            seq.serialize_element(data)?;
        }
        if let Some(meta) = meta {
            seq.serialize_element(&meta)?;
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
                f.write_str("an item: `[expiry, data, {\"fetched_at\": t}]`, `[expiry, data]` or `[expiry]`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Wire<T>, A::Error> {
                let expiry = seq.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                let data = seq.next_element()?;
                let meta: Option<Meta> = if data.is_some() { seq.next_element()? } else { None };
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(4, &self));
                }
                Ok(Wire { expiry, data, meta: meta.unwrap_or_default() })
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
        let StoredValue::Encoded(bytes) = encode(
            Representation::Encoded,
            CachedItem::new(1_458_483_300.0, Some(Arc::new(vec!["a"])), None),
        )
        .unwrap() else {
            panic!("expected bytes")
        };
        assert_eq!(&bytes[..], br#"[1458483300.0,["a"]]"#);
        let item: CachedItem<Vec<String>> = decode("k", &StoredValue::Encoded(bytes)).unwrap();
        assert_eq!(item.expiry, 1_458_483_300.0);
        assert_eq!(item.data.unwrap().as_slice(), ["a"]);
    }

    #[test]
    fn the_placeholder_is_the_expiry_alone_and_null_data_stays_data() {
        let encoded = |data: Option<Arc<Option<u32>>>| match encode(
            Representation::Encoded,
            CachedItem::new(2.5, data, None),
        )
        .unwrap()
        {
            StoredValue::Encoded(bytes) => bytes,
            StoredValue::Shared(_) => panic!("expected bytes"),
        };
        let placeholder = encoded(None);
        assert_eq!(&placeholder[..], b"[2.5]");
        let none = encoded(Some(Arc::new(None)));
        assert_eq!(&none[..], b"[2.5,null]");

        let item: CachedItem<Option<u32>> = decode("k", &StoredValue::Encoded(placeholder)).unwrap();
        assert_eq!((item.expiry, item.data), (2.5, None));
        let item: CachedItem<Option<u32>> = decode("k", &StoredValue::Encoded(none)).unwrap();
        assert_eq!(item.data.as_deref(), Some(&None), "`None` data is data, not the placeholder");

        for bad in [&b"[]"[..], b"[1.0,2,3]", b"{}", b"[\"x\"]"] {
            let err = decode::<Option<u32>>("k", &StoredValue::Encoded(bytes::Bytes::copy_from_slice(bad)));
            assert!(matches!(err, Err(Error::Decode { .. })), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_fetch_time_is_a_third_element_and_older_items_still_read() {
        let item = CachedItem::new(10.0, Some(Arc::new("a".to_owned())), Some(4.5));
        let StoredValue::Encoded(bytes) = encode(Representation::Encoded, item.clone()).unwrap() else {
            panic!("expected bytes")
        };
        assert_eq!(&bytes[..], br#"[10.0,"a",{"fetched_at":4.5}]"#);
        assert_eq!(decode::<String>("k", &StoredValue::Encoded(bytes)).unwrap(), item);
        let old: CachedItem<String> = decode("k", &StoredValue::Encoded(r#"[10.0,"a"]"#.into())).unwrap();
        assert_eq!((old.expiry, old.fetched_at), (10.0, None));
        // A later field in the object is ignored; a fourth element is not an item.
        let later: CachedItem<String> =
            decode("k", &StoredValue::Encoded(r#"[10.0,"a",{"fetched_at":1.0,"v":2}]"#.into())).unwrap();
        assert_eq!(later.fetched_at, Some(1.0));
        assert!(decode::<String>("k", &StoredValue::Encoded(r#"[10.0,"a",{},4]"#.into())).is_err());
        // The placeholder has no fetch time, even if one is given.
        let StoredValue::Encoded(bytes) =
            encode::<String>(Representation::Encoded, CachedItem::new(3.0, None, Some(1.0))).unwrap()
        else {
            panic!("expected bytes")
        };
        assert_eq!(&bytes[..], b"[3.0]");
    }

    #[test]
    fn tag_versions_are_a_map_in_the_meta_and_round_trip() {
        let versions: TagVersions = vec![("users".into(), "5 ab".into())].into();
        let item = CachedItem::new(10.0, Some(Arc::new(1u32)), Some(4.0)).with_tags(Some(versions));
        let StoredValue::Encoded(bytes) = encode(Representation::Encoded, item.clone()).unwrap() else {
            panic!("expected bytes")
        };
        assert_eq!(&bytes[..], br#"[10.0,1,{"fetched_at":4.0,"tags":{"users":"5 ab"}}]"#);
        assert_eq!(decode::<u32>("k", &StoredValue::Encoded(bytes.clone())).unwrap(), item);
        let renewed = renew(&StoredValue::Encoded(bytes), &item).unwrap();
        assert_eq!(decode::<u32>("k", &renewed).unwrap(), item, "a renewed item keeps its tags' versions");
    }

    #[test]
    fn a_wrong_type_is_a_decode_error() {
        let shared =
            encode(Representation::Shared, CachedItem::new(1.0, Some(Arc::new(1u32)), None)).unwrap();
        let err = decode::<String>("k", &shared).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err}");
        let err = decode::<u32>("k", &StoredValue::Encoded("not json".into())).unwrap_err();
        assert!(err.to_string().contains("does not decode as `u32`"), "{err}");
    }
}
