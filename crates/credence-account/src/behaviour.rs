//! Behaviour features kept current as events arrive: per-day aggregates plus last-writer-wins
//! values, so a feature at decision time is read from a year of daily totals, never from the
//! event history.
//!
//! Why this shape: every aggregate is commutative (sums, counts, maxima) and every "current"
//! value is last-writer-wins by event time (ties broken by event id), so applying events in any
//! arrival order gives the state that applying them in event-time order gives. A late event
//! therefore lands in its day and is applied in event-time order without replaying anything.

use crate::event::{date_of_day, day_of, day_of_date, BureauAlert, Event, EventKind};
use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Days of daily aggregates kept behind the newest event: the longest window (12 months) plus
/// slack. Older days only ever count in lifetime totals.
pub const RETENTION_DAYS: i32 = 400;

/// Decimal places of ratios (utilisation, payment-to-due).
const RATIO_DP: u32 = 4;

/// One UTC day's totals for one account. Zero fields are left out when stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotals {
    /// Drawdowns made.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub drawdown_count: u32,
    /// Money drawn.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub drawdown_amount: Decimal,
    /// Money repaid.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub repaid: Decimal,
    /// Money that fell due.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub due: Decimal,
    /// Instalments missed.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub missed: u32,
    /// Worst days-past-due reported on this day.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub worst_dpd: u32,
    /// Bureau alerts of any kind.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub bureau_alerts: u32,
    /// Bureau alerts of a new delinquency elsewhere.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub bureau_delinquencies: u32,
    /// The worst days-past-due the bureau reported elsewhere.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub bureau_worst_dpd: u32,
    /// New inquiries the bureau reported.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub bureau_inquiries: u32,
    /// New debt elsewhere the bureau reported.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub bureau_new_debt: Decimal,
    /// Contact details changed.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub contact_changes: u32,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// A value that the latest event (by event time, then id) sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latest<T> {
    /// The setting event's time.
    pub time_ms: i64,
    /// The setting event's id (breaks ties of time).
    pub event_id: String,
    /// The value it set.
    pub value: T,
}

impl<T> Latest<T> {
    fn set(slot: &mut Option<Latest<T>>, event: &Event, value: T) {
        let newer = match slot {
            None => true,
            Some(current) => {
                (event.time_ms, event.id.as_str()) > (current.time_ms, current.event_id.as_str())
            }
        };
        if newer {
            *slot = Some(Latest {
                time_ms: event.time_ms,
                event_id: event.id.clone(),
                value,
            });
        }
    }
}

/// The incrementally maintained behaviour of one account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behaviour {
    /// Drawn minus repaid, over the account's life (negative: in credit).
    pub balance: Decimal,
    /// Events applied (repeated ids are not counted).
    pub events_applied: u64,
    /// The newest event time seen.
    pub newest_event_ms: Option<i64>,
    /// Delinquency as last reported (instalment missed, or a repayment bringing it current).
    pub reported_dpd: Option<Latest<u32>>,
    /// Monthly income as last reported.
    pub monthly_income: Option<Latest<Decimal>>,
    /// Daily totals, ascending by day, covering at most [`RETENTION_DAYS`] behind the newest event.
    /// Stored as one compact string (see [`compact_days`]): decoding a portfolio spends most of
    /// its time here, and thirty small JSON objects per account cost three times as much.
    #[serde(with = "compact_days")]
    pub days: Vec<(i32, DayTotals)>,
}

