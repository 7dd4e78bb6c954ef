//! Webhooks: review outcomes posted to the URLs lenders register, signed with HMAC-SHA256 and
//! retried with backoff until delivered. Deliveries wait in the store (an outbox), so a
//! restart loses none.
//!
//! Each POST carries `X-Credence-Event`, `X-Credence-Delivery` (the delivery id, for
//! de-duplication) and `X-Credence-Signature: t=<ms>,v1=<hex>`, where `v1` is
//! HMAC-SHA256(secret, "<t>.<body>"): the receiver recomputes it and rejects a stale `t`.

use credence_store::{DeliveryRecord, Store};
use hmac::{Hmac, Mac};
use std::sync::Arc;
use std::time::Duration;

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 10;
use credence_app::metrics::WEBHOOK_DELIVERIES_TOTAL;

/// The `v1` signature of a body sent at `timestamp_ms`.
pub fn signature(secret: &str, timestamp_ms: i64, body: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Wait before the next attempt after `attempts` failed ones: 1 s, 2 s, 4 s, … at most an hour.
pub fn backoff_ms(attempts: i64) -> i64 {
    1000_i64
        .saturating_mul(1_i64 << attempts.clamp(0, 12))
        .min(3_600_000)
}

/// The client webhooks are posted with: HTTP and HTTPS, trusting what provider calls trust.
pub fn agent(tls: Arc<rustls::ClientConfig>) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .tls_config(tls)
        .timeout(Duration::from_secs(5))
        .redirects(0)
        .build()
}

fn post(agent: &ureq::Agent, delivery: &DeliveryRecord, timestamp_ms: i64) -> Result<(), String> {
    let signed = format!(
        "t={timestamp_ms},v1={}",
        signature(&delivery.secret, timestamp_ms, &delivery.body)
    );
    let result = agent
        .post(&delivery.url)
        .set("Content-Type", "application/json")
        .set("X-Credence-Event", &delivery.event)
        .set("X-Credence-Delivery", &delivery.id.to_string())
        .set("X-Credence-Signature", &signed)
        .send_string(&delivery.body);
    match result {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(status, _)) => Err(format!("the receiver answered {status}")),
        Err(error) => Err(format!("cannot reach the receiver: {error}")),
    }
}

/// Attempts every due delivery once; returns how many were delivered.
pub async fn deliver_due(store: &Arc<dyn Store>, agent: &ureq::Agent, now_ms: i64) -> usize {
    let due = match store.due_deliveries(now_ms, 50).await {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(%error, "cannot read due webhook deliveries");
            return 0;
        }
    };
    let mut delivered = 0;
    for delivery in due {
        let sending = delivery.clone();
        let agent = agent.clone();
        let result = tokio::task::spawn_blocking(move || post(&agent, &sending, now_ms))
            .await
            .unwrap_or_else(|e| Err(format!("the delivery panicked: {e}")));
        let attempts = delivery.attempts + 1;
        let (delivered_at, next, error, outcome) = match result {
            Ok(()) => (Some(now_ms), None, None, "delivered"),
            Err(error) if attempts < MAX_ATTEMPTS => (
                None,
                Some(now_ms + backoff_ms(attempts - 1)),
                Some(error),
                "retrying",
            ),
            Err(error) => (None, None, Some(error), "failed"),
        };
        if outcome == "delivered" {
            delivered += 1;
        } else {
            tracing::warn!(delivery = delivery.id, webhook = %delivery.webhook_id, attempts, outcome,
                error = error.as_deref().unwrap_or_default(), "webhook delivery did not succeed");
        }
        metrics::counter!(WEBHOOK_DELIVERIES_TOTAL, "outcome" => outcome).increment(1);
        if let Err(error) = store
            .record_attempt(delivery.id, delivered_at, next, error)
            .await
        {
            tracing::warn!(%error, "cannot record a webhook attempt");
        }
    }
    delivered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_time_and_body_and_backoff_doubles_to_an_hour() {
        let a = signature("whsec_1", 1000, "{}");
        assert_eq!(a.len(), 64);
        assert_ne!(a, signature("whsec_1", 1001, "{}"));
        assert_ne!(a, signature("whsec_1", 1000, "{ }"));
        assert_ne!(a, signature("whsec_2", 1000, "{}"));
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let waits: Vec<i64> = (0..4).map(backoff_ms).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000]);
        assert_eq!(backoff_ms(40), 3_600_000);
    }
}
