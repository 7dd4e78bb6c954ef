//! The back-test report: one self-contained HTML file (inline CSS and SVG, no scripts, no
//! external assets) that a risk committee can open from an email attachment.
//!
//! Charts: the score distribution by outcome, the approval rate by segment for champion and
//! challenger, the swap matrix, and reason-code frequencies. Nothing in the page depends on the
//! time it was made, so the same summary renders to the same bytes.

use crate::tally::{StrategySummary, Summary, SwapCell};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::fmt::Write;

const CHAMPION_COLOUR: &str = "#1f5f99";
const CHALLENGER_COLOUR: &str = "#e07b24";
const OUTCOME_COLOURS: [(&str, &str); 3] = [
    ("approve", "#2e8b57"),
    ("refer", "#d9a400"),
    ("decline", "#b03a2e"),
];

/// What the report says about how it was made (strategies, input, flow).
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// The page's title.
    pub title: String,
    /// The flow back-tested.
    pub flow: String,
    /// What the rows were read from.
    pub input: String,
    /// The step whose score the distribution shows.
    pub score_step: Option<String>,
    /// The date rows were decided as of (`recorded`: each logged decision's own).
    pub as_of: String,
    /// Reason codes' customer texts, for the reason chart.
    pub reason_texts: std::collections::BTreeMap<String, String>,
}

/// Bins with fewer rows of known outcome than this show no bad rate: a handful of rows makes
/// a rate that means nothing (two rows, none bad, is not "0 % bad").
pub const MIN_ROWS_FOR_BAD_RATE: u64 = 30;

/// Text made safe to place in HTML (`&`, `<`, `>`, `"`, `'` escaped).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn percent(rate: Option<Decimal>) -> String {
    match rate {
        Some(r) => format!("{:.1}%", (r * Decimal::from(100)).round_dp(1)),
        None => "–".into(),
    }
}

fn money(amount: Option<Decimal>) -> String {
    match amount {
        Some(a) => {
            let rounded = a.round_dp(0).to_i64().unwrap_or(0);
            let digits = rounded.unsigned_abs().to_string();
            let mut grouped = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            if rounded < 0 {
                format!("-{grouped}")
            } else {
                grouped
            }
        }
        None => "–".into(),
    }
}

