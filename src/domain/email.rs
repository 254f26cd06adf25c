//! Email addresses, checked once where they come in.

use std::fmt;

/// A plausible email address, trimmed; compared case-insensitively through [`EmailAddress::key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailAddress(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Enter an email address like name@example.com")]
pub struct EmailError;

impl EmailAddress {
    pub fn parse(input: &str) -> Result<EmailAddress, EmailError> {
        let email = input.trim();
        let (local, domain) = email.rsplit_once('@').ok_or(EmailError)?;
        let fits = !local.is_empty()
            && local.len() <= 64
            && email.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control() || "<>(),;:\"[]\\".contains(c))
            && !local.contains('@');
        if fits { Ok(EmailAddress(email.to_owned())) } else { Err(EmailError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used to find one person however they capitalise their address.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_refuses_the_rest() {
        assert_eq!(EmailAddress::parse(" Reader@Example.org ").map(|e| e.key()), Ok("reader@example.org".into()));
        for bad in [
            "",
            "reader",
            "@example.org",
            "reader@",
            "reader@example",
            "a b@example.org",
            "<x>@example.org",
            "x@@example.org",
        ] {
            assert_eq!(EmailAddress::parse(bad), Err(EmailError), "{bad}");
        }
    }
}
