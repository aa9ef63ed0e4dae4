//! Being a server child (`ironmesh-bench --serve ROLE`): announce READY on stdout, run until the
//! parent closes stdin; and the body the auth and gateway children share, the in-process mesh
//! (whose config the events suite's in-process audit uses too). The parent's side is
//! [`crate::child`].

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ironmesh_launcher::mesh::{self, RunningMesh};
use ironmesh_runtime::{Config, ServiceKind};

use crate::token;

/// The first word of the first line a server child prints once it listens.
pub const READY_PREFIX: &str = "READY";
/// Lockout thresholds high enough that no flood reaches them.
const NEVER_LOCKED: u32 = 1_000_000_000;
/// How long a mesh waits for its components to report healthy.
pub const READY_LIMIT: Duration = Duration::from_secs(30);
/// How long a mesh child may drain once asked to stop.
const MESH_GRACE_SECS: u64 = 5;
/// How long the parent lets a mesh child drain and stop once asked (its grace is
/// [`MESH_GRACE_SECS`]).
pub const MESH_STOP_WAIT: Duration = Duration::from_secs(15);

/// Prints `READY <words>` on stdout; false if the parent is gone.
pub fn announce_ready(words: &str) -> bool {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{READY_PREFIX} {words}")
        .and_then(|()| stdout.flush())
        .is_ok()
}

/// Resolves when the parent closes our stdin (or dies): the signal to stop.
pub async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// The body of a mesh server child (`--serve auth|gateway --serve-dir DIR`): `services` (and the
/// gateway, if asked) through [`ironmesh_launcher::mesh`] on the production runtime, configured like
/// `ironmesh_testkit::test_config` (SQLite in `dir`, every port 0 on loopback, a fresh master
/// key) with lockout thresholds no flood reaches, then `adjust`. Once every component is
/// healthy it prints `READY` and what `ready` says; runs until stdin closes, then drains.
pub fn serve_mesh(
    role: &str,
    dir: Option<&Path>,
    adjust: impl FnOnce(&mut Config),
    services: &[ServiceKind],
    gateway: bool,
    ready: impl FnOnce(&RunningMesh) -> Option<String>,
) -> ExitCode {
    let Some(dir) = dir else {
        eprintln!("ironmesh-bench --serve {role}: needs --serve-dir DIR");
        return ExitCode::from(2);
    };
    let mut config = match mesh_config(dir) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("ironmesh-bench --serve {role}: {err}");
            return ExitCode::from(1);
        }
    };
    adjust(&mut config);
    if let Err(err) = config.validate() {
        eprintln!("ironmesh-bench --serve {role}: {err}");
        return ExitCode::from(2);
    }
    let settings = config.clone();
    ironmesh_runtime::process::block_on(&settings, run_mesh(config, services, gateway, ready))
}

/// A bench mesh's config, like `ironmesh_testkit::test_config`: SQLite in `dir`, every port 0 on
/// loopback, a fresh master key and service identity secret, lockout thresholds no flood
/// reaches.
pub fn mesh_config(dir: &Path) -> Result<Config, String> {
    use base64::Engine as _;
    let mut config = ironmesh_launcher::config::on_loopback_any_port(Config {
        data_dir: dir.to_path_buf(),
        shutdown_grace_secs: MESH_GRACE_SECS,
        ..Config::default()
    })
    .map_err(|err| err.to_string())?;
    config.set_section(&ironmesh_sealing::SecretsConfig {
        master_key: Some(
            base64::engine::general_purpose::STANDARD.encode(token::random_bytes(32)?),
        ),
        ..Default::default()
    });
    config.service_identity.secret =
        Some(base64::engine::general_purpose::STANDARD.encode(token::random_bytes(32)?));
    config.set_section(&ironmesh_auth::settings::LockoutConfig {
        account_threshold: NEVER_LOCKED,
        ip_threshold: NEVER_LOCKED,
        ..Default::default()
    });
    Ok(config)
}

async fn run_mesh(
    config: Config,
    services: &[ServiceKind],
    gateway: bool,
    ready: impl FnOnce(&RunningMesh) -> Option<String>,
) -> ExitCode {
    use ironmesh_runtime::process::fail;
    let bound = match mesh::bind(config, services, gateway).await {
        Ok(bound) => bound,
        Err(err) => return fail(&err),
    };
    let running = match bound
        .start_healthy(READY_LIMIT, std::future::pending())
        .await
    {
        Ok(running) => running,
        Err(err) => return fail(&err),
    };
    let Some(words) = ready(&running) else {
        running.stop().await;
        return fail(&"a component the bench needs is not in the mesh");
    };
    if !announce_ready(&words) {
        running.stop().await;
        return ExitCode::from(1);
    }
    let errors = running.run_until(stdin_closed()).await;
    match errors.first() {
        None => ExitCode::SUCCESS,
        Some(err) => fail(err),
    }
}
