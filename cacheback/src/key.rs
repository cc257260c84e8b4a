//! Cache keys: stable across processes, collision-free, bounded in length.
//!
//! # Format
//!
//! A job called with no arguments (`Args = ()`) is stored under its bare
//! [name](crate::Job::name). Otherwise the key is
//!
//! ```text
//! <job name>:<32 lowercase hex digits>
//! ```
//!
//! where the digits are the first 128 bits of the BLAKE3 hash of the
//! arguments' *canonical encoding*. The encoding is produced by a serde
//! serializer in this module and is documented so that any process (or any
//! language) can recompute a key:
//!
//! * Every value starts with a one-byte tag, so `1` and `"1"` differ, and `None`,
//!   `()` and `Some(())` differ.
//! * Integers of every width encode their value (`1u8` and `1i64` are equal),
//!   floats their IEEE-754 `f64` bits.
//! * Strings, chars and byte strings carry their length, so `("a:b",)` and
//!   `("a", "b")` differ.
//! * Sequences and tuples (positional arguments) use a different tag from maps
//!   and structs (named arguments). Map and struct entries are sorted by their
//!   encoded key, so a `HashMap`'s iteration order and a struct's field order
//!   never change a key.
//! * A value wrapped in [`ByIdentity`] encodes only its entity name and primary
//!   key: two rows give two keys, one row gives one key in every process, and
//!   editing a row's other columns does not move its key.
//!
//! Keys are at most [`MAX_KEY_LEN`] bytes: a job name too long to fit is cut at
//! a character boundary and suffixed with a hash of the full name.
//!
//! The hash is cryptographic on purpose: arguments often come from a request
//! (`?name=...`), and a fast non-cryptographic hash would let a client craft two
//! arguments that share a cache entry.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeOwned, IgnoredAny};
use serde::ser::{self, Serialize};
use serde::{Deserialize, Deserializer, Serializer};

/// The longest key [`derive_key`] produces, in bytes (memcached's limit, which
/// the original honoured).
pub const MAX_KEY_LEN: usize = 250;

/// Version tag hashed in front of every encoding, so a future change of the
/// encoding cannot silently reuse old keys.
const ENCODING_VERSION: &[u8] = b"cacheback-key-v1\0";
const IDENTITY_MARKER: &str = "$cacheback::ByIdentity";
const HASH_HEX_LEN: usize = 32;

/// Derives the cache key of a call of job `name` with `args`.
///
/// ```
/// use cacheback::key::derive_key;
/// assert_eq!(derive_key("app::Tweets", &()).unwrap(), "app::Tweets");
/// let one = derive_key("app::Tweets", &(1,)).unwrap();
/// assert!(one.starts_with("app::Tweets:"));
/// assert_ne!(one, derive_key("app::Tweets", &("1",)).unwrap());
/// assert_ne!(
///     derive_key("j", &("a:b",)).unwrap(),
///     derive_key("j", &("a", "b")).unwrap(),
/// );
/// ```
pub fn derive_key<A: Serialize + ?Sized>(name: &str, args: &A) -> Result<String, KeyError> {
    // This runs on every read. The version tag and the encoding share one
    // buffer, this thread's, kept between calls; a key derived lately on this
    // thread from the same name and encoding is copied rather than hashed.
    let mut encoder = Encoder { out: SCRATCH.take(), identity_next: false };
    encoder.out.clear();
    encoder.out.extend_from_slice(ENCODING_VERSION);
    let encoded = args.serialize(&mut encoder);
    let key = encoded.map(|()| {
        let hashed = &encoder.out;
        if hashed[ENCODING_VERSION.len()..] == [TAG_UNIT] {
            return bounded_name(name, 0).into_owned();
        }
        // The table tells keys apart by their encodings, without the version tag they all share.
        recent::key(name, &hashed[ENCODING_VERSION.len()..], || hashed_key(name, hashed))
    });
    if encoder.out.capacity() <= MAX_SCRATCH {
        SCRATCH.set(encoder.out);
    }
    key
}

/// The key of `name` with arguments whose version-tagged encoding is `hashed`.
fn hashed_key(name: &str, hashed: &[u8]) -> String {
    // BLAKE3's one-shot `hash` of a short input costs a fraction of a
    // `Hasher`'s set-up.
    let digest = blake3::hash(hashed);
    let name = bounded_name(name, HASH_HEX_LEN + 1);
    let mut key = String::with_capacity(name.len() + 1 + HASH_HEX_LEN);
    key.push_str(&name);
    key.push(':');
    push_hex(&mut key, &digest.as_bytes()[..HASH_HEX_LEN / 2]);
    key
}

