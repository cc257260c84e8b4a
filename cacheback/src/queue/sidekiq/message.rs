//! A Sidekiq job as it is in Redis ([`Message`]), its times ([`Stamp`]) and
//! arguments ([`Args`]), and what is not a job ([`InvalidJob`]).

use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::REFRESH_CLASS;
use super::{DEFAULT_MAX_RETRIES, DEFAULT_QUEUE, INVALID_JOB_CLASS, Timestamps, new_jid, now};

/// A time in a job, in the form it was written in (see [`Timestamps`]).
///
/// It is written back in that form, so a job re-pushed by cacheback reads
/// the same to the Sidekiq that wrote it. Read as Sidekiq 8 reads it: a JSON
/// float is epoch seconds, a JSON integer epoch milliseconds.
///
/// ```
/// use cacheback::queue::sidekiq::{Stamp, Timestamps};
/// let sidekiq8: Stamp = serde_json::from_str("1732450000123").unwrap();
/// assert_eq!(sidekiq8, Stamp::Millis(1_732_450_000_123));
/// assert_eq!(sidekiq8.as_secs_f64(), 1_732_450_000.123);
/// assert_eq!(serde_json::to_string(&sidekiq8).unwrap(), "1732450000123");
/// let sidekiq6: Stamp = serde_json::from_str("1732450000.5").unwrap();
/// assert_eq!(sidekiq6.form(), Timestamps::Seconds);
/// assert_eq!(sidekiq6.to_form(Timestamps::Milliseconds), Stamp::Millis(1_732_450_000_500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stamp {
    /// Float epoch seconds (Sidekiq 6.x, 7.x).
    Seconds(f64),
    /// Integer epoch milliseconds (Sidekiq 8).
    Millis(i64),
}

impl Stamp {
    /// Now, in `form`.
    pub fn now(form: Timestamps) -> Self {
        Self::from_secs_f64(now(), form)
    }

    /// The time `secs` epoch seconds, in `form`.
    #[allow(clippy::cast_possible_truncation)]
    pub fn from_secs_f64(secs: f64, form: Timestamps) -> Self {
        match form {
            Timestamps::Seconds => Self::Seconds(secs),
            // Saturating: an epoch-seconds f64 times 1000 fits an i64 by far.
            Timestamps::Milliseconds => Self::Millis((secs * 1000.0).round() as i64),
        }
    }

    /// The time in epoch seconds, whatever its form.
    #[allow(clippy::cast_precision_loss)]
    pub fn as_secs_f64(self) -> f64 {
        match self {
            Self::Seconds(secs) => secs,
            Self::Millis(ms) => ms as f64 / 1000.0,
        }
    }

    /// The form it was written in.
    pub fn form(self) -> Timestamps {
        match self {
            Self::Seconds(_) => Timestamps::Seconds,
            Self::Millis(_) => Timestamps::Milliseconds,
        }
    }

    /// The same time in `form`.
    #[must_use]
    pub fn to_form(self, form: Timestamps) -> Self {
        if self.form() == form { self } else { Self::from_secs_f64(self.as_secs_f64(), form) }
    }

    /// A time as Sidekiq 8 reads one: a float is seconds, an integer
    /// milliseconds. `None` for what no Sidekiq reads as a time.
    fn from_json(value: &serde_json::Value) -> Option<Self> {
        let serde_json::Value::Number(n) = value else { return None };
        if let Some(ms) = n.as_i64() {
            Some(Self::Millis(ms))
        } else if n.is_f64() {
            n.as_f64().filter(|s| s.is_finite()).map(Self::Seconds)
        } else {
            None // an integer beyond i64: no time
        }
    }
}

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Self::Seconds(secs) => serializer.serialize_f64(secs),
            Self::Millis(ms) => serializer.serialize_i64(ms),
        }
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Self::from_json(&value).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "a Sidekiq time is a number of epoch seconds or milliseconds, not {value}"
            ))
        })
    }
}

