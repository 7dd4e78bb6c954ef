//! Engine tests: the example package, tables of compile errors and hit policies, snapshots of traces, property tests.

use crate::steps::table::HitPolicy;
use crate::steps::table::{DecisionTable, TableDefinition};
use crate::value::{Constant, ValueSource};
use crate::*;
use chrono::NaiveDate;
use credence_expr::{ExprCompiler, Frame, NameTable, NamedLists, Value};
use proptest::prelude::*;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::sync::OnceLock;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/consumer-loan");

#[path = "../support/package_dir.rs"]
mod package_dir;

fn example_source() -> PackageSource {
    package_dir::read(Path::new(EXAMPLE))
}

pub(crate) fn example() -> &'static CompiledStrategy {
    static STRATEGY: OnceLock<CompiledStrategy> = OnceLock::new();
    STRATEGY.get_or_init(|| compile(&example_source()).unwrap())
}

fn sample(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{EXAMPLE}/samples/{name}.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn as_of() -> EvalOptions {
    EvalOptions::new(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap())
}

#[test]
fn compiled_strategy_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CompiledStrategy>();
}

#[test]
fn example_cases_all_pass() {
    let results = example().run_cases();
    assert!(results.len() >= 30, "only {} cases", results.len());
    let failures: Vec<_> = results.iter().filter(|r| !r.passed()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A reviewer's decline picks from the decline reasons: referral and flag codes ("we need to
/// review it") are left out, knock-out, decline and explanation codes are in.
#[test]
fn decline_reasons_leave_out_codes_given_only_to_refer_or_flag() {
    let strategy = example();
    let decline: Vec<&str> = strategy.decline_reason_codes().collect();
    for code in [
        "KO_AGE",
        "DEC_SCORE",
        "DEC_DTI",
        "DEC_AFFORDABILITY",
        "SC_SAVINGS",
        "DD_OVER_LIMIT",
    ] {
        assert!(
            decline.contains(&code),
            "{code} is a decline reason: {decline:?}"
        );
    }
    for code in [
        "REF_INCOME_MISMATCH",
        "REF_DTI_GRADE",
        "REF_BUREAU_UNAVAILABLE",
        "FLG_UNVERIFIED_INCOME",
    ] {
        assert!(!decline.contains(&code), "{code} only refers or flags");
        assert!(strategy.is_referral_only_reason(code));
    }
}

#[test]
fn example_cases_cover_every_outcome_and_reason_code() {
    let strategy = example();
    let mut outcomes = std::collections::BTreeSet::new();
    let mut codes = std::collections::BTreeSet::new();
    for case in strategy.cases() {
        outcomes.insert((case.flow.clone(), case.expect.outcome));
        codes.extend(case.expect.reasons.iter().flatten().cloned());
        codes.extend(case.expect.flags.iter().flatten().cloned());
    }
    for flow in ["application", "drawdown"] {
        for outcome in [Outcome::Approve, Outcome::Refer, Outcome::Decline] {
            assert!(
                outcomes.contains(&(flow.to_string(), outcome)),
                "no {flow} case expects {outcome:?}"
            );
        }
    }
    // These scorecard characteristics weigh too little ever to rank among a decline's top four
    // reasons under this scorecard (their largest shortfall is 8–9 points; a decline needs 160+).
    let never_in_top_reasons = ["SC_EMPLOYMENT", "SC_OTHER_PLANS", "SC_HOUSING"];
    for code in strategy.reasons.keys() {
        if never_in_top_reasons.contains(&&**code) {
            continue;
        }
        assert!(
            codes.contains(&**code),
            "no embedded case expects reason {code}"
        );
    }
}

#[test]
fn samples_decide_as_named() {
    for (name, flow, outcome) in [
        ("application-approve", "application", Outcome::Approve),
        ("application-decline", "application", Outcome::Decline),
        ("application-refer", "application", Outcome::Refer),
        ("drawdown-approve", "drawdown", Outcome::Approve),
        ("drawdown-decline", "drawdown", Outcome::Decline),
    ] {
        let decision = example()
            .decide_json(flow, &sample(name), &as_of())
            .unwrap();
        assert_eq!(decision.outcome, outcome, "{name}");
    }
}

#[test]
fn the_same_input_gives_byte_identical_output() {
    let mut options = as_of();
    options.full_trace = true;
    let input = sample("application-decline");
    let first = serde_json::to_string(
        &example()
            .decide_json("application", &input, &options)
            .unwrap(),
    )
    .unwrap();
    // A second compile of the same package, too: the version and the output do not move.
    let recompiled = compile(&example_source()).unwrap();
    let second = serde_json::to_string(
        &recompiled
            .decide_json("application", &input, &options)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first, second);
    assert_eq!(example().version(), recompiled.version());
}

#[test]
fn decline_reasons_carry_texts_in_the_requested_language() {
    let mut options = as_of();
    options.language = "zh".into();
    let decision = example()
        .decide_json("application", &sample("application-decline"), &options)
        .unwrap();
    assert_eq!(&*decision.reasons[0].code, "KO_DELINQUENT");
    assert_eq!(
        decision.reasons[0].text,
        "您的信用报告显示当前有逾期未还款项。"
    );
    options.language = "fr".into();
    let error = example()
        .decide_json("application", &sample("application-decline"), &options)
        .unwrap_err();
    assert!(error.to_string().contains("en, zh"), "{error}");
}

#[test]
fn compact_trace_snapshot() {
    let decision = example()
        .decide_json("application", &sample("application-refer"), &as_of())
        .unwrap();
    let mut value = serde_json::to_value(&decision).unwrap();
    value["strategy_version"] = json!("(content hash)");
    insta::assert_json_snapshot!("application_refer_compact", value);
}

#[test]
fn full_trace_snapshot() {
    let mut options = as_of();
    options.full_trace = true;
    let decision = example()
        .decide_json("drawdown", &sample("drawdown-decline"), &options)
        .unwrap();
    let mut value = serde_json::to_value(&decision).unwrap();
    value["strategy_version"] = json!("(content hash)");
    insta::assert_json_snapshot!("drawdown_decline_full", value);
}

#[test]
fn schema_violations_name_every_field() {
    let base = sample("application-approve");
    let with = |patch: serde_json::Value| {
        let mut input = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v == &json!("<remove>") {
                input.as_object_mut().unwrap().remove(k);
            } else {
                input[k] = v.clone();
            }
        }
        input
    };
    let cases = [
        (
            with(json!({"customer_id": "<remove>"})),
            vec!["customer_id"],
            "required",
        ),
        (
            with(json!({"requested_amount": "lots"})),
            vec!["requested_amount"],
            "string \"lots\"",
        ),
        (
            with(json!({"term_months": 12.5})),
            vec!["term_months"],
            "an integer",
        ),
        (
            with(json!({"term_months": 500})),
            vec!["term_months"],
            "from 3 to 120",
        ),
        (
            with(json!({"housing": "castle"})),
            vec!["housing"],
            "one of own, rent, free",
        ),
        (
            with(json!({"birth_date": "20/05/1984"})),
            vec!["birth_date"],
            "YYYY-MM-DD",
        ),
        (
            with(json!({"montly_income": 1})),
            vec!["montly_income"],
            "no such field",
        ),
        (
            with(json!({"phone": 42, "age": 30})),
            vec!["phone", "age"],
            "",
        ),
        (json!([1, 2]), vec!["(input)"], "JSON object"),
    ];
    for (input, paths, needle) in cases {
        match example().decide_json("application", &input, &as_of()) {
            Err(EngineError::InvalidInput { violations, .. }) => {
                let got: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
                assert_eq!(got, paths, "{input}");
                let text = violations.iter().map(|v| v.to_string()).collect::<String>();
                assert!(text.contains(needle), "{text} should mention {needle}");
            }
            other => panic!("expected a schema violation for {input}, got {other:?}"),
        }
    }
    let error = example()
        .decide_json("renewal", &base, &as_of())
        .unwrap_err();
    assert!(
        error.to_string().contains("application, drawdown"),
        "{error}"
    );
}

#[test]
fn validated_input_is_decided_only_by_the_flow_that_validated_it() {
    let input = example()
        .validate_input("drawdown", &sample("drawdown-approve"))
        .unwrap();
    assert!(example().decide("drawdown", &input, &as_of()).is_ok());
    let error = example()
        .decide("application", &input, &as_of())
        .unwrap_err();
    assert!(
        matches!(error, EngineError::NotValidatedForFlow { .. }),
        "{error}"
    );
}

#[test]
fn optional_fields_may_be_absent_and_rules_see_null() {
    let mut input = sample("application-approve");
    let object = input.as_object_mut().unwrap();
    for field in [
        "verified_monthly_income",
        "bureau_open_accounts",
        "bureau_inquiries_6m",
        "household_size",
        "employer_name",
        "application_id",
    ] {
        object.remove(field);
    }
    let decision = example()
        .decide_json("application", &input, &as_of())
        .unwrap();
    assert_eq!(decision.flags, [Arc::from("FLG_UNVERIFIED_INCOME")]);
    // No bureau accounts on file: a thin file, half the grade's limit cap.
    let segment = decision
        .trace
        .steps
        .iter()
        .find(|s| &*s.step == "segment")
        .unwrap();
    assert_eq!(
        segment.detail,
        StepDetail::Branch {
            case: "thin_file".into()
        }
    );
}

/// A minimal package: a manifest and one flow, with the flow's steps and outcome given.
fn package(steps: &str, outcome: &str) -> PackageSource {
    let mut source = PackageSource::new();
    source.insert(
        "strategy.yaml",
        "name: t\nlanguages: [en]\ncaps: {apr_max: 0.24}\nreasons:\n  R1: {en: one}\n  R2: {en: two}\nflows:\n  application: flows/a.yaml\n",
    );
    source.insert(
        "flows/a.yaml",
        format!("input:\n  x: {{type: number}}\n  key: {{type: string, required: false}}\nsteps:\n{steps}\noutcome:\n{outcome}\n"),
    );
    source
}

fn compile_problems(source: &PackageSource) -> Vec<String> {
    match compile(source) {
        Err(EngineError::Compile(problems)) => problems.iter().map(|p| p.to_string()).collect(),
        Ok(_) => vec![],
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn compile_errors_name_the_location_and_the_fix() {
    let ok_outcome = "  default: approve";
    let cases = [
        (
            "  - features: {id: f, values: {a: \"b + 1\", b: \"a + 1\"}}",
            ok_outcome,
            "flows/a.yaml:5:36: steps[0] (features f).values.a",
            "cycle: a → b → a",
        ),
        (
            // A feature depending on a cycle is not on it.
            "  - features: {id: f, values: {a: \"b + 1\", b: \"a + 1\", c: \"a * 2\"}}",
            ok_outcome,
            "flows/a.yaml:5:36: steps[0] (features f).values.a",
            "cycle: a → b → a;",
        ),
        ("  - features: {id: f, values: {a: \"y + 1\"}}", ok_outcome, "steps[0] (features f).values.a", "unknown name `y`"),
        ("  - features: {id: f, values: {a: \"x +\"}}", ok_outcome, "values.a", "cannot compile `x +`"),
        (
            "  - rule_set: {id: r, rules: [{id: A, when: \"x > 1\", outcome: decline, reason: NOPE}]}",
            ok_outcome,
            "steps[0] (rule_set r).rules[0] (A)",
            "unknown reason code NOPE",
        ),
        ("  - features: {id: f, values: {a: \"1\"}}\n  - features: {id: g, values: {a: \"2\"}}", ok_outcome, "values.a", "already defined"),
        ("  - features: {id: f, values: {a: \"1\"}}", "  default: maybe", "outcome.default", "approve, refer or decline"),
        ("  - features: {id: f, valuez: {}}", ok_outcome, "flows/a.yaml:", "unknown field `valuez`"),
        ("  - tabel: {id: t}", ok_outcome, "flows/a.yaml:", "unknown variant `tabel`"),
        (
            "  - scorecard: {id: s, characteristics: [{name: c, value: x, reason: R1, bins: [{range: \"[0..10]\", points: 1}, {range: \"[10..20)\", points: 2}]}]}",
            ok_outcome,
            "characteristics[0] (c)",
            "bins 0 and 1 overlap",
        ),
        (
            "  - table: {id: t, inputs: [x], outputs: [outcome], rows: [[\"> 1\", decline]]}",
            ok_outcome,
            "rows[0]",
            "needs a reason code",
        ),
        (
            "  - table: {id: t, inputs: [x], outputs: [y], rows: [[\"> 1\", 1, 2]]}",
            ok_outcome,
            "rows[0]",
            "has 3 cells",
        ),
        (
            "  - rule_set: {id: r, rules: [{id: A, when: \"x > 1\", outcome: decline, reason: R1, explain_with: nope}]}",
            ok_outcome,
            "explain_with",
            "not a scorecard step",
        ),
        (
            "  - features: {id: f, values: {a: \"rand(3)\"}}",
            ok_outcome,
            "values.a",
            "non-repeatable",
        ),
        (
            "  - rule_set: {id: r, rules: [{id: A, when: \"x > 1\", outcome: flag, reason: R1, actions: [explode]}]}",
            ok_outcome,
            "flows/a.yaml:",
            "unknown variant `explode`",
        ),
        (
            "  - features: {id: f, values: {a: \"1\"}}",
            "  default: approve\n  adverse: [{when: \"x > 1\", reason: NOPE, explain_with: nope}]",
            "outcome.adverse[0]",
            "unknown reason code NOPE",
        ),
        (
            "  - features: {id: f, values: {a: \"1\"}}",
            "  default: approve\n  adverse: [{when: \"x > 1\", reason: R1, explain_with: nope}]",
            "outcome.adverse[0].explain_with",
            "not a scorecard step",
        ),
        (
            "  - features: {id: f, values: {a: \"1\"}}",
            "  default: approve\n  adverse: [{when: \"z > 1\", reason: R1}]",
            "adverse[0].when",
            "unknown name `z`",
        ),
    ];
    for (steps, outcome, location, message) in cases {
        let problems = compile_problems(&package(steps, outcome));
        assert!(
            problems
                .iter()
                .any(|p| p.contains(location) && p.contains(message)),
            "{steps}\nexpected `{location}` … `{message}` in {problems:#?}"
        );
    }
}

#[test]
fn a_misspelt_name_gets_a_suggestion() {
    let problems = compile_problems(&package(
        "  - features: {id: f, values: {a: \"xx + 1\"}}",
        "  default: approve",
    ));
    assert!(
        problems.iter().any(|p| p.contains("did you mean `x`?")),
        "{problems:?}"
    );
}

#[test]
fn caps_bind_every_offer() {
    let source = package(
        "  - features: {id: f, values: {price: \"x / 100\"}}",
        "  default: approve\n  apr: price\n  limit: \"1000\"",
    );
    let strategy = compile(&source).unwrap();
    let decision = strategy
        .decide_json("application", &json!({"x": 35}), &as_of())
        .unwrap();
    assert_eq!(decision.apr, Some(rust_decimal::Decimal::new(24, 2)));
    assert_eq!(decision.trace.caps_applied[0].cap, "apr_max");
    let decision = strategy
        .decide_json("application", &json!({"x": 12}), &as_of())
        .unwrap();
    assert_eq!(decision.apr, Some(rust_decimal::Decimal::new(12, 2)));
    assert!(decision.trace.caps_applied.is_empty());
}

#[test]
fn champion_challenger_is_stable_and_follows_weights_and_shadows_are_recorded() {
    let source = package(
        "  - champion_challenger:\n      id: test\n      key: key\n      salt: s1\n      arms:\n        - {name: champion, weight: 90, steps: [{features: {id: a, values: {cut: \"1\"}}}]}\n        - {name: challenger, weight: 10, steps: [{features: {id: b, values: {cut: \"2\"}}}]}\n      shadow:\n        - {name: strict, steps: [{features: {id: c, values: {cut: \"100\"}}}]}\n  - rule_set: {id: r, rules: [{id: A, when: \"x < cut\", outcome: decline, reason: R1}]}",
        "  default: approve",
    );
    let strategy = compile(&source).unwrap();
    let mut challenger = 0;
    for i in 0..4000 {
        let input = json!({"x": 50, "key": format!("customer-{i}")});
        let first = strategy
            .decide_json("application", &input, &as_of())
            .unwrap();
        let again = strategy
            .decide_json("application", &input, &as_of())
            .unwrap();
        assert_eq!(first.arm, again.arm);
        if first.arm.as_deref() == Some("challenger") {
            challenger += 1;
        }
        assert_eq!(first.outcome, Outcome::Approve);
        assert_eq!(first.shadow.len(), 1);
        assert_eq!(&*first.shadow[0].arm, "strict");
        assert_eq!(first.shadow[0].outcome, Outcome::Decline);
    }
    // 10% of 4,000 is 400; a binomial standard deviation is about 19.
    assert!((320..480).contains(&challenger), "{challenger} challengers");
    assert_eq!(experiment_bucket("2026-11-score-cutoff", "C-100001"), 1605);
}

#[test]
fn model_steps_check_their_feature_mapping_and_score() {
    let with_model = |inputs: &str| {
        let mut source = package(
            &format!("  - model: {{id: pd, model: pd_lr, inputs: {inputs}}}\n  - rule_set: {{id: r, rules: [{{id: A, when: \"pd.probability > 0.5\", outcome: refer, reason: R1}}]}}"),
            "  default: approve",
        );
        let manifest = String::from_utf8(source.bytes("strategy.yaml").unwrap().to_vec()).unwrap();
        source.insert(
            "strategy.yaml",
            format!("{manifest}models:\n  pd_lr: models/pd.json\n"),
        );
        source.insert(
            "models/pd.json",
            r#"{"format": "credence.logistic_regression.v1", "name": "pd", "version": "1",
                "intercept": -2.0, "coefficients": [{"feature": "dti", "weight": 4.0}]}"#,
        );
        source
    };
    let strategy = compile(&with_model("{dti: \"x / 100\"}")).unwrap();
    let decision = strategy
        .decide_json("application", &json!({"x": 80}), &as_of())
        .unwrap();
    assert_eq!(decision.outcome, Outcome::Refer);
    match &decision.trace.steps[0].detail {
        StepDetail::Model {
            model,
            model_sha256,
            probability,
            margin,
            ..
        } => {
            assert_eq!(&**model, "pd");
            assert_eq!(model_sha256.len(), 64);
            assert!((margin.unwrap() - 1.2).abs() < 1e-12);
            assert!((probability.unwrap() - 1.0 / (1.0 + (-1.2f64).exp())).abs() < 1e-12);
        }
        other => panic!("{other:?}"),
    }
    let decision = strategy
        .decide_json("application", &json!({"x": 10}), &as_of())
        .unwrap();
    assert_eq!(decision.outcome, Outcome::Approve);

    let problems = compile_problems(&with_model("{}"));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("model pd_lr needs feature dti")),
        "{problems:?}"
    );
    let problems = compile_problems(&with_model("{dti: x, income: x}"));
    assert!(
        problems.iter().any(|p| p.contains("has no feature income")),
        "{problems:?}"
    );
}

