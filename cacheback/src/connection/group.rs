//! [`SentinelGroup`]: where a Redis Sentinel group is, and how its master
//! is logged in to.

use serde::{Deserialize, Serialize};

/// A Redis Sentinel group: the name its sentinels know the master by, their
/// addresses, and the master's database and credentials (database 0 and
/// none by default). What
/// [`RedisStore::sentinel_builder`](crate::store::RedisStore::sentinel_builder),
/// [`SidekiqQueue::sentinel_builder`](crate::queue::sidekiq::SidekiqQueue::sentinel_builder)
/// and [`SidekiqWorker::sentinel_builder`](crate::queue::sidekiq::SidekiqWorker::sentinel_builder)
/// connect through, and `sentinel:` in the settings.
///
/// In the settings it is written `<master>@<host:port>,<host:port>...` (as an
/// environment variable holds it; an empty string is none), or as a map of
/// `master`, `sentinels` and optionally `db`, `username` and `password`. A
/// sentinel that needs credentials of its own takes them in its `redis://`
/// URL. The password is neither shown (`Debug`, `Display`) nor serialized.
///
/// ```
/// use cacheback::SentinelGroup;
/// let group: SentinelGroup =
///     serde_json::from_value(serde_json::json!("mymaster@127.0.0.1:26391, 127.0.0.1:26392")).unwrap();
/// assert_eq!(group.master, "mymaster");
/// assert_eq!(group.sentinels, ["127.0.0.1:26391", "127.0.0.1:26392"]);
/// let listed: SentinelGroup = serde_json::from_value(serde_json::json!(
///     {"master": "mymaster", "sentinels": ["127.0.0.1:26391"], "db": 2, "password": "secret"}
/// )).unwrap();
/// assert_eq!(listed, SentinelGroup::new("mymaster", ["127.0.0.1:26391"]).db(2).password("secret"));
/// assert!(!format!("{listed:?}").contains("secret"));
/// assert!(serde_json::from_value::<SentinelGroup>(serde_json::json!("")).unwrap().is_empty());
/// assert!(serde_json::from_value::<SentinelGroup>(serde_json::json!("127.0.0.1:26391")).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct SentinelGroup {
    /// The name the sentinels know the master by (`sentinel monitor <name> ...`).
    pub master: String,
    /// The sentinels, as `host:port` or `redis://` URLs.
    pub sentinels: Vec<String>,
    /// The master's database.
    #[serde(skip_serializing_if = "is_zero")]
    pub db: i64,
    /// The master's user (ACL), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The master's password, if any.
    #[serde(skip_serializing)]
    pub password: Option<String>,
}

fn is_zero(db: &i64) -> bool {
    *db == 0
}

impl SentinelGroup {
    /// The master the `sentinels` know as `master`, on database 0 without
    /// credentials.
    ///
    /// ```
    /// let group = cacheback::SentinelGroup::new("mymaster", ["10.0.0.1:26379", "10.0.0.2:26379"]);
    /// assert_eq!(group.to_string(), "mymaster@10.0.0.1:26379,10.0.0.2:26379");
    /// ```
    pub fn new(master: impl Into<String>, sentinels: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            master: master.into(),
            sentinels: sentinels.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// The master's database (default 0).
    ///
    /// ```
    /// assert_eq!(cacheback::SentinelGroup::new("m", ["h:1"]).db(3).db, 3);
    /// ```
    #[must_use]
    pub fn db(mut self, db: i64) -> Self {
        self.db = db;
        self
    }

    /// The master's user (ACL).
    ///
    /// ```
    /// let group = cacheback::SentinelGroup::new("m", ["h:1"]).username("app");
    /// assert_eq!(group.username.as_deref(), Some("app"));
    /// ```
    #[must_use]
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The master's password.
    ///
    /// ```
    /// let group = cacheback::SentinelGroup::new("m", ["h:1"]).password("secret");
    /// assert!(group.password.is_some());
    /// ```
    #[must_use]
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Whether no group is given (the settings' empty string).
    ///
    /// ```
    /// assert!(cacheback::SentinelGroup::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.master.is_empty() && self.sentinels.is_empty()
    }

    /// How the master is logged in to.
    pub(crate) fn node_info(&self) -> redis::sentinel::SentinelNodeConnectionInfo {
        let mut info = redis::RedisConnectionInfo::default().set_db(self.db);
        if let Some(username) = &self.username {
            info = info.set_username(username);
        }
        if let Some(password) = &self.password {
            info = info.set_password(password);
        }
        redis::sentinel::SentinelNodeConnectionInfo::default().set_redis_connection_info(info)
    }
}

impl std::fmt::Debug for SentinelGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelGroup")
            .field("master", &self.master)
            .field("sentinels", &self.sentinels)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl std::fmt::Display for SentinelGroup {
    /// `<master>@<sentinel>,...`, without credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.master, self.sentinels.join(","))
    }
}

impl std::str::FromStr for SentinelGroup {
    type Err = String;

    /// Parses `<master>@<host:port>,<host:port>...`; an empty string is no group.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::default());
        }
        let Some((master, sentinels)) = text.split_once('@') else {
            return Err(format!("`{text}` names no master: write `<master name>@<host:port>,<host:port>`"));
        };
        let sentinels: Vec<&str> = sentinels.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if master.trim().is_empty() || sentinels.is_empty() {
            return Err(format!(
                "`{text}` needs a master name and at least one sentinel: `<master name>@<host:port>,<host:port>`"
            ));
        }
        Ok(Self::new(master.trim(), sentinels))
    }
}

impl<'de> Deserialize<'de> for SentinelGroup {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Listed {
            master: String,
            sentinels: Vec<String>,
            #[serde(default)]
            db: i64,
            #[serde(default)]
            username: Option<String>,
            #[serde(default)]
            password: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Listed(Listed),
        }
        match Form::deserialize(deserializer)? {
            Form::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Form::Listed(listed) if listed.master.is_empty() || listed.sentinels.is_empty() => Err(
                serde::de::Error::custom("a Sentinel group needs a master name and at least one sentinel"),
            ),
            Form::Listed(Listed { master, sentinels, db, username, password }) => {
                Ok(Self { master, sentinels, db, username, password })
            }
        }
    }
}