/// A job's `args`, and the arguments Ruby's `perform(*args)` gets from them.
///
/// Sidekiq's client always writes an array. Anything else, which only a
/// hand-written job has, is kept as it is (a retry writes it back unchanged)
/// and spread as Ruby's `*` spreads it: `null` is no argument, an object its
/// `[key, value]` pairs, any other value one argument. A missing `args` is
/// written back as `[]`.
///
/// ```
/// use cacheback::queue::sidekiq::Args;
/// use serde_json::json;
/// let args: Args = serde_json::from_value(json!({"a": 1})).unwrap();
/// assert_eq!(args.as_slice(), [json!(["a", 1])]);
/// assert_eq!(args.ruby_class(), "Hash");
/// assert_eq!(serde_json::to_value(&args).unwrap(), json!({"a": 1}));
/// let args = Args::from(vec![json!("x")]);
/// assert_eq!((args.len(), args.ruby_class()), (1, "Array"));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Args {
    /// The arguments `perform` gets.
    spread: Vec<serde_json::Value>,
    /// `args` as the job has it, when that is not an array.
    other: Option<serde_json::Value>,
}

impl Args {
    /// The arguments Ruby's `perform(*args)` gets.
    pub fn as_slice(&self) -> &[serde_json::Value] {
        &self.spread
    }

    /// Whether `args` is an array, as Sidekiq's client writes it.
    pub fn is_array(&self) -> bool {
        self.other.is_none()
    }

    /// The Ruby class of `args` as the job has it: `Array`, or for a
    /// hand-written job `Hash`, `String`, `Integer`, `Float`, `NilClass`,
    /// `TrueClass` or `FalseClass`.
    pub fn ruby_class(&self) -> &'static str {
        self.other.as_ref().map_or("Array", ruby_class)
    }

    /// `args` as the job has it.
    pub fn to_value(&self) -> serde_json::Value {
        self.other.clone().unwrap_or_else(|| serde_json::Value::Array(self.spread.clone()))
    }
}

impl std::ops::Deref for Args {
    type Target = [serde_json::Value];

    fn deref(&self) -> &Self::Target {
        &self.spread
    }
}

impl From<Vec<serde_json::Value>> for Args {
    fn from(args: Vec<serde_json::Value>) -> Self {
        Self { spread: args, other: None }
    }
}

impl From<serde_json::Value> for Args {
    fn from(value: serde_json::Value) -> Self {
        use serde_json::Value;
        let spread = match &value {
            Value::Array(args) => return Self::from(args.clone()),
            Value::Null => Vec::new(),
            Value::Object(pairs) => {
                pairs.iter().map(|(k, v)| Value::Array(vec![Value::String(k.clone()), v.clone()])).collect()
            }
            other => vec![other.clone()],
        };
        Self { spread, other: Some(value) }
    }
}

impl Serialize for Args {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.other {
            Some(other) => other.serialize(serializer),
            None => self.spread.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(Self::from)
    }
}

/// The Ruby class of a JSON value, as Ruby's `JSON.parse` makes it.
fn ruby_class(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "NilClass",
        Value::Bool(true) => "TrueClass",
        Value::Bool(false) => "FalseClass",
        Value::Number(n) if n.is_f64() => "Float",
        Value::Number(_) => "Integer",
        Value::String(_) => "String",
        Value::Array(_) => "Array",
        Value::Object(_) => "Hash",
    }
}

/// The kind of a JSON value, for messages.
fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Why an entry of a queue or of a sorted set is not a Sidekiq job: it is not
/// JSON, or not a JSON object, or has no `class` string.
///
/// ```
/// use cacheback::queue::sidekiq::Message;
/// let err = Message::parse(r#"["x",1,2]"#, "cacheback").unwrap_err();
/// assert_eq!(err.to_string(), "not a Sidekiq job: a JSON array, not an object with a `class`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Sidekiq job: {0}")]
pub struct InvalidJob(String);

