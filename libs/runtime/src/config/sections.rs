//! Sections: top-level tables owned by crates above the runtime — the gateway's `gateway`,
//! auth's `lockout`, the sealing library's `secrets` — so that their types, defaults and
//! validation live with the code that reads them, not here.
//!
//! The runtime keeps each such table raw (as figment parsed it from the file and the
//! environment); its owner implements [`Section`] and reads it typed with [`Config::section`]:
//! the owner's defaults, overlaid with what was set, unknown keys inside it refused, then the
//! owner's own [`Section::validate`] — every error naming the full dotted key. Which top-level
//! keys exist at all is known only to whatever composes the owners (the `ironmesh` binary), so
//! it checks with [`Config::check_sections`]; a process holding one owner checks its own.

use std::collections::BTreeMap;

use figment::Figment;
use figment::providers::Serialized;
use figment::value::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Config, ConfigError, error::from_figment};

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
    /// environment set under `T::KEY`, then validated by `T`.
    pub fn section<T: Section>(&self) -> Result<T, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(T::default()));
        if let Some(raw) = self.sections.0.get(T::KEY) {
            figment = figment.merge(Serialized::globals(raw));
        }
        let value: T = figment
            .extract()
            .map_err(|err| from_figment(err, Some(T::KEY)))?;
        value.validate()?;
        Ok(value)
    }

    /// Replaces section `T` (tests and benchmarks adjust settings this way).
    pub fn set_section<T: Section>(&mut self, value: &T) {
        let raw = Value::serialize(value).expect("a section serialises to a value");
        self.sections.0.insert(T::KEY.to_owned(), raw);
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

    /// Refuses top-level keys that are neither the runtime's own nor in `known`, so a typo
    /// never silently does nothing.
    pub fn check_sections(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.unknown_sections(known).next() {
            Some(key) => Err(ConfigError::new(key, format!("unknown key `{key}`"))),
            None => Ok(()),
        }
    }

    /// The top-level keys that are neither the runtime's own nor in `known`.
    pub fn unknown_sections<'a>(&'a self, known: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
        self.sections
            .0
            .keys()
            .map(String::as_str)
            .filter(move |key| !known.contains(key))
    }
}
