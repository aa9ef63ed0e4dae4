//! The `ironmesh-notification` binary: one notification process (what a container runs).

use std::process::ExitCode;

fn main() -> ExitCode {
    ironmesh_runtime::process::service_main(
        ironmesh_notification::KIND,
        ironmesh_notification::SECTIONS,
        ironmesh_notification::run,
    )
}
