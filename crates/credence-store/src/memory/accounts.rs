//! Accounts and their events in the in-memory store.

use super::*;
use crate::AccountStore;

#[async_trait::async_trait]
impl AccountStore for MemoryStore {
    async fn insert_account(
        &self,
        account: AccountRecord,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let what = format!("an account for decision {}", account.decision_id);
        state.insert_account(&account, what)?;
        state.audit(audit);
        Ok(())
    }

    async fn insert_accounts(
        &self,
        accounts: Vec<(AccountRecord, Vec<AccountEventRecord>)>,
    ) -> Result<(), StoreError> {
        self.transaction(|state| {
            for (account, events) in &accounts {
                state.insert_account(account, format!("account {}", account.id))?;
                state.insert_events(events)?;
            }
            Ok(())
        })
    }

    async fn account(&self, id: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.state().accounts.get(id).cloned())
    }

    async fn account_for_decision(
        &self,
        decision_id: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self
            .state()
            .accounts
            .values()
            .find(|a| a.decision_id == decision_id)
            .cloned())
    }

    async fn accounts(&self, query: &AccountQuery) -> Result<Vec<AccountRecord>, StoreError> {
        // BTreeMap order is id order.
        Ok(self
            .state()
            .accounts
            .values()
            .filter(|a| {
                query.status.as_ref().is_none_or(|s| &a.status == s)
                    && query
                        .customer_id
                        .as_ref()
                        .is_none_or(|c| &a.customer_id == c)
                    && query.after_id.as_ref().is_none_or(|after| &a.id > after)
            })
            .take(query.limit.max(1) as usize)
            .cloned()
            .collect())
    }

    async fn count_accounts(&self, status: Option<&str>) -> Result<u64, StoreError> {
        Ok(self
            .state()
            .accounts
            .values()
            .filter(|a| status.is_none_or(|s| a.status == s))
            .count() as u64)
    }

    async fn known_event_ids(
        &self,
        account_id: &str,
        event_ids: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        let state = self.state();
        Ok(event_ids
            .into_iter()
            .filter(|id| {
                state
                    .account_events
                    .contains_key(&(account_id.to_string(), id.clone()))
            })
            .collect())
    }

    async fn account_events(
        &self,
        account_id: &str,
        limit: u32,
    ) -> Result<Vec<AccountEventRecord>, StoreError> {
        let mut events: Vec<AccountEventRecord> = self
            .state()
            .account_events
            .values()
            .filter(|e| e.account_id == account_id)
            .cloned()
            .collect();
        events.sort_by(|a, b| {
            b.event_time_ms
                .cmp(&a.event_time_ms)
                .then_with(|| b.event_id.cmp(&a.event_id))
        });
        events.truncate(limit as usize);
        Ok(events)
    }

    async fn update_accounts(
        &self,
        updates: Vec<AccountUpdate>,
        audit: Vec<NewAuditEvent>,
    ) -> Result<Vec<String>, StoreError> {
        self.transaction(|state| state.apply_updates(updates, audit))
    }
}

impl State {
    /// Applies account updates (skipping, and returning, those whose account changed) and
    /// the audit events; the caller's transaction keeps it whole.
    pub(super) fn apply_updates(
        &mut self,
        updates: Vec<AccountUpdate>,
        audit: Vec<NewAuditEvent>,
    ) -> Result<Vec<String>, StoreError> {
        let mut stale = Vec::new();
        for update in updates {
            let account = &update.account;
            let current = self
                .accounts
                .get(&account.id)
                .filter(|a| a.version == update.expected_version)
                .cloned();
            let Some(mut current) = current else {
                stale.push(account.id.clone());
                continue;
            };
            current.status = account.status.clone();
            current.version = update.expected_version + 1;
            current.updated_at_ms = account.updated_at_ms;
            current.body = account.body.clone();
            self.accounts.insert(current.id.clone(), current);
            self.insert_events(&update.events)?;
            for event in update.audit {
                self.audit(event);
            }
        }
        for event in audit {
            self.audit(event);
        }
        Ok(stale)
    }
}
