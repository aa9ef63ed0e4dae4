//! The `ironmesh-provisioning` binary: one provisioning process (what a container runs).

use std::process::ExitCode;

fn main() -> ExitCode {
    ironmesh_runtime::process::service_main(
        ironmesh_provisioning::KIND,
        ironmesh_provisioning::SECTIONS,
        ironmesh_provisioning::run,
    )
}
