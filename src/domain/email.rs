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

/// The text with every email address in it masked ("j***@example.org"), for logs:
/// an SMTP server's error names the recipient, and logs must not.
pub fn mask_addresses(text: &str) -> String {
    let is_local = |c: char| c.is_ascii_alphanumeric() || "._%+-'".contains(c);
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let before = &rest[..at];
        let local_start = before.char_indices().rev().take_while(|(_, c)| is_local(*c)).last().map(|(i, _)| i);
        match local_start {
            Some(start) => {
                masked.push_str(&before[..start]);
                masked.extend(before[start..].chars().next());
                masked.push_str("***@");
            }
            None => masked.push_str(&rest[..=at]),
        }
        rest = &rest[at + 1..];
    }
    masked.push_str(rest);
    masked
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
    fn addresses_in_log_text_are_masked() {
        assert_eq!(
            mask_addresses("550 5.1.1 <jane.doe@example.org>: Recipient address rejected"),
            "550 5.1.1 <j***@example.org>: Recipient address rejected"
        );
        assert_eq!(mask_addresses("to a@b.c and bob+x@d.org"), "to a***@b.c and b***@d.org");
        assert_eq!(mask_addresses("no address @ all"), "no address @ all");
        assert_eq!(mask_addresses("ünïcode ok"), "ünïcode ok");
    }

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