#[test]
fn an_xgboost_model_step_scores_natively_and_explains_declines() {
    let features = [
        "Seniority",
        "Time",
        "Age",
        "Expenses",
        "Income",
        "Assets",
        "Debt",
        "Amount",
        "Price",
    ];
    let mut source = PackageSource::new();
    source.insert(
        "strategy.yaml",
        "name: t\nreasons:\n  HIGH_PD: {en: high risk}\n  INCOME: {en: income}\n  DEBT: {en: debt}\n  TENURE: {en: tenure}\nmodels:\n  pd_xgb: models/pd.json\nflows:\n  application: flows/a.yaml\n",
    );
    let inputs: String = features
        .iter()
        .map(|f| format!("  {f}: {{type: number, required: false}}\n"))
        .collect();
    let mapping: Vec<String> = features.iter().map(|f| format!("{f}: {f}")).collect();
    source.insert(
        "flows/a.yaml",
        format!(
            "input:\n{inputs}steps:\n  - model: {{id: pd, model: pd_xgb, inputs: {{{}}}, reasons: {{Income: INCOME, Debt: DEBT, Seniority: TENURE, Time: TENURE}}}}\n  - rule_set: {{id: r, rules: [{{id: A, when: \"pd.probability > 0.5\", outcome: decline, reason: HIGH_PD, explain_with: pd}}]}}\noutcome: {{default: approve}}\n",
            mapping.join(", ")
        ),
    );
    let model_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../credence-model/tests/fixtures/xgb_missing/model.json"
    );
    let model_bytes = std::fs::read(model_path).unwrap();
    source.insert("models/pd.json", model_bytes.clone());
    let strategy = compile(&source).unwrap_or_else(|e| panic!("{e}"));
    let model = credence_model::Model::load("pd.json", &model_bytes).unwrap();

    // A short tenure, low income, high debt: declined, and the model says why.
    let risky = json!({"Seniority": 0, "Time": 60, "Age": 22, "Expenses": 90, "Income": 60, "Assets": 0, "Debt": 4000, "Amount": 2000, "Price": 2100});
    let decision = strategy
        .decide_json("application", &risky, &as_of())
        .unwrap();
    let row: Vec<f64> = features
        .iter()
        .map(|f| risky[f].as_f64().unwrap())
        .collect();
    let probability = model.predict(&row).unwrap().output().unwrap();
    assert!(probability > 0.5, "{probability}");
    match &decision.trace.steps[0].detail {
        StepDetail::Model {
            probability: traced,
            ..
        } => assert_eq!(*traced, Some(probability)),
        other => panic!("{other:?}"),
    }
    assert_eq!(decision.outcome, Outcome::Decline);
    let codes: Vec<&str> = decision.reasons.iter().map(|r| &*r.code).collect();
    assert_eq!(codes[0], "HIGH_PD");
    assert!(
        codes.len() > 1
            && codes[1..]
                .iter()
                .all(|c| ["INCOME", "DEBT", "TENURE"].contains(c)),
        "{codes:?}"
    );
    // The model's reasons are ranked by the summed TreeSHAP contributions of their features.
    let contributions = model.contributions(&row, model.default_tree_limit());
    let tenure = contributions[0].max(0.0) + contributions[1].max(0.0);
    let income = contributions[4].max(0.0);
    let debt = contributions[6].max(0.0);
    let mut ranked = vec![("TENURE", tenure), ("INCOME", income), ("DEBT", debt)];
    ranked.retain(|(_, v)| *v > 0.0);
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(
        &codes[1..],
        ranked
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .as_slice()
    );

    // A solid applicant is approved, with no reasons.
    let solid = json!({"Seniority": 20, "Time": 24, "Age": 45, "Expenses": 45, "Income": 300, "Assets": 20000, "Debt": 0, "Amount": 800, "Price": 1500});
    let decision = strategy
        .decide_json("application", &solid, &as_of())
        .unwrap();
    assert_eq!(decision.outcome, Outcome::Approve);
    assert!(decision.reasons.is_empty());
}

