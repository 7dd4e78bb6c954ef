//! The case page: the decision, its evidence and history, revealing masked data, and acting on the case.

use super::queue::{time_left, urgency};
use super::*;
use super::{case_view, display};
use crate::cases::policy_for;
use crate::mask::mask_text;
use crate::Service;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use credence_review::{CaseState, Command, Proposal, ReviewerRole, Verdict};
use credence_store::{DecisionQuery, NewAuditEvent};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Template)]
#[template(path = "case.html")]
pub(super) struct CasePage {
    username: String,
    role: String,
    csrf: String,
    error: Option<String>,
    case_id: String,
    decision_id: String,
    status: String,
    queue: String,
    product: String,
    customer: String,
    priority: i64,
    due: String,
    time_left: String,
    urgency: &'static str,
    breached: bool,
    claimed_by: Option<String>,
    outcome: String,
    /// What referred the case, the figures, score, grade, terms, caps and failures.
    summary: case_view::Summary,
    reasons: Vec<(String, String)>,
    flags: String,
    strategy: String,
    steps: Vec<case_view::StepLine>,
    groups: Vec<case_view::FieldGroup>,
    revealed: bool,
    history: Vec<(String, String, String)>,
    final_summary: Option<String>,
    pending_summary: Option<String>,
    /// Why the action box holds what it holds (waiting for a second reviewer, held by another).
    waiting_note: Option<String>,
    can_claim: bool,
    mine: bool,
    awaiting: bool,
    limit_bounds: String,
    apr_bounds: String,
    default_limit: String,
    default_apr: String,
    four_eyes: Option<String>,
    /// The strategy's decline reasons, (code, text in the decision's language).
    decline_reasons: Vec<(String, String)>,
    events: Vec<(String, String, String, String)>,
    /// The credit account an in-loan decision was about, as it is now.
    account: Option<crate::accounts::AccountView>,
    /// (event time, type, detail), newest first.
    account_events: Vec<(String, String, String)>,
}

