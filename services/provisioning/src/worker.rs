//! `ironmesh worker --exec PROGRAM`: a job runner operators deploy beside the queue. Each of
//! `concurrency` loops claims a job (long-polling), runs PROGRAM with the job as JSON on its
//! **stdin** (never in argv or the environment), heartbeats at a third of the lease, and
//! finishes by the program's exit: 0 with a JSON object of strings on stdout → CompleteJob
//! with that result; 75 (EX_TEMPFAIL) → a retryable FailJob; anything else → a non-retryable
//! FailJob with the tail of stderr. The job's credentials (GetJobCredentials, fenced by the
//! lease) are in the input's `credentials` as `{kind: {name: value}}`. A lost lease or a cancelled request kills the program.
//! When `stop` fires, no more jobs are claimed; running ones get `grace` to finish, then are
//! killed and failed as retryable.
//!
//! The worker authenticates as the service identity `service:worker` (the deployment's
//! service secret: configured, or `data_dir/service.key` next to `ironmesh up`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ironmesh_proto::ironmesh::provisioning::v1::{
    self as pb, provisioning_service_client::ProvisioningServiceClient,
};
use ironmesh_runtime::{Config, ServiceKind, clients};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use self::input::{credentials, parse_result, tail};

mod input;

/// The identity workers call as (`service:worker`).
pub const WORKER_IDENTITY: &str = "worker";
/// The lease asked for by default; heartbeats come at a third of it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How long one claim waits for work.
const CLAIM_WAIT: Duration = Duration::from_secs(20);
/// Most bytes of stdout read (the result) and of stderr kept (its tail, for the error).
const MAX_STDOUT: usize = 64 * 1024;
const STDERR_TAIL: usize = 2000;
/// The exit status that asks for a retry.
pub const EX_TEMPFAIL: i32 = 75;

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    pub program: PathBuf,
    pub concurrency: usize,
    /// This worker's id on its jobs (e.g. the pod name).
    pub worker_id: String,
    /// How long running jobs may take to finish after `stop`.
    pub grace: Duration,
    /// The lease asked for (5 s – 10 min); heartbeats come at a third of it.
    pub lease: Duration,
}

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the provisioning client could not be built: {0}")]
    Client(String),
    #[error("{0} is not an executable file")]
    Program(String),
}

