//! Synthetic account histories for demos, tests and benchmarks: deterministic in (seed, index),
//! so any account of a million can be regenerated alone and two runs give the same portfolio.
//!
//! Each account is opened `months` (plus up to four weeks) before the as-of date with a limit,
//! an APR by risk grade and a term; every month an instalment falls due on the opening day of
//! the month and the customer pays, pays part, or misses it according to their profile. About
//! three in four customers are steady payers, one in six wobble (a late or short payment now
//! and then), and one in twelve deteriorate: from a month in the second half of the history
//! they draw more, pay less or nothing, and the bureau starts reporting delinquencies and new
//! debt elsewhere. Amounts are decimals in cents.

use crate::account::{Account, Opening};
use crate::event::{day_of_date, BureauAlert, ContactField, Event, EventKind, DAY_MS};
use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;

/// SplitMix64: tiny, fast, and good enough to draw simulated behaviour.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, index: u64) -> Rng {
        let mut rng = Rng(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// How a simulated customer behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Pays on time.
    Steady,
    /// Now and then misses an instalment or pays part of it.
    Wobbly,
    /// Deteriorates from the given month of the history on.
    Deteriorating {
        /// The month of the history it starts in.
        from_month: u32,
    },
}

/// Money from a float draw, in cents (the draw is simulation, the amount is exact from here on).
fn cents(amount: f64) -> Decimal {
    Decimal::new((amount.max(0.0) * 100.0).round() as i64, 2)
}