/// Renders the report.
pub fn html(summary: &Summary, context: &ReportContext) -> String {
    let mut page = String::with_capacity(64 * 1024);
    let champion = summary.strategies.get("champion");
    let challenger = summary.strategies.get("challenger");
    let _ = write!(
        page,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;background:#f5f6f8}}
main{{max-width:1100px;margin:0 auto;padding:24px}}
h1{{font-size:22px;margin:0 0 4px}} h2{{font-size:17px;margin:28px 0 8px}}
.meta{{color:#5a6170;margin-bottom:16px}}
section{{background:#fff;border:1px solid #dde0e6;border-radius:6px;padding:16px 20px;margin-bottom:18px}}
table{{border-collapse:collapse;width:100%}} th,td{{padding:6px 10px;border-bottom:1px solid #eceef2;text-align:right}}
th:first-child,td:first-child{{text-align:left}} th{{background:#f0f2f5;font-weight:600}}
.swap td{{text-align:center}} .swap td.k{{text-align:left;font-weight:600}}
.legend span{{display:inline-block;margin-right:14px}} .legend i{{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px}}
.kpi{{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px}}
.kpi div{{background:#f7f8fa;border-radius:6px;padding:10px}} .kpi b{{display:block;font-size:20px}}
svg text{{font:12px system-ui,sans-serif;fill:#1d2330}}
</style></head><body><main>
<h1>{title}</h1>
<div class="meta">Flow <b>{flow}</b> · data <b>{input}</b> · decided as of <b>{as_of}</b> · {rows} rows{outcomes}<br>{versions}</div>
"#,
        title = escape(&context.title),
        flow = escape(&context.flow),
        input = escape(&context.input),
        as_of = escape(&context.as_of),
        versions = [("champion", champion), ("challenger", challenger)]
            .into_iter()
            .filter_map(|(role, s)| s.map(|s| format!(
                "{role} <b>{}</b> version <code>{}</code>",
                escape(&s.name),
                escape(&s.version.chars().take(12).collect::<String>())
            )))
            .collect::<Vec<_>>()
            .join(" · "),
        rows = summary.rows,
        outcomes = if summary.rows_with_outcome > 0 {
            format!(
                " · {} with outcomes, bad rate {}",
                summary.rows_with_outcome,
                percent(summary.bad_rate)
            )
        } else {
            String::new()
        },
    );

    if let (Some(a), Some(b)) = (champion, challenger) {
        let _ = write!(
            page,
            "<section><h2>What changed</h2><p>{}</p></section>",
            what_changed(a, b, summary)
        );
    }

    // Headline numbers.
    page.push_str("<section><h2>Strategies</h2><table><tr><th></th>");
    let sides: Vec<(&str, &StrategySummary)> = [("Champion", champion), ("Challenger", challenger)]
        .into_iter()
        .filter_map(|(label, s)| s.map(|s| (label, s)))
        .collect();
    for (label, s) in &sides {
        let _ = write!(
            page,
            "<th>{label}: {} <small>{}</small></th>",
            escape(&s.name),
            escape(&s.version.chars().take(12).collect::<String>())
        );
    }
    page.push_str("</tr>");
    type Row = (&'static str, fn(&StrategySummary, &Summary) -> String);
    let rows: [Row; 10] = [
        ("Approve rate", |s, _| percent(Some(s.approve_rate))),
        ("Refer rate", |s, _| percent(Some(s.refer_rate))),
        ("Decline rate", |s, _| percent(Some(s.decline_rate))),
        ("Approved", |s, _| s.approved.to_string()),
        ("Average limit", |s, _| money(s.average_limit)),
        ("Average APR", |s, _| percent(s.average_apr)),
        ("Bad rate of approvals", |s, _| percent(s.approved_bad_rate)),
        ("Expected loss (PD × EAD × LGD)", |s, _| {
            money(Some(s.expected_loss))
        }),
        ("Expected loss per approval", |s, _| {
            money((s.approved > 0).then(|| s.expected_loss / Decimal::from(s.approved)))
        }),
        ("LGD", |_, summary| percent(Some(summary.lgd))),
    ];
    for (name, value) in rows {
        let _ = write!(page, "<tr><td>{name}</td>");
        for (_, s) in &sides {
            let _ = write!(page, "<td>{}</td>", value(s, summary));
        }
        page.push_str("</tr>");
    }
    page.push_str("</table></section>");

    if let Some(swap) = &summary.swap {
        page.push_str("<section><h2>Swap set</h2><p>Who each strategy approves; bad rates where outcomes are known, expected loss under the strategy that approves.</p>");
        let cell = |c: &SwapCell, el: Option<Decimal>| {
            format!(
                "<b>{}</b> rows<br>bad rate {}<br>EL {}",
                c.rows,
                percent(c.bad_rate),
                money(el)
            )
        };
        let _ = write!(
            page,
            r#"<table class="swap"><tr><th></th><th>Challenger approves</th><th>Challenger does not</th></tr>
<tr><td class="k">Champion approves</td><td style="background:#e4f2ea">{}</td><td style="background:#fbe9e7">{}<br><small>swap-outs</small></td></tr>
<tr><td class="k">Champion does not</td><td style="background:#fff4d6">{}<br><small>swap-ins</small></td><td>{}</td></tr></table>"#,
            cell(&swap.both, Some(swap.both.expected_loss_challenger)),
            cell(
                &swap.champion_only,
                Some(swap.champion_only.expected_loss_champion)
            ),
            cell(
                &swap.challenger_only,
                Some(swap.challenger_only.expected_loss_challenger)
            ),
            cell(&swap.neither, None),
        );
        let _ = write!(
            page,
            "<p>{} rows change outcome. Champion → challenger outcomes:</p><table><tr><th>champion \\ challenger</th>",
            swap.outcome_changed
        );
        for (to, _) in OUTCOME_COLOURS {
            let _ = write!(page, "<th>{to}</th>");
        }
        page.push_str("</tr>");
        // Rows and columns in one order: approve, refer, decline.
        for (from, _) in OUTCOME_COLOURS {
            let Some(targets) = swap.outcomes.get(from) else {
                continue;
            };
            let _ = write!(page, "<tr><td>{from}</td>");
            for (to, _) in OUTCOME_COLOURS {
                let _ = write!(page, "<td>{}</td>", targets.get(to).copied().unwrap_or(0));
            }
            page.push_str("</tr>");
        }
        page.push_str("</table></section>");
    }

    if !summary.score_distribution.is_empty() {
        let _ = write!(
            page,
            "<section><h2>Score distribution by champion outcome{}</h2>",
            context
                .score_step
                .as_deref()
                .map(|s| format!(" <small>({})</small>", escape(s)))
                .unwrap_or_default()
        );
        page.push_str(&score_chart(summary));
        page.push_str("</section>");
    }

    for (column, values) in &summary.segments {
        let _ = write!(
            page,
            "<section><h2>Approval rate by {}</h2>",
            escape(column)
        );
        page.push_str(&segment_chart(
            values
                .iter()
                .map(|(v, s)| {
                    (
                        v.as_str(),
                        s.champion_approve_rate,
                        s.challenger_approve_rate,
                    )
                })
                .collect(),
            challenger.is_some(),
        ));
        page.push_str("<table><tr><th>");
        page.push_str(&escape(column));
        page.push_str("</th><th>rows</th><th>bad rate</th><th>champion approves</th>");
        if challenger.is_some() {
            page.push_str("<th>challenger approves</th>");
        }
        page.push_str("</tr>");
        for (value, s) in values {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                escape(value),
                s.rows,
                percent(s.bad_rate),
                percent(Some(s.champion_approve_rate))
            );
            if challenger.is_some() {
                let _ = write!(page, "<td>{}</td>", percent(s.challenger_approve_rate));
            }
            page.push_str("</tr>");
        }
        page.push_str("</table></section>");
    }

    page.push_str("<section><h2>Reason codes</h2><p>How often each reason was given, and its share of all rows.</p>");
    page.push_str(&reason_chart(
        champion,
        challenger,
        summary.rows,
        &context.reason_texts,
    ));
    page.push_str("</section>");
    page.push_str("</main></body></html>\n");
    page
}

/// The changes a committee asks about first, in a sentence or three, from the numbers.
fn what_changed(a: &StrategySummary, b: &StrategySummary, summary: &Summary) -> String {
    let points = ((b.approve_rate - a.approve_rate) * Decimal::from(100)).round_dp(1);
    let direction = if points.is_sign_negative() {
        "fewer"
    } else {
        "more"
    };
    let mut text = format!(
        "The challenger approves {} points {direction} than the champion ({} against {})",
        points.abs(),
        percent(Some(b.approve_rate)),
        percent(Some(a.approve_rate)),
    );
    if a.expected_loss > Decimal::ZERO {
        let change = ((b.expected_loss - a.expected_loss) / a.expected_loss * Decimal::from(100))
            .round_dp(0);
        let _ = write!(
            text,
            ", with {}% {} expected loss ({} against {})",
            change.abs(),
            if change.is_sign_negative() {
                "less"
            } else {
                "more"
            },
            money(Some(b.expected_loss)),
            money(Some(a.expected_loss)),
        );
    }
    text.push('.');
    if let Some(swap) = &summary.swap {
        let _ = write!(
            text,
            " {} applicants swap in and {} swap out; {} rows change outcome.",
            swap.challenger_only.rows, swap.champion_only.rows, swap.outcome_changed
        );
        if swap.challenger_only.rows > 0 && swap.challenger_only.bad_rate.is_some() {
            let _ = write!(
                text,
                " The swap-ins' bad rate is {}, the swap-outs' {}.",
                percent(swap.challenger_only.bad_rate),
                percent(swap.champion_only.bad_rate)
            );
        }
    }
    if let (Some(x), Some(y)) = (a.approved_bad_rate, b.approved_bad_rate) {
        let _ = write!(
            text,
            " Approvals' bad rate: {} against {}.",
            percent(Some(y)),
            percent(Some(x))
        );
    }
    escape(&text)
}

/// At most `chars` characters of `text`, with an ellipsis when cut (the full text is the
/// label's tooltip).
fn shortened(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn legend(items: &[(&str, &str)]) -> String {
    let mut out = String::from("<div class=\"legend\">");
    for (label, colour) in items {
        let _ = write!(
            out,
            "<span><i style=\"background:{colour}\"></i>{}</span>",
            escape(label)
        );
    }
    out.push_str("</div>");
    out
}

/// Stacked bars of rows per score bin, coloured by the champion's outcome, with the bad rate
/// of each bin as a dot where outcomes are known.
fn score_chart(summary: &Summary) -> String {
    let bins = &summary.score_distribution;
    let (width, height, left, bottom) = (1040.0, 290.0, 60.0, 58.0);
    let max = bins
        .iter()
        .map(|b| b.approve + b.refer + b.decline)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let bar = (width - left - 60.0) / bins.len() as f64;
    // Bad rates use their own scale (right axis): up to the highest bin's rate.
    let rated = |b: &crate::tally::ScoreBinSummary| b.goods + b.bads >= MIN_ROWS_FOR_BAD_RATE;
    let max_rate = bins
        .iter()
        .filter(|b| rated(b))
        .map(|b| b.bads as f64 / (b.goods + b.bads) as f64)
        .fold(0.0f64, f64::max);
    let plot = height - bottom - 10.0;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="score distribution">"#
    );
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#888"/>"##,
        height - bottom,
        width - 60.0,
        height - bottom
    );
    if max_rate > 0.0 {
        let _ = write!(
            svg,
            r#"<text x="{}" y="18">bad {:.1}%</text><text x="{}" y="{}">bad 0%</text>"#,
            width - 56.0,
            max_rate * 100.0,
            width - 56.0,
            height - bottom
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="18" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="end">0</text>"#,
        left - 6.0,
        max as u64,
        left - 6.0,
        height - bottom
    );
    // Axis titles.
    let _ = write!(
        svg,
        r#"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">rows per score bin</text><text x="{:.1}" y="{}" text-anchor="middle">score (each bar from its left edge to the next)</text>"#,
        (height - bottom) / 2.0,
        (height - bottom) / 2.0,
        left + (width - left - 60.0) / 2.0,
        height - 6.0
    );
    for (i, b) in bins.iter().enumerate() {
        let x = left + i as f64 * bar;
        let mut y = height - bottom;
        for (count, (_, colour)) in [b.approve, b.refer, b.decline]
            .into_iter()
            .zip(OUTCOME_COLOURS)
        {
            let h = count as f64 / max * plot;
            y -= h;
            if count > 0 {
                let _ = write!(
                    svg,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{colour}"><title>{} – {}: {count}</title></rect>"#,
                    (bar - 1.0).max(1.0),
                    b.from,
                    b.to
                );
            }
        }
        if rated(b) {
            let rate = b.bads as f64 / (b.goods + b.bads) as f64;
            let _ = write!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#000"><title>bad rate {:.1}% ({} of {})</title></circle>"##,
                x + bar / 2.0,
                height - bottom - rate / max_rate.max(f64::MIN_POSITIVE) * plot,
                rate * 100.0,
                b.bads,
                b.goods + b.bads
            );
        }
        // Bin edges, at the bars' edges (not their centres).
        if bins.len() <= 40 || i % (bins.len() / 20).max(1) == 0 {
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#888"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                height - bottom,
                height - bottom + 4.0,
                height - bottom + 16.0,
                b.from
            );
        }
    }
    if let Some(last) = bins.last() {
        let x = left + bins.len() as f64 * bar;
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            height - bottom + 16.0,
            last.to
        );
    }
    svg.push_str("</svg>");
    let mut items: Vec<(&str, &str)> = OUTCOME_COLOURS.to_vec();
    items.push((
        "bad rate of the bin (dot, right-hand scale; bins with fewer than 30 rows of known outcome show none)",
        "#000",
    ));
    format!("{svg}{}", legend(&items))
}

/// Horizontal bars of the approval rate per segment value: champion and challenger side by side.
fn segment_chart(values: Vec<(&str, Decimal, Option<Decimal>)>, with_challenger: bool) -> String {
    let row_height = if with_challenger { 30.0 } else { 18.0 };
    let (label_width, bar_width) = (160.0, 800.0);
    let height = values.len() as f64 * row_height + 10.0;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {} {height}" width="100%" role="img" aria-label="approval rate by segment">"#,
        label_width + bar_width + 80.0
    );
    for (i, (value, a, b)) in values.iter().enumerate() {
        let y = i as f64 * row_height + 4.0;
        let _ = write!(
            svg,
            r#"<text x="0" y="{:.1}">{}</text>"#,
            y + 12.0,
            escape(&value.chars().take(24).collect::<String>())
        );
        let bars = [(Some(*a), CHAMPION_COLOUR), (*b, CHALLENGER_COLOUR)];
        for (j, (rate, colour)) in bars.into_iter().enumerate() {
            if j == 1 && !with_challenger {
                continue;
            }
            let r = rate.and_then(|r| r.to_f64()).unwrap_or(0.0);
            let by = y + j as f64 * 13.0;
            let _ = write!(
                svg,
                r#"<rect x="{label_width}" y="{by:.1}" width="{:.1}" height="11" fill="{colour}"/><text x="{:.1}" y="{:.1}">{:.1}%</text>"#,
                r * bar_width,
                label_width + r * bar_width + 4.0,
                by + 10.0,
                r * 100.0
            );
        }
    }
    svg.push_str("</svg>");
    let mut items = vec![("champion", CHAMPION_COLOUR)];
    if with_challenger {
        items.push(("challenger", CHALLENGER_COLOUR));
    }
    format!("{svg}{}", legend(&items))
}

fn reason_chart(
    champion: Option<&StrategySummary>,
    challenger: Option<&StrategySummary>,
    rows: u64,
    texts: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut codes: Vec<&str> = Vec::new();
    for s in [champion, challenger].into_iter().flatten() {
        for r in s.reasons.iter().take(15) {
            if !codes.contains(&r.code.as_str()) {
                codes.push(&r.code);
            }
        }
    }
    let count = |s: Option<&StrategySummary>, code: &str| {
        s.and_then(|s| s.reasons.iter().find(|r| r.code == code))
            .map_or(0, |r| r.count)
    };
    let max = codes
        .iter()
        .flat_map(|c| [count(champion, c), count(challenger, c)])
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let with_challenger = challenger.is_some();
    let row_height = if with_challenger { 30.0 } else { 18.0 };
    let (label_width, bar_width) = (420.0, 540.0);
    let height = codes.len() as f64 * row_height + 10.0;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {} {height}" width="100%" role="img" aria-label="reason codes">"#,
        label_width + bar_width + 130.0
    );
    for (i, code) in codes.iter().enumerate() {
        let y = i as f64 * row_height + 4.0;
        let label = match texts.get(*code) {
            Some(text) => format!("{code} — {text}"),
            None => code.to_string(),
        };
        let _ = write!(
            svg,
            r#"<text x="0" y="{:.1}"><title>{}</title>{}</text>"#,
            y + 12.0,
            escape(&label),
            escape(&shortened(&label, 52))
        );
        for (j, (side, colour)) in [(champion, CHAMPION_COLOUR), (challenger, CHALLENGER_COLOUR)]
            .into_iter()
            .enumerate()
        {
            if j == 1 && !with_challenger {
                continue;
            }
            let n = count(side, code);
            let by = y + j as f64 * 13.0;
            let _ = write!(
                svg,
                r#"<rect x="{label_width}" y="{by:.1}" width="{:.1}" height="11" fill="{colour}"/><text x="{:.1}" y="{:.1}">{n} ({:.1}%)</text>"#,
                n as f64 / max * bar_width,
                label_width + n as f64 / max * bar_width + 4.0,
                by + 10.0,
                if rows > 0 {
                    n as f64 / rows as f64 * 100.0
                } else {
                    0.0
                }
            );
        }
    }
    svg.push_str("</svg>");
    let mut items = vec![("champion", CHAMPION_COLOUR)];
    if with_challenger {
        items.push(("challenger", CHALLENGER_COLOUR));
    }
    format!("{svg}{}", legend(&items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tally::{
        Performance, RowResult, StrategyLabel, StrategyResult, Tally, TallyOptions,
    };
    use credence_engine::Outcome;
    use std::sync::Arc;

    #[test]
    fn the_report_is_self_contained_escaped_and_stable() {
        let mut tally = Tally::new(TallyOptions {
            segments: vec!["grade".into()],
            ..TallyOptions::default()
        });
        for (i, outcome) in [Outcome::Approve, Outcome::Decline, Outcome::Refer]
            .into_iter()
            .enumerate()
        {
            let result = StrategyResult {
                outcome,
                limit: (outcome == Outcome::Approve).then(|| Decimal::from(5000)),
                apr: None,
                reasons: vec![Arc::from("DEC_<SCORE>")],
                score: Some(480.0 + 20.0 * i as f64),
                pd: None,
            };
            tally.add(&RowResult {
                champion: result.clone(),
                challenger: Some(result),
                performance: Performance {
                    bad: Some(i == 1),
                    ..Performance::default()
                },
                segments: vec![Some(format!("<g{i}>"))],
            });
        }
        let label = |n: &str| StrategyLabel {
            name: n.into(),
            version: "abc".into(),
        };
        let summary = tally.summary(label("champ"), Some(label("chall")));
        let context = ReportContext {
            title: "Back-test <demo>".into(),
            flow: "application".into(),
            input: "rows.csv".into(),
            score_step: Some("app_score".into()),
            as_of: "2026-11-29".into(),
            reason_texts: [("DEC_<SCORE>".to_string(), "Score <low>".to_string())].into(),
        };
        let page = html(&summary, &context);
        assert!(page.starts_with("<!doctype html>"));
        for external in ["<script", "src=", "href=", "url(", "@import"] {
            assert!(
                !page.contains(external),
                "{external} in a self-contained report"
            );
        }
        assert!(page.contains("Back-test &lt;demo&gt;"));
        assert!(page.contains("DEC_&lt;SCORE&gt;"));
        assert!(!page.contains("<g1>"));
        assert!(page.contains("Swap set"));
        assert!(page.contains("<svg"));
        assert_eq!(page, html(&summary, &context), "same summary, same bytes");
        // What a committee reads first: the date, the versions, what changed.
        assert!(page.contains("decided as of <b>2026-11-29</b>"));
        assert!(page.contains("champion <b>champ</b> version <code>abc</code>"));
        assert!(page.contains("What changed"));
        assert!(page.contains("The challenger approves 0"), "{page}");
        assert!(page.contains("DEC_&lt;SCORE&gt; — Score &lt;low&gt;"));
        assert!(page.contains("rows per score bin"));
        // Three rows in a bin: too few for a bad rate.
        assert!(
            !page.contains("<title>bad rate"),
            "no rate from a handful of rows"
        );
        // One outcome order for rows and columns of the matrix.
        let matrix = page.split("Champion → challenger outcomes").nth(1).unwrap();
        let order: Vec<usize> = ["<td>approve</td>", "<td>refer</td>", "<td>decline</td>"]
            .iter()
            .map(|o| matrix.find(o).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn money_and_percent_formatting() {
        assert_eq!(money(Some(Decimal::new(12345678, 1))), "1,234,568");
        assert_eq!(money(Some(Decimal::from(-1500))), "-1,500");
        assert_eq!(money(None), "–");
        assert_eq!(percent(Some(Decimal::new(61234, 5))), "61.2%");
    }
}