/// One account event as a line of the case page.
pub(super) fn account_event_line(event: &serde_json::Value) -> (String, String, String) {
    let detail = event
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter(|(name, _)| {
                    !matches!(name.as_str(), "id" | "time_ms" | "type" | "received_at_ms")
                })
                .map(|(name, value)| {
                    format!(
                        "{name} {}",
                        value
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| value.to_string())
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .unwrap_or_default();
    (
        event["time_ms"].as_i64().map(time).unwrap_or_default(),
        event["type"].as_str().unwrap_or_default().to_string(),
        detail,
    )
}

/// A reviewer's decision in one line, money and rates as an underwriter reads them.
pub(super) fn summary_line(decision: &credence_review::ReviewDecision, currency: &str) -> String {
    let p = &decision.proposal;
    let verdict = serde_json::to_value(p.verdict)
        .ok()
        .and_then(|v| v.as_str().map(|v| v.replace('_', "-")))
        .unwrap_or_default();
    let mut parts = vec![verdict];
    if let Some(limit) = p.limit {
        parts.push(format!("limit {}", display::money(limit, currency)));
    }
    if let Some(apr) = p.apr {
        parts.push(format!("APR {}", display::percent(apr)));
    }
    if !p.reasons.is_empty() {
        parts.push(format!("reasons {}", p.reasons.join(", ")));
    }
    parts.push(format!("by {} at {}", decision.by, time(decision.at_ms)));
    parts.push(format!("note: {}", p.note));
    parts.join(" · ")
}

pub(super) async fn render_case(
    service: &Service,
    signed: &SignedIn,
    id: &str,
    revealed: bool,
    error: Option<(StatusCode, String)>,
) -> Response {
    let view = match service.cases.get(id).await {
        Ok(view) => view,
        Err(error) => return plain(error.code.status(), &error.message),
    };
    if !signed.may_use(&view.case.strategy) {
        return plain(
            StatusCode::FORBIDDEN,
            "you do not work this product's cases",
        );
    }
    let stored = match service.store.decision(&view.case.decision_id).await {
        Ok(Some(stored)) => stored,
        _ => return plain(StatusCode::NOT_FOUND, "the case's decision is missing"),
    };
    let decision = match credence_engine::DecisionRecord::parse(&stored.record.decision) {
        Ok(record) => record,
        Err(error) => {
            tracing::error!(%error, decision = %stored.record.id, "unreadable decision record");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the case's decision record cannot be read",
            );
        }
    };
    let recorded_trace: serde_json::Value =
        serde_json::from_str(decision.trace.get()).unwrap_or_default();
    let input: serde_json::Value = serde_json::from_str(&stored.record.input).unwrap_or_default();
    let strategy = service
        .strategies
        .compiled(&stored.record.strategy_version)
        .await
        .ok();
    let flow = strategy
        .as_ref()
        .and_then(|s| s.flow(&stored.record.flow).ok());
    let personal = |name: &str| {
        flow.is_some_and(|flow| {
            flow.schema
                .fields
                .iter()
                .any(|(f, spec)| &**f == name && spec.personal)
        })
    };
    // The compact trace holds no intermediate values; replaying the recorded input with the
    // version, date and third-party answers that decided it (deterministic, offline) shows the
    // derived features too.
    let full_steps: Option<Vec<serde_json::Value>> = strategy.as_ref().and_then(|s| {
        let as_of = chrono::NaiveDate::parse_from_str(&stored.record.as_of, "%Y-%m-%d").ok()?;
        let options = credence_engine::EvalOptions {
            as_of,
            language: stored.record.language.clone(),
            full_trace: true,
        };
        let validated = s.validate_input(&stored.record.flow, &input).ok()?;
        let data = credence_engine::data::DataRecord::from_record(&decision);
        match s
            .evaluate(&stored.record.flow, &validated, &options, &data)
            .ok()?
        {
            credence_engine::data::Evaluation::Decided(replayed) => {
                serde_json::to_value(&replayed.trace.steps)
                    .ok()?
                    .as_array()
                    .cloned()
            }
            credence_engine::data::Evaluation::NeedsData(_) => None,
        }
    });
    let steps = full_steps
        .or_else(|| recorded_trace["steps"].as_array().cloned())
        .unwrap_or_default();
    let data: Vec<serde_json::Value> = decision
        .data
        .iter()
        .filter_map(|d| serde_json::from_str(d.get()).ok())
        .collect();
    let caps = recorded_trace["caps_applied"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let currency = strategy
        .as_ref()
        .map(|s| s.currency().to_string())
        .unwrap_or_default();
    let language = stored.record.language.as_str();
    let texts: BTreeMap<String, String> = strategy
        .as_ref()
        .map(|s| {
            s.reason_codes()
                .map(|code| (code.to_string(), s.reason_text(code, language)))
                .collect()
        })
        .unwrap_or_default();
    let reasons: Vec<(String, String)> = decision
        .reasons
        .iter()
        .map(|r| (r.code.to_string(), r.text.clone()))
        .collect();
    let facts = case_view::Facts {
        currency: &currency,
        steps: &steps,
        data: &data,
        caps: &caps,
        input: &input,
        reasons: &reasons,
        requested_amount: decision.requested_amount.or(view.case.requested_amount),
        limit: decision.limit,
        apr: decision.apr,
        term_months: decision.term_months,
    };
    let summary = case_view::summary(
        &facts,
        |rule| {
            strategy
                .as_ref()
                .and_then(|s| s.rule_evidence(&stored.record.flow, rule))
        },
        &texts,
    );
    let schema_order: Vec<String> = flow
        .map(|f| f.schema.fields.iter().map(|(n, _)| n.to_string()).collect())
        .unwrap_or_default();
    let groups = case_view::grouped_fields(&input, &schema_order, &currency, |name, shown| {
        (personal(name) && !revealed).then(|| mask_text(shown))
    });
    let history = match &stored.record.customer_id {
        Some(customer) => service
            .decisions
            .list(DecisionQuery {
                customer_id: Some(customer.clone()),
                limit: 11,
                ..Default::default()
            })
            .await
            .map(|page| {
                page.items
                    .into_iter()
                    .filter(|d| d.id != stored.record.id)
                    .take(10)
                    .map(|d| (time(d.created_at_ms), d.flow, d.outcome))
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    // A drawdown or early-warning referral is about an account: show it as it is now.
    let account = match input["account_id"].as_str() {
        Some(account_id) => service.accounts.get(account_id).await.ok(),
        None => None,
    };
    let account_events = match &account {
        Some(account) => service
            .accounts
            .events(&account.id, 10)
            .await
            .map(|events| events.iter().map(account_event_line).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let policy = strategy.as_ref().map(|s| policy_for(s));
    let bounds = |min: Option<Decimal>, max: Option<Decimal>, show: &dyn Fn(Decimal) -> String| {
        format!(
            "{} – {}",
            min.map(show).unwrap_or_else(|| "0".into()),
            max.map(show).unwrap_or_else(|| "no cap".into())
        )
    };
    let me = signed.user.username.as_str();
    let reviewer = signed.reviewer();
    let case = &view.case;
    let now_ms = service.now_ms();
    let awaiting = case.state == CaseState::AwaitingConfirmation;
    let first_is_me = case.pending.as_ref().is_some_and(|p| p.by == me);
    let can_claim = view.claimed_by.is_none()
        && case.state != CaseState::Decided
        && !(awaiting && first_is_me)
        && !(case.state == CaseState::Escalated && reviewer.role != ReviewerRole::SeniorReviewer);
    let mine = view.claimed_by.as_deref() == Some(me);
    let four_eyes = policy.as_ref().and_then(|p| p.four_eyes_above);
    let four_eyes_text = four_eyes
        .map(|t| display::money(t, &currency))
        .unwrap_or_default();
    let waiting_note = match (&case.pending, view.claimed_by.as_deref()) {
        _ if case.state == CaseState::Decided => None,
        (Some(pending), _) if awaiting && pending.by == me => Some(format!(
            "You decided this case. Approvals above {four_eyes_text} need a second reviewer, so it \
             waits for another reviewer to confirm your decision or send it back to the queue; \
             there is nothing for you to do on it until then."
        )),
        (Some(pending), None) if awaiting => Some(format!(
            "{} decided this case; approvals above {four_eyes_text} need a second reviewer. \
             Claim it to confirm the decision or send it back.",
            pending.by
        )),
        (_, Some(holder)) if holder != me => Some(format!(
            "{holder} is working this case; their claim lapses if they leave it."
        )),
        (_, None) if case.state == CaseState::Escalated && !can_claim => {
            Some("Escalated: a senior reviewer takes it from here.".into())
        }
        (_, None) => Some("Claim the case to decide it.".into()),
        _ => None,
    };
    let decline_reasons = strategy
        .as_ref()
        .map(|s| {
            s.decline_reason_codes()
                .map(|code| (code.to_string(), s.reason_text(code, language)))
                .collect()
        })
        .unwrap_or_default();
    let (status, error) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    page(
        status,
        &CasePage {
            username: me.to_string(),
            role: signed.user.role.clone(),
            csrf: signed.session.csrf_token.clone(),
            error,
            case_id: case.id.clone(),
            decision_id: case.decision_id.clone(),
            status: view.status.to_string(),
            queue: case.queue.clone(),
            product: case.strategy.clone(),
            customer: case.customer_id.clone().unwrap_or_else(|| "—".into()),
            priority: case.priority,
            due: time(case.due_at_ms),
            time_left: time_left(case.due_at_ms - now_ms),
            urgency: urgency(case.created_at_ms, case.due_at_ms, now_ms, case.state),
            breached: view.sla_breached,
            claimed_by: view.claimed_by.clone(),
            outcome: decision.outcome.as_str().to_string(),
            steps: case_view::steps_in_words(&steps, &data, &currency, &texts),
            summary,
            reasons,
            flags: decision.flags.join(", "),
            strategy: format!(
                "{} {}",
                decision.strategy,
                &stored.record.strategy_version[..12.min(stored.record.strategy_version.len())]
            ),
            groups,
            revealed,
            history,
            account,
            account_events,
            final_summary: case.decision.as_ref().map(|d| {
                let mut s = summary_line(d, &currency);
                if let Some(by) = &case.confirmed_by {
                    s.push_str(&format!(" · confirmed by {by}"));
                }
                s
            }),
            pending_summary: case.pending.as_ref().map(|d| summary_line(d, &currency)),
            waiting_note,
            can_claim,
            mine,
            awaiting,
            limit_bounds: policy
                .as_ref()
                .map(|p| bounds(p.limit_min, p.limit_max, &|d| display::money(d, &currency)))
                .unwrap_or_default(),
            apr_bounds: policy
                .as_ref()
                .map(|p| bounds(p.apr_min, p.apr_max, &display::percent))
                .unwrap_or_default(),
            default_limit: decision
                .limit
                .or(case.requested_amount)
                .map(|a| a.normalize().to_string())
                .unwrap_or_default(),
            default_apr: decision
                .apr
                .map(|a| format!("{}%", (a * Decimal::ONE_HUNDRED).normalize()))
                .unwrap_or_default(),
            four_eyes: four_eyes.map(|_| four_eyes_text.clone()),
            decline_reasons,
            events: case
                .history
                .iter()
                .map(|e| {
                    (
                        time(e.at_ms),
                        e.actor.clone(),
                        e.action.clone(),
                        e.note.clone().unwrap_or_default(),
                    )
                })
                .collect(),
        },
    )
}

/// One case: the referral, the application, the trace and the actions.
#[utoipa::path(get, path = "/review/cases/{id}", tag = "workbench", params(("id" = String, Path)),
    responses((status = 200, description = "The case page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to the sign-in page"),
              (status = 404, description = "No such case", content_type = "text/plain")))]
pub(super) async fn case_page(
    State(service): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match signed_in(&service, &headers).await {
        Ok(signed) => render_case(&service, &signed, &id, false, None).await,
        Err(response) => response,
    }
}

/// Shows a case's personal identifiers unmasked; the reveal is audited.
#[utoipa::path(post, path = "/review/cases/{id}/reveal", tag = "workbench", params(("id" = String, Path)),
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The case page, unmasked", content_type = "text/html"),
              (status = 303, description = "Not signed in: to the sign-in page"),
              (status = 403, description = "The form's token does not match the session", content_type = "text/plain"),
              (status = 404, description = "No such case", content_type = "text/plain")))]
pub(super) async fn reveal(
    State(service): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let signed = match signed_form(&service, &headers, form.csrf.as_deref()).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let audit = NewAuditEvent {
        at_ms: service.now_ms(),
        actor: signed.user.username.clone(),
        action: "personal.reveal".into(),
        subject: id.clone(),
        detail: serde_json::json!({"case": id}),
    };
    if let Err(error) = service.store.append_audit(audit).await {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the reveal could not be logged, so it is refused: {error}"),
        );
    }
    render_case(&service, &signed, &id, true, None).await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct ActForm {
    csrf: Option<String>,
    action: String,
    verdict: Option<String>,
    limit: Option<String>,
    apr: Option<String>,
    reasons: Option<String>,
    note: Option<String>,
}

impl ActForm {
    /// The form from its fields; the decline reasons' checkboxes repeat `reasons`, one code
    /// each (a text of comma-separated codes is read too).
    pub(super) fn from_pairs(pairs: Vec<(String, String)>) -> ActForm {
        let mut form = ActForm {
            csrf: None,
            action: String::new(),
            verdict: None,
            limit: None,
            apr: None,
            reasons: None,
            note: None,
        };
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "csrf" => &mut form.csrf,
                "action" => {
                    form.action = value;
                    continue;
                }
                "verdict" => &mut form.verdict,
                "limit" => &mut form.limit,
                "apr" => &mut form.apr,
                "note" => &mut form.note,
                "reasons" => {
                    let joined = match form.reasons.take() {
                        Some(before) if !before.trim().is_empty() => format!("{before},{value}"),
                        _ => value,
                    };
                    form.reasons = Some(joined);
                    continue;
                }
                _ => continue,
            };
            *slot = Some(value);
        }
        form
    }
}