impl Behaviour {
    /// Applies one event. The caller guarantees the event id is new for this account.
    pub fn apply(&mut self, event: &Event) {
        self.events_applied += 1;
        let day = event.day();
        match &event.kind {
            EventKind::Drawdown { amount } => self.balance += amount,
            EventKind::Repayment {
                amount,
                days_past_due,
            } => {
                self.balance -= amount;
                Latest::set(&mut self.reported_dpd, event, *days_past_due);
            }
            EventKind::InstalmentMissed { days_past_due, .. } => {
                Latest::set(&mut self.reported_dpd, event, *days_past_due);
            }
            EventKind::IncomeUpdate { monthly_income } => {
                Latest::set(&mut self.monthly_income, event, *monthly_income);
            }
            EventKind::InstalmentDue { .. }
            | EventKind::BureauAlert { .. }
            | EventKind::ContactChange { .. } => {}
        }
        let newest = self
            .newest_event_ms
            .map_or(event.time_ms, |t| t.max(event.time_ms));
        self.newest_event_ms = Some(newest);
        let horizon = day_of(newest) - RETENTION_DAYS;
        if day >= horizon {
            let totals = self.day_mut(day);
            add_to_day(totals, &event.kind);
        }
        // Forget days no window can reach any more.
        let stale = self.days.partition_point(|(d, _)| *d < horizon);
        if stale > 0 {
            self.days.drain(..stale);
        }
    }

    fn day_mut(&mut self, day: i32) -> &mut DayTotals {
        let index = match self.days.binary_search_by_key(&day, |(d, _)| *d) {
            Ok(index) => index,
            Err(index) => {
                self.days.insert(index, (day, DayTotals::default()));
                index
            }
        };
        &mut self.days[index].1
    }

    /// Days-past-due on `as_of_day`: the last reported delinquency, aged by the days since it
    /// was reported (an unpaid account keeps getting later).
    pub fn current_dpd(&self, as_of_day: i32) -> u32 {
        match &self.reported_dpd {
            Some(latest) if latest.value > 0 => {
                let aged = i64::from(as_of_day) - i64::from(day_of(latest.time_ms));
                latest.value.saturating_add(aged.clamp(0, 100_000) as u32)
            }
            _ => 0,
        }
    }
}

/// Adds one event to a day's totals (shared with the brute-force check in the tests).
pub(crate) fn add_to_day(totals: &mut DayTotals, kind: &EventKind) {
    match kind {
        EventKind::Drawdown { amount } => {
            totals.drawdown_count += 1;
            totals.drawdown_amount += amount;
        }
        EventKind::Repayment {
            amount,
            days_past_due,
        } => {
            totals.repaid += amount;
            totals.worst_dpd = totals.worst_dpd.max(*days_past_due);
        }
        EventKind::InstalmentDue { amount } => totals.due += amount,
        EventKind::InstalmentMissed { days_past_due, .. } => {
            totals.missed += 1;
            totals.worst_dpd = totals.worst_dpd.max(*days_past_due);
        }
        EventKind::BureauAlert {
            alert,
            days_past_due,
            count,
            amount,
        } => {
            totals.bureau_alerts += 1;
            match alert {
                BureauAlert::NewDelinquency => {
                    totals.bureau_delinquencies += 1;
                    totals.bureau_worst_dpd = totals.bureau_worst_dpd.max(*days_past_due);
                }
                BureauAlert::NewInquiries => totals.bureau_inquiries += count.max(&1),
                BureauAlert::NewDebt => totals.bureau_new_debt += amount,
            }
        }
        EventKind::IncomeUpdate { .. } => {}
        EventKind::ContactChange { .. } => totals.contact_changes += 1,
    }
}