/// A job as Sidekiq stores it.
///
/// Read as Ruby Sidekiq reads a job, so that every job Ruby runs, cacheback
/// runs (or fails) the same way:
///
/// * Fields cacheback does not know are kept as they are, and so is a known
///   field whose value is not of its type (a string `retry_count`, say).
/// * A missing `jid` gets a new one, a missing `created_at` the `enqueued_at`
///   (or now), a missing `queue` the queue it was fetched from (see
///   [`parse`](Self::parse)), and a missing or `null` `retry` is `true`, as
///   Sidekiq's client would have written.
/// * `args` that is not an array is kept, and spread as Ruby spreads it (see
///   [`Args`]).
/// * Times keep their form, Sidekiq 6/7's float seconds or Sidekiq 8's
///   integer milliseconds (see [`Stamp`]).
///
/// Only JSON that is not an object with a string `class` is not a job.
/// Absent fields are not written (no `null`s).
///
/// ```
/// use cacheback::queue::sidekiq::{Message, Stamp};
/// let msg: Message = serde_json::from_str(
///     r#"{"class":"Cacheback::RefreshCache","args":[],"jid":"0123456789abcdef01234567",
///         "queue":"cacheback","retry":3,"created_at":1.5,"enqueued_at":2.5,"tags":["x"]}"#,
/// ).unwrap();
/// assert_eq!(msg.max_retries(), Some(3));
/// assert_eq!(msg.created_at, Stamp::Seconds(1.5));
/// let back = serde_json::to_value(&msg).unwrap();
/// assert_eq!(back["tags"][0], "x");
/// assert!(back.get("error_message").is_none());
///
/// // Sidekiq 8: integer milliseconds, read as such and written back as such.
/// let msg: Message = serde_json::from_str(
///     r#"{"class":"Cacheback::RefreshCache","args":[],"jid":"0123456789abcdef01234567",
///         "queue":"cacheback","retry":true,"created_at":1732450000123}"#,
/// ).unwrap();
/// assert_eq!(msg.created_at.as_secs_f64(), 1_732_450_000.123);
/// assert_eq!(serde_json::to_value(&msg).unwrap()["created_at"], 1_732_450_000_123_i64);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The worker class (`Cacheback::RefreshCache` for cacheback).
    pub class: String,
    /// The arguments: one refresh payload.
    pub args: Args,
    /// The job id: 24 lowercase hex digits.
    pub jid: String,
    /// The queue.
    pub queue: String,
    /// `true` (25 retries), `false` (none, and no dead entry) or a count; see
    /// [`max_retries`](Self::max_retries).
    pub retry: serde_json::Value,
    /// When the job was created.
    pub created_at: Stamp,
    /// When the job was last pushed to its queue.
    pub enqueued_at: Option<Stamp>,
    /// How many times it was retried (0 after the first failure).
    pub retry_count: Option<u32>,
    /// The last failure's message.
    pub error_message: Option<String>,
    /// The last failure's class.
    pub error_class: Option<String>,
    /// When it first failed.
    pub failed_at: Option<Stamp>,
    /// When it last failed again.
    pub retried_at: Option<Stamp>,
    /// Every other field, kept (and a known field whose value is not of its
    /// type, kept while cacheback does not set that field).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Message {
    /// A new job of `class` on `queue`: a fresh jid, created and enqueued now,
    /// in float epoch seconds (see [`with_timestamps`](Self::with_timestamps)).
    ///
    /// ```
    /// use cacheback::queue::sidekiq::Message;
    /// let msg = Message::new("Cacheback::RefreshCache", vec![], "cacheback", true.into());
    /// assert_eq!(msg.jid.len(), 24);
    /// assert_eq!(msg.enqueued_at, Some(msg.created_at));
    /// ```
    pub fn new(
        class: impl Into<String>,
        args: Vec<serde_json::Value>,
        queue: impl Into<String>,
        retry: serde_json::Value,
    ) -> Self {
        let created_at = Stamp::now(Timestamps::Seconds);
        Self {
            class: class.into(),
            args: args.into(),
            jid: new_jid(),
            queue: queue.into(),
            retry,
            created_at,
            enqueued_at: Some(created_at),
            retry_count: None,
            error_message: None,
            error_class: None,
            failed_at: None,
            retried_at: None,
            extra: serde_json::Map::new(),
        }
    }

    /// The same job with its times in `form`.
    ///
    /// ```
    /// use cacheback::queue::sidekiq::{Message, Timestamps};
    /// let msg = Message::new("Cacheback::RefreshCache", vec![], "cacheback", true.into())
    ///     .with_timestamps(Timestamps::Milliseconds);
    /// assert!(serde_json::to_value(&msg).unwrap()["created_at"].is_i64());
    /// ```
    #[must_use]
    pub fn with_timestamps(mut self, form: Timestamps) -> Self {
        self.created_at = self.created_at.to_form(form);
        for stamp in [&mut self.enqueued_at, &mut self.failed_at, &mut self.retried_at].into_iter().flatten()
        {
            *stamp = stamp.to_form(form);
        }
        self
    }

    /// The form of this job's times: that of its `created_at`. The times
    /// cacheback sets on it (`enqueued_at`, `failed_at`, `retried_at`) take it.
    pub fn timestamps(&self) -> Timestamps {
        self.created_at.form()
    }

    /// The job in `raw`, read as Ruby Sidekiq reads it; `queue` is the queue
    /// it was taken from, which a job without a `queue` field is on. Parsing
    /// with serde takes such a job for the default queue, `cacheback`.
    ///
    /// ```
    /// use cacheback::queue::sidekiq::Message;
    /// let msg = Message::parse(r#"{"class":"Cacheback::RefreshCache","args":"x","retry":"2"}"#, "low").unwrap();
    /// assert_eq!((msg.queue.as_str(), msg.jid.len(), msg.args.ruby_class()), ("low", 24, "String"));
    /// assert_eq!(msg.max_retries(), Some(25), "a `retry` that is not an integer means 25, as in Ruby");
    /// assert!(Message::parse("null", "low").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// `raw` is not JSON, or not a JSON object with a string `class`.
    pub fn parse(raw: &str, queue: &str) -> Result<Self, InvalidJob> {
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| InvalidJob(format!("not JSON ({e})")))?;
        Self::from_value(value, queue)
    }

    fn from_value(value: serde_json::Value, queue: &str) -> Result<Self, InvalidJob> {
        use serde_json::Value;
        let mut map = match value {
            Value::Object(map) => map,
            other => {
                return Err(InvalidJob(format!(
                    "a JSON {}, not an object with a `class`",
                    json_kind(&other)
                )));
            }
        };
        let class = match map.remove("class") {
            Some(Value::String(class)) => class,
            None => return Err(InvalidJob("an object without a `class`".to_owned())),
            Some(other) => {
                return Err(InvalidJob(format!("its `class` is a {}, not a string", json_kind(&other))));
            }
        };
        let args = map.remove("args").map_or_else(Args::default, Args::from);
        let jid = match map.remove("jid") {
            Some(Value::String(jid)) if !jid.is_empty() => jid,
            _ => new_jid(),
        };
        let queue = match map.remove("queue") {
            Some(Value::String(queue)) if !queue.is_empty() => queue,
            _ => queue.to_owned(),
        };
        let retry = match map.remove("retry") {
            None | Some(Value::Null) => Value::Bool(true),
            Some(retry) => retry,
        };
        let enqueued_at = take(&mut map, "enqueued_at", Stamp::from_json);
        let created_at = take(&mut map, "created_at", Stamp::from_json)
            .or(enqueued_at)
            .unwrap_or_else(|| Stamp::now(Timestamps::Seconds));
        Ok(Self {
            class,
            args,
            jid,
            queue,
            retry,
            created_at,
            enqueued_at,
            retry_count: take(&mut map, "retry_count", |v| {
                if v.as_i64().is_some_and(|n| n < 0) { None } else { count_of(v) }
            }),
            error_message: take(&mut map, "error_message", |v| v.as_str().map(str::to_owned)),
            error_class: take(&mut map, "error_class", |v| v.as_str().map(str::to_owned)),
            failed_at: take(&mut map, "failed_at", Stamp::from_json),
            retried_at: take(&mut map, "retried_at", Stamp::from_json),
            extra: map,
        })
    }

    /// A dead-set job carrying `raw`, which is not a job, as its argument.
    pub(crate) fn invalid(raw: &str, why: &InvalidJob, queue: &str) -> Self {
        let mut msg = Self::new(
            INVALID_JOB_CLASS,
            vec![serde_json::Value::String(raw.to_owned())],
            queue,
            false.into(),
        );
        msg.enqueued_at = None;
        msg.failed_at = Some(msg.created_at);
        msg.error_class = Some(INVALID_JOB_CLASS.to_owned());
        msg.error_message = Some(why.to_string());
        msg
    }

    /// How many retries this job has, as Ruby Sidekiq counts them: `None`
    /// when a failure discards it (`"retry": false`); the count for an
    /// integer (none below 0); 25 for anything else: `true`, and also a
    /// float (`2.0`) or a string (`"2"`), which Ruby does not take for a
    /// count.
    ///
    /// ```
    /// use cacheback::queue::sidekiq::Message;
    /// let retry = |r: serde_json::Value| Message::new("C", vec![], "q", r).max_retries();
    /// assert_eq!(retry(3.into()), Some(3));
    /// assert_eq!(retry(2.0.into()), Some(25));
    /// assert_eq!(retry("2".into()), Some(25));
    /// assert_eq!(retry(false.into()), None);
    /// ```
    pub fn max_retries(&self) -> Option<u32> {
        match &self.retry {
            serde_json::Value::Bool(false) => None,
            serde_json::Value::Number(n) if !n.is_f64() => Some(count_of(&self.retry).unwrap_or(0)),
            _ => Some(DEFAULT_MAX_RETRIES),
        }
    }

    /// Sidekiq 7.1's `retry_for`, in seconds: the job is retried until that
    /// long after its first failure, whatever its `retry` count (Sidekiq 8.1's
    /// rule).
    pub fn retry_for(&self) -> Option<f64> {
        self.extra.get("retry_for").and_then(serde_json::Value::as_f64)
    }

    /// How long, in seconds, the job has waited on its queue: since its
    /// `enqueued_at` (or `created_at`), as Sidekiq's `Job#latency`.
    ///
    /// ```
    /// use cacheback::queue::sidekiq::{Message, Stamp, Timestamps};
    /// let mut msg = Message::new("C", vec![], "q", true.into());
    /// msg.enqueued_at = Some(Stamp::from_secs_f64(msg.created_at.as_secs_f64() - 5.0, Timestamps::Milliseconds));
    /// // A millisecond stamp rounds to the nearest millisecond, so the
    /// // latency may read up to half a millisecond short of 5 s.
    /// assert!((4.999..6.0).contains(&msg.latency()));
    /// // A stamp ahead of this clock is no wait.
    /// msg.enqueued_at = Some(Stamp::from_secs_f64(msg.created_at.as_secs_f64() + 5.0, Timestamps::Seconds));
    /// assert_eq!(msg.latency(), 0.0);
    /// ```
    pub fn latency(&self) -> f64 {
        // Never below 0: a stamp a little ahead of this clock (another
        // host's, or a millisecond stamp rounded up) is no wait.
        (now() - self.enqueued_at.unwrap_or(self.created_at).as_secs_f64()).max(0.0)
    }
}