fn table(
    hit_policy: HitPolicy,
    aggregation: Option<crate::steps::table::Aggregation>,
    rows: &[(&str, &str, i64)],
) -> (DecisionTable, NamedLists, NameTable) {
    let lists = NamedLists::new();
    let mut compiler = ExprCompiler::new(&lists);
    let cells = rows
        .iter()
        .map(|(a, b, _)| {
            vec![
                compiler.compile_unary(a).unwrap(),
                compiler.compile_unary(b).unwrap(),
            ]
        })
        .collect();
    let outputs = rows
        .iter()
        .map(|(_, _, out)| vec![ValueSource::Constant(Constant::Number((*out).into()))])
        .collect();
    let inputs = vec![
        compiler.compile("a").unwrap(),
        compiler.compile("b").unwrap(),
    ];
    let priority = vec![
        Constant::Number(3.into()),
        Constant::Number(2.into()),
        Constant::Number(1.into()),
    ];
    let slot = compiler.slot("t");
    let names = compiler.names();
    (
        DecisionTable::new(TableDefinition {
            id: "t".into(),
            slot,
            hit_policy,
            aggregation,
            inputs,
            output_names: vec!["out".into()],
            cells,
            outputs,
            output_priority: priority,
        }),
        lists,
        names,
    )
}

#[test]
fn hit_policies() {
    use crate::steps::table::Aggregation as A;
    let rows = [
        ("> 10", "-", 1),
        ("[5..20]", "\"x\"", 2),
        ("-", "\"x\",\"y\"", 3),
        ("< 0", "-", 4),
    ];
    /// (policy, aggregation, a, b, expected rows (0-based), expected output)
    type Case = (
        HitPolicy,
        Option<A>,
        i64,
        &'static str,
        Vec<usize>,
        serde_json::Value,
    );
    let cases: Vec<Case> = vec![
        (HitPolicy::First, None, 15, "x", vec![0], json!({"out": 1})),
        (HitPolicy::First, None, 7, "y", vec![2], json!({"out": 3})),
        (HitPolicy::First, None, 7, "z", vec![], json!(null)),
        (
            HitPolicy::Priority,
            None,
            15,
            "x",
            vec![2],
            json!({"out": 3}),
        ),
        (
            HitPolicy::RuleOrder,
            None,
            15,
            "x",
            vec![0, 1, 2],
            json!([{"out": 1}, {"out": 2}, {"out": 3}]),
        ),
        (
            HitPolicy::Collect,
            Some(A::Sum),
            15,
            "x",
            vec![0, 1, 2],
            json!({"out": 6}),
        ),
        (
            HitPolicy::Collect,
            Some(A::Min),
            15,
            "x",
            vec![0, 1, 2],
            json!({"out": 1}),
        ),
        (
            HitPolicy::Collect,
            Some(A::Max),
            15,
            "x",
            vec![0, 1, 2],
            json!({"out": 3}),
        ),
        (
            HitPolicy::Collect,
            Some(A::Count),
            15,
            "x",
            vec![0, 1, 2],
            json!({"out": 3}),
        ),
        (
            HitPolicy::Collect,
            None,
            -5,
            "y",
            vec![2, 3],
            json!([{"out": 3}, {"out": 4}]),
        ),
        (HitPolicy::Unique, None, -5, "q", vec![3], json!({"out": 4})),
    ];
    for (policy, aggregation, a, b, rows_expected, output) in cases {
        let (table, lists, names) = table(policy, aggregation, &rows);
        let mut frame = Frame::with_names(&names);
        frame.set_named("a", Value::from(json!(a)));
        frame.set_named("b", Value::from(json!(b)));
        let result = table.evaluate(&mut frame, &lists).unwrap();
        assert_eq!(
            result.rows, rows_expected,
            "{policy:?} {aggregation:?} a={a} b={b}"
        );
        assert_eq!(result.value.to_json(), output, "{policy:?} {aggregation:?}");
    }
    let (table, lists, names) = table(HitPolicy::Unique, None, &rows);
    let mut frame = Frame::with_names(&names);
    frame.set_named("a", Value::from(json!(15)));
    frame.set_named("b", Value::from(json!("x")));
    let error = table.evaluate(&mut frame, &lists).unwrap_err();
    assert!(error.contains("rows 1, 2, 3 all match"), "{error}");
}

