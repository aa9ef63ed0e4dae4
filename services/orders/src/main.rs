//! The `ironmesh-orders` binary: one orders process (what a container runs).

use std::process::ExitCode;

fn main() -> ExitCode {
    ironmesh_runtime::process::service_main(
        ironmesh_orders::KIND,
        ironmesh_orders::SECTIONS,
        ironmesh_orders::run,
    )
}
