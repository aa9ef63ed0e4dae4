//! `ironmesh`: run the whole mesh (`up`), one component (`serve`), the migrations (`migrate`) or
//! operator tasks (`admin create-user`, `admin rotate-signing-key`, `admin
//! rotate-credential-key`, `admin credential-keys`, `events dead-letters
//! list|replay`), run provisioning jobs (`worker --exec PROGRAM`, see `worker.rs`), or verify
//! an exported audit log offline (`audit verify`, see `audit.rs`). The
//! benchmark is its own
//! binary (`ironmesh-bench`, cli/bench), so none of its code ships in this one.
//!
//! Exit codes: 0 after a clean drain, 64 for unusable configuration (the message names the key),
//! 1 for anything else (a busy port, an unreachable database, a component that failed).

mod audit;
mod events;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use ironmesh_launcher::mesh::{self, StartError};
use ironmesh_runtime::process::{self, EXIT_FAILURE, block_on, fail};
use ironmesh_runtime::storage::Database;
use ironmesh_runtime::{Config, ServiceKind};

/// mimalloc rather than glibc's malloc: the REST path allocates per request (headers, JSON,
/// descriptor-typed messages), and `make bench` showed glibc's malloc/free among its largest
/// costs. One allocator for every command, so bench baselines and measured paths share it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long `up` waits for every component to report healthy.
const READY_LIMIT: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(
    name = "ironmesh",
    version,
    about = "Ironmesh: gRPC microservices platform"
)]
struct Cli {
    /// TOML config file (keys as in the README's config reference).
    #[arg(long, global = true, env = "IRONMESH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for SQLite files (overrides `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run all six services and the gateway in this process, each on its own ports.
    Up,
    /// Run one component: auth, orders, inventory, provisioning, notification, audit or gateway.
    Serve {
        #[arg(value_name = "COMPONENT")]
        component: String,
    },
    /// Operator tasks on the stores (run against the same config as the services).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print the OpenAPI 3.1 document of the REST gateway (what it serves at `/openapi.json`),
    /// generated from the contracts built into this binary.
    Openapi,
    /// Operator tasks on events: the dead letters of a service's outbox.
    Events {
        #[command(subcommand)]
        command: events::EventsCommand,
    },
    /// Audit log tasks that need no server (`audit verify`).
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Run provisioning jobs: claim, run PROGRAM with the job as JSON on its stdin, report by
    /// its exit status (0 + a JSON object: succeeded; 75: retry; else: failed).
    Worker(worker::WorkerArgs),
    /// Apply pending migrations for every service (or one) and exit.
    Migrate {
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user — how the first administrator comes to exist. The password is read from
    /// standard input (one line), never from the command line.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
        /// Comma-separated: customer, operator, admin.
        #[arg(long, value_delimiter = ',', default_value = "admin")]
        roles: Vec<String>,
    },
    /// Make a new access-token signing key now; the current ones stay published until their
    /// tokens expire.
    RotateSigningKey,
    /// Make a new key-encryption key wrap provisioning credentials' data keys from now on;
    /// each provisioning replica re-wraps the older rows in the background. Prints the new key
    /// id and how many rows each key still wraps.
    RotateCredentialKey,
    /// How many provisioning credential rows each key-encryption key still wraps.
    CredentialKeys,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match process::load_config(
        cli.config.as_deref(),
        &ironmesh_launcher::config::sections(),
    ) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Err(err) = ironmesh_launcher::config::validate(&config) {
        eprintln!("ironmesh: {err}");
        return ExitCode::from(process::EXIT_USAGE);
    }
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    match cli.command {
        Command::Up => {
            let settings = config.clone();
            block_on(&settings, up(config))
        }
        Command::Serve { component } if component == "gateway" => {
            let settings = config.clone();
            block_on(&settings, serve_gateway(config))
        }
        Command::Serve { component } => match parse_service(&component) {
            Ok(kind) => process::run_process(kind, config, |config, listeners, shutdown| {
                ironmesh_launcher::services::run(kind, config, listeners, shutdown)
            }),
            Err(code) => code,
        },
        Command::Admin { command } => {
            let settings = config.clone();
            block_on(&settings, admin(config, command))
        }
        Command::Events { command } => {
            let settings = config.clone();
            block_on(&settings, events::run(config, command))
        }
        Command::Openapi => match ironmesh_gateway::openapi::render() {
            Ok(document) => {
                println!("{document}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("ironmesh: cannot build the OpenAPI document: {err}");
                ExitCode::from(EXIT_FAILURE)
            }
        },
        Command::Audit { command } => audit::run(command),
        Command::Worker(args) => {
            let settings = config.clone();
            block_on(&settings, worker::run(config, args))
        }
        Command::Migrate { service } => {
            let kinds = match service.as_deref().map(parse_service).transpose() {
                Ok(Some(kind)) => vec![kind],
                Ok(None) => ServiceKind::ALL.to_vec(),
                Err(code) => return code,
            };
            let settings = config.clone();
            block_on(&settings, migrate(config, kinds))
        }
    }
}

fn parse_service(name: &str) -> Result<ServiceKind, ExitCode> {
    ServiceKind::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = ServiceKind::ALL.iter().map(|k| k.name()).collect();
        eprintln!(
            "ironmesh: unknown service `{name}` (expected one of: {})",
            names.join(", ")
        );
        ExitCode::from(2)
    })
}

