//! The shared stack every Ironmesh process runs its gRPC traffic through (DESIGN.md §4): one server
//! stack and one client builder, each a sequence of named tower layers.
//!
//! # Layout
//! - [`around`]: the tower boilerplate of a layer written once; most layers are an [`around::Around`].
//! - [`context`]: the per-call context (request id, W3C trace context, deadline, the caller's
//!   authorization) that server layers establish and client layers propagate.
//! - [`forwarded`]: the client's address behind trusted proxies (`x-forwarded-for`).
//! - [`grpc`]: small gRPC-over-HTTP helpers shared by both sides: reading `grpc-status`, watching
//!   a response body until its trailers say how the call ended, `grpc-timeout` encoding.
//! - [`headers`]: the header names every call uses, and HPACK's never-indexing of per-call values.
//! - [`metrics`]: the process-wide Prometheus registry and every metric the layers record.
//! - [`policy`]: the per-method policy table (idempotency read from the proto descriptors; the
//!   access level the authentication layer enforces).
//! - [`server`]: [`server::ServerStack`] and its layers, one file each, outermost first:
//!   request id → trace → metrics → load shed → deadline → (auth slot) → panic catch → context.
//! - [`auth`]: the authentication/authorization layer and local JWT verification against a
//!   cached JWKS.
//! - [`client`]: [`client::ClientBuilder`] and its layers: deadline propagation → retries →
//!   circuit breaker → propagation of request id, trace and authorization → balanced endpoints,
//!   optionally over mTLS.
#![forbid(unsafe_code)]

pub mod around;
pub mod auth;
pub mod client;
pub mod context;
pub mod forwarded;
pub mod grpc;
pub mod headers;
pub mod metrics;
pub mod policy;
pub mod server;

/// The error type every layer returns (tonic's own).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The future type every tower layer of the stack returns: boxing keeps the stack's types
/// nameable, for one allocation per layer per call — runs of [`around::Around`] layers share one
/// (see [`around::Then`]); `make bench` counts them.
pub type BoxFuture<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, BoxError>> + Send + 'static>>;

/// Request and response types on both sides of every layer.
pub type Request = http::Request<tonic::body::Body>;
pub type Response = http::Response<tonic::body::Body>;
