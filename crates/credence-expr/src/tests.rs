//! Tests of expression compilation and evaluation: tables of cases and property tests.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn lists() -> NamedLists {
    let mut lists = NamedLists::new();
    lists.insert("blocked_phones", ["13800000000", "13900000000"]);
    lists
}

fn eval(text: &str, context: serde_json::Value) -> Result<serde_json::Value, ExprError> {
    let lists = lists();
    let mut compiler = ExprCompiler::new(&lists);
    let expr = compiler.compile(text)?;
    let mut frame = Frame::with_names(&compiler.names());
    if let serde_json::Value::Object(map) = context {
        for (k, v) in map {
            frame.set_named(&k, Value(Variable::from(v)));
        }
    }
    expr.eval_variable(&mut frame, &lists).map(|v| v.to_value())
}

#[test]
fn evaluates_table_of_cases() {
    let context = json!({
        "income": 12000, "debt": 3000, "rate": 0.01, "term": 12, "amount": 10000,
        "phone": "13800000000", "birth": "1990-06-15", "today": "2026-06-14", "grade": "B",
        "missing": null
    });
    let cases = [
        ("debt / income", json!(0.25)),
        (
            "round_money(annuity_payment(rate, term, amount), 2)",
            json!(888.49),
        ),
        (
            "round_money(affordable_principal(rate, term, 888.49), 0)",
            json!(10000),
        ),
        ("age_years(birth, today)", json!(35)),
        ("months_between(birth, today) >= 431", json!(true)),
        ("in_list('blocked_phones', phone)", json!(true)),
        ("in_list(\"blocked_phones\", '000')", json!(false)),
        ("in_list('blocked_phones', missing)", json!(false)),
        ("missing == null", json!(true)),
        ("annuity_payment(rate, term, missing)", json!(null)),
        ("grade in ['A', 'B'] and income > 10000", json!(true)),
        (
            "floor_to(12345, 100) + round_money(0.125, 2)",
            json!(12300.13),
        ),
        ("min([income, amount])", json!(10000)),
    ];
    for (text, expected) in cases {
        let got = eval(text, context.clone()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(got, expected, "{text}");
    }
}

#[test]
fn shortcuts_agree_with_the_vm() {
    let lists = lists();
    let mut compiler = ExprCompiler::new(&lists);
    let (a, x) = (compiler.slot("a"), compiler.slot("x"));
    let mut frame = Frame::with_names(&compiler.names());
    frame.set_variable(a, Variable::from(json!({"b": {"c": 7}, "n": null})));
    frame.set_variable(x, Variable::from(json!(2.5)));
    for text in [
        "0.5",
        "'text'",
        "true",
        "null",
        "1 + 2",
        "x",
        "a.b.c",
        "a.b",
        "a.n",
        "a.missing",
        "missing",
        "a.b.c.d",
    ] {
        let expr = compiler.compile(text).unwrap();
        let fast = expr.eval_variable(&mut frame, &lists).unwrap();
        let slow = expr.eval_with_vm(&mut frame, &lists).unwrap();
        assert_eq!(fast, slow, "{text}");
    }
    assert!(compiler.compile("0.5").unwrap().constant().is_some());
    assert!(compiler.compile("x").unwrap().constant().is_none());
}

#[test]
fn references_include_names_inside_credit_function_arguments() {
    let lists = lists();
    let mut compiler = ExprCompiler::new(&lists);
    let expr = compiler
        .compile("round_money(annuity_payment(apr / 12, term, principal.amount), 2) > cap")
        .unwrap();
    assert_eq!(expr.references(), ["apr", "cap", "principal", "term"]);
    let expr = compiler.compile("map(items, # * factor)").unwrap();
    assert_eq!(expr.references(), ["factor", "items"]);
}

#[test]
fn refuses_what_it_cannot_compile_with_a_reason() {
    let cases = [
        ("", "empty"),
        ("1 +", ""),
        ("annuity_payment(1, 2)", "takes 3 arguments"),
        ("in_list(name, x)", "list name in quotes"),
        ("in_list('nope', x)", "no list named \"nope\""),
        ("rand(10)", "non-repeatable"),
        ("d()", "wall clock"),
        ("d('now')", "wall clock"),
        ("round_money(1, 2", "matching"),
        ("`", "empty template string"),
    ];
    let lists = lists();
    for (text, needle) in cases {
        let mut compiler = ExprCompiler::new(&lists);
        let error = compiler.compile(text).expect_err(text).to_string();
        assert!(error.contains(needle), "{text}: {error}");
        assert!(error.contains(text), "{text}: {error}");
    }
}

#[test]
fn credit_function_errors_are_evaluation_errors_naming_the_argument() {
    let error = eval("annuity_payment(-0.1, 12, 1000)", json!({})).unwrap_err();
    assert!(error.to_string().contains("rate_per_period"), "{error}");
    let error = eval("age_years('15/06/1990', '2026-01-01')", json!({})).unwrap_err();
    assert!(error.to_string().contains("birth_date"), "{error}");
}

#[test]
fn unary_tests_match_zen() {
    let lists = lists();
    let mut compiler = ExprCompiler::new(&lists);
    let mut frame = Frame::new();
    let cases = [
        ("> 600", json!(601), true),
        ("> 600", json!(600), false),
        ("[600..700)", json!(700), false),
        ("[600..700)", json!(600), true),
        ("\"A\",\"B\"", json!("B"), true),
        ("\"A\",\"B\"", json!("C"), false),
        ("-", json!(null), true),
        ("$ > 5 and $ < 10", json!(7), true),
        ("true", json!(true), true),
    ];
    for (text, value, expected) in cases {
        let test = compiler.compile_unary(text).unwrap();
        let value = Variable::from(value);
        assert_eq!(
            test.test(&Value(value.clone()), &mut frame),
            expected,
            "{text}"
        );
    }
}

fn value_strategy() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        (-2000i64..2000).prop_map(|n| json!(n)),
        (-2000i64..2000).prop_map(|n| json!(n as f64 / 8.0)),
        prop::sample::select(vec!["A", "B", "C", "a", ""]).prop_map(|s| json!(s)),
    ]
}

