//! Kept provider answers and the webhook outbox in the in-memory store.

use super::*;
use crate::{ProviderAnswerStore, WebhookOutbox};

#[async_trait::async_trait]
impl ProviderAnswerStore for MemoryStore {
    async fn put_provider_answers(
        &self,
        answers: Vec<ProviderAnswerRecord>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state
            .provider_answers
            .retain(|_, a| a.expires_at_ms > now_ms);
        for answer in answers.into_iter().filter(|a| a.expires_at_ms > now_ms) {
            let key = (answer.source_key.clone(), answer.subject.clone());
            let newer = state
                .provider_answers
                .get(&key)
                .is_none_or(|old| answer.fetched_at_ms >= old.fetched_at_ms);
            if newer {
                state.provider_answers.insert(key, answer);
            }
        }
        Ok(())
    }

    async fn provider_answers(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<ProviderAnswerRecord>, StoreError> {
        let mut answers: Vec<ProviderAnswerRecord> = self
            .state()
            .provider_answers
            .values()
            .filter(|a| a.expires_at_ms > now_ms)
            .cloned()
            .collect();
        answers.sort_by_key(|a| std::cmp::Reverse(a.expires_at_ms));
        answers.truncate(limit as usize);
        Ok(answers)
    }
}

#[async_trait::async_trait]
impl WebhookOutbox for MemoryStore {
    async fn insert_webhook(
        &self,
        hook: WebhookRecord,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.webhooks.contains_key(&hook.id) {
            return Err(StoreError::Conflict {
                what: format!("webhook {}", hook.id),
            });
        }
        state.webhooks.insert(hook.id.clone(), hook);
        state.audit(audit);
        Ok(())
    }

    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let mut all: Vec<WebhookRecord> = self.state().webhooks.values().cloned().collect();
        all.sort_by(|a, b| {
            a.created_at_ms
                .cmp(&b.created_at_ms)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }

    async fn delete_webhook(&self, id: &str, audit: NewAuditEvent) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.webhooks.remove(id).is_none() {
            return Err(StoreError::Precondition {
                what: format!("there is no webhook {id}"),
            });
        }
        for delivery in state.deliveries.values_mut() {
            if delivery.webhook_id == id && delivery.delivered_at_ms.is_none() {
                delivery.next_attempt_ms = None;
            }
        }
        state.audit(audit);
        Ok(())
    }

    async fn enqueue_deliveries(
        &self,
        event: &str,
        body: &str,
        at_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut state = self.state();
        let mut next = state.deliveries.keys().next_back().copied().unwrap_or(0);
        let hooks: Vec<String> = state.webhooks.keys().cloned().collect();
        for webhook_id in &hooks {
            next += 1;
            state.deliveries.insert(
                next,
                Delivery {
                    webhook_id: webhook_id.clone(),
                    event: event.to_string(),
                    body: body.to_string(),
                    attempts: 0,
                    next_attempt_ms: Some(at_ms),
                    delivered_at_ms: None,
                },
            );
        }
        Ok(hooks.len())
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let state = self.state();
        Ok(state
            .deliveries
            .iter()
            .filter(|(_, d)| {
                d.delivered_at_ms.is_none() && d.next_attempt_ms.is_some_and(|t| t <= now_ms)
            })
            .filter_map(|(id, d)| {
                let hook = state.webhooks.get(&d.webhook_id)?;
                Some(DeliveryRecord {
                    id: *id,
                    webhook_id: d.webhook_id.clone(),
                    url: hook.url.clone(),
                    secret: hook.secret.clone(),
                    event: d.event.clone(),
                    body: d.body.clone(),
                    attempts: d.attempts,
                })
            })
            .take(limit as usize)
            .collect())
    }

    async fn record_attempt(
        &self,
        id: i64,
        delivered_at_ms: Option<i64>,
        next_attempt_ms: Option<i64>,
        _error: Option<String>,
    ) -> Result<(), StoreError> {
        if let Some(delivery) = self.state().deliveries.get_mut(&id) {
            delivery.attempts += 1;
            delivery.delivered_at_ms = delivered_at_ms;
            delivery.next_attempt_ms = next_attempt_ms;
        }
        Ok(())
    }
}
