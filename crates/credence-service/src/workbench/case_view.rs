//! What the case page shows, built from a decision's record and its replayed trace without I/O: the referral summary (what referred it and the figures it tested, score and grade, requested and offered terms, caps and provider failures), each step's result in words and the application grouped.

use super::display::{decimal_of, figure, group_of, label, money, percent};
use credence_engine::RuleEvidence;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A named figure with its value as shown.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Figure {
    pub(super) label: String,
    pub(super) value: String,
}

/// One cause of a referral.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cause {
    /// Where it came from: `rule RF-01`, `matrix grade_dti`, `data source bureau`.
    pub(super) source: String,
    /// The reason code given.
    pub(super) code: String,
    /// The reason's text.
    pub(super) text: String,
    /// The condition tested, as written.
    pub(super) condition: Option<String>,
    /// The figures the condition tested and those behind them.
    pub(super) figures: Vec<Figure>,
}

/// The summary a case opens with.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Summary {
    pub(super) causes: Vec<Cause>,
    /// Scores and model predictions: `app_score 595 (probability of default 3.81 %)`.
    pub(super) scores: Vec<String>,
    pub(super) grade: Option<String>,
    pub(super) requested: String,
    pub(super) offered: String,
    /// `apr_max: 26.5 % → 24 %`.
    pub(super) caps: Vec<String>,
    /// Data sources that failed, with the provider and the error.
    pub(super) data_failures: Vec<String>,
}

/// One step's result in words.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StepLine {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) text: String,
    /// A failure a reviewer must see (a data source that did not answer).
    pub(super) alert: bool,
}

/// A group of the application's fields: (label, value as shown, masked).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldGroup {
    pub(super) title: &'static str,
    pub(super) fields: Vec<(String, String, bool)>,
}

/// What a case's decision was, for the summary.
pub(super) struct Facts<'a> {
    pub(super) currency: &'a str,
    /// The replayed full trace's steps (else the recorded compact ones).
    pub(super) steps: &'a [Value],
    /// The record's third-party data uses.
    pub(super) data: &'a [Value],
    /// The trace's `caps_applied`.
    pub(super) caps: &'a [Value],
    pub(super) input: &'a Value,
    /// The decision's reasons: (code, text).
    pub(super) reasons: &'a [(String, String)],
    pub(super) requested_amount: Option<Decimal>,
    pub(super) limit: Option<Decimal>,
    pub(super) apr: Option<Decimal>,
    pub(super) term_months: Option<u32>,
}