fn cell_strategy() -> impl Strategy<Value = String> {
    let number = (-1000i64..1000).prop_map(|n| (n as f64 / 4.0).to_string());
    prop_oneof![
        Just("-".to_string()),
        number.clone().prop_map(|n| n.to_string()),
        (
            prop::sample::select(vec!["<", "<=", ">", ">="]),
            number.clone()
        )
            .prop_map(|(op, n)| format!("{op} {n}")),
        (
            prop::sample::select(vec!["[", "("]),
            -1000i64..0,
            0i64..1000,
            prop::sample::select(vec!["]", ")"])
        )
            .prop_map(|(l, a, b, r)| format!("{l}{a}..{b}{r}")),
        prop::sample::subsequence(vec!["\"A\"", "\"B\"", "'C'", "true", "7"], 1..4)
            .prop_map(|parts| parts.join(", ")),
    ]
}

fn fast_expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("o.n".to_string()),
        Just("o.s".to_string()),
        Just("missing".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        (-3i64..4).prop_map(|n| n.to_string()),
        Just("0.5".to_string()),
        Just("'x'".to_string()),
    ];
    leaf.prop_recursive(3, 24, 2, |inner| {
        (
            inner.clone(),
            prop::sample::select(vec![
                "==", "!=", "<", "<=", ">", ">=", "and", "or", "??", "+", "-", "*", "/",
            ]),
            inner.clone(),
        )
            .prop_map(|(l, op, r)| format!("({l} {op} {r})"))
            .boxed()
            .prop_union(inner.clone().prop_map(|e| format!("not {e}")).boxed())
            .or((inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})"))
                .boxed())
            .or((
                prop::sample::select(vec!["min", "max"]),
                prop::collection::vec(inner, 0..3),
            )
                .prop_map(|(f, items)| format!("{f}([{}])", items.join(", ")))
                .boxed())
    })
}

fn fast_context() -> impl Strategy<Value = serde_json::Value> {
    let scalar = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        (-3i64..4).prop_map(|n| json!(n)),
        Just(json!(0.5)),
        Just(json!("x")),
    ];
    (scalar.clone(), scalar.clone(), scalar.clone(), scalar)
        .prop_map(|(a, b, n, s)| json!({"a": a, "b": b, "o": {"n": n, "s": s}}))
}