/// An amount or rate as a reviewer types it: `6,000`, `EUR 6000`, `0.0899`, or a percentage
/// (`8.99%`, `8.99 %`), which is read as the fraction.
pub(super) fn typed_decimal(text: &str) -> Option<rust_decimal::Decimal> {
    let cleaned: String = text
        .trim()
        .trim_start_matches(|c: char| c.is_ascii_alphabetic() || c == '€' || c == '$')
        .chars()
        .filter(|c| *c != ',' && !c.is_whitespace())
        .collect();
    match cleaned.strip_suffix('%') {
        Some(percent) => percent
            .parse::<rust_decimal::Decimal>()
            .ok()
            .map(|p| p / rust_decimal::Decimal::ONE_HUNDRED),
        None => cleaned.parse().ok(),
    }
}

pub(super) fn form_command(form: &ActForm) -> Result<Command, String> {
    let note = form.note.clone().unwrap_or_default();
    let decimal =
        |field: &str, text: &Option<String>| -> Result<Option<rust_decimal::Decimal>, String> {
            match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => typed_decimal(t).map(Some).ok_or_else(|| {
                    format!("{field}: {t:?} is not a number; write e.g. 6,000 or 8.99%")
                }),
            }
        };
    Ok(match form.action.as_str() {
        "claim" => Command::Claim,
        "release" => Command::Release,
        "decide" => {
            let verdict = match form.verdict.as_deref() {
                Some("approve") => Verdict::Approve,
                Some("counter_offer") => Verdict::CounterOffer,
                Some("decline") => Verdict::Decline,
                _ => return Err("choose approve, counter-offer or decline".into()),
            };
            Command::Decide(Proposal {
                verdict,
                limit: if verdict == Verdict::Decline {
                    None
                } else {
                    decimal("limit", &form.limit)?
                },
                apr: if verdict == Verdict::Decline {
                    None
                } else {
                    decimal("apr", &form.apr)?
                },
                reasons: form
                    .reasons
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect(),
                note,
            })
        }
        "confirm" => Command::Confirm { note },
        "send_back" => Command::SendBack { note },
        "request_info" => Command::RequestInfo { note },
        "escalate" => Command::Escalate { note },
        other => return Err(format!("unknown action {other}")),
    })
}

