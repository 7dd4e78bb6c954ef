//! Account tests: the incremental features against a brute-force recomputation from the full
//! event list (property test), and tables of scenarios for plans and schedules.

use crate::*;
use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn at(day: i32, hour: i64) -> i64 {
    i64::from(day) * DAY_MS + hour * 3_600_000
}

fn account() -> Account {
    Account::open(Opening {
        account_id: "acc-1".into(),
        customer_id: "cust-1".into(),
        decision_id: "dec-1".into(),
        opened_on: date(2025, 1, 15),
        credit_limit: Some(Decimal::from(5000)),
        apr: Some(Decimal::new(1299, 4)),
        term_months: Some(24),
        monthly_income: Some(Decimal::from(3200)),
    })
    .unwrap()
}

/// The features computed straight from every event, the slow and obvious way.
fn brute_force(
    events: &[Event],
    limit: Decimal,
    opened: NaiveDate,
    as_of: NaiveDate,
    initial_income: Option<Decimal>,
) -> BehaviourFeatures {
    let as_of_day = day_of_date(as_of);
    let month_start = |months: u32| {
        day_of_date(
            as_of
                .checked_sub_months(chrono::Months::new(months))
                .unwrap(),
        ) + 1
    };
    let in_window = |e: &&Event, from: i32| e.day() >= from && e.day() <= as_of_day;
    let within =
        |from: i32| -> Vec<&Event> { events.iter().filter(|e| in_window(e, from)).collect() };
    let flow = |e: &Event| match &e.kind {
        EventKind::Drawdown { amount } => *amount,
        EventKind::Repayment { amount, .. } => -*amount,
        _ => Decimal::ZERO,
    };
    let balance: Decimal = events.iter().map(flow).sum();
    let balance_3m_ago: Decimal = events
        .iter()
        .filter(|e| e.day() < month_start(3))
        .map(flow)
        .sum();
    let mut ordered: Vec<&Event> = events.iter().collect();
    ordered.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
    let last_dpd = ordered.iter().rev().find_map(|e| match &e.kind {
        EventKind::Repayment { days_past_due, .. }
        | EventKind::InstalmentMissed { days_past_due, .. } => Some((e.day(), *days_past_due)),
        _ => None,
    });
    let current = match last_dpd {
        Some((day, dpd)) if dpd > 0 => dpd + (as_of_day - day).max(0) as u32,
        _ => 0,
    };
    let worst = |from: i32| {
        within(from)
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Repayment { days_past_due, .. }
                | EventKind::InstalmentMissed { days_past_due, .. } => Some(*days_past_due),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            .max(current)
    };
    let count = |from: i32, f: &dyn Fn(&EventKind) -> bool| {
        within(from).iter().filter(|e| f(&e.kind)).count() as u32
    };
    let sum = |from: i32, f: &dyn Fn(&EventKind) -> Decimal| {
        within(from).iter().map(|e| f(&e.kind)).sum::<Decimal>()
    };
    let missed = |k: &EventKind| matches!(k, EventKind::InstalmentMissed { .. });
    let drawdown = |k: &EventKind| matches!(k, EventKind::Drawdown { .. });
    let drawn = |k: &EventKind| match k {
        EventKind::Drawdown { amount } => *amount,
        _ => Decimal::ZERO,
    };
    let repaid = |k: &EventKind| match k {
        EventKind::Repayment { amount, .. } => *amount,
        _ => Decimal::ZERO,
    };
    let due = |k: &EventKind| match k {
        EventKind::InstalmentDue { amount } => *amount,
        _ => Decimal::ZERO,
    };
    let bureau = |k: &EventKind| matches!(k, EventKind::BureauAlert { .. });
    let delinquency = |k: &EventKind| {
        matches!(
            k,
            EventKind::BureauAlert {
                alert: BureauAlert::NewDelinquency,
                ..
            }
        )
    };
    let ratio = |a: Decimal, b: Decimal| (!b.is_zero()).then(|| (a / b).round_dp(4).normalize());
    let d90 = as_of_day - 89;
    let income = ordered
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::IncomeUpdate { monthly_income } => Some(*monthly_income),
            _ => None,
        })
        .or(initial_income);
    let utilisation = ratio(balance, limit);
    let utilisation_3m_ago = ratio(balance_3m_ago, limit);
    BehaviourFeatures {
        outstanding_balance: balance.normalize(),
        available_credit: (limit - balance).max(Decimal::ZERO).normalize(),
        months_on_book: (0..)
            .take_while(|m| {
                opened
                    .checked_add_months(chrono::Months::new(m + 1))
                    .unwrap()
                    <= as_of
            })
            .count() as u32,
        days_past_due: current,
        worst_dpd_3m: worst(month_start(3)),
        worst_dpd_6m: worst(month_start(6)),
        worst_dpd_12m: worst(month_start(12)),
        missed_instalments_3m: count(month_start(3), &missed),
        missed_instalments_6m: count(month_start(6), &missed),
        missed_instalments_12m: count(month_start(12), &missed),
        utilisation,
        utilisation_3m_ago,
        utilisation_trend_3m: utilisation
            .zip(utilisation_3m_ago)
            .map(|(a, b)| (a - b).normalize()),
        payment_to_due_3m: ratio(sum(month_start(3), &repaid), sum(month_start(3), &due)),
        drawdowns_7d_count: count(as_of_day - 6, &drawdown),
        drawdowns_7d_amount: sum(as_of_day - 6, &drawn).normalize(),
        drawdowns_30d_count: count(as_of_day - 29, &drawdown),
        drawdowns_30d_amount: sum(as_of_day - 29, &drawn).normalize(),
        bureau_alerts_90d: count(d90, &bureau),
        bureau_delinquencies_90d: count(d90, &delinquency),
        bureau_worst_dpd_90d: within(d90)
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::BureauAlert {
                    alert: BureauAlert::NewDelinquency,
                    days_past_due,
                    ..
                } => Some(*days_past_due),
                _ => None,
            })
            .max()
            .unwrap_or(0),
        bureau_inquiries_90d: within(d90)
            .iter()
            .map(|e| match &e.kind {
                EventKind::BureauAlert {
                    alert: BureauAlert::NewInquiries,
                    count,
                    ..
                } => (*count).max(1),
                _ => 0,
            })
            .sum(),
        bureau_new_debt_90d: sum(d90, &|k| match k {
            EventKind::BureauAlert {
                alert: BureauAlert::NewDebt,
                amount,
                ..
            } => *amount,
            _ => Decimal::ZERO,
        })
        .normalize(),
        contact_changes_30d: count(as_of_day - 29, &|k| {
            matches!(k, EventKind::ContactChange { .. })
        }),
        monthly_income: income.map(|m| m.normalize()),
    }
}

