//! Test support every layer may use — it depends on no service, so libraries below the
//! services (the runtime, the outbox) test with the same helpers as the testkit above them.
//!
//! # Layout
//! - [`postgres`]: [`Backend`] / [`backends`] (which backends a correctness test must cover),
//!   [`TestDatabase`] (a fresh PostgreSQL database per test), [`redis_url`].
//! - [`otlp`]: a real OTLP/gRPC trace receiver for tests that follow traces across processes.
//! - [`smtp`]: a real SMTP server (Python's `aiosmtpd`) with a maildir, read back by Python's
//!   `email` parser.
#![forbid(unsafe_code)]

pub mod otlp;
pub mod postgres;
pub mod smtp;

pub use postgres::{Backend, DATABASE_URL_ENV, REDIS_URL_ENV, TestDatabase, backends, redis_url};