/// The most bytes a thread keeps for [`derive_key`]'s next call.
const MAX_SCRATCH: usize = 4096;

thread_local! {
    /// [`derive_key`]'s buffer, between calls. A call made while another is
    /// encoding on the same thread (a `Serialize` impl deriving a key) finds
    /// it taken and starts with an empty one.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The keys this thread derived lately: a HIT derives the key of the same
/// arguments again and again, and the hash is most of what that costs (with
/// this table a key costs half the instructions, and a HIT a quarter fewer:
/// docs/advanced.md, "What a HIT costs").
///
/// By hand, as no crate does this well enough for the path it is on: a
/// direct-mapped table of [`SLOTS`](recent::SLOTS) entries per thread, with
/// no lock, no eviction policy and no clock: an entry is found by a fast
/// hash of the name and the encoding and kept until another one lands in its
/// slot. A hit compares the whole name and encoding (the encoding is
/// canonical, so equal encodings are equal arguments), so the hash only picks
/// the slot: arguments chosen to collide cost a hash each, never a wrong key.
mod recent {
    use std::cell::RefCell;
    use std::hash::{BuildHasher, Hasher};

    /// Entries per thread: about 160 KB for keys of ~100 bytes. Enough that
    /// a bulk read of 100 keys finds nine in ten of them (with 256 slots,
    /// collisions made it six in ten).
    pub(super) const SLOTS: usize = 1024;

    struct Entry {
        name: Box<str>,
        encoded: Box<[u8]>,
        key: Box<str>,
    }

    thread_local! {
        static RECENT: RefCell<Vec<Option<Entry>>> = const { RefCell::new(Vec::new()) };
    }

    /// The key of `name` and arguments `encoded`: this thread's copy, or
    /// `derive`'s (then kept).
    pub(super) fn key(name: &str, encoded: &[u8], derive: impl FnOnce() -> String) -> String {
        let mut hasher = foldhash::fast::FixedState::default().build_hasher();
        hasher.write(encoded);
        hasher.write(name.as_bytes());
        let slot = hasher.finish() as usize % SLOTS;
        RECENT.with(|recent| {
            let Ok(mut recent) = recent.try_borrow_mut() else { return derive() };
            if recent.is_empty() {
                recent.resize_with(SLOTS, || None);
            }
            if let Some(entry) = &recent[slot]
                && *entry.encoded == *encoded
                && *entry.name == *name
            {
                return String::from(&*entry.key);
            }
            let key = derive();
            recent[slot] =
                Some(Entry { name: name.into(), encoded: encoded.into(), key: key.as_str().into() });
            key
        })
    }
}

/// The canonical encoding of `value` described in the [module docs](self).
///
/// ```
/// use cacheback::key::canonical_encoding;
/// assert_ne!(canonical_encoding(&1).unwrap(), canonical_encoding("1").unwrap());
/// assert_eq!(canonical_encoding(&1u8).unwrap(), canonical_encoding(&1i64).unwrap());
/// ```
pub fn canonical_encoding<A: Serialize + ?Sized>(value: &A) -> Result<Vec<u8>, KeyError> {
    let mut encoder = Encoder { out: Vec::with_capacity(64), identity_next: false };
    value.serialize(&mut encoder)?;
    Ok(encoder.out)
}

/// Cuts `name` so that `name + reserve` bytes fit in [`MAX_KEY_LEN`].
fn bounded_name(name: &str, reserve: usize) -> Cow<'_, str> {
    let budget = MAX_KEY_LEN - reserve;
    if name.len() <= budget {
        return Cow::Borrowed(name);
    }
    // "<prefix>~<16 hex of the full name's hash>"
    let mut cut = budget - 17;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut short = String::with_capacity(budget);
    short.push_str(&name[..cut]);
    short.push('~');
    push_hex(&mut short, &blake3::hash(name.as_bytes()).as_bytes()[..8]);
    Cow::Owned(short)
}

/// Appends `bytes` (at most 32 of them) as lowercase hex digits.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 64];
    for (pair, b) in digits.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
    let digits = &digits[..2 * bytes.len().min(32)];
    out.push_str(std::str::from_utf8(digits).expect("hex digits are ASCII"));
}

