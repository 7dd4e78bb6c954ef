//! Who may do what: roles, the action → roles table, API keys and their verification.
//!
//! A key reads `cred_<id>_<secret>`: the id finds the stored row, and only SHA-256 of the
//! secret is stored. SHA-256 rather than a password hash is deliberate: the secret is 256
//! random bits, so there is nothing to brute-force, and a slow hash on every request would
//! cost more than the decision itself. Verified keys are cached for a few seconds so that the
//! hot path does not read the database; a revocation takes effect within that time.

use crate::error::{AppError, ErrorCode};
use credence_store::{ApiKeyRecord, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// A role a key can hold. `admin` holds every permission (maker-checker still applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Calls the decisions API.
    Decide,
    /// Works the manual-review queue (`reviewer`, the workbench's spelling, is accepted too).
    #[serde(alias = "reviewer")]
    Review,
    /// Uploads strategies, replays decisions, reads history.
    Analyst,
    /// Approves and activates strategy versions, rolls back.
    Approver,
    /// Manages keys and users; may do everything else.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Decide,
        Role::Review,
        Role::Analyst,
        Role::Approver,
        Role::Admin,
    ];

    /// The role's name as keys and users carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Decide => "decide",
            Role::Review => "review",
            Role::Analyst => "analyst",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// The role of this name, if it is one; `reviewer` (the workbench's spelling) is `review`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "reviewer" => Some(Role::Review),
            _ => Role::ALL.into_iter().find(|r| r.as_str() == text),
        }
    }
}

/// Everything a route can do, each guarded by [`Action::roles`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Make a decision.
    Decide,
    /// Read one decision.
    ReadDecision,
    /// List and filter decision history.
    ListDecisions,
    /// Replay a recorded decision.
    ReplayDecision,
    /// Upload a strategy package.
    UploadStrategy,
    /// List and read strategy versions.
    ReadStrategies,
    /// Approve an uploaded version (not one's own).
    ApproveStrategy,
    /// Activate an approved version or roll back.
    ActivateStrategy,
    /// Issue, list and revoke keys; manage users.
    ManageKeys,
    /// Read and verify the audit trail.
    ReadAudit,
    /// Claim and decide review cases.
    ReviewCases,
    /// Register and remove webhooks.
    ManageWebhooks,
    /// Open accounts, post account events, request drawdowns, run account reviews.
    OperateAccounts,
    /// Read accounts and their events.
    ReadAccounts,
    /// Unfreeze, close or charge off an account by hand.
    ChangeAccountStatus,
    /// Rates, drift, vintages and roll rates over the decision log and the accounts.
    ReadMonitoring,
}

impl Action {
    /// The one table of who may do what (`admin` is allowed everything besides).
    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Action::Decide => &[Decide],
            Action::ReadDecision => &[Decide, Review, Analyst],
            Action::ListDecisions => &[Review, Analyst],
            Action::ReplayDecision => &[Analyst],
            Action::UploadStrategy => &[Analyst],
            Action::ReadStrategies => &[Analyst, Approver],
            Action::ApproveStrategy | Action::ActivateStrategy => &[Approver],
            Action::ManageKeys => &[],
            Action::ReadAudit => &[Approver],
            Action::ReviewCases => &[Review],
            Action::ManageWebhooks => &[],
            Action::OperateAccounts => &[Decide],
            Action::ReadAccounts => &[Decide, Review, Analyst],
            Action::ChangeAccountStatus => &[Review],
            Action::ReadMonitoring => &[Analyst, Approver],
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id (not its secret), as the audit names it.
    pub key_id: String,
    /// The user the key was issued to.
    pub user: String,
    /// The key's roles.
    pub roles: Vec<Role>,
    /// The strategies (products) the caller may act on; empty: every strategy.
    pub strategies: Vec<String>,
}

impl Principal {
    /// Whether the caller may act on strategy `name` (a key limited to other products may not).
    pub fn may_use(&self, name: &str) -> bool {
        self.strategies.is_empty() || self.strategies.iter().any(|s| s == name)
    }

    /// Refuses with 403 naming the strategies the caller is limited to.
    pub fn require_strategy(&self, name: &str) -> Result<(), AppError> {
        if self.may_use(name) {
            return Ok(());
        }
        Err(AppError::new(
            ErrorCode::Forbidden,
            format!(
                "user {} may act only on strategies {}, not on {name}",
                self.user,
                self.strategies.join(", ")
            ),
        )
        .with_details(serde_json::json!({"strategy": name, "allowed_strategies": self.strategies})))
    }

    /// The strategies a listing is limited to: `None` for a caller of every strategy.
    pub fn strategy_filter(&self) -> Option<Vec<String>> {
        (!self.strategies.is_empty()).then(|| self.strategies.clone())
    }

