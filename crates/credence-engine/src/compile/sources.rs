//! Reading a package's files: sizes and YAML within limits, data sources, caps and review settings.

use super::*;

/// Data sources: providers with names unique across sources (each has its own circuit
/// breaker), sane timeouts, fields with pointers and well-typed defaults, a failure policy
/// with a known reason code.
pub(super) fn compile_data_sources(
    manifest: &RawManifest,
    problems: &mut Vec<CompileProblem>,
) -> BTreeMap<String, Arc<DataSource>> {
    let mut problem =
        |location: String, message: String| problems.push(CompileProblem { location, message });
    let mut provider_names = HashSet::new();
    let mut sources = BTreeMap::new();
    for (name, raw) in &manifest.data_sources {
        let at = |field: &str| format!("{MANIFEST}: data_sources.{name}.{field}");
        let before = provider_names.len();
        if raw.providers.is_empty() {
            problem(
                at("providers"),
                "list at least one provider (a waterfall is tried in order)".into(),
            );
        }
        let mut providers = Vec::new();
        for (i, p) in raw.providers.iter().enumerate() {
            let path = at(&format!("providers[{i}] ({})", p.name));
            if !provider_names.insert(p.name.clone()) {
                problem(
                    path.clone(),
                    format!(
                        "provider name {} is used twice; each provider has its own circuit breaker",
                        p.name
                    ),
                );
            }
            if !(1..=60_000).contains(&p.timeout_ms) {
                problem(
                    path.clone(),
                    format!("timeout_ms {} is outside 1–60000", p.timeout_ms),
                );
            }
            if p.retries > 5 {
                problem(path.clone(), "retries: at most 5".into());
            }
            if !p.url.contains("{subject}") {
                problem(path.clone(), "the url must contain {subject}".into());
            }
            let secret_free = |text: &str| {
                !text.to_ascii_lowercase().contains("bearer ") || text.contains("{secret:")
            };
            for (header, value) in &p.headers {
                if !secret_free(value) {
                    problem(path.clone(), format!("header {header} holds a credential; write {{secret:NAME}} and set NAME in the environment or the secrets file"));
                }
            }
            let cost = p.cost.as_ref().and_then(|c| {
                let parsed = decimal_setting(c);
                if parsed.is_none() {
                    problem(path.clone(), format!("cost {} is not a number", c.0));
                }
                parsed
            });
            providers.push(Provider {
                name: p.name.clone(),
                url: p.url.clone(),
                headers: p
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                timeout_ms: p.timeout_ms,
                retries: p.retries,
                cost,
            });
        }
        let _ = before;
        if raw.fields.is_empty() {
            problem(at("fields"), "map at least one response field".into());
        }
        let mut fields = Vec::new();
        for (field, f) in &raw.fields {
            let path = at(&format!("fields.{field}"));
            if !is_identifier(field) {
                problem(
                    path.clone(),
                    "field names are letters, digits and _ and start with a letter".into(),
                );
            }
            if !f.pointer.is_empty() && !f.pointer.starts_with('/') {
                problem(
                    path.clone(),
                    format!(
                        "pointer {:?} must start with / (RFC 6901), e.g. /report/inquiries_12m",
                        f.pointer
                    ),
                );
            }
            let kind = match f.kind {
                RawDataFieldType::Number => DataFieldKind::Number,
                RawDataFieldType::Integer => DataFieldKind::Integer,
                RawDataFieldType::String => DataFieldKind::String,
                RawDataFieldType::Boolean => DataFieldKind::Boolean,
            };
            let default = match &f.default {
                None => None,
                // `default: null`: an absent field is simply missing, not a failure.
                Some(serde_json::Value::Null) => Some(serde_json::Value::Null),
                Some(value) => match crate::data::map_response(
                    &[DataField {
                        name: field.clone(),
                        pointer: String::new(),
                        kind,
                        default: None,
                    }],
                    value,
                ) {
                    Ok(mut mapped) => mapped.remove(field),
                    Err(_) => {
                        problem(
                            path.clone(),
                            format!("default {value} is not {}", crate::data::kind_name(kind)),
                        );
                        None
                    }
                },
            };
            fields.push(DataField {
                name: field.clone(),
                pointer: f.pointer.clone(),
                kind,
                default,
            });
        }
        let reason = |problem: &mut dyn FnMut(String, String)| -> Option<Arc<str>> {
            match &raw.on_failure.reason {
                Some(code) if manifest.reasons.contains_key(code) => Some(code.as_str().into()),
                Some(code) => {
                    problem(
                        at("on_failure.reason"),
                        format!("unknown reason code {code}; declare it under reasons"),
                    );
                    None
                }
                None => {
                    problem(
                        at("on_failure.reason"),
                        "a refer or decline policy needs a reason code".into(),
                    );
                    None
                }
            }
        };
        let on_failure = match raw.on_failure.outcome.as_str() {
            "refer" => reason(&mut problem).map(FailurePolicy::Refer),
            "decline" => reason(&mut problem).map(FailurePolicy::Decline),
            "continue" => Some(FailurePolicy::Continue),
            other => {
                problem(
                    at("on_failure.outcome"),
                    format!("must be refer, decline or continue, got {other}"),
                );
                None
            }
        };
        if let Some(on_failure) = on_failure {
            sources.insert(
                name.clone(),
                Arc::new(DataSource {
                    name: name.as_str().into(),
                    subject_field: raw.subject.as_str().into(),
                    consent_field: raw.consent.as_deref().map(Arc::from),
                    providers,
                    fields,
                    cache_ttl_seconds: raw.cache_ttl_seconds,
                    breaker_failures: raw.circuit_breaker.failures.max(1),
                    breaker_open_seconds: raw.circuit_breaker.open_seconds,
                    on_failure,
                }),
            );
        }
    }
    sources
}

