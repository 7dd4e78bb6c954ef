//! KS, AUC (with ties), Gini, PSI, CSI and vintage figures on the repository's data match the
//! reference values scikit-learn and numpy computed (tools/monitoring/reference_metrics.py,
//! committed in tests/fixtures/reference_metrics.json; no Python needed here).

use credence_backtest::metrics::{discrimination, psi_categorical, psi_numeric};
use credence_backtest::vintage::{vintage_curves, LoanHistory};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

const TOLERANCE: f64 = 1e-12;

fn data(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(file)
}

fn reference() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference_metrics.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The named columns of a CSV file, as text.
fn columns(file: &str, names: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut reader = csv::Reader::from_path(data(file)).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at: Vec<usize> = names
        .iter()
        .map(|n| {
            headers
                .iter()
                .position(|h| h == *n)
                .unwrap_or_else(|| panic!("{file}: {n}"))
        })
        .collect();
    let mut out: BTreeMap<String, Vec<String>> =
        names.iter().map(|n| (n.to_string(), Vec::new())).collect();
    for record in reader.records() {
        let record = record.unwrap();
        for (name, i) in names.iter().zip(&at) {
            out.get_mut(*name)
                .unwrap()
                .push(record[*i].trim().to_string());
        }
    }
    out
}

fn number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|x| !x.is_nan())
}

fn close(name: &str, got: f64, expected: &Value) {
    let expected = expected.as_f64().unwrap();
    assert!(
        (got - expected).abs() < TOLERANCE,
        "{name}: got {got}, reference {expected}"
    );
}

const LC_BAD: [&str; 4] = [
    "In Grace Period",
    "Late (16-30 days)",
    "Late (31-120 days)",
    "Charged Off",
];

#[test]
fn ks_auc_and_gini_match_scikit_learn() {
    let reference = reference();
    // (reference name, file, score column, outcome column, the outcome values that are bad)
    let cases: [(&str, &str, &str, &str, &[&str]); 4] = [
        (
            "credit_data income",
            "credit_data.csv",
            "Income",
            "Status",
            &["bad"],
        ),
        (
            "credit_data seniority",
            "credit_data.csv",
            "Seniority",
            "Status",
            &["bad"],
        ),
        (
            "german duration",
            "german_credit.csv",
            "duration_in_month",
            "creditability",
            &["bad"],
        ),
        (
            "lending club interest rate",
            "lending_club_2018q1.csv",
            "interest_rate",
            "loan_status",
            &LC_BAD,
        ),
    ];
    for (name, file, score, outcome, bad_values) in cases {
        let is_bad = |o: &str| bad_values.contains(&o);
        let table = columns(file, &[score, outcome]);
        let rows: Vec<(f64, bool)> = table[score]
            .iter()
            .zip(&table[outcome])
            .filter_map(|(s, o)| number(s).map(|s| (s, is_bad(o.as_str()))))
            .collect();
        let expected = reference["discrimination"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        let d = discrimination(&rows).unwrap();
        assert_eq!(d.rows, expected["rows"].as_u64().unwrap(), "{name}");
        assert_eq!(d.bads, expected["bads"].as_u64().unwrap(), "{name}");
        close(&format!("{name} auc"), d.auc, &expected["auc"]);
        close(&format!("{name} gini"), d.gini, &expected["gini"]);
        close(&format!("{name} ks"), d.ks, &expected["ks"]);
    }
}

#[test]
fn psi_and_csi_match_numpy() {
    let reference = reference();
    let lc = columns(
        "lending_club_2018q1.csv",
        &[
            "issue_month",
            "annual_income",
            "interest_rate",
            "homeownership",
        ],
    );
    let month = |column: &str, m: &str| -> Vec<Option<f64>> {
        lc[column]
            .iter()
            .zip(&lc["issue_month"])
            .filter(|(_, im)| *im == m)
            .map(|(v, _)| number(v))
            .collect()
    };
    let credit = columns("credit_data.csv", &["Income"]);
    let income: Vec<Option<f64>> = credit["Income"].iter().map(|v| number(v)).collect();
    let cases = [
        (
            "lending club annual income, Jan vs Mar",
            month("annual_income", "Jan-2018"),
            month("annual_income", "Mar-2018"),
        ),
        (
            "lending club interest rate, Jan vs Mar",
            month("interest_rate", "Jan-2018"),
            month("interest_rate", "Mar-2018"),
        ),
        (
            "credit_data income, first 2000 vs the rest",
            income[..2000].to_vec(),
            income[2000..].to_vec(),
        ),
    ];
    for (name, baseline, current) in cases {
        let expected = reference["psi"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        let (binning, psi) = psi_numeric(&baseline, &current, 10).unwrap();
        let edges: Vec<f64> = expected["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_f64().unwrap())
            .collect();
        assert_eq!(binning.edges, edges, "{name}");
        let counts = |v: &Value| -> Vec<u64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .collect()
        };
        assert_eq!(
            binning.count(baseline.iter().copied()),
            counts(&expected["baseline_counts"]),
            "{name}"
        );
        assert_eq!(
            binning.count(current.iter().copied()),
            counts(&expected["current_counts"]),
            "{name}"
        );
        close(name, psi.psi, &expected["psi"]);
    }

    let count = |m: &str| {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for (h, im) in lc["homeownership"].iter().zip(&lc["issue_month"]) {
            if im == m {
                *counts.entry(h.clone()).or_default() += 1;
            }
        }
        counts
    };
    let csi = psi_categorical(&count("Jan-2018"), &count("Mar-2018")).unwrap();
    close("homeownership csi", csi.psi, &reference["csi"][0]["psi"]);
}

#[test]
fn vintage_bad_rates_match_pandas() {
    let reference = reference();
    let lc = columns("lending_club_2018q1.csv", &["issue_month", "loan_status"]);
    let months_on_book = |m: &str| match m {
        "Jan-2018" => 5,
        "Feb-2018" => 4,
        _ => 3,
    };
    let loans: Vec<LoanHistory> = lc["issue_month"]
        .iter()
        .zip(&lc["loan_status"])
        .map(|(m, status)| LoanHistory {
            cohort: m.clone(),
            months_observed: months_on_book(m),
            first_bad_month: LC_BAD.contains(&status.as_str()).then(|| months_on_book(m)),
        })
        .collect();
    let curves = vintage_curves(&loans);
    for expected in reference["vintage"].as_array().unwrap() {
        let cohort = expected["cohort"].as_str().unwrap();
        let mob = expected["months_on_book"].as_u64().unwrap() as u32;
        let point = curves[cohort]
            .iter()
            .find(|p| p.months_on_book == mob)
            .unwrap();
        assert_eq!(point.loans, expected["loans"].as_u64().unwrap());
        close(cohort, point.bad_rate, &expected["bad_rate"]);
    }
}