/// Why a key could not be built: a `Serialize` impl in the arguments failed.
///
/// ```
/// let err = cacheback::key::KeyError::new("bad argument");
/// assert_eq!(err.to_string(), "bad argument");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl KeyError {
    /// A key error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl ser::Error for KeyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// A value with an identity: an entity (table) name and a primary key.
///
/// Wrap such a value in [`ByIdentity`] to key a job argument on *which row* it
/// is rather than on every column (the original's `test_key_django_model`).
///
/// ```
/// use cacheback::key::{ByIdentity, Identity, derive_key};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct User { id: i32, name: String }
/// impl Identity for User {
///     type Id = i32;
///     fn entity(&self) -> &str { "users" }
///     fn id(&self) -> i32 { self.id }
/// }
/// let alan = User { id: 1, name: "Alan".into() };
/// let renamed = User { id: 1, name: "Alan T.".into() };
/// let john = User { id: 2, name: "John".into() };
/// let key = |u| derive_key("j", &(ByIdentity(u),)).unwrap();
/// assert_eq!(key(alan), key(renamed));
/// assert_ne!(key(User { id: 1, name: String::new() }), key(john));
/// ```
pub trait Identity {
    /// The primary key's type.
    type Id: Serialize;
    /// The entity's name, e.g. its table name.
    fn entity(&self) -> &str;
    /// The primary key of this value.
    fn id(&self) -> Self::Id;
}

/// An argument keyed on its [`Identity`], carried whole in refresh payloads.
///
/// In the cache key only `(entity, id)` counts; in a payload (JSON) the value
/// is encoded as `[[entity, id], value]` so a worker gets the full value back.
///
/// ```
/// use cacheback::key::{ByIdentity, Identity};
/// #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
/// struct Row { id: i64 }
/// impl Identity for Row {
///     type Id = i64;
///     fn entity(&self) -> &str { "rows" }
///     fn id(&self) -> i64 { self.id }
/// }
/// let json = serde_json::to_string(&ByIdentity(Row { id: 7 })).unwrap();
/// assert_eq!(json, r#"[["rows",7],{"id":7}]"#);
/// let back: ByIdentity<Row> = serde_json::from_str(&json).unwrap();
/// assert_eq!(back.0, Row { id: 7 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ByIdentity<M>(pub M);

impl<M> std::ops::Deref for ByIdentity<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.0
    }
}

impl<M: Identity + Serialize> Serialize for ByIdentity<M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let identity = (self.0.entity(), self.0.id());
        serializer.serialize_newtype_struct(IDENTITY_MARKER, &(identity, &self.0))
    }
}

impl<'de, M: DeserializeOwned> Deserialize<'de> for ByIdentity<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<M>(std::marker::PhantomData<M>);
        impl<'de, M: DeserializeOwned> de::Visitor<'de> for Visitor<M> {
            type Value = ByIdentity<M>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an [[entity, id], value] pair")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                let (_, value) = <(IgnoredAny, M)>::deserialize(d)?;
                Ok(ByIdentity(value))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let _: IgnoredAny = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let value: M = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                Ok(ByIdentity(value))
            }
        }
        deserializer.deserialize_newtype_struct(IDENTITY_MARKER, Visitor(std::marker::PhantomData))
    }
}

// ---------------------------------------------------------------------------
// The canonical encoder.
//
// Written by hand: the crates that serialize "canonically" (JSON canonical forms,
// bincode) either conflate types that must key differently (JSON: `1.0` vs `1`,
// unit vs `None`), depend on a map's iteration order, or change with serde_json
// feature flags another crate in the build may turn on (`preserve_order`).
// ---------------------------------------------------------------------------

const TAG_UNIT: u8 = b'U';
const TAG_NONE: u8 = b'N';
const TAG_SOME: u8 = b'S';
const TAG_TRUE: u8 = b'T';
const TAG_FALSE: u8 = b'F';
const TAG_POS_INT: u8 = b'p';
const TAG_NEG_INT: u8 = b'n';
const TAG_FLOAT: u8 = b'd';
const TAG_STR: u8 = b's';
const TAG_BYTES: u8 = b'b';
const TAG_VARIANT: u8 = b'V';
const TAG_SEQ: u8 = b'[';
const TAG_SEQ_ITEM: u8 = b',';
const TAG_SEQ_END: u8 = b']';
const TAG_MAP: u8 = b'{';
const TAG_MAP_END: u8 = b'}';