    /// Whether the caller's roles allow `action` (admin allows everything).
    pub fn may(&self, action: Action) -> bool {
        self.roles
            .iter()
            .any(|role| *role == Role::Admin || action.roles().contains(role))
    }

    /// Refuses with 403 naming the roles that would be allowed.
    pub fn require(&self, action: Action) -> Result<(), AppError> {
        if self.may(action) {
            return Ok(());
        }
        let mut allowed: Vec<&str> = action.roles().iter().map(|r| r.as_str()).collect();
        allowed.push("admin");
        Err(AppError::new(
            ErrorCode::Forbidden,
            format!(
                "this key (user {}) lacks the role for this operation; it needs one of: {}",
                self.user,
                allowed.join(", ")
            ),
        )
        .with_details(serde_json::json!({ "required_roles": allowed })))
    }
}

/// A newly issued key: the record to store and the plaintext, shown once.
pub struct IssuedKey {
    /// What the store keeps: the id, the roles and a hash of the secret.
    pub record: ApiKeyRecord,
    /// The whole key as the caller sends it; shown once, never stored.
    pub plaintext: String,
}

/// Makes a new key for `user` with `roles`.
pub fn issue_key(
    user: &str,
    roles: &[Role],
    created_by: &str,
    created_at_ms: i64,
) -> Result<IssuedKey, AppError> {
    if roles.is_empty() {
        return Err(AppError::parameter("roles", "give at least one role"));
    }
    validate_user(user)?;
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id)
        .and_then(|()| getrandom::fill(&mut secret))
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("no randomness: {e}")))?;
    let id = hex::encode(id);
    let secret = hex::encode(secret);
    let mut roles: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    roles.sort();
    roles.dedup();
    Ok(IssuedKey {
        plaintext: format!("cred_{id}_{secret}"),
        record: ApiKeyRecord {
            id,
            secret_sha256: credence_store::chain::sha256_hex(secret.as_bytes()),
            user: user.to_string(),
            roles,
            strategies: Vec::new(),
            created_at_ms,
            created_by: created_by.to_string(),
            revoked_at_ms: None,
        },
    })
}