/// A count from a JSON integer (or a whole float): negative counts are 0,
/// huge ones `u32::MAX`.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn count_of(value: &serde_json::Value) -> Option<u32> {
    if let Some(n) = value.as_u64() {
        return Some(u32::try_from(n).unwrap_or(u32::MAX));
    }
    if value.as_i64().is_some() {
        return Some(0);
    }
    value.as_f64().filter(|c| c.fract() == 0.0 && *c >= 0.0).map(|c| c.min(f64::from(u32::MAX)) as u32)
}

/// Takes `key` out of `map` if `read` makes sense of it; leaves it otherwise.
fn take<T>(
    map: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    read: impl FnOnce(&serde_json::Value) -> Option<T>,
) -> Option<T> {
    let value = read(map.get(key)?)?;
    map.remove(key);
    Some(value)
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("class", &self.class)?;
        map.serialize_entry("args", &self.args)?;
        map.serialize_entry("jid", &self.jid)?;
        map.serialize_entry("queue", &self.queue)?;
        map.serialize_entry("retry", &self.retry)?;
        map.serialize_entry("created_at", &self.created_at)?;
        let mut written = vec!["class", "args", "jid", "queue", "retry", "created_at"];
        macro_rules! optional {
            ($($key:literal => $field:expr),*) => {$(
                if let Some(value) = &$field {
                    map.serialize_entry($key, value)?;
                    written.push($key);
                }
            )*};
        }
        optional!(
            "enqueued_at" => self.enqueued_at,
            "retry_count" => self.retry_count,
            "error_message" => self.error_message,
            "error_class" => self.error_class,
            "failed_at" => self.failed_at,
            "retried_at" => self.retried_at
        );
        for (key, value) in &self.extra {
            if !written.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Self::from_value(value, DEFAULT_QUEUE).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_field() {
        let msg = |retry: serde_json::Value| Message::new(REFRESH_CLASS, vec![], DEFAULT_QUEUE, retry);
        assert_eq!(msg(true.into()).max_retries(), Some(25));
        assert_eq!(msg(false.into()).max_retries(), None);
        assert_eq!(msg(0.into()).max_retries(), Some(0));
        assert_eq!(msg(5.into()).max_retries(), Some(5));
        let mut fresh = msg(true.into());
        fresh.enqueued_at = None;
        let json = serde_json::to_value(fresh).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["args", "class", "created_at", "jid", "queue", "retry"], "no nulls");
    }

    #[test]
    fn retry_follows_ruby() {
        // Ruby's `retry_attempts_from`: an Integer is the count, any other
        // truthy value the default; only `false` discards.
        let msg = |retry: serde_json::Value| Message::new(REFRESH_CLASS, vec![], DEFAULT_QUEUE, retry);
        assert_eq!(msg(serde_json::json!(2.0)).max_retries(), Some(25));
        assert_eq!(msg(serde_json::json!("2")).max_retries(), Some(25));
        assert_eq!(msg(serde_json::json!("false")).max_retries(), Some(25));
        assert_eq!(msg(serde_json::json!(-3)).max_retries(), Some(0));
        assert_eq!(msg(serde_json::json!(u64::MAX)).max_retries(), Some(u32::MAX));
        let parsed = |raw: &str| Message::parse(raw, "q").unwrap();
        assert_eq!(parsed(r#"{"class":"C","retry":null}"#).retry, serde_json::json!(true));
        assert_eq!(parsed(r#"{"class":"C"}"#).retry, serde_json::json!(true));
        let kept = serde_json::to_value(parsed(r#"{"class":"C","retry":"2"}"#)).unwrap();
        assert_eq!(kept["retry"], "2", "written back as it came");
    }

    /// A Sidekiq 8 job as its `Changes.md` and `api.rb` describe it: times in
    /// integer epoch milliseconds.
    #[test]
    fn sidekiq_8_jobs_keep_their_milliseconds() {
        let raw = serde_json::json!({
            "class": REFRESH_CLASS, "args": [{"job": "a::B", "args": [], "key": "k"}],
            "jid": "0123456789abcdef01234567", "queue": "cacheback", "retry": true,
            "created_at": 1_234_567_890_123_i64, "enqueued_at": 1_234_567_890_456_i64,
            "failed_at": 1_234_567_891_000_i64, "retried_at": 1_234_567_899_999_i64,
            "retry_count": 2, "error_class": "X", "error_message": "y", "tags": ["t"]
        });
        let msg: Message = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(msg.timestamps(), Timestamps::Milliseconds);
        assert_eq!(msg.created_at, Stamp::Millis(1_234_567_890_123));
        assert!((msg.created_at.as_secs_f64() - 1_234_567_890.123).abs() < 1e-6);
        assert!((msg.enqueued_at.unwrap().as_secs_f64() - 1_234_567_890.456).abs() < 1e-6);
        assert_eq!(msg.failed_at, Some(Stamp::Millis(1_234_567_891_000)));
        assert_eq!(msg.retry_count, Some(2));
        assert_eq!(serde_json::to_value(&msg).unwrap(), raw, "written back exactly");

        // Latency reads milliseconds as milliseconds.
        let mut msg = msg;
        msg.enqueued_at = Some(Stamp::from_secs_f64(now() - 3.0, Timestamps::Milliseconds));
        assert!((2.9..4.0).contains(&msg.latency()), "{}", msg.latency());
        msg.enqueued_at = Some(Stamp::Seconds(now() - 3.0));
        assert!((2.9..4.0).contains(&msg.latency()), "{}", msg.latency());
    }

    #[test]
    fn float_seconds_stay_floats() {
        let msg: Message =
            serde_json::from_str(r#"{"class":"C","args":[],"created_at":1700000000.0}"#).unwrap();
        assert_eq!(msg.created_at, Stamp::Seconds(1_700_000_000.0));
        let json = serde_json::to_string(&msg).unwrap();
        assert!(json.contains(r#""created_at":1700000000.0"#), "a whole second stays a float: {json}");
        let ms = msg.with_timestamps(Timestamps::Milliseconds);
        assert_eq!(ms.created_at, Stamp::Millis(1_700_000_000_000));
        let fresh = Message::new("C", vec![], "q", true.into()).with_timestamps(Timestamps::Milliseconds);
        let json = serde_json::to_value(&fresh).unwrap();
        assert!(json["created_at"].is_i64() && json["enqueued_at"].is_i64(), "{json}");
        assert!((json["created_at"].as_f64().unwrap() / 1000.0 - now()).abs() < 60.0);
    }

    #[test]
    fn garbage_is_not_a_job() {
        for (raw, why) in [
            (r#"["x",1,2]"#, "a JSON array, not an object with a `class`"),
            ("12345.678", "a JSON number, not an object with a `class`"),
            ("null", "a JSON null, not an object with a `class`"),
            (r#""str""#, "a JSON string, not an object with a `class`"),
            ("true", "a JSON boolean, not an object with a `class`"),
            ("{}", "an object without a `class`"),
            (r#"{"class":5,"args":[]}"#, "its `class` is a number, not a string"),
        ] {
            let err = Message::parse(raw, "q").unwrap_err();
            assert_eq!(err.to_string(), format!("not a Sidekiq job: {why}"), "{raw}");
            assert!(serde_json::from_str::<Message>(raw).is_err(), "{raw}");
        }
        let err = Message::parse("{ nope", "q").unwrap_err().to_string();
        assert!(err.starts_with("not a Sidekiq job: not JSON ("), "{err}");
    }

    #[test]
    fn jobs_ruby_would_run_are_jobs() {
        // No jid, created_at, queue or retry: filled as Sidekiq's client would.
        let msg = Message::parse(r#"{"class":"C","args":[1],"enqueued_at":1700000000.5}"#, "low").unwrap();
        assert_eq!(msg.jid.len(), 24);
        assert_eq!(msg.queue, "low");
        assert_eq!(msg.created_at, Stamp::Seconds(1_700_000_000.5), "from enqueued_at");
        let msg = Message::parse(r#"{"class":"C"}"#, "low").unwrap();
        assert!((msg.created_at.as_secs_f64() - now()).abs() < 60.0);
        assert_eq!(serde_json::to_value(&msg.args).unwrap(), serde_json::json!([]));

        // Known fields of other types are kept as they are, unless set.
        let raw = r#"{"class":"C","args":{"a":1},"jid":"j","queue":"q","retry":2.0,"created_at":1.5,
                      "retry_count":"1","failed_at":"yesterday","error_class":7,"dead":false}"#;
        let mut msg = Message::parse(raw, "q").unwrap();
        assert_eq!((msg.retry_count, msg.failed_at, msg.error_class.as_ref()), (None, None, None));
        let back = serde_json::to_value(&msg).unwrap();
        let original: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert_eq!(back, original, "written back as it came");
        msg.failed_at = Some(Stamp::Seconds(2.5));
        let back = serde_json::to_string(&msg).unwrap();
        assert_eq!(back.matches("failed_at").count(), 1, "{back}");
        assert!(back.contains(r#""failed_at":2.5"#), "{back}");

        // `args` of the wrong shape: spread as Ruby's `perform(*args)` spreads it.
        let args = |raw: &str| Message::parse(&format!(r#"{{"class":"C","args":{raw}}}"#), "q").unwrap().args;
        assert_eq!((args("null").len(), args("null").ruby_class()), (0, "NilClass"));
        assert_eq!(args(r#""x""#).as_slice(), [serde_json::json!("x")]);
        assert_eq!(args(r#"{"a":1,"b":2}"#).len(), 2);
        assert_eq!(args("5").ruby_class(), "Integer");
        assert_eq!(args("5.5").ruby_class(), "Float");
        assert!(args("[1,2]").is_array());
        assert_eq!(retry_count_of(r#"{"class":"C","retry_count":3.0}"#), Some(3));
        assert_eq!(retry_count_of(r#"{"class":"C","retry_count":-1}"#), None);
    }

    fn retry_count_of(raw: &str) -> Option<u32> {
        Message::parse(raw, "q").unwrap().retry_count
    }

    #[test]
    fn what_is_not_a_job_is_wrapped_in_one() {
        let why = Message::parse("[1]", "q").unwrap_err();
        let wrapped = serde_json::to_value(Message::invalid("[1]", &why, "q")).unwrap();
        assert_eq!(wrapped["class"], INVALID_JOB_CLASS);
        assert_eq!(wrapped["args"], serde_json::json!(["[1]"]));
        assert_eq!(wrapped["queue"], "q");
        assert_eq!(wrapped["retry"], false);
        assert_eq!(wrapped["error_class"], INVALID_JOB_CLASS);
        assert_eq!(wrapped["error_message"], why.to_string());
        assert_eq!(wrapped["failed_at"], wrapped["created_at"]);
        assert!(wrapped["created_at"].is_f64());
        assert_eq!(wrapped["jid"].as_str().unwrap().len(), 24);
        let back: Message = serde_json::from_value(wrapped).unwrap();
        assert_eq!(back.args.as_slice(), [serde_json::json!("[1]")]);
    }
}
