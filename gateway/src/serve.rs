//! The REST listener's accept loop. `axum::serve` has no header read timeout, so a client that
//! opens connections and trickles header bytes (slowloris) could hold them forever; hyper's
//! HTTP/1 builder has one, so connections are served with hyper-util directly: the timeout,
//! HTTP/1 and h2c (or HTTP/1 and HTTP/2 over TLS with ALPN when a certificate is configured),
//! the client's address as axum's `ConnectInfo`, and a graceful drain.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::GatewayConfig;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The largest header list hyper itself reads over HTTP/2, well above any configured limit.
pub(crate) const HEADER_LIST_BACKSTOP: u32 = 256 * 1024;

/// The TLS acceptor for `gateway.tls_cert_file` / `tls_key_file`, if they are set.
pub fn tls_acceptor(config: &GatewayConfig) -> Result<Option<TlsAcceptor>, crate::GatewayError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&config.tls_cert_file, &config.tls_key_file) else {
        return Ok(None);
    };
    let fail = |what: &str, err: &dyn std::fmt::Display| {
        crate::GatewayError::Tls(format!("{what}: {err}"))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| fail("gateway.tls_cert_file", &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail("gateway.tls_cert_file", &e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| fail("gateway.tls_key_file", &e))?;
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut server = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("TLS", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| fail("gateway.tls_cert_file", &e))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(std::sync::Arc::new(server))))
}

/// Serves `router` on `listener` until `stop`, then waits for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    stop: CancellationToken,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // hyper's HTTP/2 default (16 KiB) would refuse large header lists itself, with a bare 431
    // and no body; the backstop lets `header_limit` answer them in the one error shape instead,
    // as it does over HTTP/1.1 (whose header buffer hyper already sizes at ~400 KiB).
    builder.http2().max_header_list_size(HEADER_LIST_BACKSTOP);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            router
                .clone()
                .map_request(move |request: http::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                    request
                });
        let service = TowerToHyperService::new(service);
        match &tls {
            None => {
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!(error = %err, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                // The handshake runs in the connection's task, bounded like the header read, so a
                // slow handshake holds neither the accept loop nor a connection forever.
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream =
                        match tokio::time::timeout(header_read_timeout, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(err)) => {
                                tracing::debug!(error = %err, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(err) = watcher.watch(connection).await {
                        tracing::debug!(error = %err, "connection ended with an error");
                    }
                });
            }
        }
    }
    graceful.shutdown().await;
}