/// The behaviour features flows read by name (docs/strategy-format.md, "Account features").
/// Windows end on the as-of day and include it: "3m" is the days after the same date three
/// months earlier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BehaviourFeatures {
    /// Drawn minus repaid (negative: in credit).
    pub outstanding_balance: Decimal,
    /// The limit minus the balance (never below zero).
    pub available_credit: Decimal,
    /// Whole months since opening.
    pub months_on_book: u32,
    /// Days past due as last reported.
    pub days_past_due: u32,
    /// Worst days past due in the last 3 months.
    pub worst_dpd_3m: u32,
    /// Worst days past due in the last 6 months.
    pub worst_dpd_6m: u32,
    /// Worst days past due in the last 12 months.
    pub worst_dpd_12m: u32,
    /// Instalments missed in the last 3 months.
    pub missed_instalments_3m: u32,
    /// Instalments missed in the last 6 months.
    pub missed_instalments_6m: u32,
    /// Instalments missed in the last 12 months.
    pub missed_instalments_12m: u32,
    /// Balance over limit (null for a zero limit).
    pub utilisation: Option<Decimal>,
    /// Utilisation three months ago, at today's limit.
    pub utilisation_3m_ago: Option<Decimal>,
    /// `utilisation - utilisation_3m_ago`: positive when the customer leans on the line more.
    pub utilisation_trend_3m: Option<Decimal>,
    /// Repaid over due in the last three months (null when nothing fell due).
    pub payment_to_due_3m: Option<Decimal>,
    /// Drawdowns in the last 7 days.
    pub drawdowns_7d_count: u32,
    /// Money drawn in the last 7 days.
    pub drawdowns_7d_amount: Decimal,
    /// Drawdowns in the last 30 days.
    pub drawdowns_30d_count: u32,
    /// Money drawn in the last 30 days.
    pub drawdowns_30d_amount: Decimal,
    /// Bureau alerts in the last 90 days.
    pub bureau_alerts_90d: u32,
    /// New delinquencies elsewhere in the last 90 days.
    pub bureau_delinquencies_90d: u32,
    /// Worst days past due reported elsewhere in the last 90 days.
    pub bureau_worst_dpd_90d: u32,
    /// New inquiries in the last 90 days.
    pub bureau_inquiries_90d: u32,
    /// New debt elsewhere in the last 90 days.
    pub bureau_new_debt_90d: Decimal,
    /// Contact details changed in the last 30 days.
    pub contact_changes_30d: u32,
    /// Last verified monthly income (null if never reported).
    pub monthly_income: Option<Decimal>,
}

/// The first day inside a window ending on `as_of`: the day after the same date `months`
/// months earlier.
pub(crate) fn months_window_start(as_of: NaiveDate, months: u32) -> i32 {
    let start = as_of
        .checked_sub_months(Months::new(months))
        .unwrap_or(NaiveDate::MIN);
    day_of_date(start) + 1
}

/// Whole months from `opened` to `as_of` (0 before the first monthly anniversary): the one rule
/// of `credence_expr::functions::months_between` (anniversaries with end-of-month clamping).
pub fn months_between(opened: NaiveDate, as_of: NaiveDate) -> u32 {
    u32::try_from(credence_expr::functions::months_between(opened, as_of).max(0))
        .unwrap_or(u32::MAX)
}

/// Totals over the window of days `from..=to`.
#[derive(Default)]
struct WindowTotals {
    totals: DayTotals,
    net_flow: Decimal,
}

fn sum_days<'a>(days: impl Iterator<Item = &'a DayTotals>) -> WindowTotals {
    let mut w = WindowTotals::default();
    for d in days {
        let t = &mut w.totals;
        t.drawdown_count += d.drawdown_count;
        t.drawdown_amount += d.drawdown_amount;
        t.repaid += d.repaid;
        t.due += d.due;
        t.missed += d.missed;
        t.worst_dpd = t.worst_dpd.max(d.worst_dpd);
        t.bureau_alerts += d.bureau_alerts;
        t.bureau_delinquencies += d.bureau_delinquencies;
        t.bureau_worst_dpd = t.bureau_worst_dpd.max(d.bureau_worst_dpd);
        t.bureau_inquiries += d.bureau_inquiries;
        t.bureau_new_debt += d.bureau_new_debt;
        t.contact_changes += d.contact_changes;
        w.net_flow += d.drawdown_amount - d.repaid;
    }
    w
}

fn ratio(numerator: Decimal, denominator: Decimal) -> Option<Decimal> {
    if denominator.is_zero() {
        None
    } else {
        numerator
            .checked_div(denominator)
            .map(|r| r.round_dp(RATIO_DP).normalize())
    }
}