/// Checks names a key or user is limited to: each a valid strategy name; sorted, deduplicated.
pub fn validate_strategy_names(names: &[String]) -> Result<Vec<String>, AppError> {
    let mut names = names.to_vec();
    for name in &names {
        if !credence_engine::is_strategy_name(name) {
            return Err(AppError::parameter(
                "strategies",
                format!("`{name}` is not a strategy name: use the package's name (lower-case letters, digits, - and _)"),
            ));
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// A user name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn validate_user(user: &str) -> Result<(), AppError> {
    let ok = !user.is_empty()
        && user.len() <= 64
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AppError::parameter(
            "user",
            "use 1–64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

/// Splits `cred_<id>_<secret>`.
fn parse_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("cred_")?;
    let (id, secret) = rest.split_once('_')?;
    // Every byte is read (no early exit), so the compiler tests sixteen at a time: a
    // request's key is checked in ~100 instructions rather than ~600.
    let hex_ok = |s: &str, len: usize| {
        s.len() == len && s.bytes().fold(true, |ok, b| ok & b.is_ascii_hexdigit())
    };
    (hex_ok(id, 12) && hex_ok(secret, 64)).then_some((id, secret))
}

/// How long a verified key is trusted without reading the store again: the longest a
/// revocation made through another process takes to reach this one.
const CACHE_TTL: Duration = Duration::from_secs(5);
/// A cached key this old is read again in the background while requests go on using it, so
/// that under steady traffic it never expires. Without this, every request in flight when the
/// entry expired would read the store at once: a burst of blocking reads, one per connection,
/// every [`CACHE_TTL`].
const REFRESH_AFTER: Duration = Duration::from_secs(3);

struct CachedKey {
    verified_at: Instant,
    principal: Principal,
    /// A background read of this key is under way.
    refreshing: bool,
}

#[derive(Default)]
struct KeyCache {
    by_secret_sha256: HashMap<String, CachedKey, foldhash::fast::RandomState>,
    /// Bumped by [`Authenticator::forget`]: a verification that started before it must not
    /// put back what it read, which may predate a revocation.
    generation: u64,
}

/// Verifies bearer keys against the store, with a short cache.
pub struct Authenticator {
    store: Arc<dyn Store>,
    cache: Arc<Mutex<KeyCache>>,
    ttl: Duration,
    refresh_after: Duration,
}

fn unauthenticated(why: &str) -> AppError {
    AppError::new(
        ErrorCode::Unauthenticated,
        format!("{why}; send `Authorization: Bearer <key>` with a key from `credence keys create`"),
    )
}

/// Reads key `id` and checks the secret's hash and the revocation.
async fn verify(store: &dyn Store, id: &str, secret_sha256: &str) -> Result<Principal, AppError> {
    let record = store
        .key(id)
        .await?
        .filter(|r| bool::from(r.secret_sha256.as_bytes().ct_eq(secret_sha256.as_bytes())))
        .ok_or_else(|| unauthenticated("unknown API key"))?;
    if record.revoked_at_ms.is_some() {
        return Err(unauthenticated("this API key was revoked"));
    }
    Ok(Principal {
        key_id: record.id.clone(),
        user: record.user.clone(),
        roles: record.roles.iter().filter_map(|r| Role::parse(r)).collect(),
        strategies: record.strategies.clone(),
    })
}

impl KeyCache {
    /// Keeps a verification made at `generation`, unless the cache was cleared since.
    fn keep(&mut self, generation: u64, secret_sha256: String, principal: Principal) {
        if generation != self.generation {
            return;
        }
        if self.by_secret_sha256.len() > 10_000 {
            self.by_secret_sha256.clear();
        }
        self.by_secret_sha256.insert(
            secret_sha256,
            CachedKey {
                verified_at: Instant::now(),
                principal,
                refreshing: false,
            },
        );
    }
}

impl Authenticator {
    /// An authenticator over the keys in `store`.
    pub fn new(store: Arc<dyn Store>) -> Authenticator {
        Authenticator::with_timing(store, CACHE_TTL, REFRESH_AFTER)
    }

    /// An authenticator whose cache trusts a key for `ttl` and re-reads it after
    /// `refresh_after` (tests shorten them).
    pub fn with_timing(
        store: Arc<dyn Store>,
        ttl: Duration,
        refresh_after: Duration,
    ) -> Authenticator {
        Authenticator {
            store,
            cache: Arc::new(Mutex::new(KeyCache::default())),
            ttl,
            refresh_after: refresh_after.min(ttl),
        }
    }

    /// The principal for an `Authorization` header value, or 401.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AppError> {
        let header = header.ok_or_else(|| unauthenticated("no API key"))?;
        let key = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .ok_or_else(|| unauthenticated("the Authorization header is not a Bearer key"))?;
        let (id, secret) = parse_key(key).ok_or_else(|| unauthenticated("malformed API key"))?;
        let secret_hash = credence_store::chain::sha256_hex(secret.as_bytes());
        let generation = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let generation = cache.generation;
            if let Some(entry) = cache.by_secret_sha256.get_mut(&secret_hash) {
                let age = entry.verified_at.elapsed();
                if age < self.ttl && entry.principal.key_id == id {
                    let principal = entry.principal.clone();
                    if age >= self.refresh_after && !entry.refreshing {
                        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                            entry.refreshing = true;
                            runtime.spawn(refresh(
                                self.store.clone(),
                                self.cache.clone(),
                                generation,
                                id.to_string(),
                                secret_hash,
                            ));
                        }
                    }
                    return Ok(principal);
                }
            }
            generation
        };
        let principal = verify(&*self.store, id, &secret_hash).await?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).keep(
            generation,
            secret_hash,
            principal.clone(),
        );
        Ok(principal)
    }

    /// Forgets cached keys (after a revocation through this process).
    pub fn forget(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.by_secret_sha256.clear();
        cache.generation += 1;
    }
}