fn cell_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("-".to_string()),
        2 => (-20i64..20).prop_map(|n| n.to_string()),
        3 => (prop::sample::select(vec!["<", "<=", ">", ">="]), -20i64..20).prop_map(|(op, n)| format!("{op} {n}")),
        3 => (prop::sample::select(vec!["[", "("]), -20i64..0, 0i64..20, prop::sample::select(vec!["]", ")"]))
            .prop_map(|(l, a, b, r)| format!("{l}{a}..{b}{r}")),
        2 => prop::sample::subsequence(vec!["\"A\"", "\"B\"", "\"C\""], 1..3).prop_map(|p| p.join(", ")),
        // Cells no index understands: evaluated by ZEN on the candidate rows.
        1 => (-20i64..20).prop_map(|n| format!("$ > {n} and $ < {}", n + 7)),
    ]
}

fn input_strategy() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        (-25i64..25).prop_map(|n| json!(n)),
        (-100i64..100).prop_map(|n| json!(n as f64 / 4.0)),
        prop::sample::select(vec!["A", "B", "C", "D"]).prop_map(|s| json!(s)),
        Just(json!(null)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn indexed_tables_match_a_linear_scan(
        rows in prop::collection::vec((cell_strategy(), cell_strategy()), 1..120),
        policy in prop::sample::select(vec![HitPolicy::First, HitPolicy::RuleOrder, HitPolicy::Collect]),
        inputs in prop::collection::vec((input_strategy(), input_strategy()), 1..20),
    ) {
        let lists = NamedLists::new();
        let mut compiler = ExprCompiler::new(&lists);
        let cells: Vec<Vec<credence_expr::UnaryTest>> = rows.iter().map(|(a, b)| vec![compiler.compile_unary(a).unwrap(), compiler.compile_unary(b).unwrap()]).collect();
        let outputs: Vec<Vec<ValueSource>> = (0..rows.len()).map(|i| vec![ValueSource::Constant(Constant::Number((i as i64).into()))]).collect();
        let cells_of = |cells: &Vec<Vec<credence_expr::UnaryTest>>| cells.clone();
        let outputs_of = |outputs: &Vec<Vec<ValueSource>>| outputs.clone();
        let mut definition = || TableDefinition {
            id: "t".into(), slot: compiler.slot("t"), hit_policy: policy, aggregation: None,
            inputs: vec![compiler.compile("a").unwrap(), compiler.compile("b").unwrap()],
            output_names: vec!["row".into()], cells: cells_of(&cells), outputs: outputs_of(&outputs), output_priority: vec![],
        };
        let table = DecisionTable::new(definition());
        // The same rows with the large-table forms: row lists and a segment tree.
        let sparse = DecisionTable::with_dense_limit(definition(), 0);
        let mut frame = Frame::with_names(&compiler.names());
        for (a, b) in inputs {
            frame.set_named("a", Value::from(a.clone()));
            frame.set_named("b", Value::from(b.clone()));
            let indexed = table.evaluate(&mut frame, &lists);
            let from_sparse = sparse.evaluate(&mut frame, &lists);
            let linear = table.evaluate_linear(&mut frame, &lists);
            let linear_rows = linear.unwrap().rows;
            prop_assert_eq!(&indexed.unwrap().rows, &linear_rows, "a={} b={}", a, b);
            prop_assert_eq!(&from_sparse.unwrap().rows, &linear_rows, "sparse: a={} b={}", a, b);
        }
    }

    #[test]
    fn package_loading_never_panics_on_arbitrary_text(manifest in "\\PC{0,200}", flow in "\\PC{0,300}") {
        let mut source = PackageSource::new();
        source.insert("strategy.yaml", manifest);
        source.insert("flows/application.yaml", flow);
        let _ = compile(&source);
    }

    #[test]
    fn package_loading_never_panics_on_mutated_example(
        file in prop::sample::select(vec!["strategy.yaml", "flows/application.yaml", "flows/drawdown.yaml", "tests/application.yaml", "scorecards/application.yaml"]),
        position in 0usize..10_000,
        length in 0usize..40,
        replacement in "[ a-z0-9:\\[\\]{}\"'\\-\\n.<>=]{0,12}",
    ) {
        let mut source = example_source();
        let text = String::from_utf8(source.bytes(file).unwrap().to_vec()).unwrap();
        let mut start = position % (text.len() + 1);
        while !text.is_char_boundary(start) { start -= 1; }
        let mut end = (start + length).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let mutated = format!("{}{}{}", &text[..start], replacement, &text[end.max(start)..]);
        source.insert(file, mutated);
        if let Ok(strategy) = compile(&source) {
            let _ = strategy.decide_json("application", &sample("application-approve"), &as_of());
        }
    }

    #[test]
    fn evaluation_never_panics_on_schema_valid_input(input in application_input()) {
        let strategy = example();
        let validated = strategy.validate_input("application", &input);
        prop_assert!(validated.is_ok(), "{:?}", validated.err());
        let decision = strategy.decide("application", &validated.unwrap(), &as_of());
        prop_assert!(decision.is_ok(), "{:?}", decision.err());
        let decision = decision.unwrap();
        if let Some(apr) = decision.apr { prop_assert!(apr <= rust_decimal::Decimal::new(24, 2)); }
        if let Some(limit) = decision.limit { prop_assert!(limit <= rust_decimal::Decimal::from(20_000)); }
        if decision.outcome == Outcome::Decline { prop_assert!(!decision.reasons.is_empty()); }
    }

    #[test]
    fn drawdown_evaluation_never_panics_on_schema_valid_input(
        status in prop::sample::select(vec!["active", "frozen", "closed", "charged_off"]),
        limit in 0u32..100_000, balance in 0u32..100_000, request in 1u32..100_000,
        dpd in 0u32..400, mob in 0u32..200, count in 0u32..20, amount in 0u32..200_000,
        alert in prop::option::of(any::<bool>()),
    ) {
        let input = json!({
            "account_id": "A-1", "customer_id": "C-1", "account_status": status,
            "credit_limit": limit, "outstanding_balance": balance, "requested_amount": request,
            "days_past_due": dpd, "months_on_book": mob, "drawdowns_7d_count": count,
            "drawdowns_30d_amount": amount, "bureau_alerts_90d": alert.map(u32::from),
        });
        let decision = example().decide_json("drawdown", &input, &as_of());
        prop_assert!(decision.is_ok(), "{:?}", decision.err());
    }
}

fn application_input() -> impl Strategy<Value = serde_json::Value> {
    let enums = (
        prop::sample::select(vec!["no_account", "negative", "low", "high"]),
        prop::sample::select(vec![
            "critical",
            "delayed",
            "paying_duly",
            "all_paid_here",
            "none_or_all_paid",
        ]),
        prop::sample::select(vec![
            "electronics",
            "car_new",
            "furniture",
            "car_used",
            "business",
            "education",
            "repairs",
            "appliances",
            "other",
            "retraining",
        ]),
        prop::sample::select(vec![
            "under_100",
            "none",
            "100_to_500",
            "500_to_1000",
            "1000_plus",
        ]),
        prop::sample::select(vec![
            "unemployed",
            "under_1y",
            "1_to_4y",
            "4_to_7y",
            "7y_plus",
        ]),
        prop::sample::select(vec![
            "real_estate",
            "savings_or_insurance",
            "car_or_other",
            "none",
        ]),
        prop::sample::select(vec!["none", "bank", "stores"]),
        prop::sample::select(vec!["own", "rent", "free"]),
    );
    let numbers = (
        100u32..1_000_000,
        3u32..=120,
        0u32..10_000_000,
        prop::option::of(0u32..10_000_000),
        0u32..10_000_000,
        0u32..10_000_000,
        prop::option::of(1u32..=20),
        (
            prop::option::of(0u32..=500),
            0u32..=500,
            prop::option::of(0u32..=500),
        ),
        (1900i32..2030, 1u32..=12, 1u32..=28),
        prop::sample::select(vec!["C-1", "C-2", "C-3", "C-100052"]),
    );
    (enums, numbers).prop_map(|((check, history, purpose, savings, employment, property, plans, housing), (amount, term, declared, verified, living, debt, household, (open, past_due, inquiries), (y, m, d), customer))| {
        json!({
            "customer_id": customer,
            "national_id_sha256": "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "phone": "+8613700000001",
            "birth_date": format!("{y:04}-{m:02}-{d:02}"),
            "checking_account": check, "credit_history": history, "purpose": purpose, "savings": savings,
            "employment_length": employment, "property": property, "other_instalment_plans": plans, "housing": housing,
            "requested_amount": amount, "term_months": term,
            "declared_monthly_income": declared, "verified_monthly_income": verified,
            "monthly_living_expenses": living, "monthly_debt_payments": debt, "household_size": household,
            "bureau_open_accounts": open, "bureau_accounts_past_due": past_due, "bureau_inquiries_6m": inquiries,
        })
    })
}

