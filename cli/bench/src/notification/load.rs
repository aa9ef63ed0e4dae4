//! The calls the suite makes: an operator made out of band (as `ironmesh admin create-user`
//! does), customers registered over gRPC with their webhook endpoints, Sends as the operator
//! (channels [CHANNEL_WEBHOOK]) — a batch from concurrent senders or a paced stream — and
//! ListDeliveries of an endpoint.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ironmesh_proto::ironmesh::auth::v1::{RegisterRequest, auth_service_client::AuthServiceClient};
use ironmesh_proto::ironmesh::notification::v1 as notification;
use ironmesh_runtime::Config;
use notification::notification_service_client::NotificationServiceClient;
use tonic::transport::Channel;

use crate::calls::{PASSWORD, bearer_request, load_channel, log_in, operator_token, rpc_failed};
use crate::error::BenchError;

/// How long one call may take (a SQLite writer can queue behind many).
/// Connections the senders share.
const CONNECTIONS: usize = 4;
/// The event type of every Send.
pub const EVENT_TYPE: &str = "bench.webhook.sent";

/// A notification as Send returned it.
#[derive(Clone, Debug)]
pub struct Sent {
    pub id: String,
    /// Its `created_at`, µs since the Unix epoch.
    pub created_us: i64,
}

/// The operator's token and the channels to notification.
#[derive(Clone)]
pub struct Calls {
    operator: String,
    auth: Channel,
    notification: Vec<Channel>,
}

/// A customer: id and token.
#[derive(Clone, Debug)]
pub struct Customer {
    pub id: String,
    token: String,
}

impl Calls {
    /// Makes the operator (out of band) and logs it in.
    pub async fn open(
        config: &Config,
        auth: SocketAddr,
        notification: SocketAddr,
    ) -> Result<Self, BenchError> {
        let auth = load_channel(auth).await?;
        let operator = operator_token(config, auth.clone(), "bench-operator@example.com").await?;
        let mut channels = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            channels.push(load_channel(notification).await?);
        }
        Ok(Self {
            operator,
            auth,
            notification: channels,
        })
    }

    fn client(&self, i: usize) -> NotificationServiceClient<Channel> {
        NotificationServiceClient::new(self.notification[i % CONNECTIONS].clone())
    }

    /// Registers `name@example.com` and logs it in.
    pub async fn customer(&self, name: &str) -> Result<Customer, BenchError> {
        let email = format!("{name}@example.com");
        let user = AuthServiceClient::new(self.auth.clone())
            .register(RegisterRequest {
                email: email.clone(),
                password: PASSWORD.to_owned(),
                display_name: name.to_owned(),
            })
            .await
            .map_err(rpc_failed("Register"))?
            .into_inner()
            .user
            .ok_or_else(|| BenchError::Failed("Register returned no user".into()))?;
        let token = log_in(self.auth.clone(), &email).await?;
        Ok(Customer {
            id: user.user_id,
            token,
        })
    }

    /// `customer` registers `url` for every event type: the endpoint's id and signing secret.
    pub async fn endpoint(
        &self,
        customer: &Customer,
        url: &str,
    ) -> Result<(String, String), BenchError> {
        let created = self
            .client(0)
            .create_webhook_endpoint(bearer_request(
                notification::CreateWebhookEndpointRequest {
                    endpoint: Some(notification::WebhookEndpoint {
                        url: url.to_owned(),
                        description: "bench receiver".to_owned(),
                        ..Default::default()
                    }),
                },
                &customer.token,
            )?)
            .await
            .map_err(rpc_failed("CreateWebhookEndpoint"))?
            .into_inner();
        let endpoint = created
            .endpoint
            .ok_or_else(|| BenchError::Failed("CreateWebhookEndpoint returned nothing".into()))?;
        Ok((endpoint.endpoint_id, created.signing_secret))
    }

    /// One Send of a webhook-only notification to `recipient`.
    pub async fn send(&self, i: usize, recipient: &str) -> Result<Sent, BenchError> {
        send(self.client(i), &self.operator, recipient, i).await
    }

    /// `n` Sends to `recipient` from `senders` concurrent callers, back to back.
    pub async fn batch(
        &self,
        recipient: &str,
        n: u64,
        senders: usize,
    ) -> Result<Vec<Sent>, BenchError> {
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(senders);
        for s in 0..senders {
            let (client, token) = (self.client(s), self.operator.clone());
            let (recipient, next) = (recipient.to_owned(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut sent = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::AcqRel);
                    if i >= n {
                        return Ok::<_, BenchError>(sent);
                    }
                    let i = usize::try_from(i).unwrap_or(usize::MAX);
                    sent.push(send(client.clone(), &token, &recipient, i).await?);
                }
            }));
        }
        join_all(tasks).await
    }

    /// For `secs` seconds, `rate` Sends per second to each of `recipients` (open loop: a Send
    /// starts on its tick whatever the earlier ones do); what each recipient was sent.
    pub async fn paced(
        &self,
        recipients: &[&str],
        rate: u32,
        secs: u64,
    ) -> Result<Vec<Vec<Sent>>, BenchError> {
        let every = Duration::from_secs_f64(1.0 / f64::from(rate));
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let until = Instant::now() + Duration::from_secs(secs);
        let mut tasks: Vec<Vec<_>> = recipients.iter().map(|_| Vec::new()).collect();
        let mut i = 0;
        while Instant::now() < until {
            ticks.tick().await;
            for (r, recipient) in recipients.iter().enumerate() {
                let (client, token) = (self.client(i), self.operator.clone());
                let recipient = (*recipient).to_owned();
                tasks[r].push(tokio::spawn(async move {
                    send(client, &token, &recipient, i).await.map(|s| vec![s])
                }));
                i += 1;
            }
        }
        let mut sent = Vec::with_capacity(recipients.len());
        for tasks in tasks {
            sent.push(join_all(tasks).await?);
        }
        Ok(sent)
    }

    /// Every delivery to `endpoint_id` (operator view), all pages.
    pub async fn deliveries(
        &self,
        endpoint_id: &str,
    ) -> Result<Vec<notification::Delivery>, BenchError> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .client(0)
                .list_deliveries(bearer_request(
                    notification::ListDeliveriesRequest {
                        page_size: 200,
                        page_token: page_token.clone(),
                        endpoint_id: endpoint_id.to_owned(),
                        ..Default::default()
                    },
                    &self.operator,
                )?)
                .await
                .map_err(rpc_failed("ListDeliveries"))?
                .into_inner();
            all.extend(page.deliveries);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            page_token = page.next_page_token;
        }
    }
}

