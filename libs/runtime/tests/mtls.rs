//! mTLS between processes: servers built by `grpc_server` with `tls.*` set require a client
//! certificate from the configured CA; clients from the shared builder present one.

use std::path::Path;

use ironmesh_interceptors::client::{ClientBuilder, ClientTls};
use ironmesh_runtime::Config;
use ironmesh_runtime::config::TlsConfig;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

struct Pki {
    ca: String,
    cert: String,
    key: String,
}

/// A throwaway CA and one leaf certificate for `localhost` / `127.0.0.1`.
fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    Pki {
        ca: ca_cert.pem(),
        cert: leaf.pem(),
        key: leaf_key.serialize_pem(),
    }
}

fn write_tls(dir: &Path, pki: &Pki) -> TlsConfig {
    let path = |name: &str, contents: &str| {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        Some(path)
    };
    TlsConfig {
        cert_file: path("cert.pem", &pki.cert),
        key_file: path("key.pem", &pki.key),
        ca_file: path("ca.pem", &pki.ca),
    }
}

async fn serve_tls(config: &Config) -> std::net::SocketAddr {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = ironmesh_runtime::server::grpc_server(
        config,
        "mtls",
        ironmesh_runtime::policy().clone(),
        None,
    )
    .unwrap()
    .add_service(health);
    tokio::spawn(async move {
        // Keep the reporter alive as long as the server.
        let _reporter = reporter;
        server
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
    });
    addr
}

async fn check(target: &str, tls: Option<ClientTls>) -> Result<(), tonic::Status> {
    let mut builder = ClientBuilder::new("test", "mtls", target);
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    HealthClient::new(builder.build().unwrap())
        .check(HealthCheckRequest::default())
        .await
        .map(drop)
}

/// A client with a certificate from the CA is served; one without a client certificate, or
/// speaking plaintext, is refused.
#[tokio::test]
async fn mtls_requires_a_client_certificate_from_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        tls: write_tls(dir.path(), &pki()),
        ..Config::default()
    };
    config.validate().expect("complete tls config");
    let addr = serve_tls(&config).await;
    let target = format!("https://{addr}");

    let client_tls = ironmesh_runtime::tls::client_config(&config.tls)
        .unwrap()
        .expect("tls configured");
    check(&target, Some(client_tls.clone()))
        .await
        .expect("mutual TLS call succeeds");

    let anonymous = ClientTls {
        identity: None,
        ..client_tls
    };
    let refused = check(&target, Some(anonymous)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    let plaintext = check(&format!("http://{addr}"), None).await.unwrap_err();
    assert_eq!(plaintext.code(), Code::Unavailable, "{plaintext:?}");
}

/// A certificate from another CA is refused too.
#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        tls: write_tls(dir.path(), &pki()),
        ..Config::default()
    };
    let addr = serve_tls(&config).await;
    let stranger = pki();
    let ours = ironmesh_runtime::tls::client_config(&config.tls)
        .unwrap()
        .unwrap();
    let tls = ClientTls {
        identity: Some((stranger.cert.into_bytes(), stranger.key.into_bytes())),
        ..ours
    };
    let refused = check(&format!("https://{addr}"), Some(tls))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
}

/// Half a TLS configuration is a configuration error naming the missing key.
#[test]
fn incomplete_tls_config_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut tls = write_tls(dir.path(), &pki());
    tls.key_file = None;
    let config = Config {
        tls,
        ..Config::default()
    };
    let err = config.validate().unwrap_err();
    assert_eq!(err.key, "tls.key_file");
}
