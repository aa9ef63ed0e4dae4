//! The gateway suite's peer: a stock grpc-gateway (v1) REST→gRPC reverse proxy for auth's
//! `GetJwks`, built offline from Debian's packages by the script in
//! `../shared/peers/grpc-gateway/` (which the bench runs, never copies). [`find`] locates its
//! binary, building it once when it is missing; [`PeerChild`] runs it pinned to the server CPU in
//! front of the mesh's auth, waits for its first answer, measures its CPU time and stops it by
//! its PID; [`PeerOutcome`] is what the report gets: the peer's runs, or why there are none.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use super::checks::check_rest;
use super::{Measurement, REST_PATH};
use crate::args::{BenchArgs, RestProtocol};
use crate::child::{CpuTime, cpu_during};
use crate::error::BenchError;

/// The work directory of the build script (`$ROOT`, default `${TMPDIR:-/tmp}/` + this) and the
/// binary it writes under it.
const BUILD_ROOT: &str = "ironmesh-peer-gateway";
const BINARY_IN_ROOT: &str = "bin/peer-gateway";
/// The project's proto root, as the build script wants it (`IRONMESH_PROTO`), relative to the
/// working directory or to the checkout this bench was built from.
const AUTH_PROTO: &str = "ironmesh/auth/v1/auth.proto";
/// How long the peer may take to answer its first request.
const READY_WAIT: Duration = Duration::from_secs(10);

/// The grpc-gateway peer's part of the gateway report.
#[derive(Debug)]
pub(super) enum PeerOutcome {
    /// Why the peer was not run (the rest of the suite was).
    NotRun(String),
    Ran(Box<PeerRuns>),
}

/// What the peer runs measured.
#[derive(Debug)]
pub(super) struct PeerRuns {
    pub binary: PathBuf,
    pub addr: SocketAddr,
    /// The size of its JSON answer to `GET /v1/auth/jwks`.
    pub body_bytes: u64,
    /// Under the Ironmesh REST run's load, and one request at a time.
    pub rest: Measurement,
    pub rest_single: Measurement,
}

/// `--peer-gateway`'s default: where the build script puts the binary.
fn default_binary() -> PathBuf {
    std::env::var_os("TMPDIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
        .join(BUILD_ROOT)
        .join(BINARY_IN_ROOT)
}

/// The peer's binary: `--peer-gateway` (or its default) if it is there; else the one
/// `--peer-gateway-script` builds (`bash SCRIPT` with `ROOT` set so that it writes that path,
/// its output in `<workdir>/peer-gateway-build.log`). Err: why the peer cannot be run.
pub(super) fn find(
    args: &BenchArgs,
    workdir: &Path,
    progress: impl Fn(&str),
) -> Result<PathBuf, String> {
    if args.gateway_rest != RestProtocol::H1 {
        // Go's net/http speaks HTTP/2 only over TLS: no run with the REST run's load.
        return Err(
            "grpc-gateway's net/http server has no h2c: only with --gateway-rest h1".into(),
        );
    }
    let binary = args.peer_gateway.clone().unwrap_or_else(default_binary);
    if is_executable(&binary) {
        return Ok(binary);
    }
    let script = &args.peer_gateway_script;
    if !script.is_file() {
        return Err(format!(
            "no {} and no build script {}",
            binary.display(),
            script.display()
        ));
    }
    // The script writes `$ROOT/bin/peer-gateway`: only such a path can be built.
    let root = build_root(&binary).ok_or_else(|| {
        format!(
            "no {}, and {} only builds <ROOT>/{BINARY_IN_ROOT}",
            binary.display(),
            script.display()
        )
    })?;
    let skip_apt = std::env::var_os("SKIP_APT").is_some_and(|skip| skip == "1");
    if !skip_apt && !on_path("apt-get") {
        return Err(format!(
            "no {}; building it with {} needs apt-get, which is not on PATH",
            binary.display(),
            script.display()
        ));
    }
    let proto = proto_root().ok_or_else(|| {
        format!(
            "no {}; building it needs the project's proto/{AUTH_PROTO} (run from the project root)",
            binary.display()
        )
    })?;
    let log = workdir.join("peer-gateway-build.log");
    progress(&format!(
        "no {}: building the grpc-gateway peer (bash {}, IRONMESH_PROTO={}, log {}; a minute or two)…",
        binary.display(),
        script.display(),
        proto.display(),
        log.display()
    ));
    build(script, &root, &proto, &log)?;
    if is_executable(&binary) {
        Ok(binary)
    } else {
        Err(format!(
            "{} succeeded but wrote no {}",
            script.display(),
            binary.display()
        ))
    }
}

/// Runs the build script once, to completion.
fn build(script: &Path, root: &Path, proto: &Path, log: &Path) -> Result<(), String> {
    let out = File::create(log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|err| format!("cannot open {}: {err}", log.display()))?;
    let status = Command::new("bash")
        .arg(script)
        .env("ROOT", root)
        .env("IRONMESH_PROTO", proto)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|err| format!("cannot run bash {}: {err}", script.display()))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    Err(format!(
        "bash {} failed ({status}); it ended: {}",
        script.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
    ))
}

/// The build script's `ROOT` for `binary`: `ROOT/bin/peer-gateway` minus `bin/peer-gateway`,
/// by whole components; None for any other path.
fn build_root(binary: &Path) -> Option<PathBuf> {
    let mut root = binary;
    for part in Path::new(BINARY_IN_ROOT).components().rev() {
        if root.file_name() != Some(part.as_os_str()) {
            return None;
        }
        root = root.parent()?;
    }
    Some(if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root.to_path_buf()
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn on_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(tool)))
}