async fn join_all(
    tasks: Vec<tokio::task::JoinHandle<Result<Vec<Sent>, BenchError>>>,
) -> Result<Vec<Sent>, BenchError> {
    let mut all = Vec::new();
    for task in tasks {
        let mine = task
            .await
            .map_err(|err| BenchError::Failed(format!("a sender panicked: {err}")))??;
        all.extend(mine);
    }
    Ok(all)
}

async fn send(
    mut client: NotificationServiceClient<Channel>,
    token: &str,
    recipient: &str,
    i: usize,
) -> Result<Sent, BenchError> {
    let message = notification::SendRequest {
        recipient_id: recipient.to_owned(),
        event_type: EVENT_TYPE.to_owned(),
        subject: format!("Bench notification {i}"),
        body: "A notification the benchmark sent to a webhook endpoint.".to_owned(),
        data: [("sequence".to_owned(), i.to_string())].into(),
        channels: vec![notification::Channel::Webhook as i32],
        idempotency_key: uuid::Uuid::now_v7().to_string(),
    };
    let sent = client
        .send(bearer_request(message, token)?)
        .await
        .map_err(rpc_failed("Send"))?
        .into_inner()
        .notification
        .ok_or_else(|| BenchError::Failed("Send returned no notification".into()))?;
    let created = sent
        .created_at
        .ok_or_else(|| BenchError::Failed("Send returned no created_at".into()))?;
    Ok(Sent {
        id: sent.notification_id,
        created_us: created.seconds * 1_000_000 + i64::from(created.nanos / 1000),
    })
}

/// How long a received delivery may take to be recorded DELIVERED.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// The endpoint's deliveries once none of `sent`'s is PENDING any more (the receiver records a
/// request before its answer reaches the engine), or as they are after [`SETTLE_LIMIT`] (the
/// checks then say what is wrong).
pub async fn settled(
    calls: &Calls,
    endpoint: &str,
    sent: &[&Sent],
) -> Result<Vec<notification::Delivery>, BenchError> {
    let pending = notification::DeliveryState::Pending as i32;
    let until = Instant::now() + SETTLE_LIMIT;
    loop {
        let deliveries = calls.deliveries(endpoint).await?;
        let unsettled: HashSet<&str> = deliveries
            .iter()
            .filter(|d| d.state == pending)
            .map(|d| d.notification_id.as_str())
            .collect();
        if Instant::now() >= until || !sent.iter().any(|s| unsettled.contains(s.id.as_str())) {
            return Ok(deliveries);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