/// One simulated account and its events, in event-time order.
pub fn simulate_account(
    seed: u64,
    index: u64,
    as_of: NaiveDate,
    months: u32,
) -> (Account, Vec<Event>, Profile) {
    let mut rng = Rng::new(seed, index);
    let profile = match rng.unit() {
        p if p < 0.75 => Profile::Steady,
        p if p < 0.92 => Profile::Wobbly,
        _ => Profile::Deteriorating {
            from_month: months / 2 + rng.below(u64::from(months / 2 + 1)) as u32,
        },
    };
    let opened_on = as_of
        .checked_sub_months(Months::new(months))
        .unwrap_or(as_of)
        - chrono::Duration::days(rng.below(28) as i64);
    let grade = rng.below(4);
    let limit = Decimal::from(500 * (2 + rng.below(30) as i64));
    let apr = [
        Decimal::new(799, 4),
        Decimal::new(1199, 4),
        Decimal::new(1599, 4),
        Decimal::new(1999, 4),
    ][grade as usize];
    let term_months = [12u32, 24, 36, 48, 60][rng.below(5) as usize];
    let income = cents(1500.0 + rng.unit() * 6500.0);
    let id = format!("sim-{seed}-{index:08}");
    let mut account = Account::open(Opening {
        account_id: id.clone(),
        customer_id: format!("sim-cust-{seed}-{index:08}"),
        decision_id: format!("sim-{seed}-{index:08}"),
        opened_on,
        credit_limit: Some(limit),
        apr: Some(apr),
        term_months: Some(term_months),
        monthly_income: Some(income),
    })
    .expect("simulated terms are complete");

    let limit_f = limit.to_string().parse::<f64>().unwrap_or(0.0);
    let monthly_rate = apr.to_string().parse::<f64>().unwrap_or(0.0) / 12.0;
    let mut events = Vec::with_capacity(months as usize * 4);
    let mut counter = 0u32;
    let mut push = |events: &mut Vec<Event>, day: i32, hour: u64, kind: EventKind| {
        counter += 1;
        let time_ms = i64::from(day) * DAY_MS + (hour % 24) as i64 * 3_600_000;
        events.push(Event {
            id: format!("{id}-{counter:04}"),
            time_ms,
            kind,
        });
    };
    let as_of_day = day_of_date(as_of);
    // The line is drawn at opening.
    let mut balance = limit_f * (0.3 + 0.6 * rng.unit());
    push(
        &mut events,
        day_of_date(opened_on),
        10,
        EventKind::Drawdown {
            amount: cents(balance),
        },
    );
    let mut consecutive_missed = 0u32;
    for month in 1..=months {
        let Some(due_date) = opened_on.checked_add_months(Months::new(month)) else {
            break;
        };
        let due_day = day_of_date(due_date);
        if due_day > as_of_day {
            break;
        }
        let deteriorating =
            matches!(profile, Profile::Deteriorating { from_month } if month >= from_month);
        // Drawdowns during the month before the due date.
        let draw_chance = match (profile, deteriorating) {
            (_, true) => 0.7,
            (Profile::Wobbly, _) => 0.4,
            _ => 0.25,
        };
        if rng.chance(draw_chance) && balance < limit_f * 0.95 {
            let amount = (limit_f - balance) * (0.1 + 0.4 * rng.unit());
            if amount >= 50.0 {
                balance += amount;
                let day = due_day - 1 - rng.below(25) as i32;
                push(
                    &mut events,
                    day,
                    rng.below(24),
                    EventKind::Drawdown {
                        amount: cents(amount),
                    },
                );
            }
        }
        let due = (balance * (1.0 / f64::from(term_months) + monthly_rate))
            .max(25.0)
            .min(balance.max(0.0));
        if due <= 0.0 {
            continue;
        }
        push(
            &mut events,
            due_day,
            6,
            EventKind::InstalmentDue { amount: cents(due) },
        );
        let pay_fraction = match (profile, deteriorating) {
            (_, true) => {
                if rng.chance(0.55) {
                    0.0
                } else {
                    0.6 * rng.unit()
                }
            }
            (Profile::Wobbly, _) => {
                if rng.chance(0.06) {
                    0.0
                } else if rng.chance(0.1) {
                    0.5 + 0.5 * rng.unit()
                } else {
                    1.0
                }
            }
            _ => {
                if rng.chance(0.01) {
                    0.0
                } else if rng.chance(0.2) {
                    1.0 + rng.unit()
                } else {
                    1.0
                }
            }
        };
        if pay_fraction >= 0.999 {
            consecutive_missed = 0;
            let paid = (due * pay_fraction).min(balance.max(0.0));
            balance -= paid;
            push(
                &mut events,
                due_day - rng.below(3) as i32,
                rng.below(24),
                EventKind::Repayment {
                    amount: cents(paid),
                    days_past_due: 0,
                },
            );
        } else {
            consecutive_missed += 1;
            let days_past_due = 1 + 30 * (consecutive_missed - 1);
            if pay_fraction > 0.0 {
                let paid = due * pay_fraction;
                balance -= paid;
                push(
                    &mut events,
                    due_day,
                    18,
                    EventKind::Repayment {
                        amount: cents(paid),
                        days_past_due,
                    },
                );
            }
            push(
                &mut events,
                due_day + 1,
                2,
                EventKind::InstalmentMissed {
                    days_past_due,
                    amount: cents(due * (1.0 - pay_fraction)),
                },
            );
        }
        // What the bureau reports.
        let mid_month = due_day - 10 - rng.below(10) as i32;
        if deteriorating && rng.chance(0.3) {
            let dpd = [30u32, 60, 90][rng.below(3) as usize];
            push(
                &mut events,
                mid_month,
                3,
                EventKind::BureauAlert {
                    alert: BureauAlert::NewDelinquency,
                    days_past_due: dpd,
                    count: 0,
                    amount: Decimal::ZERO,
                },
            );
        }
        if rng.chance(if deteriorating { 0.35 } else { 0.05 }) {
            push(
                &mut events,
                mid_month,
                4,
                EventKind::BureauAlert {
                    alert: BureauAlert::NewInquiries,
                    days_past_due: 0,
                    count: 1 + rng.below(3) as u32,
                    amount: Decimal::ZERO,
                },
            );
        }
        if rng.chance(if deteriorating { 0.2 } else { 0.02 }) {
            push(
                &mut events,
                mid_month,
                5,
                EventKind::BureauAlert {
                    alert: BureauAlert::NewDebt,
                    days_past_due: 0,
                    count: 0,
                    amount: cents(1000.0 + 9000.0 * rng.unit()),
                },
            );
        }
        if rng.chance(0.03) {
            push(
                &mut events,
                mid_month,
                9,
                EventKind::IncomeUpdate {
                    monthly_income: cents(1500.0 + rng.unit() * 6500.0),
                },
            );
        }
        if rng.chance(if deteriorating { 0.08 } else { 0.01 }) {
            push(
                &mut events,
                mid_month,
                11,
                EventKind::ContactChange {
                    field: [
                        ContactField::Phone,
                        ContactField::Email,
                        ContactField::Address,
                    ][rng.below(3) as usize],
                },
            );
        }
    }
    events.retain(|e| e.day() <= as_of_day);
    events.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
    for event in &events {
        account.apply(event);
    }
    (account, events, profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_index_give_the_same_account() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let (a, ea, _) = simulate_account(7, 42, as_of, 12);
        let (b, eb, _) = simulate_account(7, 42, as_of, 12);
        assert_eq!((&a, ea), (&b, eb));
        let (c, _, _) = simulate_account(8, 42, as_of, 12);
        assert_ne!(a, c, "another seed, another portfolio");
    }

    #[test]
    fn a_portfolio_has_steady_and_deteriorating_customers_who_look_different() {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let (mut steady_dpd, mut steady_n, mut bad_dpd, mut bad_n) = (0u64, 0u64, 0u64, 0u64);
        for index in 0..2000 {
            let (account, events, profile) = simulate_account(1, index, as_of, 12);
            assert!(events.iter().all(|e| e.day() <= day_of_date(as_of)));
            assert!(
                account.behaviour.balance >= Decimal::from(-1),
                "{}",
                account.behaviour.balance
            );
            let f = account.features(as_of);
            match profile {
                Profile::Steady => {
                    steady_dpd += u64::from(f.worst_dpd_12m);
                    steady_n += 1;
                }
                Profile::Deteriorating { .. } => {
                    bad_dpd += u64::from(f.worst_dpd_12m);
                    bad_n += 1;
                }
                Profile::Wobbly => {}
            }
        }
        assert!(
            steady_n > 1300 && bad_n > 80,
            "{steady_n} steady, {bad_n} deteriorating"
        );
        let (steady, bad) = (
            steady_dpd as f64 / steady_n as f64,
            bad_dpd as f64 / bad_n as f64,
        );
        assert!(
            bad > 10.0 * steady.max(0.1),
            "mean worst DPD: steady {steady}, deteriorating {bad}"
        );
    }
}
