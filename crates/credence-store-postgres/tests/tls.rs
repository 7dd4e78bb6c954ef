//! TLS to PostgreSQL: a server with a certificate from a private CA is reached encrypted when its CA is given, and refused (not reached in the clear) when it is not.

use credence_store_postgres::{PostgresOptions, PostgresStore};
use std::path::PathBuf;

/// The test CA and the server certificate for 127.0.0.1 / localhost that the HTTPS provider
/// tests use (`tools/tls/make_test_certs.sh`).
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../credence-cli/tests/fixtures/tls")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_against_the_given_ca() {
    let certificate = std::fs::read(fixture("server.pem")).unwrap();
    let key = std::fs::read(fixture("server.key")).unwrap();
    let Some(cluster) = credence_throwaway_postgres::private_cluster(
        "tls",
        &[
            "ssl=on",
            "ssl_cert_file=server.pem",
            "ssl_key_file=server.key",
        ],
        &[("server.pem", &certificate), ("server.key", &key)],
    ) else {
        return;
    };
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=require",
        cluster.port()
    );
    let mut options = PostgresOptions::new(url.clone());
    options.ca_file = Some(fixture("ca.pem"));
    let store = PostgresStore::connect(&options).await.unwrap();
    let info = store.connection_info().await.unwrap();
    assert!(info.tls, "{info:?}");
    assert!(
        info.server_version
            .starts_with(|c: char| c.is_ascii_digit()),
        "{info:?}"
    );

    // Without the CA the certificate is not trusted, and the connection is refused.
    let untrusted = PostgresStore::connect(&PostgresOptions::new(url))
        .await
        .err()
        .unwrap();
    let message = format!("{untrusted:?}");
    assert!(message.to_lowercase().contains("certificate"), "{message}");

    // A CA file that is not one names itself and the fix.
    let mut broken = options.clone();
    broken.ca_file = Some(fixture("README.md"));
    let error = PostgresStore::connect(&broken)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("--database-ca-file") && error.contains("PEM"),
        "{error}"
    );
}
