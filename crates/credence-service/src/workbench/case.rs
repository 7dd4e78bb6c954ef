//! The case page: the decision, its evidence and history, revealing masked data, and acting on the case.

use super::*;
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
use serde::Deserialize;

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
    priority: i64,
    due: String,
    breached: bool,
    claimed_by: Option<String>,
    outcome: String,
    offer: String,
    reasons: Vec<(String, String)>,
    flags: String,
    strategy: String,
    steps: Vec<(String, String)>,
    /// (field, value, masked)
    fields: Vec<(String, String, bool)>,
    revealed: bool,
    history: Vec<(String, String, String)>,
    final_summary: Option<String>,
    pending_summary: Option<String>,
    can_claim: bool,
    mine: bool,
    awaiting: bool,
    limit_bounds: String,
    apr_bounds: String,
    default_limit: String,
    default_apr: String,
    four_eyes: Option<String>,
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

pub(super) fn summary(decision: &credence_review::ReviewDecision) -> String {
    let p = &decision.proposal;
    let verdict = serde_json::to_value(p.verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut parts = vec![verdict];
    if let Some(limit) = p.limit {
        parts.push(format!("limit {limit}"));
    }
    if let Some(apr) = p.apr {
        parts.push(format!("APR {apr}"));
    }
    if !p.reasons.is_empty() {
        parts.push(format!("reasons {}", p.reasons.join(", ")));
    }
    parts.push(format!("by {} at {}", decision.by, time(decision.at_ms)));
    parts.push(format!("note: {}", p.note));
    parts.join(" · ")
}

pub(super) fn step_summary(step: &serde_json::Value) -> String {
    let kind = step["kind"].as_str().unwrap_or_default();
    match kind {
        "features" => match step["values"].as_object() {
            Some(values) if !values.is_empty() => values
                .iter()
                .map(|(name, value)| {
                    let shown = value
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| value.to_string());
                    format!("{name} = {shown}")
                })
                .collect::<Vec<_>>()
                .join(" · "),
            _ => "features".into(),
        },
        "rule_set" => {
            let hits: Vec<String> = step["hits"]
                .as_array()
                .map(|hits| {
                    hits.iter()
                        .map(|h| {
                            format!(
                                "{} → {} ({})",
                                h["rule"].as_str().unwrap_or(""),
                                h["outcome"].as_str().unwrap_or(""),
                                h["reason"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if hits.is_empty() {
                "rules: none hit".into()
            } else {
                format!("rules hit: {}", hits.join("; "))
            }
        }
        "scorecard" => format!(
            "score {}{}",
            step["score"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| step["score"].to_string()),
            step["probability_of_default"]
                .as_f64()
                .map(|p| format!(", probability of default {p:.4}"))
                .unwrap_or_default()
        ),
        "model" => format!(
            "{} {}: probability {}",
            step["model"].as_str().unwrap_or(""),
            step["model_version"].as_str().unwrap_or(""),
            step["probability"]
        ),
        "table" => format!("table rows {}", step["rows"]),
        "matrix" => format!("matrix row {} column {}", step["row"], step["column"]),
        "branch" => format!("branch {}", step["case"].as_str().unwrap_or("")),
        "champion_challenger" => format!(
            "arm {} (bucket {})",
            step["arm"].as_str().unwrap_or(""),
            step["bucket"]
        ),
        other => other.to_string(),
    }
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
    let recorded_steps = serde_json::from_str::<serde_json::Value>(decision.trace.get())
        .ok()
        .and_then(|trace| trace["steps"].as_array().cloned());
    let input: serde_json::Value = serde_json::from_str(&stored.record.input).unwrap_or_default();
    let strategy = service
        .strategies
        .compiled(&stored.record.strategy_version)
        .await
        .ok();
    let personal = |name: &str| {
        strategy
            .as_ref()
            .and_then(|s| s.flow(&stored.record.flow).ok())
            .is_some_and(|flow| {
                flow.schema
                    .fields
                    .iter()
                    .any(|(f, spec)| &**f == name && spec.personal)
            })
    };
    // The compact trace holds no intermediate values; replaying the recorded input with the
    // version and date that decided it (deterministic) shows the derived features too.
    let full_steps: Option<Vec<serde_json::Value>> = strategy.as_ref().and_then(|s| {
        let as_of = chrono::NaiveDate::parse_from_str(&stored.record.as_of, "%Y-%m-%d").ok()?;
        let options = credence_engine::EvalOptions {
            as_of,
            language: stored.record.language.clone(),
            full_trace: true,
        };
        let replayed = s.decide_json(&stored.record.flow, &input, &options).ok()?;
        serde_json::to_value(&replayed.trace.steps)
            .ok()?
            .as_array()
            .cloned()
    });
    let fields = input
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(name, value)| {
                    let text = value
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| value.to_string());
                    let mask = personal(name) && !revealed;
                    (
                        name.clone(),
                        if mask { mask_text(&text) } else { text },
                        mask,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
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
    let bounds = |min: Option<rust_decimal::Decimal>, max: Option<rust_decimal::Decimal>| {
        format!(
            "{} – {}",
            min.map(|m| m.to_string()).unwrap_or_else(|| "0".into()),
            max.map(|m| m.to_string())
                .unwrap_or_else(|| "no cap".into())
        )
    };
    let me = signed.user.username.as_str();
    let reviewer = signed.reviewer();
    let case = &view.case;
    let awaiting = case.state == CaseState::AwaitingConfirmation;
    let first_is_me = case.pending.as_ref().is_some_and(|p| p.by == me);
    let can_claim = view.claimed_by.is_none()
        && case.state != CaseState::Decided
        && !(awaiting && first_is_me)
        && !(case.state == CaseState::Escalated && reviewer.role != ReviewerRole::SeniorReviewer);
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string).unwrap_or_default();
    let offer = match (decision.limit, decision.apr) {
        (Some(limit), Some(apr)) => format!(
            "limit {limit}, APR {apr}, {} months",
            decision
                .term_months
                .map_or_else(|| "null".to_string(), |t| t.to_string())
        ),
        _ => "none".into(),
    };
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
            priority: case.priority,
            due: time(case.due_at_ms),
            breached: view.sla_breached,
            claimed_by: view.claimed_by.clone(),
            outcome: decision.outcome.as_str().to_string(),
            offer,
            reasons: decision
                .reasons
                .iter()
                .map(|r| (r.code.to_string(), r.text.clone()))
                .collect(),
            flags: decision.flags.join(", "),
            strategy: format!(
                "{} {}",
                decision.strategy,
                &stored.record.strategy_version[..12.min(stored.record.strategy_version.len())]
            ),
            steps: full_steps
                .or(recorded_steps)
                .map(|steps| {
                    steps
                        .iter()
                        .map(|s| (text(&s["step"]), step_summary(s)))
                        .collect()
                })
                .unwrap_or_default(),
            fields,
            revealed,
            history,
            account,
            account_events,
            final_summary: case.decision.as_ref().map(|d| {
                let mut s = summary(d);
                if let Some(by) = &case.confirmed_by {
                    s.push_str(&format!(" · confirmed by {by}"));
                }
                s
            }),
            pending_summary: case.pending.as_ref().map(summary),
            can_claim,
            mine: view.claimed_by.as_deref() == Some(me),
            awaiting,
            limit_bounds: policy
                .as_ref()
                .map(|p| bounds(p.limit_min, p.limit_max))
                .unwrap_or_default(),
            apr_bounds: policy
                .as_ref()
                .map(|p| bounds(p.apr_min, p.apr_max))
                .unwrap_or_default(),
            default_limit: decision
                .limit
                .or(case.requested_amount)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            default_apr: decision.apr.map(|a| a.to_string()).unwrap_or_default(),
            four_eyes: policy
                .as_ref()
                .and_then(|p| p.four_eyes_above)
                .map(|t| t.to_string()),
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

pub(super) fn form_command(form: &ActForm) -> Result<Command, String> {
    let note = form.note.clone().unwrap_or_default();
    let decimal =
        |field: &str, text: &Option<String>| -> Result<Option<rust_decimal::Decimal>, String> {
            match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => t
                    .parse::<rust_decimal::Decimal>()
                    .map(Some)
                    .map_err(|_| format!("{field}: {t:?} is not a number")),
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
    Form(form): Form<ActForm>,
) -> Response {
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
