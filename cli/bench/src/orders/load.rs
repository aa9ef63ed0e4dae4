//! The shop a run needs and the load it drives: an operator (made out of band, as `ironmesh
//! admin create-user` does), customers registered over gRPC, a product with plenty of stock and
//! one with little; closed-loop CreateOrder callers; and the contention run. What each order
//! cost the servers is `costs.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inventory::inventory_service_client::InventoryServiceClient;
use ironmesh_proto::ironmesh::auth::v1::{RegisterRequest, auth_service_client::AuthServiceClient};
use ironmesh_proto::ironmesh::inventory::v1 as inventory;
use ironmesh_proto::ironmesh::orders::v1 as orders;
use ironmesh_runtime::Config;
use orders::orders_service_client::OrdersServiceClient;
use tonic::transport::Channel;

use crate::calls::{
    PASSWORD, bearer_request, grpc_failure, load_channel, log_in, operator_token, rpc_failed,
    with_bearer,
};
use crate::error::BenchError;

/// How long one call of the load may take (a SQLite writer can queue behind many).
/// Connections the callers share (HTTP/2 multiplexes the rest).
const CONNECTIONS: usize = 4;
/// The plentiful product's stock: more than any run orders.
const PLENTY: i64 = 1_000_000_000;

/// The listeners the suite calls.
pub struct Addresses {
    pub auth: SocketAddr,
    pub inventory: SocketAddr,
    pub inventory_admin: SocketAddr,
    pub orders: SocketAddr,
}

/// A closed-loop run: orders placed, how long, their latencies.
#[derive(Debug)]
pub struct Throughput {
    pub orders: u64,
    pub secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Throughput {
    pub fn per_sec(&self) -> f64 {
        self.orders as f64 / self.secs
    }
}

/// The 200-for-10 run: wall time and the outcome, checked exact.
#[derive(Debug)]
pub struct Contention {
    pub wall_ms: f64,
    pub reserved: u64,
    pub rejected: u64,
    pub stock_reserved: i64,
}

/// The operator, the customers and the products, with channels to orders and inventory.
pub struct Shop {
    operator: String,
    customers: Vec<String>,
    plenty: String,
    orders: Vec<Channel>,
    inventory: Channel,
    /// Where inventory's `/metrics` is (costs.rs reads its handled counters).
    pub(super) inventory_admin: SocketAddr,
}

impl Shop {
    /// Makes the operator and `customers` customers, then the products.
    pub async fn open(
        config: &Config,
        at: &Addresses,
        customers: usize,
    ) -> Result<Self, BenchError> {
        let auth_channel = load_channel(at.auth).await?;
        let operator =
            operator_token(config, auth_channel.clone(), "bench-operator@example.com").await?;
        let mut auth = AuthServiceClient::new(auth_channel.clone());
        let mut tokens = Vec::with_capacity(customers);
        for i in 0..customers {
            let email = format!("bench-customer-{i}@example.com");
            auth.register(RegisterRequest {
                email: email.clone(),
                password: PASSWORD.to_owned(),
                display_name: format!("Customer {i}"),
            })
            .await
            .map_err(rpc_failed("Register"))?;
            tokens.push(log_in(auth_channel.clone(), &email).await?);
        }
        let inventory = load_channel(at.inventory).await?;
        let mut orders = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            orders.push(load_channel(at.orders).await?);
        }
        let mut shop = Self {
            operator,
            customers: tokens,
            plenty: String::new(),
            orders,
            inventory,
            inventory_admin: at.inventory_admin,
        };
        shop.plenty = shop.product("BENCH-PLENTY", PLENTY).await?;
        Ok(shop)
    }

    /// Creates an active product at 1.00 EUR and stocks `units`; returns its id.
    async fn product(&self, sku: &str, units: i64) -> Result<String, BenchError> {
        let mut client = InventoryServiceClient::new(self.inventory.clone());
        let product = client
            .create_product(bearer_request(
                inventory::CreateProductRequest {
                    product: Some(inventory::Product {
                        sku: sku.to_owned(),
                        name: format!("Bench {sku}"),
                        price_minor: 100,
                        currency: "EUR".to_owned(),
                        active: true,
                        ..Default::default()
                    }),
                },
                &self.operator,
            )?)
            .await
            .map_err(rpc_failed("CreateProduct"))?
            .into_inner()
            .product
            .ok_or_else(|| BenchError::Failed("CreateProduct returned no product".into()))?;
        client
            .adjust_stock(bearer_request(
                inventory::AdjustStockRequest {
                    product_id: product.product_id.clone(),
                    delta: units,
                    reason: inventory::AdjustmentReason::Restock as i32,
                    note: "bench".to_owned(),
                    idempotency_key: String::new(),
                },
                &self.operator,
            )?)
            .await
            .map_err(rpc_failed("AdjustStock"))?;
        Ok(product.product_id)
    }

