//! Every variable of SPEC §1, parsed once into typed configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;
use url::Url;

use axum_client_ip::ClientIpSource;

use crate::clock::{Clock, FixedClock, SystemClock};
use crate::domain::{Pence, ShareRules, parse_amount};

/// The service's configuration. `Debug` shows no secret: the Stripe keys, and any password in
/// `DATABASE_URL` or `SMTP_URL`, are redacted, so that logging a config leaks nothing.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub app_addr: SocketAddr,
    pub public_base_url: Url,
    pub stripe: Option<StripeConfig>,
    pub smtp_url: Option<Url>,
    pub mail_dir: PathBuf,
    pub mail_from: Mailbox,
    pub org_name: String,
    pub org_registration: String,
    pub fund_timezone: Tz,
    pub share_price: Pence,
    pub share_max_holding: Pence,
    pub donation_min: Pence,
    pub donation_max: Pence,
    /// `DONATION_PRESETS_ONCE` and `DONATION_PRESETS_MONTHLY`: the amount buttons the donation
    /// form offers for each frequency, in pounds, each within `DONATION_MIN..=DONATION_MAX`.
    pub presets: Presets,
    /// `CLIENT_IP_SOURCE`: where a request's client address comes from, for the login limits.
    /// The socket's peer by default; behind a proxy, the header it sets (`RightmostXForwardedFor`
    /// for nginx's `$proxy_add_x_forwarded_for`, whose last address is the one nginx saw).
    pub client_ip_source: ClientIpSource,
    /// `LIVE_MAX_STREAMS`: live-update streams one instance holds at most (SPEC §9).
    pub live_max_streams: usize,
    /// `HEADER_TIMEOUT` (seconds, default 30): how long a client has to send a request's
    /// headers, and how long a keep-alive connection may sit idle (SPEC §9).
    pub header_timeout: std::time::Duration,
    /// `RETENTION_YEARS` (default 7, at least 1): years without activity after which a giver's
    /// personal data is pseudonymised by the retention job (SPEC §10).
    pub retention_years: u32,
    /// `COOPFUND_NOW`: a fixed business clock for tests.
    pub now: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_password(&self.database_url))
            .field("app_addr", &self.app_addr)
            .field("public_base_url", &self.public_base_url.as_str())
            .field("stripe", &self.stripe)
            .field("smtp_url", &self.smtp_url.as_ref().map(|u| redact_password(u.as_str())))
            .field("mail_dir", &self.mail_dir)
            .field("mail_from", &self.mail_from.to_string())
            .field("org_name", &self.org_name)
            .field("org_registration", &self.org_registration)
            .field("fund_timezone", &self.fund_timezone)
            .field("share_price", &self.share_price)
            .field("share_max_holding", &self.share_max_holding)
            .field("donation_min", &self.donation_min)
            .field("donation_max", &self.donation_max)
            .field("client_ip_source", &self.client_ip_source)
            .field("live_max_streams", &self.live_max_streams)
            .field("header_timeout", &self.header_timeout)
            .field("retention_years", &self.retention_years)
            .field("now", &self.now)
            .finish()
    }
}

/// A URL with any password replaced by `redacted`; a URL that does not parse is redacted whole,
/// since its password cannot be found.
fn redact_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            if parsed.set_password(Some("redacted")).is_ok() {
                parsed.to_string()
            } else {
                "redacted".to_owned()
            }
        }
        Ok(_) => url.to_owned(),
        Err(_) => "redacted".to_owned(),
    }
}

#[derive(Clone)]
pub struct StripeConfig {
    pub secret_key: String,
    pub webhook_secret: String,
    pub api_base: Url,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &"redacted")
            .field("webhook_secret", &"redacted")
            .field("api_base", &self.api_base.as_str())
            .finish()
    }
}

/// A variable that cannot be used; the message names it, on one line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

impl Config {
    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Config, ConfigError> {
        dotenvy::dotenv().ok();
        Config::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |name: &'static str, default: &str| get(name).unwrap_or_else(|| default.to_owned());
        let fail = |name: &'static str, problem: String| ConfigError { name, problem };

        let database_url = var("DATABASE_URL", "sqlite://data/coopfund.db?mode=rwc");
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|p| database_url.starts_with(p)) {
            return Err(fail("DATABASE_URL", "must start with sqlite:// or postgres://".into()));
        }
        let addr = var("APP_ADDR", "127.0.0.1:8080");
        let addr = if addr.starts_with(':') { format!("127.0.0.1{addr}") } else { addr };
        let app_addr =
            addr.parse().map_err(|_| fail("APP_ADDR", format!("{addr:?} is not an address like 127.0.0.1:8080")))?;
        let public_base_url = parse_url("PUBLIC_BASE_URL", &var("PUBLIC_BASE_URL", "http://127.0.0.1:8080"))?;