/// A reviewer's command on a case: claim, decide, request information, escalate, confirm.
#[utoipa::path(post, path = "/review/cases/{id}/act", tag = "workbench", params(("id" = String, Path)),
    request_body(content = ActForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Done: back to the case"),
              (status = 403, description = "The form's token does not match the session", content_type = "text/plain"),
              (status = 404, description = "No such case", content_type = "text/plain"),
              (status = 422, description = "The command is not allowed now or is outside the strategy's bounds", content_type = "text/html")))]
pub(super) async fn act(
    State(service): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = ActForm::from_pairs(pairs);
    let signed = match signed_form(&service, &headers, form.csrf.as_deref()).await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let command = match form_command(&form) {
        Ok(command) => command,
        Err(message) => {
            return render_case(
                &service,
                &signed,
                &id,
                false,
                Some((StatusCode::UNPROCESSABLE_ENTITY, message)),
            )
            .await
        }
    };
    match service.cases.get(&id).await {
        Ok(view) if !signed.may_use(&view.case.strategy) => {
            return plain(
                StatusCode::FORBIDDEN,
                "you do not work this product's cases",
            )
        }
        _ => {}
    }
    match service.cases.act(&id, command, &signed.reviewer()).await {
        Ok(_) => redirect(&format!("/review/cases/{id}")),
        Err(error) => {
            render_case(
                &service,
                &signed,
                &id,
                false,
                Some((error.code.status(), error.message)),
            )
            .await
        }
    }
}