    async fn stock(&self, product_id: &str) -> Result<inventory::Stock, BenchError> {
        InventoryServiceClient::new(self.inventory.clone())
            .get_stock(bearer_request(
                inventory::GetStockRequest {
                    product_id: product_id.to_owned(),
                },
                &self.operator,
            )?)
            .await
            .map_err(rpc_failed("GetStock"))?
            .into_inner()
            .stock
            .ok_or_else(|| BenchError::Failed("GetStock returned no stock".into()))
    }

    /// `clients` callers, each placing one-line orders of the plentiful product back to back
    /// for `secs` seconds; every order must come back RESERVED.
    pub async fn closed_loop(&self, clients: u32, secs: u64) -> Result<Throughput, BenchError> {
        let until = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..clients as usize {
            let mut client = OrdersServiceClient::new(self.orders[i % CONNECTIONS].clone());
            let token = self.customers[i % self.customers.len()].clone();
            let product = self.plenty.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let call = Instant::now();
                    let order = place(&mut client, &token, &product)
                        .await
                        .map_err(rpc_failed("CreateOrder"))?;
                    if order.status != orders::OrderStatus::Reserved as i32 {
                        return Err(BenchError::Failed(format!(
                            "an order with plenty of stock ended {:?}",
                            orders::OrderStatus::try_from(order.status)
                        )));
                    }
                    latencies.push(u64::try_from(call.elapsed().as_micros()).unwrap_or(u64::MAX));
                }
                Ok::<_, BenchError>(latencies)
            }));
        }
        let mut latencies = Vec::new();
        for task in tasks {
            let mine = task
                .await
                .map_err(|err| BenchError::Failed(format!("a caller panicked: {err}")))??;
            latencies.extend(mine);
        }
        let secs = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        Ok(Throughput {
            orders: latencies.len() as u64,
            secs,
            p50_ms: crate::h2load::percentile_ms(&latencies, 0.50),
            p99_ms: crate::h2load::percentile_ms(&latencies, 0.99),
        })
    }

    /// `contenders` one-unit orders at once, spread over the customers, for a product with
    /// `stock` units: exactly `stock` must be RESERVED, the rest refused for stock, and
    /// inventory must hold exactly `stock` units reserved.
    pub async fn contention(&self, contenders: u32, stock: i64) -> Result<Contention, BenchError> {
        let product = self.product("BENCH-SCARCE", stock).await?;
        let gate = Arc::new(tokio::sync::Barrier::new(contenders as usize + 1));
        let mut tasks = Vec::new();
        for i in 0..contenders as usize {
            let mut client = OrdersServiceClient::new(self.orders[i % CONNECTIONS].clone());
            let token = self.customers[i % self.customers.len()].clone();
            let product = product.clone();
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                gate.wait().await;
                match place(&mut client, &token, &product).await {
                    Ok(order) if order.status == orders::OrderStatus::Reserved as i32 => Ok(true),
                    Ok(order) => Err(BenchError::Failed(format!(
                        "a contended order ended {:?}",
                        orders::OrderStatus::try_from(order.status)
                    ))),
                    Err(status) if status.code() == tonic::Code::FailedPrecondition => Ok(false),
                    Err(status) => Err(BenchError::Failed(grpc_failure("CreateOrder", &status))),
                }
            }));
        }
        gate.wait().await;
        let started = Instant::now();
        let (mut reserved, mut rejected) = (0, 0);
        for task in tasks {
            let won = task
                .await
                .map_err(|err| BenchError::Failed(format!("a contender panicked: {err}")))??;
            if won {
                reserved += 1;
            } else {
                rejected += 1;
            }
        }
        let wall_ms = started.elapsed().as_secs_f64() * 1e3;
        let stock_reserved = self.stock(&product).await?.reserved;
        let expected = u64::try_from(stock).unwrap_or(0);
        if reserved != expected || stock_reserved != stock {
            return Err(BenchError::Failed(format!(
                "contention not exact: {reserved} orders reserved, inventory holds \
                 {stock_reserved} units, for {stock} in stock"
            )));
        }
        Ok(Contention {
            wall_ms,
            reserved,
            rejected,
            stock_reserved,
        })
    }
}

/// One CreateOrder of one unit of `product` with a fresh idempotency key: the order, or the
/// status it was refused with.
async fn place(
    client: &mut OrdersServiceClient<Channel>,
    token: &str,
    product: &str,
) -> Result<orders::Order, tonic::Status> {
    let message = orders::CreateOrderRequest {
        idempotency_key: uuid::Uuid::now_v7().to_string(),
        lines: vec![orders::OrderLine {
            product_id: product.to_owned(),
            quantity: 1,
            ..Default::default()
        }],
    };
    let mut call = tonic::Request::new(message);
    with_bearer(&mut call, token).map_err(tonic::Status::invalid_argument)?;
    client
        .create_order(call)
        .await?
        .into_inner()
        .order
        .ok_or_else(|| tonic::Status::internal("CreateOrder returned no order"))
}
