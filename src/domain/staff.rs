//! Staff accounts: roles, and passwords kept only as argon2id hashes.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// What a member of staff may do; each role may do all that the one before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads the fund, gifts, supporters and members.
    Viewer,
    /// Also enters offline gifts and exports.
    Finance,
    /// Also manages campaigns and staff.
    Admin,
}

impl Role {
    pub fn parse(input: &str) -> Option<Role> {
        match input {
            "viewer" => Some(Role::Viewer),
            "finance" => Some(Role::Finance),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Finance => "finance",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD} characters; a few words make a good one")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD} characters")]
    TooLong,
    #[error("the password could not be hashed: {0}")]
    Hashing(String),
}

/// Length, not symbols, makes a password strong (NCSC guidance).
const MIN_PASSWORD: usize = 12;
/// Hashing cost grows with length: a bound keeps a login form from being a denial of service.
const MAX_PASSWORD: usize = 1024;

/// An argon2id hash of `password` with a fresh salt, in the PHC string format.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let length = password.chars().count();
    if length < MIN_PASSWORD {
        return Err(PasswordError::TooShort);
    }
    if length > MAX_PASSWORD {
        return Err(PasswordError::TooLong);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Whether `password` is the one hashed in `hash`; false for a hash that cannot be read.
pub fn verify_password(hash: &str, password: &str) -> bool {
    password.chars().count() <= MAX_PASSWORD
        && PasswordHash::new(hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_kept_as_argon2id_and_checked() {
        let hash = hash_password("correct horse battery").expect("hashed");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery!"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert_ne!(hash, hash_password("correct horse battery").expect("hashed"), "a fresh salt each time");
        assert_eq!(hash_password("short"), Err(PasswordError::TooShort));
        assert_eq!(hash_password(&"x".repeat(1025)), Err(PasswordError::TooLong));
    }

    #[test]
    fn roles_read_and_rank() {
        assert_eq!(Role::parse("finance"), Some(Role::Finance));
        assert_eq!(Role::parse("Admin"), None);
        assert!(Role::Viewer < Role::Finance && Role::Finance < Role::Admin);
        assert_eq!(Role::Admin.as_str(), "admin");
    }
}
