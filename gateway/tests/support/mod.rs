//! Test support shared by the gateway's integration tests.
//!
//! - [`transcoding`]: an echo service behind the test-only contract `tests/proto`, and the real
//!   gateway in front of it.

pub mod transcoding;
