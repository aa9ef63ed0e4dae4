//! `ironmesh events dead-letters list|replay`: the operator's view of a producing service's dead
//! letters, straight from its store (the same functions its `EventsAdminService` serves, so the
//! two cannot disagree). A replay is picked up by the service's running relay at its next poll.

use std::process::ExitCode;

use clap::Subcommand;
use ironmesh_outbox::dead_letters::{self, Replay};
use ironmesh_runtime::process::{EXIT_FAILURE, fail};
use ironmesh_runtime::storage::Database;
use ironmesh_runtime::{Config, ServiceKind};

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Dead letters of a service's outbox: pairs a subscriber refused for good or that ran out
    /// of attempts.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLettersCommand,
    },
}

#[derive(Subcommand)]
pub enum DeadLettersCommand {
    /// Print dead letters, one JSON object per line, in outbox order; a last line
    /// `{"next_page_token": …}` when there are more.
    List {
        /// The producing service (e.g. auth).
        #[arg(long)]
        service: String,
        /// Only this subscriber's.
        #[arg(long)]
        subscriber: Option<String>,
        #[arg(long, default_value_t = 100)]
        page_size: u32,
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Make dead letters pending again with fresh attempts: one event's, or every one of the
    /// subscriber's.
    Replay {
        #[arg(long)]
        service: String,
        #[arg(long)]
        subscriber: String,
        #[arg(long)]
        event_id: Option<String>,
    },
}

pub async fn run(config: Config, command: EventsCommand) -> ExitCode {
    let EventsCommand::DeadLetters { command } = command;
    let service = match &command {
        DeadLettersCommand::List { service, .. } | DeadLettersCommand::Replay { service, .. } => {
            service
        }
    };
    let Some(kind) = ServiceKind::from_name(service) else {
        eprintln!("ironmesh: unknown service `{service}`");
        return ExitCode::from(2);
    };
    let db = match open(&config, kind).await {
        Ok(db) => db,
        Err(err) => return fail(&err),
    };
    let code = match command {
        DeadLettersCommand::List {
            subscriber,
            page_size,
            page_token,
            ..
        } => list(&db, kind, subscriber.as_deref(), page_size, &page_token).await,
        DeadLettersCommand::Replay {
            subscriber,
            event_id,
            ..
        } => {
            let which = match event_id.as_deref() {
                Some(event_id) => Replay::Event {
                    subscriber: &subscriber,
                    event_id,
                },
                None => Replay::AllFor {
                    subscriber: &subscriber,
                },
            };
            match dead_letters::replay(&db, which).await {
                Ok(n) => {
                    println!("replayed {n} dead letter(s) of {kind} for {subscriber}");
                    ExitCode::SUCCESS
                }
                Err(err) => no_outbox_or(kind, &err),
            }
        }
    };
    db.close().await;
    code
}

async fn list(
    db: &Database,
    kind: ServiceKind,
    subscriber: Option<&str>,
    page_size: u32,
    page_token: &str,
) -> ExitCode {
    if !(1..=dead_letters::MAX_PAGE_SIZE).contains(&page_size) {
        eprintln!(
            "ironmesh: --page-size must be between 1 and {}",
            dead_letters::MAX_PAGE_SIZE
        );
        return ExitCode::from(2);
    }
    match dead_letters::list(db, subscriber, page_size, page_token).await {
        Ok(page) => {
            for d in page.dead_letters {
                let line = serde_json::json!({
                    "service": kind.name(),
                    "subscriber": d.subscriber,
                    "event_id": d.event.id,
                    "type": d.event.r#type,
                    "aggregate": format!("{}/{}", d.event.aggregate_type, d.event.aggregate_id),
                    "aggregate_version": d.event.aggregate_version,
                    "attempts": d.attempts,
                    "last_error": d.last_error,
                    "dead_at": d.dead_at.to_rfc3339(),
                });
                println!("{line}");
            }
            if !page.next_page_token.is_empty() {
                println!(
                    "{}",
                    serde_json::json!({ "next_page_token": page.next_page_token })
                );
            }
            ExitCode::SUCCESS
        }
        Err(err) => no_outbox_or(kind, &err),
    }
}

/// The service's store, migrated (so a service that has an outbox has its tables).
async fn open(
    config: &Config,
    kind: ServiceKind,
) -> Result<Database, ironmesh_runtime::storage::StorageError> {
    let db = Database::connect(&config.database_url(kind), kind.name()).await?;
    db.migrate(kind.name(), ironmesh_launcher::services::migrations(kind))
        .await?;
    Ok(db)
}

/// A store without outbox tables means a service that writes no events yet: say so.
fn no_outbox_or(kind: ServiceKind, err: &ironmesh_outbox::OutboxError) -> ExitCode {
    let text = err.to_string();
    if text.contains("outbox_deliveries") || text.contains("outbox_events") {
        eprintln!("ironmesh: {kind} has no outbox (it writes no events)");
        return ExitCode::from(EXIT_FAILURE);
    }
    fail(err)
}