        let stripe = match (get("STRIPE_SECRET_KEY"), get("STRIPE_WEBHOOK_SECRET")) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(fail("STRIPE_WEBHOOK_SECRET", "required when STRIPE_SECRET_KEY is set".into()));
            }
            (Some(secret_key), Some(webhook_secret)) => {
                if !webhook_secret.starts_with("whsec_") {
                    return Err(fail("STRIPE_WEBHOOK_SECRET", "must start with whsec_".into()));
                }
                let api_base = parse_url("STRIPE_API_BASE", &var("STRIPE_API_BASE", "https://api.stripe.com"))?;
                Some(StripeConfig { secret_key, webhook_secret, api_base })
            }
        };
        let smtp_url = get("SMTP_URL").map(|u| parse_url("SMTP_URL", &u)).transpose()?;
        if let Some(url) = &smtp_url
            && !["smtp", "smtps"].contains(&url.scheme())
        {
            return Err(fail("SMTP_URL", "must start with smtp:// or smtps://".into()));
        }
        let mail_from = var("MAIL_FROM", "Fighting Fund <fund@localhost>")
            .parse()
            .map_err(|_| fail("MAIL_FROM", "must be an address such as Fighting Fund <fund@example.org>".into()))?;
        let fund_timezone = var("FUND_TIMEZONE", "Europe/London")
            .parse()
            .map_err(|_| fail("FUND_TIMEZONE", "must be an IANA time zone such as Europe/London".into()))?;
        let pounds = |name: &'static str, default: &str| {
            parse_amount(&var(name, default)).map_err(|e| fail(name, e.to_string()))
        };
        let donation_min = pounds("DONATION_MIN", "1")?;
        let donation_max = pounds("DONATION_MAX", "10000")?;
        if donation_max < donation_min {
            return Err(fail("DONATION_MAX", "must not be below DONATION_MIN".into()));
        }
        let presets = Presets {
            once: preset_list(
                "DONATION_PRESETS_ONCE",
                &var("DONATION_PRESETS_ONCE", "5,10,25,50"),
                donation_min,
                donation_max,
            )?,
            monthly: preset_list(
                "DONATION_PRESETS_MONTHLY",
                &var("DONATION_PRESETS_MONTHLY", "5,10,15,25"),
                donation_min,
                donation_max,
            )?,
        };
        let share_price = pounds("SHARE_PRICE", "1")?;
        if share_price <= Pence::ZERO {
            return Err(fail("SHARE_PRICE", "must be more than nothing".into()));
        }
        let share_max_holding = pounds("SHARE_MAX_HOLDING", "20000")?;
        if share_max_holding < share_price {
            return Err(fail("SHARE_MAX_HOLDING", "must be at least SHARE_PRICE".into()));
        }
        let client_ip_source = var("CLIENT_IP_SOURCE", "ConnectInfo").parse().map_err(|_| {
            fail(
                "CLIENT_IP_SOURCE",
                "must be ConnectInfo (no proxy) or the proxy's header, such as RightmostXForwardedFor".into(),
            )
        })?;
        let count = |name: &'static str, default: &str, least: u64| {
            let value = var(name, default);
            value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= least)
                .ok_or_else(|| fail(name, format!("{value:?} is not a whole number of at least {least}")))
        };
        let live_max_streams = usize::try_from(count("LIVE_MAX_STREAMS", "10000", 0)?)
            .map_err(|_| fail("LIVE_MAX_STREAMS", "is too large".into()))?;
        let header_timeout = std::time::Duration::from_secs(count("HEADER_TIMEOUT", "30", 1)?);
        let retention_years = u32::try_from(count("RETENTION_YEARS", "7", 1)?)
            .ok()
            .filter(|years| *years <= 1_000)
            .ok_or_else(|| fail("RETENTION_YEARS", "is more than 1000 years".into()))?;
        let now = get("COOPFUND_NOW")
            .map(|v| {
                DateTime::parse_from_rfc3339(&v).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                    fail("COOPFUND_NOW", format!("{v:?} is not an RFC 3339 instant like 2026-11-17T12:00:00Z"))
                })
            })
            .transpose()?;

        Ok(Config {
            database_url,
            app_addr,
            public_base_url,
            stripe,
            smtp_url,
            mail_dir: PathBuf::from(var("MAIL_DIR", "data/mail")),
            mail_from,
            org_name: var("ORG_NAME", "Readers' Co-operative"),
            org_registration: var("ORG_REGISTRATION", ""),
            fund_timezone,
            share_price,
            share_max_holding,
            donation_min,
            donation_max,
            presets,
            client_ip_source,
            live_max_streams,
            header_timeout,
            retention_years,
            now,
        })
    }

    pub fn share_rules(&self) -> ShareRules {
        ShareRules { price: self.share_price, max_holding: self.share_max_holding }
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        match self.now {
            Some(now) => Arc::new(FixedClock(now)),
            None => Arc::new(SystemClock),
        }
    }
}

/// The donation form's amount buttons, in pounds, in the order shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presets {
    pub once: Vec<Pence>,
    pub monthly: Vec<Pence>,
}

