//! Sections: tables owned by crates above the runtime — the gateway's `gateway`, auth's
//! `lockout`, the sealing library's `secrets`, inventory's `inventory` — so that their types,
//! defaults and validation live with the code that reads them, not here.
//!
//! The runtime keeps each such table raw (as figment parsed it from the file and the
//! environment); its owner implements [`Section`] and reads it typed with [`Config::section`]:
//! the owner's defaults, overlaid with what was set, unknown keys inside it refused, then the
//! owner's own [`Section::validate`] — every error naming the full dotted key. Which top-level
//! keys exist at all is known only to whatever composes the owners (the `ironmesh` binary), so
//! it checks with [`Config::check_sections`]; a process holding one owner checks its own.
//!
//! A service's own settings live in its table, beside its listeners: the section whose `KEY` is a
//! service's name (inventory's `inventory`, audit's `audit`) is every key of `[inventory]` other
//! than `grpc_port`, `admin_port`, `database_url` and `endpoint`, which the runtime reads itself
//! ([`ServiceConfig`](super::ServiceConfig)). So `[inventory] reservation_ttl_secs = 120`, or
//! `IRONMESH_INVENTORY__RESERVATION_TTL_SECS=120`, sits next to `inventory.grpc_port`.

use std::collections::BTreeMap;

use figment::Figment;
use figment::providers::Serialized;
use figment::value::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Config, ConfigError, ServiceKind, error::from_figment};

/// The raw tables of every section, by top-level key. Its `Debug` names the keys only: a
/// section may hold secrets (`secrets.master_key`), and a config is logged in debugging.
#[derive(Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Sections(BTreeMap<String, Value>);

impl Sections {
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for Sections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A typed configuration section owned by the crate that reads it.
pub trait Section: Default + Serialize + DeserializeOwned {
    /// Its top-level key, e.g. `gateway` (`IRONMESH_GATEWAY__…` in the environment).
    const KEY: &'static str;

    /// What types alone cannot check. Errors name the offending key in full (`gateway.…`).
    fn validate(&self) -> Result<(), ConfigError>;
}

impl Config {
    /// Section `T` as configured: `T::default()`, overlaid with what the file and the
    /// environment set under `T::KEY`, then validated by `T`. When `T::KEY` names a service, that
    /// is the service's own settings in its table (everything beside its listeners).
    pub fn section<T: Section>(&self) -> Result<T, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(T::default()));
        match ServiceKind::from_name(T::KEY) {
            Some(kind) => {
                figment = figment.merge(Serialized::globals(&self.service(kind).settings));
            }
            None => {
                if let Some(raw) = self.sections.0.get(T::KEY) {
                    figment = figment.merge(Serialized::globals(raw));
                }
            }
        }
        let value: T = figment
            .extract()
            .map_err(|err| from_figment(err, Some(T::KEY)))?;
        value.validate()?;
        Ok(value)
    }

    /// Replaces section `T` (tests and benchmarks adjust settings this way). A service's section
    /// replaces its settings and leaves its listeners alone.
    pub fn set_section<T: Section>(&mut self, value: &T) {
        let raw = Value::serialize(value).expect("a section serialises to a value");
        match ServiceKind::from_name(T::KEY) {
            Some(kind) => {
                let Value::Dict(_, table) = raw else {
                    panic!("section `{}` must serialise to a table", T::KEY);
                };
                self.service_mut(kind).settings = Sections(table);
            }
            None => {
                self.sections.0.insert(T::KEY.to_owned(), raw);
            }
        }
    }

    /// Reads section `T`, lets `change` alter it and stores it back.
    pub fn update_section<T: Section>(
        &mut self,
        change: impl FnOnce(&mut T),
    ) -> Result<(), ConfigError> {
        let mut value = self.section::<T>()?;
        change(&mut value);
        value.validate()?;
        self.set_section(&value);
        Ok(())
    }

    /// Refuses keys no owner claims, so a typo never silently does nothing: top-level keys that
    /// are neither the runtime's own nor in `known`, and keys beside a service's listeners when
    /// that service's name is not in `known` (`auth.bogus`).
    pub fn check_sections(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.unknown_sections(known).next() {
            Some(key) => {
                let message = format!("unknown key `{key}`");
                Err(ConfigError::new(key, message))
            }
            None => Ok(()),
        }
    }

    /// The keys [`Config::check_sections`] refuses: top-level keys that are neither the
    /// runtime's own nor in `known`, then, for each service whose name is not in `known`, the
    /// dotted keys of its table beside its listeners (`auth.bogus`).
    pub fn unknown_sections<'a>(&'a self, known: &'a [&str]) -> impl Iterator<Item = String> + 'a {
        let top_level = self
            .sections
            .0
            .keys()
            .filter(move |key| !known.contains(&key.as_str()))
            .cloned();
        let in_services = ServiceKind::ALL
            .into_iter()
            .filter(move |kind| !known.contains(&kind.name()))
            .flat_map(move |kind| {
                self.service(kind)
                    .settings
                    .0
                    .keys()
                    .map(move |key| format!("{kind}.{key}"))
            });
        top_level.chain(in_services)
    }
}
