//! The package's embedded test cases, compiled against its flows.

use super::*;

pub(super) fn compile_cases(
    path: &str,
    raw: Vec<RawTestCase>,
    flows: &BTreeMap<String, Flow>,
    declared_flows: &BTreeSet<String>,
    reasons: &BTreeMap<String, BTreeMap<String, String>>,
    cases: &mut Vec<TestCase>,
    problems: &mut Vec<CompileProblem>,
) {
    // Cases not checked because their flow did not compile, by flow; and their names, for the
    // cases that extend them.
    let mut unchecked: BTreeMap<String, usize> = BTreeMap::new();
    let mut skipped: HashSet<String> = HashSet::new();
    let mut by_name: HashMap<String, (serde_json::Map<String, serde_json::Value>, Option<String>)> =
        cases
            .iter()
            .map(|c: &TestCase| {
                (
                    c.name.clone(),
                    (
                        c.input.as_object().cloned().unwrap_or_default(),
                        Some(c.as_of.to_string()),
                    ),
                )
            })
            .collect();
    for case in raw {
        let location = format!("{path}: case {}", case.name);
        let mut problem = |message: String| {
            problems.push(CompileProblem {
                location: location.clone(),
                message,
            })
        };
        if by_name.contains_key(&case.name) {
            problem("case name used twice".into());
            continue;
        }
        let extends_unchecked = case
            .extends
            .as_ref()
            .is_some_and(|parent| skipped.contains(parent));
        if !flows.contains_key(&case.flow) || extends_unchecked {
            if declared_flows.contains(&case.flow) || extends_unchecked {
                *unchecked.entry(case.flow.clone()).or_default() += 1;
                skipped.insert(case.name.clone());
            } else {
                let known: Vec<&str> = declared_flows.iter().map(String::as_str).collect();
                problem(format!(
                    "unknown flow {}; the package's flows are {}",
                    case.flow,
                    known.join(", ")
                ));
            }
            continue;
        }
        let (mut input, mut as_of) = match &case.extends {
            Some(parent) => match by_name.get(parent) {
                Some(p) => p.clone(),
                None => {
                    problem(format!("extends {parent}, which is not an earlier case"));
                    continue;
                }
            },
            None => (serde_json::Map::new(), None),
        };
        for (k, v) in case.input {
            input.insert(k, v);
        }
        if case.as_of.is_some() {
            as_of = case.as_of.clone();
        }
        let Some(as_of_date) = as_of
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            problem("needs as_of: the date the case is decided on (YYYY-MM-DD), here or in the case it extends".into());
            continue;
        };
        let expect = &case.expect;
        let Some(outcome) = Outcome::parse(&expect.outcome) else {
            problem(format!(
                "expect.outcome must be approve, refer or decline, got {}",
                expect.outcome
            ));
            continue;
        };
        let decimal = |n: &Option<YamlNumber>| n.as_ref().map(decimal_setting);
        let (limit, apr) = (decimal(&expect.limit), decimal(&expect.apr));
        if matches!(limit, Some(None)) || matches!(apr, Some(None)) {
            problem("expect.limit and expect.apr are numbers".into());
            continue;
        }
        for code in expect
            .reasons
            .iter()
            .flatten()
            .chain(expect.flags.iter().flatten())
        {
            if !reasons.contains_key(code) {
                problem(format!("expects unknown reason code {code}"));
            }
        }
        // Data answers: a case's own, else those of the case it extends.
        let mut data = match &case.extends {
            Some(parent) => cases
                .iter()
                .find(|c| &c.name == parent)
                .map(|c| c.data.clone())
                .unwrap_or_default(),
            None => DataRecord::offline(),
        };
        for (step, answer) in &case.data {
            match answer {
                serde_json::Value::Object(values) => data.insert(
                    step.clone(),
                    DataAnswer {
                        ok: true,
                        values: std::sync::Arc::new(
                            values.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                        ),
                        reason: None,
                        meta: crate::data::FetchMeta::from_value(
                            &serde_json::json!({"source": "test case"}),
                        ),
                    },
                ),
                serde_json::Value::String(s) if s == "unavailable" => data.insert(
                    step.clone(),
                    DataAnswer {
                        ok: false,
                        values: Default::default(),
                        reason: Some("unavailable in this test case".into()),
                        meta: None,
                    },
                ),
                other => problem(format!(
                    "data.{step}: give the step's values as a mapping, or `unavailable`; got {other}"
                )),
            }
        }
        by_name.insert(case.name.clone(), (input.clone(), as_of.clone()));
        cases.push(TestCase {
            name: case.name,
            file: path.to_string(),
            flow: case.flow,
            as_of: as_of_date,
            input: serde_json::Value::Object(input),
            data,
            expect: Expectation {
                outcome,
                limit: limit.flatten(),
                apr: apr.flatten(),
                term_months: expect.term_months,
                reasons: expect.reasons.clone(),
                flags: expect.flags.clone(),
                arm: expect.arm.clone(),
                counter_offer: expect.counter_offer,
                refer_queue: expect.refer_queue.clone(),
                actions: expect.actions.clone(),
            },
        });
    }
    for (flow, count) in unchecked {
        problems.push(CompileProblem {
            location: path.to_string(),
            message: format!(
                "{count} case(s) of flow {flow} not checked: the flow did not compile (its problems are listed above)"
            ),
        });
    }
}
