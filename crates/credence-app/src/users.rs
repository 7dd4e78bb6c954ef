//! Workbench users: argon2 password hashes, and the rules a new user must meet.

use crate::error::{AppError, ErrorCode};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The roles a workbench user can have.
pub const USER_ROLES: [&str; 2] = ["reviewer", "senior_reviewer"];

/// A workbench role by any of its spellings: `reviewer` or `review` (the key role's name),
/// `senior_reviewer` or `senior_review`; `None` for anything else.
pub fn user_role(text: &str) -> Option<&'static str> {
    match text.trim() {
        "reviewer" | "review" => Some("reviewer"),
        "senior_reviewer" | "senior_review" => Some("senior_reviewer"),
        _ => None,
    }
}

/// Fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// An argon2id hash (PHC string) of `password`, salted.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::parameter(
            "password",
            format!("use at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes)
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("cannot make a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| {
            AppError::new(
                ErrorCode::Internal,
                format!("cannot hash the password: {e}"),
            )
        })
}

/// A hash no password is known to match, verified against when a username does not exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut secret = [0u8; 24];
        let _ = getrandom::fill(&mut secret);
        hash_password(&hex::encode(secret)).unwrap_or_default()
    })
}

/// Whether `password` matches a stored hash (false for a malformed hash).
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_salted_hashes_that_verify_only_themselves() {
        let first = hash_password("correct horse battery").unwrap();
        let second = hash_password("correct horse battery").unwrap();
        assert_ne!(first, second, "salted");
        assert!(first.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &first));
        assert!(!verify_password("correct horse batterY", &first));
        assert!(!verify_password("anything", "not a hash"));
        assert_eq!(
            hash_password("short").unwrap_err().code,
            ErrorCode::InvalidParameter
        );
    }
}