fn data_package() -> CompiledStrategy {
    let mut source = PackageSource::new();
    source.insert(
        "strategy.yaml",
        r#"name: data
languages: [en]
reasons: {R1: {en: delinquent elsewhere}, R2: {en: bureau unavailable}}
flows: {application: flows/a.yaml}
data_sources:
  bureau:
    subject: customer_id
    consent: consent_ref
    cache_ttl_seconds: 3600
    providers:
      - {name: bureau_a, url: "{secret:BUREAU_URL}/r/{subject}", timeout_ms: 200, retries: 1, cost: 0.45}
      - {name: bureau_b, url: "{secret:BUREAU_B_URL}/r/{subject}", timeout_ms: 200}
    fields:
      delinquencies: {pointer: /d, type: integer, default: 0}
      utilisation: {pointer: /u, type: number}
      note: {pointer: /n, type: string, default: null}
    on_failure: {outcome: refer, reason: R2}
"#,
    );
    source.insert(
        "flows/a.yaml",
        r#"input:
  customer_id: {type: string}
  score: {type: number}
  consent_ref: {type: string, required: false}
steps:
  - data: {id: bureau, source: bureau, when: "score < 600"}
  - rule_set:
      id: rules
      rules:
        - {id: A, when: "bureau.available and bureau.delinquencies > 0", outcome: decline, reason: R1}
outcome: {default: approve}
"#,
    );
    compile(&source).unwrap_or_else(|e| panic!("{e}"))
}

/// Adjacent data steps that do not read each other's answers are asked for in one round (the
/// service fetches them concurrently); a step that reads an earlier answer waits for it.
#[test]
fn adjacent_independent_data_steps_are_requested_together() {
    use crate::data::{DataAnswer, DataRecord, Evaluation};
    let mut source = PackageSource::new();
    source.insert(
        "strategy.yaml",
        r#"name: data
languages: [en]
reasons: {R2: {en: unavailable}}
flows: {application: flows/a.yaml}
data_sources:
  income: {subject: customer_id, providers: [{name: p1, url: "{secret:U}/i/{subject}", timeout_ms: 200}],
           fields: {monthly: {pointer: /m, type: number, default: null}}, on_failure: {outcome: continue}}
  liabilities: {subject: customer_id, providers: [{name: p2, url: "{secret:U}/l/{subject}", timeout_ms: 200}],
                fields: {payments: {pointer: /p, type: number, default: null}}, on_failure: {outcome: continue}}
  bureau: {subject: customer_id, providers: [{name: p3, url: "{secret:U}/b/{subject}", timeout_ms: 200}],
           fields: {alerts: {pointer: /a, type: integer, default: 0}}, on_failure: {outcome: refer, reason: R2}}
"#,
    );
    source.insert(
        "flows/a.yaml",
        r#"input:
  customer_id: {type: string}
  score: {type: number}
steps:
  - data: {id: income, source: income}
  - data: {id: liabilities, source: liabilities, when: "score < 900"}
  - data: {id: skipped_bureau, source: bureau, when: "score > 900"}
  - data: {id: bureau, source: bureau, when: "liabilities.available and liabilities.payments > 100"}
  - features: {id: f, values: {x: "1"}}
outcome: {default: approve}
"#,
    );
    let strategy = compile(&source).unwrap_or_else(|e| panic!("{e}"));
    let input = strategy
        .validate_input("application", &json!({"customer_id": "C-9", "score": 500}))
        .unwrap();
    let options = EvalOptions::default();
    let asked = |record: &DataRecord| match strategy
        .evaluate("application", &input, &options, record)
        .unwrap()
    {
        Evaluation::NeedsData(requests) => requests.into_iter().map(|r| r.step).collect(),
        Evaluation::Decided(_) => Vec::<String>::new(),
    };
    let answer = |record: &mut DataRecord, step: &str, values: serde_json::Value| {
        record.insert(
            step,
            DataAnswer {
                ok: true,
                values: values
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into(),
                reason: None,
                meta: None,
            },
        );
    };
    let mut record = DataRecord::online();
    // income and liabilities together; the inactive step is not asked; the bureau step reads
    // liabilities' answer, so it waits for the next round.
    assert_eq!(asked(&record), ["income", "liabilities"]);
    answer(&mut record, "income", json!({"monthly": 3000}));
    answer(&mut record, "liabilities", json!({"payments": 450}));
    assert_eq!(asked(&record), ["bureau"]);
    answer(&mut record, "bureau", json!({"alerts": 0}));
    assert!(asked(&record).is_empty(), "decided once every answer is in");
}

