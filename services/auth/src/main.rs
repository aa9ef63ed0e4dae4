//! The `ironmesh-auth` binary: one auth process (what a container runs).

use std::process::ExitCode;

fn main() -> ExitCode {
    ironmesh_runtime::process::service_main(
        ironmesh_auth::KIND,
        ironmesh_auth::SECTIONS,
        ironmesh_auth::run,
    )
}