fn event_kind() -> impl Strategy<Value = EventKind> {
    let money = (0u32..500_000).prop_map(|cents| Decimal::new(i64::from(cents), 2));
    prop_oneof![
        money
            .clone()
            .prop_map(|amount| EventKind::Drawdown { amount }),
        (money.clone(), prop_oneof![Just(0u32), 0u32..90]).prop_map(|(amount, days_past_due)| {
            EventKind::Repayment {
                amount,
                days_past_due,
            }
        }),
        money
            .clone()
            .prop_map(|amount| EventKind::InstalmentDue { amount }),
        (1u32..180, money.clone()).prop_map(|(days_past_due, amount)| {
            EventKind::InstalmentMissed {
                days_past_due,
                amount,
            }
        }),
        (0u8..3, 0u32..120, 0u32..6, money.clone()).prop_map(
            |(alert, days_past_due, count, amount)| EventKind::BureauAlert {
                alert: [
                    BureauAlert::NewDelinquency,
                    BureauAlert::NewInquiries,
                    BureauAlert::NewDebt
                ][alert as usize],
                days_past_due,
                count,
                amount,
            }
        ),
        money.prop_map(|monthly_income| EventKind::IncomeUpdate { monthly_income }),
        Just(EventKind::ContactChange {
            field: ContactField::Phone
        }),
    ]
}