#[test]
fn data_steps_ask_use_fail_by_policy_and_replay_from_the_record() {
    use crate::data::{DataAnswer, DataRecord, Evaluation};
    let strategy = data_package();
    let input = |score: i64| {
        strategy
            .validate_input(
                "application",
                &json!({"customer_id": "C-1", "score": score, "consent_ref": "consent-77"}),
            )
            .unwrap()
    };
    let answered = |ok: bool, values: serde_json::Value| {
        let mut record = DataRecord::online();
        record.insert(
            "bureau",
            DataAnswer {
                ok,
                values: values
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into(),
                reason: (!ok).then(|| "bureau_a: timeout; bureau_b: HTTP 500".to_string()),
                meta: crate::data::FetchMeta::from_value(
                    &json!({"provider": "bureau_a", "cache_hit": false}),
                ),
            },
        );
        record
    };
    let decide = |score: i64, data: &DataRecord| match strategy
        .evaluate("application", &input(score), &as_of(), data)
        .unwrap()
    {
        Evaluation::Decided(decision) => *decision,
        Evaluation::NeedsData(requests) => panic!("asked for {requests:?}"),
    };

    // Not needed: the step is skipped, nobody is asked.
    let skipped = decide(700, &DataRecord::online());
    assert_eq!(
        (skipped.outcome, skipped.data[0].status),
        (Outcome::Approve, "skipped")
    );

    // Needed and not yet answered: the caller is asked, with the subject and the consent.
    match strategy
        .evaluate("application", &input(500), &as_of(), &DataRecord::online())
        .unwrap()
    {
        Evaluation::NeedsData(requests) => {
            let [request] = &requests[..] else {
                panic!("one request expected: {requests:?}")
            };
            assert_eq!(
                (
                    request.step.as_str(),
                    request.source.as_str(),
                    request.subject.as_str()
                ),
                ("bureau", "bureau", "C-1")
            );
            assert_eq!(request.consent.as_deref(), Some("consent-77"));
        }
        Evaluation::Decided(d) => panic!("decided without data: {d:?}"),
    }

    // Answered: the values decide; they are recorded with the decision.
    let declined = decide(
        500,
        &answered(true, json!({"delinquencies": 2, "utilisation": "0.5"})),
    );
    assert_eq!(declined.outcome, Outcome::Decline);
    assert_eq!(declined.reasons[0].code.as_ref(), "R1");
    assert_eq!(declined.data[0].values["delinquencies"], json!(2));
    assert_eq!(
        declined.data[0]
            .meta
            .as_ref()
            .map(|meta| meta.to_value()["provider"].clone()),
        Some(json!("bureau_a"))
    );

    // The source failed: its policy (refer, R2), with the reason in the trace.
    let referred = decide(500, &answered(false, json!({})));
    assert_eq!(
        (referred.outcome, referred.reasons[0].code.as_ref()),
        (Outcome::Refer, "R2")
    );
    assert!(referred.data[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("timeout"));

    // Offline with no answer (a back-test without recorded data): a failure, never a call.
    let offline = strategy
        .decide("application", &input(500), &as_of())
        .unwrap();
    assert_eq!(offline.outcome, Outcome::Refer);
    assert!(offline.data[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("never call a provider"));

    // `default: null` lets a field be missing from an answer; no default makes it a failure.
    let source = strategy.data_source("bureau").unwrap();
    let mapped = crate::data::map_response(&source.fields, &json!({"u": 0.25})).unwrap();
    assert_eq!(mapped["note"], json!(null));
    assert!(crate::data::map_response(&source.fields, &json!({"d": 1})).is_err());

    // Replay: the recorded decision's own data reproduces it exactly, offline.
    let recorded = serde_json::to_value(&declined).unwrap();
    let replayed = decide(500, &DataRecord::from_decision_json(&recorded));
    assert_eq!(serde_json::to_value(&replayed).unwrap(), recorded);
}

#[test]
fn data_sources_are_checked_at_compile_time() {
    let manifest = |sources: &str| {
        let mut source = PackageSource::new();
        source.insert(
            "strategy.yaml",
            format!("name: t\nlanguages: [en]\nreasons: {{R1: {{en: one}}}}\nflows: {{application: flows/a.yaml}}\ndata_sources:\n{sources}\n"),
        );
        source.insert(
            "flows/a.yaml",
            "input: {customer_id: {type: string}}\nsteps:\n  - data: {id: b, source: bureau}\noutcome: {default: approve}\n",
        );
        compile_problems(&source)
    };
    let good_provider = "[{name: p, url: \"http://x/{subject}\", timeout_ms: 100}]";
    let cases = [
        (format!("  other: {{subject: customer_id, providers: {good_provider}, fields: {{a: {{pointer: /a, type: integer}}}}, on_failure: {{outcome: continue}}}}"), "no data source bureau"),
        (format!("  bureau: {{subject: national_id, providers: {good_provider}, fields: {{a: {{pointer: /a, type: integer}}}}, on_failure: {{outcome: continue}}}}"), "unknown name `national_id`"),
        (format!("  bureau: {{subject: customer_id, providers: {good_provider}, fields: {{a: {{pointer: a, type: integer}}}}, on_failure: {{outcome: continue}}}}"), "must start with /"),
        (format!("  bureau: {{subject: customer_id, providers: {good_provider}, fields: {{a: {{pointer: /a, type: integer, default: x}}}}, on_failure: {{outcome: continue}}}}"), "default \"x\" is not an integer"),
        (format!("  bureau: {{subject: customer_id, providers: {good_provider}, fields: {{a: {{pointer: /a, type: integer}}}}, on_failure: {{outcome: refer}}}}"), "needs a reason code"),
        (format!("  bureau: {{subject: customer_id, providers: {good_provider}, fields: {{a: {{pointer: /a, type: integer}}}}, on_failure: {{outcome: shrug}}}}"), "must be refer, decline or continue"),
        ("  bureau: {subject: customer_id, providers: [{name: p, url: \"http://x\", timeout_ms: 0}], fields: {a: {pointer: /a, type: integer}}, on_failure: {outcome: continue}}".to_string(), "timeout_ms 0"),
        ("  bureau: {subject: customer_id, providers: [{name: p, url: \"http://x/{subject}\", timeout_ms: 10, headers: {Authorization: \"Bearer abc123\"}}], fields: {a: {pointer: /a, type: integer}}, on_failure: {outcome: continue}}".to_string(), "holds a credential"),
    ];
    for (sources, message) in cases {
        let problems = manifest(&sources);
        assert!(
            problems.iter().any(|p| p.contains(message)),
            "{sources}\nexpected `{message}` in {problems:#?}"
        );
    }
}

/// Packages an analyst could upload to exhaust the server: each is refused when it compiles,
/// naming the expression and the limit, before anything is evaluated.
#[test]
fn expensive_expressions_are_refused_at_compile_time() {
    let ok_outcome = "  default: approve";
    let cases = [
        (
            "count([0..1000000000], # > 0)",
            "`count` iterates a range of 1,000,000,001 values",
        ),
        (
            "count([1..10000], count([1..10000], # > 0) > 0)",
            "exceeds the step budget",
        ),
        (
            "count([1..100000], # > 0)",
            "a range may hold at most 10,000",
        ),
        (
            "count([0..x], # > 0)",
            "iterates a range whose bounds are computed at run time",
        ),
        (
            "len(flatMap([1..5000], map([1..5000], #)))",
            "exceeds the step budget",
        ),
        (
            "sum(map([1..5000], count([1..5000], # > 1)))",
            "exceeds the step budget",
        ),
    ];
    for (expression, expected) in cases {
        let source = package(
            &format!("  - features: {{id: f, values: {{big: \"{expression}\"}}}}"),
            ok_outcome,
        );
        let problems = compile_problems(&source);
        assert_eq!(problems.len(), 1, "{expression}: {problems:#?}");
        assert!(
            problems[0].contains("steps[0] (features f).values.big")
                && problems[0].contains(expected),
            "{expression}: {}",
            problems[0]
        );
    }
    // Strings cost their length: a 10,000-character literal joined in a 10,000-value loop
    // would copy 100 MB.
    let long = "a".repeat(10_000);
    let source = package(
        &format!(
            "  - features: {{id: f, values: {{big: \"len(map([1..10000], '{long}' + 'x'))\"}}}}"
        ),
        ok_outcome,
    );
    let problems = compile_problems(&source);
    assert!(
        problems.len() == 1 && problems[0].contains("exceeds the step budget"),
        "{problems:#?}"
    );
    // What strategies really write passes.
    for expression in [
        "count([1..12], # > x)",
        "x in [0..1000000000]",
        "sum(map([1..36], # * x))",
        "x > 0 ? x : 0",
        "x + x + x",
    ] {
        let source = package(
            &format!("  - features: {{id: f, values: {{ok: \"{expression}\"}}}}"),
            ok_outcome,
        );
        assert_eq!(
            compile_problems(&source),
            Vec::<String>::new(),
            "{expression}"
        );
    }
}

/// The messages an analyst reads for a package over its limits, as they stand in
/// docs/strategy-format.md ("Limits").
#[test]
fn limit_messages_snapshot() {
    let messages: Vec<String> = [
        "count([0..1000000000], # > 0)",
        "count([1..10000], count([1..10000], # > 0) > 0)",
        "count([0..x], # > 0)",
    ]
    .iter()
    .flat_map(|expression| {
        compile_problems(&package(
            &format!("  - features: {{id: f, values: {{big: \"{expression}\"}}}}"),
            "  default: approve",
        ))
    })
    .collect();
    insta::assert_snapshot!(messages.join("\n"));
}

#[test]
fn a_flow_over_its_step_budget_is_refused() {
    let source = package(
        "  - features: {id: f, values: {a: \"count([1..5000], # > x)\", b: \"count([1..5000], # < x)\"}}",
        "  default: approve",
    );
    let limits = Limits {
        max_flow_steps: 50_000,
        ..Limits::default()
    };
    let Err(EngineError::Compile(problems)) = compile_with_limits(&source, &limits) else {
        panic!("compiled over the flow budget");
    };
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let message = problems[0].to_string();
    assert!(
        message.contains("flow application") && message.contains("limits.flow_steps"),
        "{message}"
    );
}

#[test]
fn a_list_built_over_the_limit_is_a_decision_error() {
    let source = package(
        "  - features: {id: f, values: {xs: \"flatMap([1..6000], [#, # * x])\"}}",
        "  default: approve",
    );
    let strategy = compile(&source).unwrap();
    let error = strategy
        .decide_json("application", &json!({"x": 1}), &as_of())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("built a list of 12,000 items") && error.contains("limits.list_items"),
        "{error}"
    );
}

#[test]
fn input_lists_and_strings_are_held_to_the_expression_limits() {
    let mut source = package(
        "  - features: {id: f, values: {n: \"len(xs)\"}}",
        "  default: approve",
    );
    source.insert(
        "flows/a.yaml",
        "input:\n  x: {type: number}\n  xs: {type: list, required: false, items: {type: number}}\nsteps:\n  - features: {id: f, values: {n: \"len(xs ?? [])\"}}\noutcome:\n  default: approve\n",
    );
    let strategy = compile(&source).unwrap();
    let long: Vec<i64> = (0..10_001).collect();
    let error = strategy
        .decide_json("application", &json!({"x": 1, "xs": long}), &as_of())
        .unwrap_err()
        .to_string();
    assert!(error.contains("0 to 10000 items"), "{error}");
    let short: Vec<i64> = (0..10_000).collect();
    assert!(strategy
        .decide_json("application", &json!({"x": 1, "xs": short}), &as_of())
        .is_ok());

    // A declared maximum above the limit is refused where it is written.
    source.insert(
        "flows/a.yaml",
        "input:\n  x: {type: number}\n  xs: {type: list, max_items: 20000, items: {type: number}}\nsteps:\n  - features: {id: f, values: {n: \"1\"}}\noutcome:\n  default: approve\n",
    );
    let problems = compile_problems(&source);
    assert!(
        problems.len() == 1
            && problems[0].contains("input.xs")
            && problems[0].contains("limits.list_items"),
        "{problems:#?}"
    );
}

#[test]
fn a_yaml_alias_bomb_in_a_test_case_is_refused_unexpanded() {
    let mut source = package(
        "  - features: {id: f, values: {a: \"x\"}}",
        "  default: approve",
    );
    let manifest = String::from_utf8(source.bytes("strategy.yaml").unwrap().to_vec()).unwrap();
    source.insert(
        "strategy.yaml",
        format!("{manifest}tests: [tests/cases.yaml]\n"),
    );
    // One anchor of 20,000 items, referenced 20,000 times: 400 million nodes if expanded.
    let items = vec!["1"; 20_000].join(",");
    let references = vec!["*a"; 20_000].join(",");
    source.insert(
        "tests/cases.yaml",
        format!("- name: bomb\n  flow: application\n  input: {{x: 1, pad: &a [{items}], more: [{references}]}}\n  expect: {{outcome: approve}}\n"),
    );
    let problems = compile_problems(&source);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with("tests/cases.yaml") && problems[0].contains("limits.yaml_nodes"),
        "{}",
        problems[0]
    );
}

#[test]
fn tables_and_text_files_over_their_limits_are_refused() {
    let rows: String = (0..30)
        .map(|i| format!("      - [\"[{i}..{}]\", {i}]\n", i + 1))
        .collect();
    let source = package(
        &format!("  - table:\n      id: t\n      hit_policy: first\n      inputs: [x]\n      outputs: [v]\n      rows:\n{rows}"),
        "  default: approve",
    );
    assert_eq!(compile_problems(&source), Vec::<String>::new());
    let limits = Limits {
        max_table_rows: 20,
        ..Limits::default()
    };
    let Err(EngineError::Compile(problems)) = compile_with_limits(&source, &limits) else {
        panic!("compiled over the row limit");
    };
    assert!(
        problems[0]
            .to_string()
            .contains("has 30 rows; a table may have at most 20"),
        "{problems:#?}"
    );
    let limits = Limits {
        max_text_file_bytes: 100,
        ..Limits::default()
    };
    let Err(EngineError::Compile(problems)) = compile_with_limits(&source, &limits) else {
        panic!("compiled over the file size limit");
    };
    assert!(
        problems[0].to_string().contains("limits.text_file_bytes"),
        "{problems:#?}"
    );
}