/// Every value a name of the flow had: features, inputs, and the outputs of tables, matrices
/// and scorecards by step id.
fn values_by_name(facts: &Facts<'_>) -> BTreeMap<String, Value> {
    let mut values = BTreeMap::new();
    if let Some(input) = facts.input.as_object() {
        values.extend(input.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for step in facts.steps {
        let id = step["step"].as_str().unwrap_or_default();
        match step["kind"].as_str().unwrap_or_default() {
            "features" => {
                if let Some(map) = step["values"].as_object() {
                    values.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            "table" | "matrix" => {
                if let Some(v) = step["values"].get(id) {
                    values.insert(id.to_string(), v.clone());
                }
            }
            "scorecard" => {
                values.insert(id.to_string(), step["score"].clone());
            }
            "model" => {
                let value = if step["probability"].is_null() {
                    &step["prediction"]
                } else {
                    &step["probability"]
                };
                values.insert(id.to_string(), value.clone());
            }
            "data" => {
                let status = facts.data.iter().find(|d| d["step"] == id).unwrap_or(step)["status"]
                    .as_str()
                    .unwrap_or_default();
                let word = match status {
                    "ok" => "answered",
                    "failed" => "failed: no answer",
                    _ => "not called",
                };
                values.insert(id.to_string(), Value::String(word.into()));
            }
            _ => {}
        }
    }
    values
}

fn reason_text(facts: &Facts<'_>, code: &str, texts: &BTreeMap<String, String>) -> String {
    facts
        .reasons
        .iter()
        .find(|(c, _)| c == code)
        .map(|(_, t)| t.clone())
        .or_else(|| texts.get(code).cloned())
        .unwrap_or_default()
}

/// The summary of a referral. `evidence` gives a rule's condition and names; `texts` every
/// reason's text in the decision's language.
pub(super) fn summary(
    facts: &Facts<'_>,
    evidence: impl Fn(&str) -> Option<RuleEvidence>,
    texts: &BTreeMap<String, String>,
) -> Summary {
    let values = values_by_name(facts);
    let shown = |name: &str| Figure {
        label: label(name),
        value: values
            .get(name)
            .map(|v| figure(name, v, facts.currency))
            .unwrap_or_else(|| "—".into()),
    };
    let mut summary = Summary::default();
    for step in facts.steps {
        let id = step["step"].as_str().unwrap_or_default();
        match step["kind"].as_str().unwrap_or_default() {
            "rule_set" => {
                for hit in step["hits"].as_array().into_iter().flatten() {
                    if hit["outcome"] != "refer" {
                        continue;
                    }
                    let rule = hit["rule"].as_str().unwrap_or_default();
                    let code = hit["reason"].as_str().unwrap_or_default();
                    let evidence = evidence(rule);
                    summary.causes.push(Cause {
                        source: format!("rule {rule}"),
                        code: code.to_string(),
                        text: reason_text(facts, code, texts),
                        condition: evidence.as_ref().map(|e| e.condition.clone()),
                        figures: evidence
                            .map(|e| e.names.iter().map(|n| shown(n)).collect())
                            .unwrap_or_default(),
                    });
                }
            }
            "matrix" => {
                let cell = &step["values"][id];
                if cell["outcome"] == "refer" {
                    let code = cell["reason"].as_str().unwrap_or_default();
                    summary.causes.push(Cause {
                        source: format!("matrix {id}"),
                        code: code.to_string(),
                        text: reason_text(facts, code, texts),
                        condition: Some(format!(
                            "row {} × column {}",
                            step["row"].as_str().unwrap_or_default(),
                            step["column"].as_str().unwrap_or_default()
                        )),
                        figures: Vec::new(),
                    });
                }
            }
            "scorecard" => summary.scores.push(format!("{id} {}", score_text(step))),
            "model" => {
                if let Some(p) = decimal_of(&step["probability"]) {
                    summary
                        .scores
                        .push(format!("{id} probability {}", percent(p)));
                }
            }
            _ => {}
        }
    }
    // A reason no rule or cell gave here: a data source's failure policy, or an explanation.
    for code in facts.reasons.iter().map(|(c, _)| c) {
        if summary.causes.iter().any(|c| &c.code == code) {
            continue;
        }
        summary.causes.push(Cause {
            source: "the decision's reasons".into(),
            code: code.clone(),
            text: reason_text(facts, code, texts),
            condition: None,
            figures: Vec::new(),
        });
    }
    summary.grade = values.get("grade").map(|g| match g {
        Value::Object(map) => map
            .get("grade")
            .map(|v| figure("grade", v, ""))
            .unwrap_or_else(|| figure("grade", g, "")),
        other => figure("grade", other, ""),
    });
    summary.requested = match facts.requested_amount {
        Some(amount) => money(amount, facts.currency),
        None => "not stated".into(),
    };
    summary.offered = offer_text(facts);
    summary.caps = facts
        .caps
        .iter()
        .map(|cap| {
            let name = cap["cap"].as_str().unwrap_or_default();
            let field = name.trim_end_matches("_max").trim_end_matches("_min");
            format!(
                "{} bound it: {} → {}",
                label(name),
                figure(field, &cap["before"], facts.currency),
                figure(field, &cap["after"], facts.currency)
            )
        })
        .collect();
    summary.data_failures = facts
        .data
        .iter()
        .filter(|use_| use_["status"] == "failed")
        .map(data_failure)
        .collect();
    summary
}

/// The offer in words: a loan has a term, a revolving line has none.
pub(super) fn offer_text(facts: &Facts<'_>) -> String {
    match (facts.limit, facts.apr) {
        (Some(limit), Some(apr)) => match facts.term_months {
            Some(term) => format!(
                "{} at {} over {term} months",
                money(limit, facts.currency),
                percent(apr)
            ),
            None => format!(
                "a revolving line of {} at {}",
                money(limit, facts.currency),
                percent(apr)
            ),
        },
        (Some(limit), None) => money(limit, facts.currency),
        _ => "no offer".into(),
    }
}

/// A scorecard step's score and probability of default: `595 (probability of default 3.81 %)`.
fn score_text(step: &Value) -> String {
    let score = step["score"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| step["score"].to_string());
    match decimal_of(&step["probability_of_default"]) {
        Some(p) => format!("{score} (probability of default {})", percent(p)),
        None => score,
    }
}

fn data_failure(use_: &Value) -> String {
    let provider = use_["meta"]["provider"]
        .as_str()
        .map(|p| format!(" (provider {p})"))
        .unwrap_or_default();
    format!(
        "{}{provider} failed: {}",
        use_["source"].as_str().unwrap_or_default(),
        use_["reason"].as_str().unwrap_or("no reason recorded")
    )
}

/// Each step's result in words. `data` (the record's data uses) says what a provider did.
pub(super) fn steps_in_words(
    steps: &[Value],
    data: &[Value],
    currency: &str,
    texts: &BTreeMap<String, String>,
) -> Vec<StepLine> {
    steps
        .iter()
        .map(|step| {
            let id = step["step"].as_str().unwrap_or_default();
            let kind = step["kind"].as_str().unwrap_or_default();
            let mut alert = false;
            let text = match kind {
                "features" => step["values"]
                    .as_object()
                    .filter(|v| !v.is_empty())
                    .map(|values| figures_of(values, currency))
                    .unwrap_or_else(|| "computed (values not in the compact trace)".into()),
                "rule_set" => {
                    let hits: Vec<String> = step["hits"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|h| {
                            let code = h["reason"].as_str().unwrap_or_default();
                            let text = texts
                                .get(code)
                                .map(|t| format!(": {t}"))
                                .unwrap_or_default();
                            format!(
                                "{} → {} ({code}{text})",
                                h["rule"].as_str().unwrap_or_default(),
                                h["outcome"].as_str().unwrap_or_default()
                            )
                        })
                        .collect();
                    if hits.is_empty() {
                        "no rule fired".into()
                    } else {
                        hits.join("; ")
                    }
                }
                "scorecard" => format!("score {}", score_text(step)),
                "model" => {
                    let name = step["model"].as_str().unwrap_or_default();
                    match decimal_of(&step["probability"]) {
                        Some(p) => format!("{name}: probability {}", percent(p)),
                        None => format!(
                            "{name}: prediction {}",
                            figure("prediction", &step["prediction"], "")
                        ),
                    }
                }
                "table" => {
                    let rows = step["rows"].as_array().map(Vec::len).unwrap_or_default();
                    let outputs = step["values"][id]
                        .as_object()
                        .map(|o| figures_of(o, currency));
                    match (rows, outputs) {
                        (0, _) => "no row matched".into(),
                        (_, Some(outputs)) => format!("{outputs} (row {})", row_numbers(step)),
                        (_, None) => format!("row {} matched", row_numbers(step)),
                    }
                }
                "matrix" => {
                    let cell = step["values"][id]
                        .as_object()
                        .map(|o| {
                            let set: Map<String, Value> = o
                                .iter()
                                .filter(|(_, v)| !v.is_null())
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect();
                            format!(" → {}", figures_of(&set, currency))
                        })
                        .unwrap_or_default();
                    format!(
                        "cell {} × {}{cell}",
                        step["row"].as_str().unwrap_or("?"),
                        step["column"].as_str().unwrap_or("?")
                    )
                }
                "branch" => format!("took {}", step["case"].as_str().unwrap_or_default()),
                "champion_challenger" => format!(
                    "arm {} (bucket {} of 10,000)",
                    step["arm"].as_str().unwrap_or_default(),
                    step["bucket"]
                ),
                "data" => {
                    let recorded = data.iter().find(|d| d["step"] == id).unwrap_or(step);
                    match recorded["status"].as_str().unwrap_or_default() {
                        "ok" => {
                            let meta = &recorded["meta"];
                            format!(
                                "{} answered{}{}",
                                recorded["source"].as_str().unwrap_or_default(),
                                meta["provider"]
                                    .as_str()
                                    .map(|p| format!(" by {p}"))
                                    .unwrap_or_default(),
                                if meta["cache_hit"] == true {
                                    " (from the cache)"
                                } else {
                                    ""
                                }
                            )
                        }
                        "failed" => {
                            alert = true;
                            data_failure(recorded)
                        }
                        _ => "not called: its condition did not hold".into(),
                    }
                }
                other => other.to_string(),
            };
            StepLine {
                id: id.to_string(),
                kind: kind.replace('_', " "),
                text,
                alert,
            }
        })
        .collect()
}

fn row_numbers(step: &Value) -> String {
    step["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn figures_of(values: &Map<String, Value>, currency: &str) -> String {
    values
        .iter()
        .map(|(name, v)| format!("{} {}", label(name), figure(name, v, currency)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The application's fields in groups, in the schema's order within each; `masked` shows a
/// personal field's value masked.
pub(super) fn grouped_fields(
    input: &Value,
    schema_order: &[String],
    currency: &str,
    masked: impl Fn(&str, &str) -> Option<String>,
) -> Vec<FieldGroup> {
    let Some(map) = input.as_object() else {
        return Vec::new();
    };
    let position = |name: &str| {
        schema_order
            .iter()
            .position(|n| n == name)
            .unwrap_or(usize::MAX)
    };
    let mut names: Vec<&String> = map.keys().collect();
    names.sort_by_key(|name| (group_of(name), position(name), name.to_string()));
    let mut groups: Vec<FieldGroup> = Vec::new();
    for name in names {
        let group = group_of(name);
        let value = &map[name.as_str()];
        let shown = figure(name, value, currency);
        let (shown, is_masked) = match masked(name, &shown) {
            Some(masked) => (masked, true),
            None => (shown, false),
        };
        match groups.last_mut() {
            Some(last) if last.title == group.title() => {
                last.fields.push((label(name), shown, is_masked))
            }
            _ => groups.push(FieldGroup {
                title: group.title(),
                fields: vec![(label(name), shown, is_masked)],
            }),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn referral_steps() -> Vec<Value> {
        vec![
            json!({"step": "income_check", "kind": "data", "source": "income_verification", "status": "skipped", "values": {}}),
            json!({"step": "applicant", "kind": "features", "values": {
                "income_inconsistent": true, "income_gap": 0.39166666666666666,
                "verified_income": 3650, "income_verified": true}}),
            json!({"step": "referrals", "kind": "rule_set", "hits": [
                {"rule": "RF-01", "outcome": "refer", "reason": "REF_INCOME_MISMATCH"}], "values": {}}),
            json!({"step": "app_score", "kind": "scorecard", "score": "595", "probability_of_default": 0.0381288}),
            json!({"step": "grade", "kind": "table", "rows": [1], "values": {"grade": {"grade": "A"}}}),
            json!({"step": "grade_dti", "kind": "matrix", "row": "A", "column": "< 30%",
                   "values": {"grade_dti": {"outcome": "approve", "reason": null}}}),
            json!({"step": "bureau_report", "kind": "data", "source": "bureau", "status": "failed", "values": {}}),
        ]
    }

    #[test]
    fn a_referral_opens_with_its_rule_the_figures_it_tested_and_the_terms() {
        let steps = referral_steps();
        let data = vec![
            json!({"step": "bureau_report", "source": "bureau", "status": "failed",
            "reason": "timed out after 800 ms", "meta": {"provider": "bureau_provider"}}),
        ];
        let caps = vec![json!({"cap": "apr_max", "before": "0.265", "after": "0.24"})];
        let input = json!({"declared_monthly_income": 6000, "requested_amount": 6000});
        let reasons = vec![(
            "REF_INCOME_MISMATCH".to_string(),
            "The income you declared differs".to_string(),
        )];
        let facts = Facts {
            currency: "EUR",
            steps: &steps,
            data: &data,
            caps: &caps,
            input: &input,
            reasons: &reasons,
            requested_amount: Some(Decimal::from(6000)),
            limit: Some(Decimal::from(6000)),
            apr: Some(Decimal::new(899, 4)),
            term_months: Some(24),
        };
        let evidence = |rule: &str| {
            (rule == "RF-01").then(|| RuleEvidence {
                condition: "income_inconsistent".into(),
                names: vec![
                    "income_inconsistent".into(),
                    "income_gap".into(),
                    "declared_monthly_income".into(),
                    "verified_income".into(),
                ],
            })
        };
        let summary = summary(&facts, evidence, &BTreeMap::new());
        assert_eq!(summary.causes.len(), 1);
        let cause = &summary.causes[0];
        assert_eq!(cause.source, "rule RF-01");
        assert_eq!(cause.text, "The income you declared differs");
        let shown: Vec<(&str, &str)> = cause
            .figures
            .iter()
            .map(|f| (f.label.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("income inconsistent", "yes"),
                ("income gap", "39.17 %"),
                ("declared monthly income", "EUR 6,000"),
                ("verified income", "EUR 3,650"),
            ]
        );
        assert_eq!(
            summary.scores,
            ["app_score 595 (probability of default 3.81 %)"]
        );
        assert_eq!(summary.grade.as_deref(), Some("A"));
        assert_eq!(summary.requested, "EUR 6,000");
        assert_eq!(summary.offered, "EUR 6,000 at 8.99 % over 24 months");
        assert_eq!(summary.caps, ["apr max bound it: 26.5 % → 24 %"]);
        assert_eq!(
            summary.data_failures,
            ["bureau (provider bureau_provider) failed: timed out after 800 ms"]
        );
        let revolving = Facts {
            term_months: None,
            ..facts
        };
        assert_eq!(
            offer_text(&revolving),
            "a revolving line of EUR 6,000 at 8.99 %"
        );
    }

    #[test]
    fn steps_read_as_words_and_a_failed_provider_is_an_alert() {
        let data = vec![
            json!({"step": "bureau_report", "source": "bureau", "status": "failed",
            "reason": "HTTP 503", "meta": {"provider": "bureau_provider"}}),
        ];
        let lines = steps_in_words(&referral_steps(), &data, "EUR", &BTreeMap::new());
        let text: Vec<(&str, &str, bool)> = lines
            .iter()
            .map(|l| (l.id.as_str(), l.text.as_str(), l.alert))
            .collect();
        insta::assert_debug_snapshot!(text);
    }

    #[test]
    fn application_fields_are_grouped_in_schema_order_and_masked() {
        let input = json!({"savings": "none", "phone": "+491701234567", "requested_amount": 6000,
            "declared_monthly_income": 6000, "term_months": 24, "bureau_inquiries_6m": 2});
        let order: Vec<String> = [
            "phone",
            "term_months",
            "requested_amount",
            "declared_monthly_income",
        ]
        .map(String::from)
        .to_vec();
        let groups = grouped_fields(&input, &order, "EUR", |name, _| {
            (name == "phone").then(|| "+49•••••••567".to_string())
        });
        let titles: Vec<&str> = groups.iter().map(|g| g.title).collect();
        assert_eq!(
            titles,
            [
                "Request",
                "Identity",
                "Income and employment",
                "Bureau",
                "Application form"
            ]
        );
        assert_eq!(
            groups[0].fields,
            [
                ("term months".to_string(), "24".to_string(), false),
                (
                    "requested amount".to_string(),
                    "EUR 6,000".to_string(),
                    false
                )
            ]
        );
        assert!(groups[1].fields[0].2, "the phone is masked");
    }
}
