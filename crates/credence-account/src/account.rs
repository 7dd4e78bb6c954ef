//! A credit account: its terms and status, its behaviour, and the in-loan actions a flow's
//! decision turns into.

use crate::behaviour::{self, Behaviour, BehaviourFeatures};
use crate::error::AccountError;
use crate::event::Event;
use chrono::{Datelike, Months, NaiveDate};
use credence_engine::{AccountAction, Decision, Outcome};
use rust_decimal::{Decimal, MathematicalOps};
use serde::{Deserialize, Serialize};

/// Where an account is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Open: drawdowns allowed within the limit.
    Active,
    /// No drawdowns until unfrozen; repayments and events still apply.
    Frozen,
    /// Closed by the customer or the lender; nothing more is drawn.
    Closed,
    /// Written off as a loss.
    ChargedOff,
}

impl AccountStatus {
    /// The status's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Frozen => "frozen",
            AccountStatus::Closed => "closed",
            AccountStatus::ChargedOff => "charged_off",
        }
    }

    /// The status of a name, if it is one.
    pub fn parse(text: &str) -> Option<AccountStatus> {
        match text {
            "active" => Some(AccountStatus::Active),
            "frozen" => Some(AccountStatus::Frozen),
            "closed" => Some(AccountStatus::Closed),
            "charged_off" => Some(AccountStatus::ChargedOff),
            _ => None,
        }
    }
}

/// The terms the approval granted; account reviews change the limit and the APR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// The credit limit (the principal, for an instalment loan).
    pub credit_limit: Decimal,
    /// The annual percentage rate, as a fraction.
    pub apr: Decimal,
    /// The term in months (0 for a revolving line).
    pub term_months: u32,
}

/// An open credit line and everything Credence knows about how it is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account's id.
    pub id: String,
    /// The customer it belongs to.
    pub customer_id: String,
    /// The approved decision (engine or reviewer) the account was opened from.
    pub decision_id: String,
    /// The strategy (product) whose in-loan flows decide for it; `None` in accounts opened
    /// before products had names (the default strategy then decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// The day it was opened.
    pub opened_on: NaiveDate,
    /// Its terms now.
    pub terms: Terms,
    /// Its status now.
    pub status: AccountStatus,
    /// Handed to collections by an early-warning action.
    #[serde(default)]
    pub collections: bool,
    /// When a review last changed the limit (increases wait a while after any change).
    #[serde(default)]
    pub limit_changed_on: Option<NaiveDate>,
    /// What its events say about how it is used.
    pub behaviour: Behaviour,
}

/// What an approved decision supplies to open an account.
#[derive(Debug, Clone)]
pub struct Opening {
    /// The new account's id.
    pub account_id: String,
    /// The customer it belongs to.
    pub customer_id: String,
    /// The approved decision it is opened from.
    pub decision_id: String,
    /// The day it is opened.
    pub opened_on: NaiveDate,
    /// The approved limit (required).
    pub credit_limit: Option<Decimal>,
    /// The approved APR (required).
    pub apr: Option<Decimal>,
    /// The approved term (required).
    pub term_months: Option<u32>,
    /// Monthly income declared or verified at application, the income features start from.
    pub monthly_income: Option<Decimal>,
}

/// One instalment of the repayment schedule of a fully drawn line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instalment {
    /// Its number, from 1.
    pub number: u32,
    /// The day it falls due.
    pub due_on: NaiveDate,
    /// What falls due.
    pub amount: Decimal,
}

