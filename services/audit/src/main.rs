//! The `ironmesh-audit` binary: one audit process (what a container runs).

use std::process::ExitCode;

fn main() -> ExitCode {
    ironmesh_runtime::process::service_main(
        ironmesh_audit::KIND,
        ironmesh_audit::SECTIONS,
        ironmesh_audit::run,
    )
}