proptest! {
    #[test]
    fn direct_evaluation_agrees_with_the_vm(text in fast_expression(), context in fast_context()) {
        let lists = NamedLists::new();
        let mut compiler = ExprCompiler::new(&lists);
        let Ok(expr) = compiler.compile(&text) else { return Ok(()); };
        let mut frame = Frame::with_names(&compiler.names());
        for (k, v) in context.as_object().unwrap() {
            frame.set_named(k, Value(Variable::from(v.clone())));
        }
        let fast = expr.eval_variable(&mut frame, &lists);
        let truth = expr.eval_truth(&mut frame, &lists);
        let vm = expr.eval_with_vm(&mut frame, &lists);
        // As a condition: the VM's boolean or null, or its other value, or its error.
        let expected_truth = vm.as_ref().map(|v| match v {
            Variable::Bool(true) => Truth::True,
            Variable::Bool(false) => Truth::False,
            Variable::Null => Truth::Null,
            other => Truth::Other(Value(other.clone())),
        });
        match (&truth, &expected_truth) {
            (Ok(t), Ok(e)) => prop_assert_eq!(t, e, "truth of {} in {}", text, context),
            (Err(_), Err(_)) => {}
            (t, e) => prop_assert!(false, "{} in {}: truth {:?}, vm {:?}", text, context, t, e),
        }
        match (fast, vm) {
            (Ok(f), Ok(v)) => prop_assert_eq!(f, v, "{} in {}", text, context),
            (Err(_), Err(_)) => {}
            (f, v) => prop_assert!(false, "{} in {}: direct {:?}, vm {:?}", text, context, f, v),
        }
    }

    #[test]
    fn analysed_cells_agree_with_zen(cell in cell_strategy(), value in value_strategy()) {
        let lists = NamedLists::new();
        let mut compiler = ExprCompiler::new(&lists);
        let test = compiler.compile_unary(&cell).unwrap();
        prop_assert!(test.simple().is_some(), "{} should be analysed", cell);
        let mut frame = Frame::new();
        let value = Variable::from(value);
        let ours = test.test(&Value(value.clone()), &mut frame);
        // ZEN may refuse to compare a non-number with a number; where it answers, we agree.
        if let Ok(zen) = test.test_with_zen(&Value(value.clone()), &mut frame) {
            prop_assert_eq!(ours, zen, "cell {} value {:?}", cell, value);
        }
    }

    #[test]
    fn compiling_arbitrary_text_never_panics(text in "\\PC{0,60}") {
        let lists = lists();
        let mut compiler = ExprCompiler::new(&lists);
        let _ = compiler.compile(&text);
        let _ = compiler.compile_unary(&text);
    }

    #[test]
    fn compiling_expression_like_text_never_panics(
        parts in prop::collection::vec(prop::sample::select(vec![
            "annuity_payment(", "in_list(", "'blocked_phones'", "round_money(", ")", "(", ",", "x", "1",
            "+", "[", "]", "..", "#", "map(", "\"", "'", "d(", "now", " ", ">", "and", "?", ":",
        ]), 0..16)
    ) {
        let text: String = parts.concat();
        let lists = lists();
        let mut compiler = ExprCompiler::new(&lists);
        if let Ok(expr) = compiler.compile(&text) {
            let mut frame = Frame::with_names(&compiler.names());
            frame.set_named("x", Value(Variable::from(json!(3))));
            let _ = expr.eval_variable(&mut frame, &lists);
        }
    }
}

#[test]
fn an_unknown_function_is_named_with_the_closest_credit_function() {
    let lists = lists();
    let mut compiler = ExprCompiler::new(&lists);
    let error = compiler
        .compile("round_money(annuity_pmt(0.01, 12, amount), 2)")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unknown function `annuity_pmt` (did you mean `annuity_payment`?"),
        "{error}"
    );
    let error = compiler
        .compile("frobnicate(amount)")
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown function `frobnicate`;"), "{error}");
    assert!(!error.contains("did you mean"), "{error}");
    // The expression language's own functions and methods are not unknown.
    for text in [
        "floor(amount / 3)",
        "round(amount)",
        "len([1, 2])",
        "contains(\"abc\", \"b\")",
        "max([amount, 1])",
        "some([1, 2], # > 1)",
        "upper(\"a\")",
    ] {
        assert!(compiler.compile(text).is_ok(), "{text}");
    }
}