impl Account {
    /// Opens an account from the terms an approval granted.
    pub fn open(opening: Opening) -> Result<Account, AccountError> {
        let missing = |what: &str| {
            AccountError::CannotOpen(format!(
                "the decision has no {what}; only an approval with a limit, an APR and a term opens an account"
            ))
        };
        let credit_limit = opening.credit_limit.ok_or_else(|| missing("limit"))?;
        let apr = opening.apr.ok_or_else(|| missing("APR"))?;
        let term_months = opening.term_months.ok_or_else(|| missing("term"))?;
        if credit_limit <= Decimal::ZERO {
            return Err(AccountError::CannotOpen(
                "the approved limit is zero".into(),
            ));
        }
        let mut behaviour = Behaviour::default();
        if let Some(income) = opening.monthly_income {
            behaviour.monthly_income = Some(behaviour::Latest {
                time_ms: i64::from(crate::event::day_of_date(opening.opened_on))
                    * crate::event::DAY_MS,
                event_id: String::new(),
                value: income,
            });
        }
        Ok(Account {
            id: opening.account_id,
            customer_id: opening.customer_id,
            decision_id: opening.decision_id,
            strategy: None,
            opened_on: opening.opened_on,
            terms: Terms {
                credit_limit,
                apr,
                term_months,
            },
            status: AccountStatus::Active,
            collections: false,
            limit_changed_on: None,
            behaviour,
        })
    }

    /// Applies one event whose id is new for this account.
    pub fn apply(&mut self, event: &Event) {
        self.behaviour.apply(event);
    }

    /// The behaviour features as of a day (docs/strategy-format.md, "Account features").
    pub fn features(&self, as_of: NaiveDate) -> BehaviourFeatures {
        behaviour::features(
            &self.behaviour,
            self.terms.credit_limit,
            self.opened_on,
            as_of,
        )
    }

    /// The flow input for this account on `as_of`: identity, terms, status and every behaviour
    /// feature, by the names documented in docs/strategy-format.md.
    pub fn flow_input(&self, as_of: NaiveDate) -> serde_json::Map<String, serde_json::Value> {
        let mut input = match serde_json::to_value(self.features(as_of)) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        input.insert("account_id".into(), self.id.clone().into());
        input.insert("customer_id".into(), self.customer_id.clone().into());
        input.insert("account_status".into(), self.status.as_str().into());
        input.insert("collections".into(), self.collections.into());
        input.insert(
            "credit_limit".into(),
            self.terms.credit_limit.normalize().to_string().into(),
        );
        input.insert("apr".into(), self.terms.apr.normalize().to_string().into());
        input.insert("term_months".into(), self.terms.term_months.into());
        input.insert(
            "months_since_limit_change".into(),
            self.limit_changed_on
                .map(|on| crate::behaviour::months_between(on, as_of))
                .into(),
        );
        input
    }

    /// One field of [`Account::flow_input`], computed alone from `features` (the batch review
    /// asks only for the fields a flow declares instead of building the whole object).
    pub fn input_value(
        &self,
        features: &BehaviourFeatures,
        as_of: NaiveDate,
        name: &str,
    ) -> Option<serde_json::Value> {
        use serde_json::Value;
        let money = |d: Decimal| Value::String(d.normalize().to_string());
        let optional = |d: Option<Decimal>| d.map_or(Value::Null, money);
        let f = features;
        Some(match name {
            "account_id" => Value::String(self.id.clone()),
            "customer_id" => Value::String(self.customer_id.clone()),
            "account_status" => Value::String(self.status.as_str().into()),
            "collections" => Value::Bool(self.collections),
            "credit_limit" => money(self.terms.credit_limit),
            "apr" => money(self.terms.apr),
            "term_months" => self.terms.term_months.into(),
            "months_since_limit_change" => self
                .limit_changed_on
                .map(|on| crate::behaviour::months_between(on, as_of))
                .into(),
            "outstanding_balance" => money(f.outstanding_balance),
            "available_credit" => money(f.available_credit),
            "months_on_book" => f.months_on_book.into(),
            "days_past_due" => f.days_past_due.into(),
            "worst_dpd_3m" => f.worst_dpd_3m.into(),
            "worst_dpd_6m" => f.worst_dpd_6m.into(),
            "worst_dpd_12m" => f.worst_dpd_12m.into(),
            "missed_instalments_3m" => f.missed_instalments_3m.into(),
            "missed_instalments_6m" => f.missed_instalments_6m.into(),
            "missed_instalments_12m" => f.missed_instalments_12m.into(),
            "utilisation" => optional(f.utilisation),
            "utilisation_3m_ago" => optional(f.utilisation_3m_ago),
            "utilisation_trend_3m" => optional(f.utilisation_trend_3m),
            "payment_to_due_3m" => optional(f.payment_to_due_3m),
            "drawdowns_7d_count" => f.drawdowns_7d_count.into(),
            "drawdowns_7d_amount" => money(f.drawdowns_7d_amount),
            "drawdowns_30d_count" => f.drawdowns_30d_count.into(),
            "drawdowns_30d_amount" => money(f.drawdowns_30d_amount),
            "bureau_alerts_90d" => f.bureau_alerts_90d.into(),
            "bureau_delinquencies_90d" => f.bureau_delinquencies_90d.into(),
            "bureau_worst_dpd_90d" => f.bureau_worst_dpd_90d.into(),
            "bureau_inquiries_90d" => f.bureau_inquiries_90d.into(),
            "bureau_new_debt_90d" => money(f.bureau_new_debt_90d),
            "contact_changes_30d" => f.contact_changes_30d.into(),
            "monthly_income" => optional(f.monthly_income),
            _ => return None,
        })
    }

