//! The `ironmesh-inventory` binary: one inventory process (what a container runs).

use std::process::ExitCode;

fn main() -> ExitCode {
    ironmesh_runtime::process::service_main(
        ironmesh_inventory::KIND,
        ironmesh_inventory::SECTIONS,
        ironmesh_inventory::run,
    )
}