/// Histories over up to two years, in a random arrival order (so many events arrive late).
fn history() -> impl Strategy<Value = (Vec<Event>, Vec<usize>, i32)> {
    let start = day_of_date(date(2025, 1, 15));
    prop::collection::vec((0i32..700, 0i64..24, event_kind()), 0..80).prop_flat_map(move |raw| {
        let events: Vec<Event> = raw
            .into_iter()
            .enumerate()
            .map(|(i, (day, hour, kind))| Event {
                id: format!("e{i:03}"),
                time_ms: at(start + day, hour),
                kind,
            })
            .collect();
        let order = Just((0..events.len()).collect::<Vec<_>>()).prop_shuffle();
        (Just(events), order, 0i32..40)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn incremental_features_equal_a_recomputation_from_all_events((events, order, days_after) in history()) {
        let mut account = account();
        for &i in &order {
            account.apply(&events[i]);
        }
        let newest = events.iter().map(|e| e.day()).max().unwrap_or(day_of_date(account.opened_on));
        let as_of = date_of_day(newest + days_after);
        let expected = brute_force(&events, account.terms.credit_limit, account.opened_on, as_of, Some(Decimal::from(3200)));
        prop_assert_eq!(account.features(as_of), expected);
    }

    #[test]
    fn arrival_order_does_not_change_the_state((events, order, _) in history()) {
        let mut in_time_order = account();
        let mut sorted = events.clone();
        sorted.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
        for event in &sorted {
            in_time_order.apply(event);
        }
        let mut as_arrived = account();
        for &i in &order {
            as_arrived.apply(&events[i]);
        }
        prop_assert_eq!(as_arrived, in_time_order);
    }
}

#[test]
fn a_history_reads_as_the_features_an_analyst_expects() {
    let mut account = account();
    let day = |d: u32| day_of_date(date(2025, 6, d));
    let events = [
        (
            "d1",
            day(1),
            EventKind::Drawdown {
                amount: Decimal::from(2000),
            },
        ),
        (
            "due1",
            day(2),
            EventKind::InstalmentDue {
                amount: Decimal::from(200),
            },
        ),
        (
            "miss1",
            day(3),
            EventKind::InstalmentMissed {
                days_past_due: 1,
                amount: Decimal::from(200),
            },
        ),
        (
            "d2",
            day(20),
            EventKind::Drawdown {
                amount: Decimal::from(500),
            },
        ),
        (
            "alert",
            day(21),
            EventKind::BureauAlert {
                alert: BureauAlert::NewDelinquency,
                days_past_due: 60,
                count: 0,
                amount: Decimal::ZERO,
            },
        ),
        // Arrives last but happened before the missed instalment: it must not cure it.
        (
            "late-pay",
            day(2),
            EventKind::Repayment {
                amount: Decimal::from(100),
                days_past_due: 0,
            },
        ),
    ];
    for (id, d, kind) in events {
        account.apply(&Event {
            id: id.into(),
            time_ms: at(d, 12),
            kind,
        });
    }
    let f = account.features(date(2025, 6, 25));
    assert_eq!(f.outstanding_balance, Decimal::from(2400));
    assert_eq!(
        f.days_past_due, 23,
        "1 day late on the 3rd, still unpaid on the 25th"
    );
    assert_eq!(f.worst_dpd_3m, 23);
    assert_eq!(f.missed_instalments_3m, 1);
    assert_eq!(f.utilisation, Some(Decimal::new(48, 2)));
    assert_eq!(f.payment_to_due_3m, Some(Decimal::new(5, 1)));
    assert_eq!((f.drawdowns_7d_count, f.drawdowns_30d_count), (1, 2));
    assert_eq!(
        (f.bureau_delinquencies_90d, f.bureau_worst_dpd_90d),
        (1, 60)
    );
    assert_eq!(f.months_on_book, 5);
    assert_eq!(f.monthly_income, Some(Decimal::from(3200)));
}

/// (flow, outcome, limit, apr, actions) → action names.
type PlanCase = (
    FlowKind,
    credence_engine::Outcome,
    Option<Decimal>,
    Option<Decimal>,
    &'static [credence_engine::AccountAction],
    &'static [&'static str],
);

#[test]
fn decisions_plan_account_changes() {
    use credence_engine::{AccountAction, Outcome};
    let account = account();
    let limit = |l: i64| Some(Decimal::from(l));
    // (flow, outcome, limit, apr, actions) → action names
    let cases: &[PlanCase] = &[
        (
            FlowKind::AccountReview,
            Outcome::Approve,
            limit(6000),
            Some(Decimal::new(1299, 4)),
            &[],
            &["limit_increase"],
        ),
        (
            FlowKind::AccountReview,
            Outcome::Approve,
            limit(3000),
            Some(Decimal::new(1599, 4)),
            &[],
            &["limit_decrease", "apr_change"],
        ),
        (
            FlowKind::AccountReview,
            Outcome::Approve,
            limit(5000),
            Some(Decimal::new(1299, 4)),
            &[],
            &[],
        ),
        (
            FlowKind::Drawdown,
            Outcome::Decline,
            None,
            None,
            &[AccountAction::Freeze],
            &["freeze"],
        ),
        (
            FlowKind::Drawdown,
            Outcome::Approve,
            limit(100),
            None,
            &[],
            &[],
        ),
        (
            FlowKind::EarlyWarning,
            Outcome::Refer,
            None,
            None,
            &[AccountAction::Freeze, AccountAction::Collections],
            &["freeze", "collections", "refer"],
        ),
    ];
    let mut source = credence_engine::PackageSource::new();
    source.insert(
        "strategy.yaml",
        "name: t\nlanguages: [en]\nflows: {f: f.yaml}\nreasons: {R: {en: r}}\n",
    );
    source.insert(
        "f.yaml",
        "input: {}\nsteps: []\noutcome: {default: approve}\n",
    );
    let strategy = credence_engine::compile(&source).unwrap();
    let base = strategy
        .decide_json(
            "f",
            &serde_json::json!({}),
            &credence_engine::EvalOptions::new(date(2026, 1, 1)),
        )
        .unwrap();
    for (flow, outcome, limit, apr, actions, expected) in cases {
        let mut decision = base.clone();
        decision.outcome = *outcome;
        decision.limit = *limit;
        decision.apr = *apr;
        decision.actions = actions.to_vec();
        let got: Vec<&str> = account
            .plan(*flow, &decision)
            .iter()
            .map(Change::action_name)
            .collect();
        assert_eq!(&got, expected, "{flow:?} {outcome:?}");
    }
}

#[test]
fn the_schedule_repays_the_limit_in_level_instalments() {
    let schedule = account().schedule();
    assert_eq!(schedule.len(), 24);
    assert_eq!(schedule[0].due_on, date(2025, 2, 15));
    assert_eq!(schedule[23].due_on, date(2027, 1, 15));
    // 5000 at 12.99% over 24 months: 237.69 a month (annuity formula).
    assert_eq!(schedule[0].amount, Decimal::new(23769, 2));
}

#[test]
fn an_approval_without_terms_cannot_open_an_account() {
    let error = Account::open(Opening {
        account_id: "a".into(),
        customer_id: "c".into(),
        decision_id: "d".into(),
        opened_on: date(2025, 1, 1),
        credit_limit: None,
        apr: Some(Decimal::ONE),
        term_months: Some(12),
        monthly_income: None,
    })
    .unwrap_err();
    assert!(error.to_string().contains("no limit"), "{error}");
}

#[test]
fn each_input_value_is_the_field_of_the_whole_flow_input() {
    let as_of = date(2026, 11, 29);
    let (account, _, _) = crate::simulate::simulate_account(3, 9, as_of, 12);
    let features = account.features(as_of);
    let whole = account.flow_input(as_of);
    assert!(whole.len() > 30);
    for (name, value) in &whole {
        assert_eq!(
            account.input_value(&features, as_of, name).as_ref(),
            Some(value),
            "{name}"
        );
    }
    assert_eq!(
        account.input_value(&features, as_of, "no_such_feature"),
        None
    );
}

proptest! {
    #[test]
    fn compact_days_round_trip((events, order, _) in history()) {
        let mut account = account();
        for &i in &order {
            account.apply(&events[i]);
        }
        let days = &account.behaviour.days;
        let text = crate::behaviour::compact_days::encode(days);
        prop_assert_eq!(&crate::behaviour::compact_days::decode(&text).unwrap(), days);
        let stored = serde_json::to_string(&account).unwrap();
        prop_assert_eq!(serde_json::from_str::<Account>(&stored).unwrap(), account);
    }

    #[test]
    fn compact_days_never_panic_on_garbage(text in "[0-9:;,.\\-a]{0,40}") {
        let _ = crate::behaviour::compact_days::decode(&text);
    }
}

#[test]
fn simulated_histories_give_the_features_of_a_recomputation_from_their_events() {
    let as_of = date(2026, 11, 29);
    for index in 0..1000 {
        let (account, events, _) = crate::simulate::simulate_account(5, index, as_of, 14);
        // The income at opening: the same draws with no months of history.
        let income = crate::simulate::simulate_account(5, index, as_of, 0)
            .0
            .behaviour
            .monthly_income
            .map(|l| l.value);
        let expected = brute_force(
            &events,
            account.terms.credit_limit,
            account.opened_on,
            as_of,
            income,
        );
        assert_eq!(account.features(as_of), expected, "account {index}");
    }
}

/// Months on book follow the one `months_between` rule: anniversaries, clamped to the end of
/// shorter months, so an account opened on 31 January has a month on book on 28 February.
#[test]
fn months_on_book_count_anniversaries_clamped_to_month_ends() {
    let mut opening = Opening {
        account_id: "acc-eom".into(),
        customer_id: "cust-1".into(),
        decision_id: "dec-1".into(),
        opened_on: date(2026, 1, 31),
        credit_limit: Some(Decimal::from(1000)),
        apr: Some(Decimal::new(1299, 4)),
        term_months: Some(12),
        monthly_income: None,
    };
    let account = Account::open(opening.clone()).unwrap();
    for (as_of, months) in [
        (date(2026, 2, 27), 0),
        (date(2026, 2, 28), 1),
        (date(2026, 3, 30), 1),
        (date(2026, 3, 31), 2),
    ] {
        assert_eq!(account.features(as_of).months_on_book, months, "{as_of}");
        assert_eq!(
            i64::from(months),
            credence_expr::functions::months_between(date(2026, 1, 31), as_of)
        );
    }
    opening.opened_on = date(2024, 1, 31);
    let leap = Account::open(opening).unwrap();
    assert_eq!(leap.features(date(2024, 2, 29)).months_on_book, 1);
}