    /// The level monthly instalment that repays the full limit over the term at the APR
    /// (annuity), rounded to cents, due on the opening day of each following month.
    pub fn schedule(&self) -> Vec<Instalment> {
        let n = self.terms.term_months;
        if n == 0 {
            return Vec::new();
        }
        let principal = self.terms.credit_limit;
        let rate = self.terms.apr / Decimal::from(12);
        let amount = if rate.is_zero() {
            principal / Decimal::from(n)
        } else {
            let growth = (Decimal::ONE + rate).powu(u64::from(n));
            principal * rate * growth / (growth - Decimal::ONE)
        }
        .round_dp(2);
        (1..=n)
            .filter_map(|number| {
                let due_on = self.opened_on.checked_add_months(Months::new(number))?;
                Some(Instalment {
                    number,
                    due_on,
                    amount,
                })
            })
            .collect()
    }

    /// May the customer draw on the line at all?
    pub fn check_can_draw(&self) -> Result<(), AccountError> {
        match self.status {
            AccountStatus::Active => Ok(()),
            state => Err(AccountError::WrongState {
                state: state.as_str(),
                what: "drawdowns are not possible; unfreeze or reopen it first".into(),
            }),
        }
    }

    /// Changes the status by hand (an operator unfreezing, closing or charging off).
    pub fn set_status(&mut self, status: AccountStatus) -> Result<Change, AccountError> {
        let from = self.status;
        if matches!(from, AccountStatus::Closed | AccountStatus::ChargedOff) && from != status {
            return Err(AccountError::WrongState {
                state: from.as_str(),
                what: "a closed or charged-off account cannot change status".into(),
            });
        }
        self.status = status;
        Ok(Change::Status { from, to: status })
    }

    /// What a flow's decision does to this account, without applying it.
    pub fn plan(&self, flow: FlowKind, decision: &Decision) -> Vec<Change> {
        let mut changes = Vec::new();
        for action in &decision.actions {
            match action {
                AccountAction::Freeze if self.status == AccountStatus::Active => {
                    changes.push(Change::Status {
                        from: self.status,
                        to: AccountStatus::Frozen,
                    })
                }
                AccountAction::Collections if !self.collections => {
                    changes.push(Change::Collections)
                }
                _ => {}
            }
        }
        if decision.outcome == Outcome::Refer {
            changes.push(Change::Refer {
                queue: decision
                    .referral
                    .as_ref()
                    .map_or_else(|| "default".to_string(), |r| r.queue.clone()),
            });
        }
        if flow == FlowKind::AccountReview && decision.outcome == Outcome::Approve {
            if let Some(limit) = decision.limit {
                let from = self.terms.credit_limit;
                if limit > from {
                    changes.push(Change::LimitIncrease { from, to: limit });
                } else if limit < from {
                    changes.push(Change::LimitDecrease { from, to: limit });
                }
            }
            if let Some(apr) = decision.apr {
                if apr != self.terms.apr {
                    changes.push(Change::AprChange {
                        from: self.terms.apr,
                        to: apr,
                    });
                }
            }
        }
        changes
    }

