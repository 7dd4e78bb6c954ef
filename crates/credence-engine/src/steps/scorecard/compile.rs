//! Compiling `scorecard` steps: characteristics, bins and calibration.

use super::*;
use crate::steps::prelude::*;

impl Compiler<'_> {
    pub(super) fn scorecard(
        &mut self,
        raw: &RawScorecard,
        path: &str,
        scope: &mut Scope,
    ) -> Option<Scorecard> {
        let before = self.problems.len();
        let from_file;
        let body = match &raw.file {
            None => &raw.body,
            Some(file) => {
                if raw.body.base_points.is_some()
                    || raw.body.calibration.is_some()
                    || !raw.body.characteristics.is_empty()
                {
                    self.problem(
                        self.at(path),
                        "write the scorecard either inline or in `file`, not both".into(),
                    );
                }
                let parsed = match self.source.bytes(file).map(std::str::from_utf8) {
                    None => Err(format!("file {file} is not in the package")),
                    Some(Err(e)) => Err(format!("{file} is not UTF-8 text: {e}")),
                    Some(Ok(text)) => {
                        check_text_size(file, text.as_bytes(), self.limits.max_text_file_bytes)
                            .and_then(|()| {
                                parse_yaml::<RawScorecardBody>(file, text, self.limits)
                                    .map_err(|problem| problem.to_string())
                            })
                    }
                };
                match parsed {
                    Ok(parsed) => {
                        self.used_files.insert(file.clone());
                        from_file = parsed;
                        &from_file
                    }
                    Err(message) => {
                        self.problem(self.at(&format!("{path}.file")), message);
                        return None;
                    }
                }
            }
        };
        let base_points = match &body.base_points {
            None => Decimal::ZERO,
            Some(n) => decimal_setting(n).unwrap_or_else(|| {
                self.problem(
                    self.at(&format!("{path}.base_points")),
                    format!("must be a number, got {}", n.0),
                );
                Decimal::ZERO
            }),
        };
        let calibration = body.calibration.as_ref().and_then(|c| {
            Calibration::new(c.score, c.odds, c.pdo)
                .map_err(|e| self.problem(self.at(&format!("{path}.calibration")), e))
                .ok()
        });
        let mut characteristics = Vec::new();
        let mut names = HashSet::new();
        for (i, raw_char) in body.characteristics.iter().enumerate() {
            let char_path = format!("{path}.characteristics[{i}] ({})", raw_char.name);
            if !names.insert(raw_char.name.as_str()) {
                self.problem(self.at(&char_path), "characteristic name used twice".into());
            }
            self.reason(&raw_char.reason, &char_path, ReasonUse::Explain);
            let value = self.expr(&raw_char.value, &format!("{char_path}.value"), scope);
            let mut bins = Vec::new();
            let mut ranges: Vec<(Interval, usize)> = Vec::new();
            let (mut missing, mut otherwise) = (0, 0);
            for (b, raw_bin) in raw_char.bins.iter().enumerate() {
                let bin_path = format!("{char_path}.bins[{b}]");
                let forms = [
                    raw_bin.range.is_some(),
                    raw_bin.values.is_some(),
                    raw_bin.missing,
                    raw_bin.otherwise,
                ]
                .iter()
                .filter(|f| **f)
                .count();
                if forms != 1 {
                    self.problem(
                        self.at(&bin_path),
                        "a bin is exactly one of: range, values, missing: true, else: true".into(),
                    );
                    continue;
                }
                let Some(points) = decimal_setting(&raw_bin.points) else {
                    self.problem(
                        self.at(&bin_path),
                        format!("points must be a number, got {}", raw_bin.points.0),
                    );
                    continue;
                };
                let (test, default_label) = if let Some(range) = &raw_bin.range {
                    match Interval::parse(range) {
                        Some(interval) => {
                            ranges.push((interval.clone(), b));
                            (BinTest::Range(interval), range.clone())
                        }
                        None => {
                            self.problem(
                                self.at(&bin_path),
                                format!("range {range} is not an interval like [0..12) or (-inf..500]: brackets give each end's closedness"),
                            );
                            continue;
                        }
                    }
                } else if let Some(values) = &raw_bin.values {
                    let constants: Vec<Constant> = values
                        .iter()
                        .filter_map(crate::value::constant_from_yaml)
                        .collect();
                    if constants.len() != values.len() || constants.is_empty() {
                        self.problem(
                            self.at(&bin_path),
                            "values is a non-empty list of single values".into(),
                        );
                        continue;
                    }
                    let label = constants
                        .iter()
                        .map(|c| match c {
                            Constant::String(s) => s.to_string(),
                            Constant::Number(n) => n.to_string(),
                            Constant::Bool(b) => b.to_string(),
                            Constant::Null => "null".into(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    (BinTest::Values(constants), label)
                } else if raw_bin.missing {
                    missing += 1;
                    (BinTest::Missing, "missing".to_string())
                } else {
                    otherwise += 1;
                    (BinTest::Else, "else".to_string())
                };
                bins.push(Bin {
                    test,
                    points,
                    label: raw_bin.label.clone().unwrap_or(default_label).into(),
                    shortfall_rank: 0,
                });
            }
            if missing > 1 || otherwise > 1 {
                self.problem(
                    self.at(&char_path),
                    "at most one missing bin and one else bin".into(),
                );
            }
            for (x, (a, ai)) in ranges.iter().enumerate() {
                for (b, bi) in &ranges[x + 1..] {
                    if intervals_overlap(a, b) {
                        self.problem(
                            self.at(&char_path),
                            format!("bins {ai} and {bi} overlap; each value must fall in one bin"),
                        );
                    }
                }
            }
            if bins.is_empty() {
                self.problem(self.at(&char_path), "needs at least one bin".into());
                continue;
            }
            let max_points = bins.iter().map(|b| b.points).max().unwrap_or_default();
            if let Some(value) = value {
                characteristics.push(Characteristic {
                    name: raw_char.name.as_str().into(),
                    value,
                    reason: raw_char.reason.as_str().into(),
                    bins,
                    max_points,
                });
            }
        }
        self.define(&raw.id, path, scope);
        self.explainer_ids.insert(raw.id.clone());
        if self.problems.len() > before {
            return None;
        }
        super::rank_shortfalls(&mut characteristics);
        Some(Scorecard {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            base_points,
            calibration,
            characteristics,
        })
    }
}
