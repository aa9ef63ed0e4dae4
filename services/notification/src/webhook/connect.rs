//! The connector under the webhook client, its only way onto the network: it resolves with
//! [`ssrf::resolve`] and connects only to the addresses that returned, checks the peer the
//! socket actually reached, and speaks TLS (rustls on ring, the Mozilla roots) for `https`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_util::either::Either;

use super::refusal_text;
use crate::ssrf::{self, Policy, Refusal};

/// The address a connection reached; the client puts it on every response it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Peer(pub(super) SocketAddr);

/// Why no connection was made; the text is what [`super::Attempt::error`] shows.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectFailure {
    #[error("{}", refusal_text(.0))]
    Refused(Refusal),
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("connect failed: {0}")]
    Io(io::ErrorKind),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
}

/// A `tower::Service<Uri>` for hyper-util's pooled client.
#[derive(Clone)]
pub(super) struct GuardedConnector {
    policy: Policy,
    connect_timeout: Duration,
    tls: TlsConnector,
}

impl GuardedConnector {
    pub(super) fn new(policy: Policy, connect_timeout: Duration) -> Result<Self, String> {
        Ok(Self {
            policy,
            connect_timeout,
            tls: TlsConnector::from(Arc::new(tls_config()?)),
        })
    }

    async fn connect(self, uri: Uri) -> Result<TokioIo<Stream>, ConnectFailure> {
        let url = url::Url::parse(&uri.to_string())
            .map_err(|_| ConnectFailure::Refused(Refusal::Malformed))?;
        let target = ssrf::Target { url };
        let addresses = ssrf::resolve(&target, self.policy)
            .await
            .map_err(ConnectFailure::Refused)?;
        let mut failure = ConnectFailure::Refused(Refusal::Unresolvable);
        for address in addresses {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
                Ok(Ok(tcp)) => return self.secure(tcp, &target).await,
                Ok(Err(error)) => failure = ConnectFailure::Io(error.kind()),
                Err(_) => failure = ConnectFailure::Timeout(self.connect_timeout),
            }
        }
        Err(failure)
    }

    /// Checks where `tcp` really went, then adds TLS for `https`.
    async fn secure(
        &self,
        tcp: TcpStream,
        target: &ssrf::Target,
    ) -> Result<TokioIo<Stream>, ConnectFailure> {
        let peer = tcp.peer_addr().map_err(|e| ConnectFailure::Io(e.kind()))?;
        ssrf::refuse(peer.ip(), self.policy).map_err(ConnectFailure::Refused)?;
        let _ = tcp.set_nodelay(true);
        let io = if target.url.scheme() == "https" {
            let host = target.url.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(host.to_owned())
                .map_err(|_| ConnectFailure::Refused(Refusal::Malformed))?;
            let tls = self.tls.connect(name, tcp).await.map_err(tls_failure)?;
            Either::Right(Box::new(tls))
        } else {
            Either::Left(tcp)
        };
        Ok(TokioIo::new(Stream { io, peer }))
    }
}

impl tower::Service<Uri> for GuardedConnector {
    type Response = TokioIo<Stream>;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectFailure>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectFailure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

/// rustls reports through `io::Error`; keep its message (certificate, protocol), nothing else.
fn tls_failure(error: io::Error) -> ConnectFailure {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => ConnectFailure::Tls(tls.to_string()),
        None => ConnectFailure::Tls(error.kind().to_string()),
    }
}

/// TLS for customer endpoints: ring, the Mozilla roots, safe protocol versions, HTTP/1.1.
fn tls_config() -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("webhook TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// One connection, plain or TLS, knowing its peer.
pub(super) struct Stream {
    io: Either<TcpStream, Box<TlsStream<TcpStream>>>,
    peer: SocketAddr,
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new().extra(Peer(self.peer))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