    /// Applies planned changes made on `on` (a referral changes nothing on the account itself).
    pub fn apply_changes(&mut self, changes: &[Change], on: NaiveDate) {
        for change in changes {
            match change {
                Change::LimitIncrease { to, .. } | Change::LimitDecrease { to, .. } => {
                    self.terms.credit_limit = *to;
                    self.limit_changed_on = Some(on);
                }
                Change::AprChange { to, .. } => self.terms.apr = *to,
                Change::Status { to, .. } => self.status = *to,
                Change::Collections => self.collections = true,
                Change::Refer { .. } => {}
            }
        }
    }

    /// The day of month instalments fall due.
    pub fn due_day(&self) -> u32 {
        self.opened_on.day()
    }
}

/// Which in-loan flow made a decision; it decides how the decision reads as account changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// A drawdown request: approve it or not.
    Drawdown,
    /// A periodic review: limit and APR changes.
    AccountReview,
    /// An early-warning check on new signals: freeze, collections, referral.
    EarlyWarning,
}

impl FlowKind {
    /// The flow's name in a strategy package.
    pub fn flow_name(self) -> &'static str {
        match self {
            FlowKind::Drawdown => "drawdown",
            FlowKind::AccountReview => "account_review",
            FlowKind::EarlyWarning => "early_warning",
        }
    }

    /// The kind of a flow name, if it is an in-loan flow.
    pub fn parse(name: &str) -> Option<FlowKind> {
        match name {
            "drawdown" => Some(FlowKind::Drawdown),
            "account_review" => Some(FlowKind::AccountReview),
            "early_warning" => Some(FlowKind::EarlyWarning),
            _ => None,
        }
    }
}

/// One change to an account, as audited and reported: `{"action": "limit_decrease",
/// "from": "5000", "to": "3000"}`, `{"action": "freeze", "from": "active", "to": "frozen"}`, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The credit limit was raised.
    LimitIncrease {
        /// The limit before.
        from: Decimal,
        /// The limit after.
        to: Decimal,
    },
    /// The credit limit was lowered.
    LimitDecrease {
        /// The limit before.
        from: Decimal,
        /// The limit after.
        to: Decimal,
    },
    /// The APR changed.
    AprChange {
        /// The APR before.
        from: Decimal,
        /// The APR after.
        to: Decimal,
    },
    /// The status changed (a freeze, an unfreeze, a closure).
    Status {
        /// The status before.
        from: AccountStatus,
        /// The status after.
        to: AccountStatus,
    },
    /// The account was handed to collections.
    Collections,
    /// The account was referred to a review queue.
    Refer {
        /// The queue it was referred to.
        queue: String,
    },
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("action", self.action_name())?;
        match self {
            Change::LimitIncrease { from, to }
            | Change::LimitDecrease { from, to }
            | Change::AprChange { from, to } => {
                map.serialize_entry("from", &from.normalize())?;
                map.serialize_entry("to", &to.normalize())?;
            }
            Change::Status { from, to } => {
                map.serialize_entry("from", from.as_str())?;
                map.serialize_entry("to", to.as_str())?;
            }
            Change::Collections => {}
            Change::Refer { queue } => map.serialize_entry("queue", queue)?,
        }
        map.end()
    }
}

impl Change {
    /// The action's name in reports: limit_increase, limit_decrease, apr_change, freeze, …
    pub fn action_name(&self) -> &'static str {
        match self {
            Change::LimitIncrease { .. } => "limit_increase",
            Change::LimitDecrease { .. } => "limit_decrease",
            Change::AprChange { .. } => "apr_change",
            Change::Status {
                to: AccountStatus::Frozen,
                ..
            } => "freeze",
            Change::Status {
                to: AccountStatus::Active,
                ..
            } => "unfreeze",
            Change::Status {
                to: AccountStatus::Closed,
                ..
            } => "close",
            Change::Status {
                to: AccountStatus::ChargedOff,
                ..
            } => "charge_off",
            Change::Collections => "collections",
            Change::Refer { .. } => "refer",
        }
    }
}
