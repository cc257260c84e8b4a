//! The sandbox's own settings: the `settings:` block of `config/<env>.yaml`,
//! parsed once at boot (the app's `after_context`) and kept in
//! `ctx.shared_store`, where requests read them.

use std::time::Duration;

use loco_rs::app::AppContext;
use loco_rs::config::Config;
use loco_rs::{Error, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

/// `settings:` in `config/<env>.yaml`. Every key may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `vanilla_delay_ms`: how long `VanillaJob`'s fetch sleeps, in
    /// milliseconds; the seed's 10 s when left out.
    pub vanilla_delay_ms: u64,
    /// `migrate_on_start`: whether `start` runs the migrations (see the app's
    /// `before_run`); off when left out.
    pub migrate_on_start: bool,
    /// `metrics`: whether the app installs a Prometheus recorder for
    /// cacheback's metrics, serves them at `/metrics` and charts them on
    /// `/_cacheback` (see [`crate::initializers::metrics`]); off when left out.
    pub metrics: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self { vanilla_delay_ms: 10_000, migrate_on_start: false, metrics: false }
    }
}

impl Settings {
    /// How slow `VanillaJob`'s fetch is.
    #[must_use]
    pub fn vanilla_delay(&self) -> Duration {
        Duration::from_millis(self.vanilla_delay_ms)
    }

    /// The `settings:` block of `config`. A block that is left out or empty
    /// gives the defaults.
    ///
    /// # Errors
    ///
    /// When a value does not read as its key's type; the message names the key.
    pub fn from_config(config: &Config) -> Result<Self> {
        parse(config.settings.as_ref()).map_err(Error::Message)
    }

    /// The settings parsed at boot.
    ///
    /// # Errors
    ///
    /// When the context did not go through the app's `after_context`.
    pub fn from_context(ctx: &AppContext) -> Result<Self> {
        ctx.shared_store.get::<Self>().ok_or_else(|| {
            Error::Message(
                "the sandbox's settings are not loaded (the app's after_context loads them)".into(),
            )
        })
    }
}

/// Reads the `settings:` block; the error names the offending key.
fn parse(block: Option<&Value>) -> std::result::Result<Settings, String> {
    let map = match block {
        None | Some(Value::Null) => return Ok(Settings::default()),
        Some(Value::Object(map)) => map,
        // A struct also deserializes from a sequence, field by field: refused.
        Some(other) => {
            return Err(format!("invalid `settings` in the config: expected a map, found {other}"));
        }
    };
    serde_json::from_value(Value::Object(map.clone())).map_err(|err| {
        // serde_json's message does not say which key failed: the one that
        // fails on its own does.
        let alone = |key: &String, value: &Value| {
            serde_json::from_value::<Settings>(Value::Object(Map::from_iter([(key.clone(), value.clone())])))
                .is_err()
        };
        match map.iter().find(|(k, v)| alone(k, v)) {
            Some((key, _)) => format!("invalid `settings.{key}` in the config: {err}"),
            None => format!("invalid `settings` in the config: {err}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_missing_or_empty_block_gives_the_defaults() {
        let defaults = Settings { vanilla_delay_ms: 10_000, migrate_on_start: false, metrics: false };
        assert_eq!(parse(None), Ok(defaults));
        assert_eq!(parse(Some(&Value::Null)), Ok(defaults));
        assert_eq!(parse(Some(&json!({}))), Ok(defaults));
        assert_eq!(parse(Some(&json!({ "something_else": "x" }))), Ok(defaults));
    }

    #[test]
    fn reads_every_key() {
        let settings =
            parse(Some(&json!({ "vanilla_delay_ms": 200, "migrate_on_start": true, "metrics": true })))
                .unwrap();
        assert_eq!(settings, Settings { vanilla_delay_ms: 200, migrate_on_start: true, metrics: true });
        assert_eq!(settings.vanilla_delay(), Duration::from_millis(200));
    }

    #[test]
    fn a_wrong_value_is_an_error_naming_its_key() {
        let err = parse(Some(&json!({ "vanilla_delay_ms": 200, "migrate_on_start": "yes" }))).unwrap_err();
        assert!(err.starts_with("invalid `settings.migrate_on_start` in the config: "), "{err}");
        let err = parse(Some(&json!({ "vanilla_delay_ms": -1 }))).unwrap_err();
        assert!(err.starts_with("invalid `settings.vanilla_delay_ms` in the config: "), "{err}");
        let err = parse(Some(&json!({ "metrics": "false" }))).unwrap_err();
        assert!(err.starts_with("invalid `settings.metrics` in the config: "), "{err}");
        for block in [json!([1]), json!(1), json!("vanilla_delay_ms")] {
            let err = parse(Some(&block)).unwrap_err();
            assert!(err.starts_with("invalid `settings` in the config: expected a map, found "), "{err}");
        }
    }
}