/// Computes the features on `as_of` from the maintained daily totals.
pub fn features(
    behaviour: &Behaviour,
    credit_limit: Decimal,
    opened_on: NaiveDate,
    as_of: NaiveDate,
) -> BehaviourFeatures {
    let as_of_day = day_of_date(as_of);
    let days = &behaviour.days;
    let window = |from: i32| {
        let start = days.partition_point(|(d, _)| *d < from);
        let end = days.partition_point(|(d, _)| *d <= as_of_day);
        sum_days(days[start..end.max(start)].iter().map(|(_, t)| t))
    };
    let (m3, m6, m12) = (
        window(months_window_start(as_of, 3)),
        window(months_window_start(as_of, 6)),
        window(months_window_start(as_of, 12)),
    );
    let (d7, d30, d90) = (
        window(as_of_day - 6),
        window(as_of_day - 29),
        window(as_of_day - 89),
    );
    // Balance three months ago: today's balance less what moved since (after the as-of day too).
    let since_3m = {
        let start = days.partition_point(|(d, _)| *d < months_window_start(as_of, 3));
        sum_days(days[start..].iter().map(|(_, t)| t)).net_flow
    };
    let current_dpd = behaviour.current_dpd(as_of_day);
    assemble(
        behaviour.balance,
        behaviour.balance - since_3m,
        credit_limit,
        months_between(opened_on, as_of),
        current_dpd,
        [&m3.totals, &m6.totals, &m12.totals],
        [&d7.totals, &d30.totals, &d90.totals],
        behaviour.monthly_income.as_ref().map(|l| l.value),
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble(
    balance: Decimal,
    balance_3m_ago: Decimal,
    credit_limit: Decimal,
    months_on_book: u32,
    current_dpd: u32,
    [m3, m6, m12]: [&DayTotals; 3],
    [d7, d30, d90]: [&DayTotals; 3],
    monthly_income: Option<Decimal>,
) -> BehaviourFeatures {
    let utilisation = ratio(balance, credit_limit);
    let utilisation_3m_ago = ratio(balance_3m_ago, credit_limit);
    BehaviourFeatures {
        outstanding_balance: balance.normalize(),
        available_credit: (credit_limit - balance).max(Decimal::ZERO).normalize(),
        months_on_book,
        days_past_due: current_dpd,
        worst_dpd_3m: current_dpd.max(m3.worst_dpd),
        worst_dpd_6m: current_dpd.max(m6.worst_dpd),
        worst_dpd_12m: current_dpd.max(m12.worst_dpd),
        missed_instalments_3m: m3.missed,
        missed_instalments_6m: m6.missed,
        missed_instalments_12m: m12.missed,
        utilisation,
        utilisation_3m_ago,
        utilisation_trend_3m: utilisation
            .zip(utilisation_3m_ago)
            .map(|(now, then)| (now - then).normalize()),
        payment_to_due_3m: ratio(m3.repaid, m3.due),
        drawdowns_7d_count: d7.drawdown_count,
        drawdowns_7d_amount: d7.drawdown_amount.normalize(),
        drawdowns_30d_count: d30.drawdown_count,
        drawdowns_30d_amount: d30.drawdown_amount.normalize(),
        bureau_alerts_90d: d90.bureau_alerts,
        bureau_delinquencies_90d: d90.bureau_delinquencies,
        bureau_worst_dpd_90d: d90.bureau_worst_dpd,
        bureau_inquiries_90d: d90.bureau_inquiries,
        bureau_new_debt_90d: d90.bureau_new_debt.normalize(),
        contact_changes_30d: d30.contact_changes,
        monthly_income: monthly_income.map(|m| m.normalize()),
    }
}

/// The date of the newest event, if any (the portfolio batch reviews as of a date, not a clock).
pub fn newest_event_date(behaviour: &Behaviour) -> Option<NaiveDate> {
    behaviour.newest_event_ms.map(|ms| date_of_day(day_of(ms)))
}

/// The stored form of the daily totals: days separated by `;`, each `day:` followed by the
/// twelve totals in [`DayTotals`] field order, separated by `,`, a zero left empty and trailing
/// zeros dropped — e.g. `20399:1,7059.16;20428:,,264.66`.
pub mod compact_days {
    use super::DayTotals;
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Write;
    use std::str::FromStr;

    const FIELDS: usize = 12;

    /// The compact text of days' totals: `day:f0,f1,…;day:…`, zero fields left empty.
    pub fn encode(days: &[(i32, DayTotals)]) -> String {
        let mut out = String::with_capacity(days.len() * 24);
        for (i, (day, t)) in days.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            let _ = write!(out, "{day}:");
            let fields: [Field; FIELDS] = [
                Field::Count(t.drawdown_count),
                Field::Money(t.drawdown_amount),
                Field::Money(t.repaid),
                Field::Money(t.due),
                Field::Count(t.missed),
                Field::Count(t.worst_dpd),
                Field::Count(t.bureau_alerts),
                Field::Count(t.bureau_delinquencies),
                Field::Count(t.bureau_worst_dpd),
                Field::Count(t.bureau_inquiries),
                Field::Money(t.bureau_new_debt),
                Field::Count(t.contact_changes),
            ];
            let last = fields
                .iter()
                .rposition(|f| !f.is_zero())
                .map_or(0, |p| p + 1);
            for (k, field) in fields[..last].iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                match field {
                    Field::Count(0) => {}
                    Field::Count(n) => {
                        let _ = write!(out, "{n}");
                    }
                    Field::Money(d) if d.is_zero() => {}
                    Field::Money(d) => {
                        let _ = write!(out, "{d}");
                    }
                }
            }
        }
        out
    }

    enum Field {
        Count(u32),
        Money(Decimal),
    }

    impl Field {
        fn is_zero(&self) -> bool {
            match self {
                Field::Count(n) => *n == 0,
                Field::Money(d) => d.is_zero(),
            }
        }
    }

    /// Days' totals from their compact text; days must ascend.
    pub fn decode(text: &str) -> Result<Vec<(i32, DayTotals)>, String> {
        let mut days = Vec::with_capacity(text.len() / 20 + 1);
        if text.is_empty() {
            return Ok(days);
        }
        for entry in text.split(';') {
            let (day, rest) = entry
                .split_once(':')
                .ok_or_else(|| format!("day entry {entry:?} has no ':'"))?;
            let day: i32 = day.parse().map_err(|_| format!("bad day {day:?}"))?;
            let mut t = DayTotals::default();
            for (k, field) in rest.split(',').enumerate() {
                if field.is_empty() {
                    continue;
                }
                let count = || {
                    field
                        .parse::<u32>()
                        .map_err(|_| format!("day {day}: bad count {field:?}"))
                };
                let money = || {
                    Decimal::from_str(field).map_err(|_| format!("day {day}: bad amount {field:?}"))
                };
                match k {
                    0 => t.drawdown_count = count()?,
                    1 => t.drawdown_amount = money()?,
                    2 => t.repaid = money()?,
                    3 => t.due = money()?,
                    4 => t.missed = count()?,
                    5 => t.worst_dpd = count()?,
                    6 => t.bureau_alerts = count()?,
                    7 => t.bureau_delinquencies = count()?,
                    8 => t.bureau_worst_dpd = count()?,
                    9 => t.bureau_inquiries = count()?,
                    10 => t.bureau_new_debt = money()?,
                    11 => t.contact_changes = count()?,
                    _ => return Err(format!("day {day}: more than {FIELDS} totals")),
                }
            }
            if days.last().is_some_and(|(previous, _)| *previous >= day) {
                return Err(format!("day {day} is out of order"));
            }
            days.push((day, t));
        }
        Ok(days)
    }

    /// Serialises days' totals as their compact text (for `#[serde(with)]`).
    pub fn serialize<S: Serializer>(
        days: &[(i32, DayTotals)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode(days))
    }

    /// Reads days' totals from their compact text (for `#[serde(with)]`).
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(i32, DayTotals)>, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        decode(&text).map_err(serde::de::Error::custom)
    }
}