/// One to six amounts separated by commas (`5,10,25,50`), each a gift the form would accept.
fn preset_list(name: &'static str, value: &str, min: Pence, max: Pence) -> Result<Vec<Pence>, ConfigError> {
    let fail = |problem: String| ConfigError { name, problem };
    let amounts = value
        .split(',')
        .map(|item| match parse_amount(item) {
            Ok(amount) if (min..=max).contains(&amount) => Ok(amount),
            Ok(_) => Err(fail(format!("{:?} is outside DONATION_MIN..=DONATION_MAX", item.trim()))),
            Err(e) => Err(fail(format!("{:?}: {e}", item.trim()))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !(1..=6).contains(&amounts.len()) {
        return Err(fail("give one to six amounts separated by commas, such as 5,10,25,50".into()));
    }
    Ok(amounts)
}

fn parse_url(name: &'static str, value: &str) -> Result<Url, ConfigError> {
    Url::parse(value).map_err(|e| ConfigError { name, problem: format!("{value:?} is not a URL ({e})") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_need_nothing() {
        let c = config(&[]).expect("defaults are valid");
        assert_eq!(c.app_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.fund_timezone, chrono_tz::Europe::London);
        assert_eq!(c.donation_max, Pence::from_pounds(10_000));
        assert!(c.stripe.is_none() && c.smtp_url.is_none() && c.now.is_none());
    }

    #[test]
    fn each_mistake_names_its_variable() {
        let name = |vars: &[(&str, &str)]| config(vars).err().map(|e| e.name);
        assert_eq!(name(&[("DATABASE_URL", "mysql://x")]), Some("DATABASE_URL"));
        assert_eq!(name(&[("APP_ADDR", "nowhere")]), Some("APP_ADDR"));
        assert_eq!(name(&[("PUBLIC_BASE_URL", "not a url")]), Some("PUBLIC_BASE_URL"));
        assert_eq!(name(&[("STRIPE_SECRET_KEY", "sk_test_x")]), Some("STRIPE_WEBHOOK_SECRET"));
        assert_eq!(name(&[("FUND_TIMEZONE", "Mars/Olympus")]), Some("FUND_TIMEZONE"));
        assert_eq!(name(&[("DONATION_MIN", "-1")]), Some("DONATION_MIN"));
        assert_eq!(name(&[("COOPFUND_NOW", "yesterday")]), Some("COOPFUND_NOW"));
        assert_eq!(name(&[("SMTP_URL", "http://mail")]), Some("SMTP_URL"));
        assert_eq!(name(&[("MAIL_FROM", "nobody")]), Some("MAIL_FROM"));
        assert_eq!(name(&[("CLIENT_IP_SOURCE", "nginx")]), Some("CLIENT_IP_SOURCE"));
        assert_eq!(name(&[("DONATION_PRESETS_ONCE", "5,ten")]), Some("DONATION_PRESETS_ONCE"));
        assert_eq!(name(&[("DONATION_PRESETS_MONTHLY", "5,20000")]), Some("DONATION_PRESETS_MONTHLY"));
        assert_eq!(name(&[("DONATION_PRESETS_ONCE", "1,2,3,4,5,6,7")]), Some("DONATION_PRESETS_ONCE"));
        let line = config(&[("FUND_TIMEZONE", "Mars/Olympus")]).err().map(|e| e.to_string());
        assert_eq!(
            line.as_deref(),
            Some("invalid configuration: FUND_TIMEZONE: must be an IANA time zone such as Europe/London")
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = config(&[
            ("DATABASE_URL", "postgres://coopfund:s3cret-db@db.example/coopfund"),
            ("STRIPE_SECRET_KEY", "sk_live_s3cret-key"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_s3cret-hook"),
            ("SMTP_URL", "smtps://mailer:s3cret-mail@smtp.example"),
        ])
        .expect("valid");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://coopfund:redacted@db.example/coopfund"), "{shown}");
        assert!(shown.contains("smtps://mailer:redacted@smtp.example"), "{shown}");
        assert_eq!(redact_password("sqlite://data/coopfund.db?mode=rwc"), "sqlite://data/coopfund.db?mode=rwc");
    }

    #[test]
    fn stream_cap_and_header_timeout_have_spec_defaults() {
        let c = config(&[]).expect("valid");
        assert_eq!((c.live_max_streams, c.header_timeout.as_secs()), (10_000, 30));
        let name = |vars: &[(&str, &str)]| config(vars).err().map(|e| e.name);
        assert_eq!(name(&[("LIVE_MAX_STREAMS", "lots")]), Some("LIVE_MAX_STREAMS"));
        assert_eq!(name(&[("HEADER_TIMEOUT", "0")]), Some("HEADER_TIMEOUT"));
    }

    #[test]
    fn port_only_addresses_listen_on_loopback() {
        let c = config(&[("APP_ADDR", ":0"), ("COOPFUND_NOW", "2026-11-17T12:00:00Z")]).expect("valid");
        assert_eq!(c.app_addr.to_string(), "127.0.0.1:0");
        assert_eq!(c.clock().now().to_rfc3339(), "2026-11-17T12:00:00+00:00");
    }
}