/// A table of many interval rows builds its index in O(n log n): 50,000 rows (100,000 distinct
/// bounds) would need 100,000 bitsets of 50,000 bits, 30 GB, the dense way.
#[test]
fn a_large_interval_table_builds_and_answers_like_a_scan() {
    let rows = 50_000;
    let lists = NamedLists::new();
    let mut compiler = ExprCompiler::new(&lists);
    let cells = (0..rows)
        .map(|i| {
            vec![compiler
                .compile_unary(&format!("[{}..{})", 2 * i, 2 * i + 1))
                .unwrap()]
        })
        .collect();
    let outputs = (0..rows)
        .map(|i| vec![ValueSource::Constant(Constant::Number((i as i64).into()))])
        .collect();
    let table = DecisionTable::new(TableDefinition {
        id: "t".into(),
        slot: compiler.slot("t"),
        hit_policy: HitPolicy::First,
        aggregation: None,
        inputs: vec![compiler.compile("a").unwrap()],
        output_names: vec!["row".into()],
        cells,
        outputs,
        output_priority: vec![],
    });
    let mut frame = Frame::with_names(&compiler.names());
    for (value, expected) in [
        ("0", vec![0]),
        ("0.5", vec![0]),
        ("1", vec![]),
        ("99998.25", vec![49_999]),
        ("7", vec![]),
    ] {
        frame.set_named(
            "a",
            Value::from(serde_json::from_str::<serde_json::Value>(value).unwrap()),
        );
        let indexed = table.evaluate(&mut frame, &lists).unwrap().rows;
        assert_eq!(indexed, expected, "a = {value}");
    }
}

/// A strategy over a model file from the parity fixtures: every feature an optional number.
fn model_strategy(fixture: &str, file: &str, step: &str, rules: &str) -> (PackageSource, Vec<u8>) {
    let path = format!(
        "{}/../credence-model/tests/fixtures/{fixture}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(path).unwrap();
    let model = credence_model::Model::load(file, &bytes).unwrap();
    let features = &model.metadata().features;
    let inputs: String = features
        .iter()
        .map(|f| format!("  {f}: {{type: number, required: false}}\n"))
        .collect();
    let mapping: Vec<String> = features.iter().map(|f| format!("{f}: {f}")).collect();
    let mut source = PackageSource::new();
    source.insert(
        "strategy.yaml",
        format!("name: t\nreasons:\n  POOR_GRADE: {{en: poor grade}}\n  INCOME: {{en: income}}\nmodels:\n  m: models/{file}\nflows:\n  application: flows/a.yaml\n"),
    );
    source.insert(
        "flows/a.yaml",
        format!(
            "input:\n{inputs}steps:\n  - model: {{id: grade, model: m, inputs: {{{}}}{step}}}\n{rules}outcome: {{default: approve}}\n",
            mapping.join(", ")
        ),
    );
    source.insert(format!("models/{file}"), bytes.clone());
    (source, bytes)
}

#[test]
fn a_multi_class_model_gives_class_probabilities_and_the_predicted_class() {
    let rules = "  - rule_set: {id: r, rules: [{id: POOR, when: \"grade.predicted_class == 3 or grade.class_probabilities[3] > 0.4\", outcome: decline, reason: POOR_GRADE}]}\n";
    let (source, bytes) = model_strategy("lgb_multiclass", "model.txt", "", rules);
    let strategy = compile(&source).unwrap_or_else(|e| panic!("{e}"));
    let model = credence_model::Model::load("model.txt", &bytes).unwrap();
    let features = model.metadata().features.clone();
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../credence-model/tests/fixtures/lgb_multiclass/input.csv"
    ))
    .unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let mut outcomes = std::collections::BTreeSet::new();
    for line in csv.lines().skip(1).take(60) {
        let cells: Vec<&str> = line.split(',').collect();
        let mut input = serde_json::Map::new();
        let mut row = Vec::new();
        for feature in &features {
            let cell = cells[header.iter().position(|h| h == feature).unwrap()];
            let value: Option<f64> = cell.parse().ok();
            input.insert(feature.clone(), json!(value));
            row.push(value.unwrap_or(f64::NAN));
        }
        let decision = strategy
            .decide_json("application", &serde_json::Value::Object(input), &as_of())
            .unwrap();
        let Some(credence_model::Prediction::Classes {
            probabilities,
            predicted_class,
            ..
        }) = model.predict(&row)
        else {
            panic!("a multi-class prediction");
        };
        match &decision.trace.steps[0].detail {
            StepDetail::Model {
                class_probabilities,
                predicted_class: traced_class,
                probability,
                margin,
                ..
            } => {
                assert_eq!(class_probabilities.as_ref(), Some(&probabilities));
                assert_eq!(*traced_class, Some(predicted_class));
                assert_eq!((*probability, *margin), (None, None));
            }
            other => panic!("{other:?}"),
        }
        let poor = predicted_class == 3 || probabilities[3] > 0.4;
        let expected = if poor {
            Outcome::Decline
        } else {
            Outcome::Approve
        };
        assert_eq!(decision.outcome, expected, "{probabilities:?}");
        outcomes.insert(format!("{:?}", decision.outcome));
    }
    assert_eq!(outcomes.len(), 2, "both outcomes occur: {outcomes:?}");
}

#[test]
fn reason_codes_are_refused_where_tree_shap_is_not_defined() {
    for (fixture, file, feature, problem) in [
        (
            "lgb_multiclass",
            "model.txt",
            "annual_income",
            "is a multi-class model (4 classes)",
        ),
        ("lgb_linear", "model.txt", "Income", "has linear trees"),
    ] {
        let step = format!(", reasons: {{{feature}: INCOME}}");
        let (source, _) = model_strategy(fixture, file, &step, "");
        let error = compile(&source)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("steps[0] (model grade).reasons") && error.contains(problem),
            "{fixture}: {error}"
        );
    }
}

/// The decision record's writer and reader agree on every byte, for every sample (compact
/// trace, as the service stores it, and full): nothing the writer writes is lost on reading.
/// And the record is the decision's own JSON behind its id and version, as before versions.
#[test]
fn decision_records_read_back_to_the_bytes_they_were_written_as() {
    for (name, flow) in [
        ("application-approve", "application"),
        ("application-decline", "application"),
        ("application-refer", "application"),
        ("drawdown-approve", "drawdown"),
        ("drawdown-decline", "drawdown"),
    ] {
        for full_trace in [false, true] {
            let mut options = as_of();
            options.full_trace = full_trace;
            let decision = example()
                .decide_json(flow, &sample(name), &options)
                .unwrap();
            let id = "dec_0000018d2e4f5a6b1c2d3e4f";
            let written = DecisionRecord::write(id, &decision).unwrap();
            let read = DecisionRecord::parse(&written).unwrap();
            assert_eq!(read.record_version, DECISION_RECORD_VERSION);
            assert_eq!(
                serde_json::to_string(&read).unwrap(),
                written,
                "{name}: a field was lost or reordered"
            );
            let decision_json = serde_json::to_string(&decision).unwrap();
            let unversioned = format!("{{\"id\":\"{id}\",{}", &decision_json[1..]);
            assert_eq!(
                written.replacen(
                    &format!(",\"record_version\":{DECISION_RECORD_VERSION}"),
                    "",
                    1
                ),
                unversioned,
                "{name}"
            );
        }
    }
}

