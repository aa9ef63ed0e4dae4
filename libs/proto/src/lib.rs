//! Generated code for every Ironmesh protobuf contract.
//!
//! # Layout
//! - [`ironmesh`]: one module per package, `ironmesh::<service>::v1`, each with its messages, a
//!   `<name>_service_client` and a `<name>_service_server` module (tonic), and
//!   `ironmesh::api::v1`, the messages of our method and field options (`Access`, `FieldRules`) to
//!   decode their values into.
//! - [`google`]: our minimal copies of `google.api` (HTTP annotations, field behaviour, HttpBody)
//!   and `google.rpc` (Status, error details such as `BadRequest`).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors of everything above, options included, for
//!   gRPC reflection, the REST gateway's transcoder and the policy table. The option *extensions*
//!   (`ironmesh.api.v1.access`, `google.api.http`…) have no Rust accessors: they are read from
//!   these descriptors by name.
//!
//! Nothing here is written by hand except this file: the code comes from `build.rs` (protox +
//! tonic-prost-build, no system protoc).
#![forbid(unsafe_code)]
#![allow(clippy::all, missing_docs)]

/// Encoded `google.protobuf.FileDescriptorSet` of every compiled `.proto` file, with imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ironmesh_descriptor.bin"));

pub mod ironmesh {
    pub mod api {
        pub mod v1 {
            tonic::include_proto!("ironmesh.api.v1");
        }
    }
    pub mod auth {
        pub mod v1 {
            tonic::include_proto!("ironmesh.auth.v1");
        }
    }
    pub mod orders {
        pub mod v1 {
            tonic::include_proto!("ironmesh.orders.v1");
        }
    }
    pub mod inventory {
        pub mod v1 {
            tonic::include_proto!("ironmesh.inventory.v1");
        }
    }
    pub mod provisioning {
        pub mod v1 {
            tonic::include_proto!("ironmesh.provisioning.v1");
        }
    }
    pub mod notification {
        pub mod v1 {
            tonic::include_proto!("ironmesh.notification.v1");
        }
    }
    pub mod audit {
        pub mod v1 {
            tonic::include_proto!("ironmesh.audit.v1");
        }
    }
    pub mod events {
        pub mod v1 {
            tonic::include_proto!("ironmesh.events.v1");
        }
    }
}

pub mod google {
    pub mod api {
        tonic::include_proto!("google.api");
    }
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}
