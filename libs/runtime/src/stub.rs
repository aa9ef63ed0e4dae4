//! The `run` of a service that exists only as its contract so far.
//!
//! Five services (orders, inventory, provisioning, notification, audit) start as stubs: their
//! store is opened and migrated, their gRPC servers answer `UNIMPLEMENTED`, and nothing else
//! happens. Their `run` functions were five copies of the same lines;
//! [`crate::stub_service!`] writes that function once. When a service gets its behaviour it
//! replaces the macro call with its own `run` over [`crate::run_service`] (as auth does), since
//! it then needs the database handle.
//!
//! It is a macro rather than a function because every generated tonic server has its own
//! inherent `max_*_message_size` methods (see [`crate::limit_sizes!`]); a function would need a
//! closure per service that repeats those lines anyway.

/// Defines `pub async fn run(config, listeners, shutdown)` for a stub service: open and migrate
/// its store, serve the given generated servers (each with the configured message size limit)
/// until `shutdown` resolves, then drain.
///
/// ```ignore
/// ironmesh_runtime::stub_service!(KIND, &MIGRATIONS, [OrdersServiceServer::new(grpc::OrdersApi)]);
/// ```
#[macro_export]
macro_rules! stub_service {
    ($kind:expr, $migrations:expr, [$($server:expr),+ $(,)?]) => {
        /// Serves this service on `listeners` until `shutdown` resolves, then drains. Its store is
        /// opened and migrated; its RPCs answer `UNIMPLEMENTED` until its behaviour is built.
        pub async fn run(
            config: $crate::Config,
            listeners: $crate::Listeners,
            shutdown: impl ::std::future::Future<Output = ()> + Send,
        ) -> ::std::result::Result<(), $crate::RunError> {
            let limit = config.max_message_bytes;
            // A stub has no queries yet, so the database handle is not needed past migration.
            $crate::run_service(config, $kind, $migrations, listeners, shutdown, move |_db| {
                $crate::GrpcService::new($kind)
                    $(.add_service($crate::limit_sizes!($server, limit)))+
            })
            .await
        }
    };
}