/// A package with one planted mistake gets one problem — the root cause, at its file, line and
/// column, with the fix — not the problems that follow from it (names that depend on a failed
/// feature, a false cycle, each case of the flow); the cases it could not check are one line.
#[test]
fn one_planted_mistake_is_one_problem_at_its_place() {
    let flow = |features: &str| {
        format!(
            "input:\n  x: {{type: number}}\n  rate: {{type: number}}\nsteps:\n  - features:\n      id: f\n      values:\n{features}\n  - rule_set: {{id: r, rules: [{{id: A, when: \"payment > 100\", outcome: decline, reason: R1}}]}}\noutcome:\n  default: approve\n"
        )
    };
    let cases = "- {name: one, flow: application, as_of: 2026-12-06, input: {x: 1, rate: 0.01}, expect: {outcome: approve}}\n- {name: two, flow: application, extends: one, input: {x: 2}, expect: {outcome: approve}}\n";
    let manifest = |reasons: &str| {
        format!("name: t\nlanguages: [en, zh]\nreasons:\n{reasons}\nflows:\n  application: flows/a.yaml\ntests: [tests/a.yaml]\n")
    };
    let good_reasons = "  R1: {en: one, zh: 一}";
    let planted = [
        (
            "misspelt function",
            manifest(good_reasons),
            flow("        instalment: \"annuity_pmt(rate, 12, x)\"\n        payment: \"instalment * 2\""),
        ),
        (
            "misspelt name",
            manifest(good_reasons),
            flow("        instalment: \"annuity_payment(rte, 12, x)\"\n        payment: \"instalment * 2\""),
        ),
        (
            "cycle",
            manifest(good_reasons),
            flow("        instalment: \"payment / 2\"\n        payment: \"instalment * 2\"\n        shown: \"payment + 1\""),
        ),
        (
            "bad YAML",
            manifest(good_reasons),
            flow("        instalment: \"x\n        payment: [1"),
        ),
        (
            "missing reason text",
            manifest("  R1: {en: one}"),
            flow("        payment: \"x * 2\""),
        ),
        (
            "unique overlap",
            manifest(good_reasons),
            flow("        payment: \"x * 2\"").replace(
                "outcome:\n",
                "  - table: {id: band, hit_policy: unique, inputs: [x], outputs: [b], rows: [[\"<= 10\", 1], [\">= 10\", 2]]}\noutcome:\n",
            ),
        ),
    ];
    let mut report = Vec::new();
    for (what, manifest_text, flow_text) in planted {
        let mut source = PackageSource::new();
        source.insert("strategy.yaml", manifest_text);
        source.insert("flows/a.yaml", flow_text);
        source.insert("tests/a.yaml", cases);
        let problems = compile_problems(&source);
        let primary: Vec<&String> = problems
            .iter()
            .filter(|p| !p.contains("not checked: the flow did not compile"))
            .collect();
        assert_eq!(primary.len(), 1, "{what}: {problems:#?}");
        report.push(format!("{what}:\n  {}", problems.join("\n  ")));
    }
    insta::assert_snapshot!(report.join("\n"));
}

/// A name a table or matrix cell reads is resolved when the package compiles: misspelt, it is
/// an error at its row and column, with a suggestion — not a row that silently never matches.
#[test]
fn a_misspelt_name_in_a_table_cell_is_a_compile_error() {
    let problems = compile_problems(&package(
        "  - table: {id: t, inputs: [x], outputs: [y], rows: [[\"> 1 and keyy == \\\"a\\\"\", 1], [\"-\", 2]]}",
        "  default: approve",
    ));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("rows[0][0]")
                && p.contains("unknown name `keyy` (did you mean `key`?)")),
        "{problems:#?}"
    );
    let ok = compile_problems(&package(
        "  - table: {id: t, inputs: [x], outputs: [y], rows: [[\"> 1 and key == \\\"a\\\"\", 1], [\"-\", 2]]}",
        "  default: approve",
    ));
    assert!(ok.is_empty(), "{ok:#?}");
}

/// Overlapping rows of a `unique` table are found when the package compiles, with an input
/// that hits both; disjoint rows and `first` tables pass.
#[test]
fn overlapping_unique_rows_are_a_compile_error_with_an_example() {
    let table = |policy: &str, second: &str| {
        format!("  - table: {{id: t, hit_policy: {policy}, inputs: [x, key], outputs: [y], rows: [[\"[0..10]\", \"\\\"a\\\"\", 1], [\"{second}\", \"-\", 2]]}}")
    };
    let problems = compile_problems(&package(&table("unique", "[10..20]"), "  default: approve"));
    assert!(
        problems.iter().any(|p| p
            .contains("rows[0] and rows[1] both match when x = 10, key = \"a\"")
            && p.contains("use hit_policy first")),
        "{problems:#?}"
    );
    assert!(
        compile_problems(&package(&table("unique", "(10..20]"), "  default: approve")).is_empty()
    );
    assert!(
        compile_problems(&package(&table("first", "[10..20]"), "  default: approve")).is_empty()
    );
}

/// A field's value as a caller might send it: right, wrong in kind or bounds, null, a list.
fn any_field_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        (-5i64..200_000).prop_map(|n| json!(n)),
        (-100i64..100_000).prop_map(|n| json!(n as f64 / 8.0)),
        prop::sample::select(vec![
            "own",
            "rent",
            "castle",
            "1984-05-20",
            "20/05/1984",
            "",
            "C-1"
        ])
        .prop_map(|s| json!(s)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(json!(null)),
        Just(json!([1, "a"])),
        Just(json!({"nested": 1})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Decisions, with compact and full traces, are written as serde_json writes them.
    #[test]
    fn decisions_are_written_as_serde_json_writes_them(input in application_input(), full in any::<bool>()) {
        let strategy = example();
        let mut options = as_of();
        options.full_trace = full;
        let decision = strategy.decide_json("application", &input, &options).unwrap();
        let written = compact_json::to_vec(&decision).unwrap();
        prop_assert_eq!(String::from_utf8(written).unwrap(), serde_json::to_string(&decision).unwrap());
    }

    /// Validating an object's entries as sent answers exactly when validating the object
    /// passes, with the same input; a repeated key is never taken.
    #[test]
    fn entries_validate_as_the_object_does(
        flow in prop::sample::select(vec!["application", "drawdown"]),
        changes in prop::collection::vec((0usize..40, prop::option::of(any_field_value())), 0..4),
        extra in prop::option::of(("[a-z_]{1,12}", any_field_value())),
        repeat in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let strategy = example();
        let base = sample(if flow == "application" { "application-approve" } else { "drawdown-approve" });
        let mut entries: Vec<(String, serde_json::Value)> =
            base.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (at, change) in changes {
            let at = at % entries.len();
            match change {
                Some(value) => entries[at].1 = value,
                None => { entries.remove(at); }
            }
            if entries.is_empty() { break; }
        }
        if let Some((key, value)) = extra {
            if !entries.iter().any(|(k, _)| *k == key) { entries.push((key, value)); }
        }
        // Out of the declared order: the fields are found wherever they stand.
        let len = entries.len().max(1);
        entries.rotate_left((seed as usize) % len);
        let object = serde_json::Value::Object(entries.iter().cloned().collect());
        let whole = strategy.validate_input(flow, &object).ok();
        let from_entries = strategy
            .validate_input_entries(flow, entries.iter().map(|(k, v)| (k.as_str(), v)))
            .unwrap();
        prop_assert_eq!(&from_entries, &whole);
        if repeat && !entries.is_empty() {
            let again = entries[0].clone();
            entries.push(again);
            let repeated = strategy
                .validate_input_entries(flow, entries.iter().map(|(k, v)| (k.as_str(), v)))
                .unwrap();
            prop_assert_eq!(repeated, None);
        }
    }
}

/// A schema that takes undeclared fields: a few are checked for repeats among the entries; many
/// leave the object to `validate` (whose map finds repeats), which takes it all the same.
#[test]
fn undeclared_entries_are_checked_a_few_at_a_time() {
    use crate::format::AdditionalFields;
    use crate::schema::{FieldKind, FieldSpec, InputSchema};
    let schema = InputSchema {
        fields: vec![(
            Arc::from("a"),
            FieldSpec {
                kind: FieldKind::Number {
                    min: None,
                    max: None,
                },
                required: true,
                personal: false,
            },
        )],
        additional_fields: AdditionalFields::Ignore,
    };
    let with_extra = |extra: usize| -> Vec<(String, serde_json::Value)> {
        let mut entries = vec![("a".to_string(), json!(1))];
        entries.extend((0..extra).map(|i| (format!("x{i}"), json!(i))));
        entries
    };
    for (extra, fast) in [(0, true), (3, true), (32, true), (33, false), (500, false)] {
        let entries = with_extra(extra);
        let object = serde_json::Value::Object(entries.iter().cloned().collect());
        let whole = schema.validate(&object).ok();
        assert!(whole.is_some());
        let from_entries = schema.validate_entries(entries.iter().map(|(k, v)| (k.as_str(), v)));
        assert_eq!(from_entries.is_some(), fast, "{extra} undeclared");
        if fast {
            assert_eq!(from_entries, whole);
        }
    }
    let mut repeated = with_extra(3);
    repeated.push(("x1".into(), json!(0)));
    assert_eq!(
        schema.validate_entries(repeated.iter().map(|(k, v)| (k.as_str(), v))),
        None
    );
}

/// Keys are matched to their fields in any order.
#[test]
fn entries_in_any_order_match_their_fields() {
    use crate::format::AdditionalFields;
    use crate::schema::{FieldKind, FieldSpec, InputSchema};
    let spec = |required| FieldSpec {
        kind: FieldKind::Number {
            min: None,
            max: None,
        },
        required,
        personal: false,
    };
    let mut schema = InputSchema {
        fields: vec![
            (Arc::from("a"), spec(true)),
            (Arc::from("b"), spec(false)),
            (Arc::from("c"), spec(true)),
        ],
        additional_fields: AdditionalFields::Ignore,
    };
    let entries = [
        ("c", json!(3)),
        ("x", json!(0)),
        ("a", json!(1)),
        ("b", json!(2)),
    ];
    let object = serde_json::Value::Object(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    );
    for reorder in [false, true] {
        if reorder {
            schema.fields.swap(0, 2);
        }
        let from_entries = schema.validate_entries(entries.iter().map(|(k, v)| (*k, v)));
        assert!(from_entries.is_some());
        assert_eq!(from_entries, schema.validate(&object).ok());
    }
}