pub(super) fn read_text<'s>(
    source: &'s PackageSource,
    path: &str,
    used: &mut BTreeSet<String>,
    max_bytes: usize,
) -> Result<&'s str, CompileProblem> {
    let bytes = source.bytes(path).ok_or_else(|| CompileProblem {
        location: path.to_string(),
        message: format!("file {path} is not in the package"),
    })?;
    used.insert(path.to_string());
    check_text_size(path, bytes, max_bytes).map_err(|message| CompileProblem {
        location: path.to_string(),
        message,
    })?;
    std::str::from_utf8(bytes).map_err(|e| CompileProblem {
        location: path.to_string(),
        message: format!("not UTF-8 text: {e}"),
    })
}

/// Holds an input field to the lengths expressions are bounded by: an undeclared maximum
/// becomes the limit, a declared one above it is refused.
pub(super) fn bound_field(
    mut spec: FieldSpec,
    limits: &credence_expr::ExprLimits,
) -> Result<FieldSpec, String> {
    use crate::schema::FieldKind;
    let cap = |declared: Option<usize>, limit: u64, what: &str, setting: &str| {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        match declared {
            Some(n) if n > limit => Err(format!(
                "{what} {n} is above the limit of {limit} (raise limits.{setting} if it must be)"
            )),
            Some(n) => Ok(Some(n)),
            None => Ok(Some(limit)),
        }
    };
    spec.kind = match spec.kind {
        FieldKind::String {
            min_length,
            max_length,
        } => FieldKind::String {
            min_length,
            max_length: cap(
                max_length,
                limits.max_string_chars,
                "max_length",
                "string_chars",
            )?,
        },
        FieldKind::List {
            items,
            min_items,
            max_items,
        } => FieldKind::List {
            items: Box::new(bound_field(*items, limits)?),
            min_items,
            max_items: cap(max_items, limits.max_list_items, "max_items", "list_items")?,
        },
        other => other,
    };
    Ok(spec)
}

pub(crate) fn check_text_size(path: &str, bytes: &[u8], max_bytes: usize) -> Result<(), String> {
    if bytes.len() > max_bytes {
        return Err(format!(
            "{path} has {} bytes; a text file may have at most {max_bytes} (split it, or raise limits.text_file_bytes)",
            bytes.len()
        ));
    }
    Ok(())
}