async fn up(config: Config) -> ExitCode {
    let started = Instant::now();
    let bound = match mesh::bind(config, &ServiceKind::ALL, true).await {
        Ok(bound) => bound,
        Err(err) => return fail(&err),
    };
    let signal = ironmesh_runtime::signal::shutdown_signal();
    tokio::pin!(signal);
    let running = match bound.start_healthy(READY_LIMIT, &mut signal).await {
        Ok(running) => running,
        // Ctrl-C while starting: everything has drained, which is a clean stop.
        Err(StartError::Interrupted) => return ExitCode::SUCCESS,
        Err(err) => return fail(&err),
    };

    println!(
        "{:<14} {:<22} {:<22} HEALTH",
        "COMPONENT", "LISTEN", "ADMIN"
    );
    for addresses in running.addresses() {
        let scheme = match addresses.component {
            mesh::Component::Gateway => "http",
            mesh::Component::Service(_) => "grpc",
        };
        println!(
            "{:<14} {:<22} {:<22} SERVING",
            addresses.component.to_string(),
            format!("{scheme}://{}", addresses.main),
            format!("http://{}", addresses.admin),
        );
    }
    println!(
        "ironmesh ready: {} components in {} ms (Ctrl-C to stop)",
        running.addresses().len(),
        started.elapsed().as_millis()
    );

    let errors = running.run_until(signal).await;
    if errors.is_empty() {
        tracing::info!("all components stopped");
        ExitCode::SUCCESS
    } else {
        for err in &errors {
            eprintln!("ironmesh: {err}");
        }
        ExitCode::from(EXIT_FAILURE)
    }
}

async fn serve_gateway(config: Config) -> ExitCode {
    let gateway = match config.section::<ironmesh_gateway::GatewayConfig>() {
        Ok(gateway) => gateway,
        Err(err) => return fail(&err),
    };
    let listeners = match ironmesh_gateway::GatewayListeners::bind(&config, &gateway).await {
        Ok(listeners) => listeners,
        Err(err) => return fail(&err),
    };
    match ironmesh_gateway::run(
        config,
        listeners,
        ironmesh_runtime::signal::shutdown_signal(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

async fn admin(config: Config, command: AdminCommand) -> ExitCode {
    match command {
        AdminCommand::CreateUser { email, name, roles } => {
            let mut parsed = Vec::with_capacity(roles.len());
            for role in &roles {
                match ironmesh_auth::domain::Role::parse(role.trim()) {
                    Some(role) => parsed.push(role),
                    None => {
                        eprintln!("ironmesh: unknown role `{role}` (customer, operator, admin)");
                        return ExitCode::from(2);
                    }
                }
            }
            let mut password = String::new();
            if let Err(err) = std::io::stdin().read_line(&mut password) {
                return fail(&format_args!("cannot read the password from stdin: {err}"));
            }
            let password = password.trim_end_matches(['\r', '\n']);
            match ironmesh_auth::create_user(&config, &email, password, &name, &parsed).await {
                Ok(user) => {
                    println!(
                        "created user {} ({}) with roles {}",
                        user.id,
                        user.email,
                        roles.join(",")
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => fail(&err),
            }
        }
        AdminCommand::RotateSigningKey => match ironmesh_auth::rotate_signing_key(&config).await {
            Ok(key) => {
                println!(
                    "new signing key {} (published now, signs from {})",
                    key.kid,
                    key.signs_from.format("%Y-%m-%dT%H:%M:%SZ")
                );
                ExitCode::SUCCESS
            }
            Err(err) => fail(&err),
        },
        AdminCommand::RotateCredentialKey => {
            match ironmesh_provisioning::operator::rotate_credential_key(&config).await {
                Ok((id, report)) => {
                    println!("new credential key {id}");
                    print_key_report(&report);
                    ExitCode::SUCCESS
                }
                Err(err) => fail(&err),
            }
        }
        AdminCommand::CredentialKeys => {
            match ironmesh_provisioning::operator::credential_key_report(&config).await {
                Ok(report) => {
                    print_key_report(&report);
                    ExitCode::SUCCESS
                }
                Err(err) => fail(&err),
            }
        }
    }
}

/// One line per credential key, oldest first: its id, when it was made, the rows it wraps.
fn print_key_report(report: &[ironmesh_provisioning::store::KeyUse]) {
    for key in report {
        println!(
            "{}\tcreated {}\t{} rows",
            key.key_id,
            key.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
            key.rows
        );
    }
}

async fn migrate(config: Config, kinds: Vec<ServiceKind>) -> ExitCode {
    for kind in kinds {
        let url = config.database_url(kind);
        let result = async {
            let db = Database::connect(&url, kind.name()).await?;
            db.migrate(kind.name(), ironmesh_launcher::services::migrations(kind))
                .await?;
            db.close().await;
            Ok::<_, ironmesh_runtime::storage::StorageError>(db.backend())
        }
        .await;
        match result {
            Ok(backend) => println!("migrated {kind} ({backend:?})"),
            Err(err) => return fail(&err),
        }
    }
    ExitCode::SUCCESS
}