/// Reads a cached key again: kept fresh if it still verifies, dropped if it was revoked or
/// removed. If the store cannot be read, the entry stays until its TTL, and the first request
/// after that asks the store itself (and gets its error).
async fn refresh(
    store: Arc<dyn Store>,
    cache: Arc<Mutex<KeyCache>>,
    generation: u64,
    id: String,
    secret_sha256: String,
) {
    let verified = verify(&*store, &id, &secret_sha256).await;
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    match verified {
        Ok(principal) => cache.keep(generation, secret_sha256, principal),
        Err(error) if error.code == ErrorCode::Unauthenticated => {
            cache.by_secret_sha256.remove(&secret_sha256);
        }
        Err(error) => {
            tracing::warn!(key_id = %id, %error, "cannot re-read an API key; it expires from the cache");
            if let Some(entry) = cache.by_secret_sha256.get_mut(&secret_sha256) {
                entry.refreshing = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_may_do_everything_and_others_only_their_table_rows() {
        let principal = |roles: Vec<Role>| Principal {
            key_id: "k".into(),
            user: "u".into(),
            roles,
            strategies: Vec::new(),
        };
        let admin = principal(vec![Role::Admin]);
        let decide = principal(vec![Role::Decide]);
        let analyst = principal(vec![Role::Analyst]);
        assert!(admin.may(Action::ManageKeys) && admin.may(Action::Decide));
        assert!(decide.may(Action::Decide) && decide.may(Action::ReadDecision));
        assert!(!decide.may(Action::ListDecisions) && !decide.may(Action::UploadStrategy));
        assert!(analyst.may(Action::ReplayDecision) && !analyst.may(Action::ApproveStrategy));
        let refusal = decide.require(Action::ManageKeys).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::Forbidden);
        assert_eq!(
            refusal.details["required_roles"],
            serde_json::json!(["admin"])
        );
    }

    fn audit(action: &str) -> credence_store::NewAuditEvent {
        credence_store::NewAuditEvent {
            at_ms: 1,
            actor: "admin".into(),
            action: action.into(),
            subject: "key".into(),
            detail: serde_json::json!({}),
        }
    }

    /// A key revoked through another process (the store changed, this cache not told) stops
    /// working once a background re-read has seen it, while requests meanwhile are answered
    /// from the cache; a key that still verifies stays usable across re-reads.
    #[tokio::test]
    async fn cached_keys_are_reread_in_the_background_and_revocations_land() {
        let dir = std::env::temp_dir().join(format!("credence-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store: Arc<dyn Store> = Arc::new(credence_store::SqliteStore::open(&dir).unwrap());
        let kept = issue_key("alice", &[Role::Decide], "admin", 1).unwrap();
        let revoked = issue_key("bob", &[Role::Review], "admin", 1).unwrap();
        for issued in [&kept, &revoked] {
            store
                .insert_key(issued.record.clone(), audit("key.create"))
                .await
                .unwrap();
        }
        // Every cached use starts a re-read (one at a time); entries never expire here.
        let auth =
            Authenticator::with_timing(store.clone(), Duration::from_secs(3600), Duration::ZERO);
        let bearer = |issued: &IssuedKey| format!("Bearer {}", issued.plaintext);
        for issued in [&kept, &revoked] {
            auth.authenticate(Some(&bearer(issued))).await.unwrap();
        }
        store
            .revoke_key(&revoked.record.id, 2, audit("key.revoke"))
            .await
            .unwrap();
        let mut refused = None;
        for _ in 0..500 {
            match auth.authenticate(Some(&bearer(&revoked))).await {
                Ok(principal) => assert_eq!(principal.user, "bob"),
                Err(error) => {
                    refused = Some(error);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let refused = refused.expect("the revocation never reached the cache");
        assert_eq!(refused.code, ErrorCode::Unauthenticated);
        assert!(refused.message.contains("revoked"), "{}", refused.message);
        for _ in 0..20 {
            let principal = auth.authenticate(Some(&bearer(&kept))).await.unwrap();
            assert_eq!(principal.roles, vec![Role::Decide]);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn issued_keys_parse_and_store_only_a_hash() {
        let issued = issue_key("alice", &[Role::Analyst, Role::Analyst], "admin", 1).unwrap();
        let (id, secret) = parse_key(&issued.plaintext).unwrap();
        assert_eq!(id, issued.record.id);
        assert_eq!(issued.record.roles, vec!["analyst"]);
        assert!(!issued.record.secret_sha256.contains(secret));
        assert_eq!(
            issued.record.secret_sha256,
            credence_store::chain::sha256_hex(secret.as_bytes())
        );
        for bad in [
            "",
            "cred_",
            "cred_abc_def",
            "Bearer x",
            "cred_zzzzzzzzzzzz_00",
        ] {
            assert!(parse_key(bad).is_none(), "{bad}");
        }
        assert!(issue_key("alice", &[], "admin", 1).is_err());
        assert!(issue_key("bad user", &[Role::Decide], "admin", 1).is_err());
    }

    proptest::proptest! {
        /// The key's check reads every byte of the id and the secret: one that is not a hex
        /// digit refuses the key wherever it is, the first byte or the last.
        #[test]
        fn one_byte_that_is_not_a_hex_digit_refuses_the_key(
            id in "[0-9a-fA-F]{12}",
            secret in "[0-9a-fA-F]{64}",
            at in 0usize..76,
            bad in "[g-zG-Z .:\\-\\x00-\\x1f\\x7f]",
        ) {
            let key = format!("cred_{id}_{secret}");
            proptest::prop_assert_eq!(parse_key(&key), Some((id.as_str(), secret.as_str())));
            let mut digits = format!("{id}{secret}").into_bytes();
            digits[at] = bad.as_bytes()[0];
            let digits = String::from_utf8(digits).unwrap();
            let broken = format!("cred_{}_{}", &digits[..12], &digits[12..]);
            proptest::prop_assert!(parse_key(&broken).is_none(), "{broken:?}");
        }
    }
}