/// Parses one YAML file of the package after counting its nodes, aliases expanded, against
/// the limit: a small file that expands to millions of nodes is refused before it is built.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    limits: &Limits,
) -> Result<T, CompileProblem> {
    match check_yaml_nodes(text, limits.max_yaml_nodes) {
        Ok(()) => {}
        Err(YamlRefusal::Yaml(e)) => return Err(yaml_problem(file, &e)),
        Err(YamlRefusal::TooManyNodes(message)) => {
            return Err(CompileProblem {
                location: file.to_string(),
                message,
            })
        }
    }
    serde_yaml_ng::from_str(text).map_err(|e| yaml_problem(file, &e))
}

pub(super) fn yaml_problem(file: &str, error: &serde_yaml_ng::Error) -> CompileProblem {
    let location = match error.location() {
        Some(l) => format!("{file}:{}:{}", l.line(), l.column()),
        None => file.to_string(),
    };
    CompileProblem {
        location,
        message: error.to_string(),
    }
}

pub(crate) fn decimal_setting(n: &YamlNumber) -> Option<Decimal> {
    crate::schema::parse_decimal_text(&n.0)
}

pub(super) fn compile_caps(
    raw: &RawCaps,
    reasons: &BTreeMap<String, BTreeMap<String, String>>,
    problem: &mut impl FnMut(String, String),
) -> Caps {
    let mut number = |n: &Option<YamlNumber>, field: &str| -> Option<Decimal> {
        let n = n.as_ref()?;
        match decimal_setting(n) {
            Some(d) if d >= Decimal::ZERO => Some(d),
            _ => {
                problem(
                    format!("{MANIFEST}: caps.{field}"),
                    format!("must be a non-negative number, got {}", n.0),
                );
                None
            }
        }
    };
    let caps = Caps {
        apr_max: number(&raw.apr_max, "apr_max"),
        limit_max: number(&raw.limit_max, "limit_max"),
        limit_min: number(&raw.limit_min, "limit_min"),
        term_months_max: raw.term_months_max,
        below_limit_min_reason: raw.below_limit_min_reason.as_deref().map(Arc::from),
    };
    if caps.limit_min.is_some() {
        match &caps.below_limit_min_reason {
            None => problem(
                format!("{MANIFEST}: caps.below_limit_min_reason"),
                "limit_min needs the reason code given when an offer falls below it".into(),
            ),
            Some(code) if !reasons.contains_key(&**code) => problem(
                format!("{MANIFEST}: caps.below_limit_min_reason"),
                format!("unknown reason code {code}; declare it under reasons"),
            ),
            _ => {}
        }
    }
    if let (Some(min), Some(max)) = (caps.limit_min, caps.limit_max) {
        if min > max {
            problem(
                format!("{MANIFEST}: caps"),
                format!("limit_min {min} is above limit_max {max}"),
            );
        }
    }
    caps
}

pub(super) fn compile_review(
    raw: &crate::format::RawReview,
    problem: &mut impl FnMut(String, String),
) -> ReviewSettings {
    let mut positive = |value: Option<u32>, field: &str, default: u32| match value {
        Some(0) => {
            problem(
                format!("{MANIFEST}: review.{field}"),
                "must be at least 1 minute".into(),
            );
            default
        }
        Some(minutes) => minutes,
        None => default,
    };
    let default_sla_minutes = positive(raw.default_sla_minutes, "default_sla_minutes", 240);
    let claim_minutes = positive(raw.claim_minutes, "claim_minutes", 15);
    let mut queues = BTreeMap::new();
    for (name, queue) in &raw.queues {
        let minutes = positive(
            Some(queue.sla_minutes),
            &format!("queues.{name}.sla_minutes"),
            default_sla_minutes,
        );
        queues.insert(name.clone(), minutes);
    }
    let mut number =
        |n: &Option<YamlNumber>, field: &str| match n.as_ref().map(|n| (n, decimal_setting(n))) {
            None => None,
            Some((_, Some(value))) if !value.is_sign_negative() => Some(value),
            Some((n, _)) => {
                problem(
                    format!("{MANIFEST}: review.{field}"),
                    format!("must be a non-negative number, got {}", n.0),
                );
                None
            }
        };
    ReviewSettings {
        queues,
        default_sla_minutes,
        claim_minutes,
        four_eyes_above: number(&raw.four_eyes_above, "four_eyes_above"),
        apr_min: number(&raw.apr_min, "apr_min"),
    }
}