/// Runs `options.concurrency` job loops against the provisioning service `config` names
/// until `stop` fires and running jobs have finished (or were failed after the grace).
pub async fn run(
    config: &Config,
    options: WorkerOptions,
    stop: CancellationToken,
) -> Result<(), WorkerError> {
    if !is_executable(&options.program) {
        return Err(WorkerError::Program(options.program.display().to_string()));
    }
    let channel = clients::channel(config, WORKER_IDENTITY, ServiceKind::Provisioning)
        .map_err(|err| WorkerError::Client(err.to_string()))?;
    let client = ProvisioningServiceClient::new(channel);
    let mut loops = tokio::task::JoinSet::new();
    for n in 0..options.concurrency.max(1) {
        let (client, options, stop) = (client.clone(), options.clone(), stop.clone());
        loops.spawn(async move { job_loop(client, options, n, stop).await });
    }
    while loops.join_next().await.is_some() {}
    Ok(())
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

type Client = ProvisioningServiceClient<ironmesh_interceptors::client::GrpcChannel>;

async fn job_loop(mut client: Client, options: WorkerOptions, n: usize, stop: CancellationToken) {
    let worker_id = format!("{}-{n}", options.worker_id);
    while !stop.is_cancelled() {
        let claim = pb::ClaimJobRequest {
            worker_id: worker_id.clone(),
            lease_duration: Some(proto_duration(options.lease)),
            wait_timeout: Some(proto_duration(CLAIM_WAIT)),
        };
        let claimed = tokio::select! {
            () = stop.cancelled() => return,
            claimed = client.claim_job(claim) => claimed,
        };
        match claimed.map(|r| r.into_inner().job) {
            Ok(Some(job)) => {
                tracing::info!(job_id = %job.job_id, request_id = %job.request_id, attempt = job.attempt, "running a job");
                run_job(&mut client, &options, job, &stop).await;
            }
            Ok(None) => {}
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "claiming a job failed; retrying");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// How the program ended.
enum Ended {
    Exited {
        code: Option<i32>,
        stdout: Vec<u8>,
        stderr_tail: String,
    },
    /// Killed: the lease was lost or the request cancelled (nothing to report).
    LeaseGone,
    /// Killed after the stop grace.
    Stopped,
    Failed(String),
}

async fn run_job(
    client: &mut Client,
    options: &WorkerOptions,
    job: pb::Job,
    stop: &CancellationToken,
) {
    let credentials = match credentials(client, &job).await {
        Ok(credentials) => credentials,
        Err(status) if status.code() == tonic::Code::FailedPrecondition => {
            tracing::info!(job_id = %job.job_id, reason = status.message(), "the lease ended before the job started");
            return;
        }
        Err(status) => {
            tracing::warn!(job_id = %job.job_id, code = ?status.code(), "the job's credentials could not be read");
            let why = "the worker could not read the job's credentials";
            let _ = fail(
                client,
                job.job_id.clone(),
                job.lease_token.clone(),
                why,
                true,
                None,
            )
            .await;
            return;
        }
    };
    let input = input::job(&job, credentials);
    let ended = supervise(client, options, &job, input.to_string(), stop).await;
    let (token, id) = (job.lease_token.clone(), job.job_id.clone());
    let outcome = match ended {
        Ended::Exited {
            code: Some(0),
            stdout,
            ..
        } => match parse_result(&stdout) {
            Some(result) => {
                let done = pb::CompleteJobRequest {
                    job_id: id,
                    lease_token: token,
                    result: result.into_iter().collect(),
                };
                client.complete_job(done).await.map(|_| "succeeded")
            }
            None => {
                fail(
                    client,
                    id,
                    token,
                    "the program exited 0 without a JSON object of strings on stdout",
                    false,
                    None,
                )
                .await
            }
        },
        Ended::Exited {
            code: Some(EX_TEMPFAIL),
            stderr_tail,
            ..
        } => {
            fail(
                client,
                id,
                token,
                &or_default(stderr_tail, "temporary failure (exit 75)"),
                true,
                None,
            )
            .await
        }
        Ended::Exited {
            code, stderr_tail, ..
        } => {
            let why = match code {
                Some(code) => format!("exit {code}"),
                None => "killed by a signal".to_owned(),
            };
            fail(
                client,
                id,
                token,
                &or_default(stderr_tail, &why),
                false,
                None,
            )
            .await
        }
        Ended::Stopped => {
            fail(
                client,
                id,
                token,
                "the worker stopped before the job finished",
                true,
                None,
            )
            .await
        }
        Ended::Failed(why) => fail(client, id, token, &why, true, None).await,
        Ended::LeaseGone => Ok("abandoned"),
    };
    match outcome {
        Ok(what) => tracing::info!(job_id = %job.job_id, outcome = what, "job finished"),
        Err(status) => {
            tracing::warn!(job_id = %job.job_id, code = ?status.code(), message = status.message(), "reporting a job failed")
        }
    }
}

fn or_default(text: String, default: &str) -> String {
    if text.trim().is_empty() {
        default.to_owned()
    } else {
        text
    }
}

async fn fail(
    client: &mut Client,
    job_id: String,
    lease_token: String,
    error: &str,
    retryable: bool,
    retry_after: Option<Duration>,
) -> Result<&'static str, tonic::Status> {
    let error: String = error.chars().take(2000).collect();
    let request = pb::FailJobRequest {
        job_id,
        lease_token,
        error,
        retryable,
        retry_after: retry_after.map(proto_duration),
    };
    client.fail_job(request).await.map(|_| {
        if retryable {
            "failed, retryable"
        } else {
            "failed"
        }
    })
}

/// Runs the program for `job`, heartbeating, until it exits or must be killed.
async fn supervise(
    client: &mut Client,
    options: &WorkerOptions,
    job: &pb::Job,
    input: String,
    stop: &CancellationToken,
) -> Ended {
    let spawned = tokio::process::Command::new(&options.program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => return Ended::Failed(format!("the program could not start: {err}")),
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let feed = async move {
        let _ = stdin.write_all(input.as_bytes()).await;
        let _ = stdin.shutdown().await;
    };
    let out = async move {
        let mut buf = Vec::new();
        let _ = (&mut stdout)
            .take(MAX_STDOUT as u64)
            .read_to_end(&mut buf)
            .await;
        buf
    };
    let err = async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        tail(&buf)
    };
    let io = tokio::spawn(async move {
        let ((), out, err) = tokio::join!(feed, out, err);
        (out, err)
    });
    let mut beat = tokio::time::interval(options.lease / 3);
    beat.tick().await;
    let mut grace: Option<tokio::time::Instant> = None;
    loop {
        let deadline = async {
            match grace {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => {
                let (stdout, stderr_tail) = io.await.unwrap_or_default();
                return Ended::Exited { code: status.ok().and_then(|s| s.code()), stdout, stderr_tail };
            }
            _ = beat.tick() => {
                let request = pb::HeartbeatRequest {
                    job_id: job.job_id.clone(),
                    lease_token: job.lease_token.clone(),
                    lease_duration: Some(proto_duration(options.lease)),
                    progress: String::new(),
                };
                if let Err(status) = client.heartbeat(request).await
                    && status.code() == tonic::Code::FailedPrecondition
                {
                    tracing::warn!(job_id = %job.job_id, message = status.message(), "the lease is gone; killing the program");
                    let _ = child.kill().await;
                    return Ended::LeaseGone;
                }
            }
            () = stop.cancelled(), if grace.is_none() => {
                grace = Some(tokio::time::Instant::now() + options.grace);
            }
            () = deadline => {
                let _ = child.kill().await;
                return Ended::Stopped;
            }
        }
    }
}

fn proto_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}