struct Encoder {
    out: Vec<u8>,
    /// Set by the identity marker: the next tuple keeps only its first element.
    identity_next: bool,
}

impl Encoder {
    fn len(&mut self, len: usize) {
        self.out.extend_from_slice(&(len as u64).to_le_bytes());
    }
    fn bytes(&mut self, tag: u8, bytes: &[u8]) {
        self.out.push(tag);
        self.len(bytes.len());
        self.out.extend_from_slice(bytes);
    }
    fn uint(&mut self, tag: u8, v: u128) {
        self.out.push(tag);
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn int(&mut self, v: i128) {
        if v < 0 { self.uint(TAG_NEG_INT, v.unsigned_abs()) } else { self.uint(TAG_POS_INT, v as u128) }
    }
    fn variant(&mut self, variant: &str) {
        self.out.push(TAG_VARIANT);
        self.bytes(TAG_STR, variant.as_bytes());
    }
    fn seq(&mut self) -> SeqEncoder<'_> {
        let keep = if std::mem::take(&mut self.identity_next) { Some(1) } else { None };
        self.out.push(TAG_SEQ);
        SeqEncoder { enc: self, index: 0, keep }
    }
    fn map(&mut self) -> MapEncoder<'_> {
        self.identity_next = false;
        MapEncoder { enc: self, entries: Vec::new(), key: None }
    }
}

#[doc(hidden)]
pub struct SeqEncoder<'e> {
    enc: &'e mut Encoder,
    index: usize,
    keep: Option<usize>,
}

impl SeqEncoder<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
        let kept = self.keep.is_none_or(|keep| self.index < keep);
        self.index += 1;
        if kept {
            self.enc.out.push(TAG_SEQ_ITEM);
            value.serialize(&mut *self.enc)?;
        }
        Ok(())
    }
    fn finish(self) -> Result<(), KeyError> {
        self.enc.out.push(TAG_SEQ_END);
        Ok(())
    }
}

#[doc(hidden)]
pub struct MapEncoder<'e> {
    enc: &'e mut Encoder,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    key: Option<Vec<u8>>,
}

impl MapEncoder<'_> {
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, KeyError> {
        canonical_encoding(value)
    }
    fn entry(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.entries.push((key, value));
    }
    fn finish(mut self) -> Result<(), KeyError> {
        self.entries.sort_unstable();
        self.enc.out.push(TAG_MAP);
        self.enc.len(self.entries.len());
        for (k, v) in &self.entries {
            self.enc.len(k.len());
            self.enc.out.extend_from_slice(k);
            self.enc.len(v.len());
            self.enc.out.extend_from_slice(v);
        }
        self.enc.out.push(TAG_MAP_END);
        Ok(())
    }
}

impl<'e> Serializer for &'e mut Encoder {
    type Ok = ();
    type Error = KeyError;
    type SerializeSeq = SeqEncoder<'e>;
    type SerializeTuple = SeqEncoder<'e>;
    type SerializeTupleStruct = SeqEncoder<'e>;
    type SerializeTupleVariant = SeqEncoder<'e>;
    type SerializeMap = MapEncoder<'e>;
    type SerializeStruct = MapEncoder<'e>;
    type SerializeStructVariant = MapEncoder<'e>;

