//! Which data providers a service can reach: each provider of a data source checked once —
//! its URL's secrets set, then a TCP connection to its host within a deadline — so that
//! `serve` can say at start which sources are configured and which are unreachable, rather
//! than deciding with failing providers in silence.

use crate::providers::Providers;
use credence_engine::data::DataSource;
use serde::Serialize;
use std::time::Duration;

/// How long a connection to a provider's host may take before it counts as unreachable.
pub const CHECK_TIMEOUT_MS: u64 = 800;

/// What the check of one provider found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderCheck {
    /// The data source.
    pub source: String,
    /// The provider.
    pub provider: String,
    /// Where it is reached: scheme, host and port (never a path, query or secret).
    pub address: String,
    /// `reachable`, `unreachable` or `unconfigured`.
    pub status: &'static str,
    /// Why it is not reachable, or which setting is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The scheme, host and port of a URL (`https://bureau.example:8443/...`).
fn address_of(url: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host.to_string(), port.parse().ok()?)
        }
        _ => (authority.to_string(), default_port),
    };
    Some((scheme.to_string(), host, port))
}

impl Providers {
    /// Checks every provider of `source`: configured (its URL's secrets set) and reachable (a
    /// TCP connection within [`CHECK_TIMEOUT_MS`]).
    pub async fn check(&self, source: &DataSource) -> Vec<ProviderCheck> {
        let mut checks = Vec::with_capacity(source.providers.len());
        for provider in &source.providers {
            let check = |address: String, status, problem: Option<String>| ProviderCheck {
                source: source.name.to_string(),
                provider: provider.name.clone(),
                address,
                status,
                problem,
            };
            let url = match self.fill(&provider.url, "probe") {
                Ok(url) => url,
                Err(problem) => {
                    checks.push(check(String::new(), "unconfigured", Some(problem)));
                    continue;
                }
            };
            let Some((scheme, host, port)) = address_of(&url) else {
                checks.push(check(
                    String::new(),
                    "unconfigured",
                    Some("the URL is not http:// or https://".into()),
                ));
                continue;
            };
            let address = format!("{scheme}://{host}:{port}");
            let connect = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port));
            let outcome =
                tokio::time::timeout(Duration::from_millis(CHECK_TIMEOUT_MS), connect).await;
            checks.push(match outcome {
                Ok(Ok(_)) => check(address, "reachable", None),
                Ok(Err(error)) => check(address, "unreachable", Some(error.to_string())),
                Err(_) => check(
                    address,
                    "unreachable",
                    Some(format!("no connection within {CHECK_TIMEOUT_MS} ms")),
                ),
            });
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_without_paths_or_credentials() {
        let cases = [
            (
                "http://127.0.0.1:9090/bureau/v1/x",
                Some(("http", "127.0.0.1", 9090)),
            ),
            (
                "https://bureau.example/reports/1?k=s",
                Some(("https", "bureau.example", 443)),
            ),
            (
                "https://user:pw@bureau.example:8443/r",
                Some(("https", "bureau.example", 8443)),
            ),
            ("http://[::1]:8080/r", Some(("http", "[::1]", 8080))),
            ("ftp://x/y", None),
        ];
        for (url, expected) in cases {
            let found = address_of(url);
            let expected = expected.map(|(s, h, p)| (s.to_string(), h.to_string(), p));
            assert_eq!(found, expected, "{url}");
        }
    }

    #[tokio::test]
    async fn a_missing_secret_and_a_closed_port_are_told_apart() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let source = |url: String| credence_engine::data::DataSource {
            name: "s".into(),
            subject_field: "customer_id".into(),
            consent_field: None,
            providers: vec![credence_engine::data::Provider {
                name: "p".into(),
                url,
                headers: Vec::new(),
                timeout_ms: 100,
                retries: 0,
                cost: None,
            }],
            fields: Vec::new(),
            cache_ttl_seconds: 0,
            breaker_failures: 5,
            breaker_open_seconds: 30,
            on_failure: credence_engine::data::FailurePolicy::Continue,
        };
        let providers = Providers::new(Default::default());
        let status = |checks: Vec<ProviderCheck>| checks[0].status;
        assert_eq!(
            status(
                providers
                    .check(&source(format!("http://127.0.0.1:{open}/x/{{subject}}")))
                    .await
            ),
            "reachable"
        );
        assert_eq!(
            status(
                providers
                    .check(&source(format!("http://127.0.0.1:{closed}/x")))
                    .await
            ),
            "unreachable"
        );
        let missing = providers
            .check(&source("{secret:CREDENCE_TEST_UNSET_URL}/x".into()))
            .await;
        assert_eq!(missing[0].status, "unconfigured");
        assert!(missing[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("CREDENCE_TEST_UNSET_URL"));
    }
}