/// `proto/` of the working directory, else of the checkout this bench was built from.
fn proto_root() -> Option<PathBuf> {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    [PathBuf::from("proto"), checkout]
        .into_iter()
        .find(|root| root.join(AUTH_PROTO).is_file())
        .and_then(|root| root.canonicalize().ok())
}

/// The peer running in front of auth, its first answer checked.
pub(super) struct RunningPeer {
    pub child: PeerChild,
    pub binary: PathBuf,
    /// The size of its JSON answer.
    pub body_bytes: u64,
}

impl RunningPeer {
    /// Starts `binary` pinned to the server CPU in front of auth at `backend` and waits for
    /// its answer, which must list the keys gRPC GetJwks did (`kids`). Err: why it is not run.
    pub(super) fn start(
        args: &BenchArgs,
        workdir: &Path,
        binary: PathBuf,
        backend: SocketAddr,
        kids: &[String],
        runtime: &Runtime,
    ) -> Result<Self, String> {
        let mut child = PeerChild::start(&binary, args.server_cpu, backend, workdir)?;
        let at = format!("{} on {}", binary.display(), child.addr());
        let (peer_kids, body_bytes) = child
            .first_answer(runtime)
            .map_err(|why| format!("{at}: {why}"))?;
        if peer_kids != kids {
            return Err(format!(
                "{at}: GET {REST_PATH} lists keys {peer_kids:?}, gRPC GetJwks {kids:?}"
            ));
        }
        Ok(Self {
            child,
            binary,
            body_bytes,
        })
    }

    /// After a run: the same answer as at the start.
    pub(super) fn check_again(
        &self,
        runtime: &Runtime,
        kids: &[String],
        after: &str,
    ) -> Result<(), BenchError> {
        let addr = self.child.addr();
        // When a run's time runs out h2load drops hundreds of requests at once; the peer cancels
        // their calls, and auth's HTTP/2 server (hyper's reset-flood guard) may close that
        // connection. grpc-go then answers 503 "transport is closing" until it has reconnected:
        // ask again, for a bounded time, before calling the peer broken.
        let mut attempts = 0;
        let (peer_kids, body_bytes) = loop {
            match runtime.block_on(check_rest(addr)) {
                Ok(answer) => break answer,
                Err(why) if attempts < 40 && why.contains("503") => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Err(why) => {
                    return Err(BenchError::Failed(format!(
                        "after {after}: the peer ({addr}): {why}"
                    )));
                }
            }
        };
        if peer_kids != kids || body_bytes != self.body_bytes {
            return Err(BenchError::Failed(format!(
                "after {after}: the peer ({addr}) answers keys {peer_kids:?} in {body_bytes} B, \
                 not {kids:?} in {} B",
                self.body_bytes
            )));
        }
        Ok(())
    }
}

/// The running peer (`taskset -c CPU peer-gateway -listen ADDR -backend AUTH`): killed by its
/// PID and reaped when dropped, also when a run fails.
pub(super) struct PeerChild {
    child: Child,
    addr: SocketAddr,
    /// Where its stdout and stderr go.
    log: PathBuf,
}

impl PeerChild {
    /// Starts `binary` pinned to `cpu` on a free loopback port, in front of auth at `backend`.
    pub(super) fn start(
        binary: &Path,
        cpu: usize,
        backend: SocketAddr,
        workdir: &Path,
    ) -> Result<Self, String> {
        // A port free now (the peer takes an address, not port 0).
        let addr = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map_err(|err| format!("no free loopback port: {err}"))?;
        let log = workdir.join("peer-gateway.log");
        let out =
            File::create(&log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|err| format!("cannot open {}: {err}", log.display()))?;
        // taskset execs the peer: the child's PID is the peer's.
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .arg(binary)
            .arg("-listen")
            .arg(addr.to_string())
            .arg("-backend")
            .arg(backend.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|err| format!("cannot start taskset … {}: {err}", binary.display()))?;
        Ok(Self { child, addr, log })
    }

    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until it answers `GET /v1/auth/jwks` with 200 and a list of keys (see
    /// [`check_rest`]); returns their ids and the size of the body.
    pub(super) fn first_answer(&mut self, runtime: &Runtime) -> Result<(Vec<String>, u64), String> {
        let deadline = Instant::now() + READY_WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "it exited ({status}) before answering; its log: {}",
                    self.log_text()
                ));
            }
            match runtime.block_on(check_rest(self.addr)) {
                Ok(answer) => return Ok(answer),
                Err(why) if Instant::now() >= deadline => {
                    return Err(format!(
                        "no answer within {} s ({why}); its log: {}",
                        READY_WAIT.as_secs(),
                        self.log_text()
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Runs `load`, returning what it returned and the CPU time the peer used meanwhile.
    pub(super) fn cpu_during<T>(
        &self,
        load: impl FnOnce() -> Result<T, BenchError>,
    ) -> Result<(T, CpuTime), BenchError> {
        cpu_during(self.child.id(), load)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

impl Drop for PeerChild {
    fn drop(&mut self) {
        // It holds no state: SIGKILL by PID, then reap.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_root_of_a_binary_path() {
        let root = |path: &str| build_root(Path::new(path));
        assert_eq!(
            root("/tmp/ironmesh-peer-gateway/bin/peer-gateway"),
            Some(PathBuf::from("/tmp/ironmesh-peer-gateway"))
        );
        assert_eq!(root("bin/peer-gateway"), Some(PathBuf::from(".")));
        assert_eq!(root("/tmp/x/peer-gateway"), None);
        assert_eq!(root("/tmp/bin/other"), None);
        assert_eq!(root("/nonexistent"), None);
    }
}