    fn serialize_bool(self, v: bool) -> Result<(), KeyError> {
        self.out.push(if v { TAG_TRUE } else { TAG_FALSE });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), KeyError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), KeyError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), KeyError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), KeyError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), KeyError> {
        self.int(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), KeyError> {
        self.uint(TAG_POS_INT, v.into());
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), KeyError> {
        self.uint(TAG_POS_INT, v.into());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), KeyError> {
        self.uint(TAG_POS_INT, v.into());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), KeyError> {
        self.uint(TAG_POS_INT, v.into());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), KeyError> {
        self.uint(TAG_POS_INT, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), KeyError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), KeyError> {
        // One encoding for zero and one for NaN, whatever their sign or payload.
        let v = if v == 0.0 {
            0.0
        } else if v.is_nan() {
            f64::NAN
        } else {
            v
        };
        self.out.push(TAG_FLOAT);
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), KeyError> {
        self.bytes(TAG_STR, v.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), KeyError> {
        self.bytes(TAG_STR, v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), KeyError> {
        self.bytes(TAG_BYTES, v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), KeyError> {
        self.out.push(TAG_NONE);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), KeyError> {
        self.out.push(TAG_SOME);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), KeyError> {
        self.out.push(TAG_UNIT);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), KeyError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<(), KeyError> {
        self.variant(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        if name == IDENTITY_MARKER {
            self.identity_next = true;
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        self.variant(variant);
        value.serialize(self)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, KeyError> {
        Ok(self.seq())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, KeyError> {
        Ok(self.seq())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, KeyError> {
        Ok(self.seq())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, KeyError> {
        self.variant(variant);
        Ok(self.seq())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, KeyError> {
        Ok(self.map())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, KeyError> {
        Ok(self.map())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, KeyError> {
        self.variant(variant);
        Ok(self.map())
    }
}

/// The four positional compound types of serde encode alike.
macro_rules! positional {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for SeqEncoder<'_> {
            type Ok = ();
            type Error = KeyError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
                self.element(value)
            }
            fn end(self) -> Result<(), KeyError> {
                self.finish()
            }
        }
    )*};
}

positional!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for MapEncoder<'_> {
    type Ok = ();
    type Error = KeyError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), KeyError> {
        self.key = Some(Self::encode(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
        let key = self.key.take().ok_or_else(|| KeyError::new("map value serialized before its key"))?;
        let value = Self::encode(value)?;
        self.entry(key, value);
        Ok(())
    }
    fn end(self) -> Result<(), KeyError> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapEncoder<'_> {
    type Ok = ();
    type Error = KeyError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        let key = Self::encode(key)?;
        let value = Self::encode(value)?;
        self.entry(key, value);
        Ok(())
    }
    fn end(self) -> Result<(), KeyError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for MapEncoder<'_> {
    type Ok = ();
    type Error = KeyError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), KeyError> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    fn key<A: Serialize>(args: &A) -> String {
        derive_key("tests::DummyJob", args).unwrap()
    }

    #[test]
    fn no_args_is_the_bare_name() {
        assert_eq!(key(&()), "tests::DummyJob");
    }

    #[test]
    fn keys_have_the_documented_shape() {
        let k = key(&(1, 2, 3));
        let (name, hash) = k.split_once(':').map(|(n, _)| (n, &k[n.len() + 1..])).unwrap();
        assert_eq!(name, "tests");
        assert!(hash.starts_with(":DummyJob:"));
        let digest = k.rsplit(':').next().unwrap();
        assert_eq!(digest.len(), 32);
        assert!(digest.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn the_encoding_is_the_documented_one() {
        // Rebuild the bytes of `("foo", 1)` by hand from the module docs: a
        // change of the encoding moves every key in every deployed cache, so
        // it must be a deliberate version bump, never an accident.
        let mut expected = Vec::new();
        expected.push(b'[');
        expected.push(b',');
        expected.push(b's');
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.extend_from_slice(b"foo");
        expected.push(b',');
        expected.push(b'p');
        expected.extend_from_slice(&1u128.to_le_bytes());
        expected.push(b']');
        assert_eq!(canonical_encoding(&("foo", 1)).unwrap(), expected);

        let mut hasher = blake3::Hasher::new();
        hasher.update(b"cacheback-key-v1\0");
        hasher.update(&expected);
        let hex: String = hasher.finalize().as_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(key(&("foo", 1)), format!("tests::DummyJob:{hex}"));
    }

    #[test]
    fn separators_inside_strings_do_not_collide() {
        assert_ne!(key(&("a:b",)), key(&("a", "b")));
        assert_ne!(key(&("ab", "c")), key(&("a", "bc")));
        assert_ne!(key(&(vec!["a", "b"],)), key(&(vec!["a"], vec!["b"])));
    }

    #[test]
    fn types_do_not_collide() {
        assert_ne!(key(&(1,)), key(&("1",)));
        assert_ne!(key(&(1,)), key(&(1.0,)));
        assert_ne!(key(&(true,)), key(&(1,)));
        assert_ne!(key(&(None::<i32>,)), key(&((),)));
        assert_ne!(key(&(Some(1),)), key(&(1,)));
        assert_ne!(key(&(b"ab".as_slice(),)), key(&("ab",)));
        assert_ne!(key(&(-1i64,)), key(&(1i64,)));
    }

    #[test]
    fn integer_width_does_not_matter() {
        assert_eq!(key(&(1u8,)), key(&(1i64,)));
        assert_eq!(key(&(u64::MAX,)), key(&(u128::from(u64::MAX),)));
    }

    #[derive(serde::Serialize)]
    struct Named {
        foo: &'static str,
    }

    #[derive(serde::Serialize)]
    struct Reordered {
        bar: &'static str,
        foo: &'static str,
    }

    #[derive(serde::Serialize)]
    struct Ordered {
        foo: &'static str,
        bar: &'static str,
    }

    #[test]
    fn positional_and_named_do_not_collide() {
        assert_ne!(key(&("bar",)), key(&Named { foo: "bar" }));
        assert_ne!(key(&("foo", "bar")), key(&Named { foo: "bar" }));
    }

    #[test]
    fn named_arguments_are_order_independent() {
        assert_eq!(key(&Ordered { foo: "1", bar: "2" }), key(&Reordered { bar: "2", foo: "1" }));
        let mut hashed = HashMap::new();
        let mut sorted = BTreeMap::new();
        for i in 0..50 {
            hashed.insert(format!("k{i}"), i);
            sorted.insert(format!("k{i}"), i);
        }
        assert_eq!(key(&hashed), key(&sorted));
        assert_eq!(key(&Named { foo: "x" }), key(&BTreeMap::from([("foo", "x")])));
    }

    #[test]
    fn keys_are_bounded() {
        let long = "x".repeat(400);
        let k = derive_key(&long, &(1,)).unwrap();
        assert!(k.len() <= MAX_KEY_LEN, "{}", k.len());
        let bare = derive_key(&long, &()).unwrap();
        assert!(bare.len() <= MAX_KEY_LEN);
        assert_ne!(bare, derive_key(&"x".repeat(401), &()).unwrap());
        let wide = "é".repeat(300);
        assert!(derive_key(&wide, &(1,)).unwrap().len() <= MAX_KEY_LEN);
    }

    #[test]
    fn a_failing_serialize_is_an_error_not_a_panic() {
        struct Bad;
        impl Serialize for Bad {
            fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(ser::Error::custom("cannot key this"))
            }
        }
        assert_eq!(derive_key("j", &(Bad,)).unwrap_err().to_string(), "cannot key this");
    }

    /// The key of `args` for `name`, hashed afresh (the recent-keys table
    /// bypassed), as `derive_key` computes it.
    fn fresh(name: &str, args: &impl Serialize) -> String {
        let mut hashed = ENCODING_VERSION.to_vec();
        hashed.extend_from_slice(&canonical_encoding(args).unwrap());
        hashed_key(name, &hashed)
    }

    #[test]
    fn a_golden_key() {
        // Computed outside Rust, from the module docs' encoding, with
        // Python's `blake3` package: every deployed cache holds such keys.
        assert_eq!(key(&("foo", 1)), "tests::DummyJob:9193fed2d921eb0dd901b07e44fba023");
    }

    #[test]
    fn recent_keys_are_the_keys() {
        // Many more arguments than the table has slots, read again and again
        // in an order that makes them evict each other: every answer is the
        // key hashed afresh, whichever slot it came from.
        let args: Vec<(u32, String)> = (0..4 * recent::SLOTS as u32).map(|i| (i, format!("n{i}"))).collect();
        for round in 0..3 {
            for (i, a) in args.iter().enumerate() {
                let name = if (i + round) % 2 == 0 { "tests::A" } else { "tests::B" };
                assert_eq!(derive_key(name, a).unwrap(), fresh(name, a), "{name} {a:?}");
            }
        }
        // The same arguments under two names are two keys, read in turns.
        for _ in 0..3 {
            assert_eq!(derive_key("tests::A", &(7,)).unwrap(), fresh("tests::A", &(7,)));
            assert_eq!(derive_key("tests::B", &(7,)).unwrap(), fresh("tests::B", &(7,)));
        }
    }

    #[test]
    fn a_key_derived_while_encoding_another_is_right() {
        // A `Serialize` impl that derives a key of its own (the thread's
        // buffer is in use meanwhile).
        struct Nested(u32);
        impl Serialize for Nested {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let inner = derive_key("tests::Inner", &(self.0,)).map_err(ser::Error::custom)?;
                serializer.serialize_str(&inner)
            }
        }
        let outer = derive_key("tests::Outer", &(Nested(3),)).unwrap();
        let inner = fresh("tests::Inner", &(3,));
        assert_eq!(outer, fresh("tests::Outer", &(inner.as_str(),)));
        assert_eq!(derive_key("tests::Outer", &(Nested(3),)).unwrap(), outer, "and again, from the table");
    }
}
