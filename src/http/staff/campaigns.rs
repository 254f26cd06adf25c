//! Campaigns (admin): create one, change its target or last day, close it. The public
//! figures follow at once, on every instance.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use super::Frame;
use super::auth::{Admin, AtLeast, StaffUser, Viewer};
use crate::domain::{
    Campaign, CampaignError, CampaignKind, FieldErrors, NewCampaign, Pence, Progress, form_date, given, parse_amount,
};
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::form::Fields;
use crate::store::{CampaignChange, StoreError};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CampaignForm {
    title: String,
    target: String,
    starts_on: String,
    ends_on: String,
    slug: String,
    monthly: Option<String>,
    kind: String,
}

#[derive(Template)]
#[template(path = "staff/campaigns.html")]
struct CampaignsPage<'a> {
    frame: Frame<'a>,
    /// Each campaign's figures, kind, and target in pounds and pence for its form.
    campaigns: Vec<(Progress, &'static str, String)>,
    form: &'a CampaignForm,
    errors: &'a FieldErrors,
    /// The new campaign form's text fields: name, label, what was typed, input type.
    fields: [(&'static str, &'static str, &'a str, &'static str); 5],
    /// The campaign whose change was refused, and why.
    change_error: Option<(String, String)>,
}

impl CampaignsPage<'_> {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

async fn page(
    state: &AppState,
    user: &StaffUser,
    form: &CampaignForm,
    errors: &FieldErrors,
    change_error: Option<(String, String)>,
) -> Result<Html<String>, PageError> {
    let today = state.fund.today();
    let campaigns = state
        .store
        .campaigns()
        .await?
        .iter()
        .map(|c| (c.progress(today), c.kind.as_str(), c.target.map(Pence::decimal).unwrap_or_default()))
        .collect();
    let fields = [
        ("title", "Title", form.title.as_str(), "text"),
        ("target", "Target (£; a share issue may have none)", form.target.as_str(), "text"),
        ("starts_on", "First day", form.starts_on.as_str(), "date"),
        ("ends_on", "Last day (a share issue may have none)", form.ends_on.as_str(), "date"),
        ("slug", "Slug (optional)", form.slug.as_str(), "text"),
    ];
    let page =
        CampaignsPage { frame: Frame::new(state, user, "campaigns"), campaigns, form, errors, fields, change_error };
    Ok(Html(page.render()?))
}

pub async fn list(AtLeast(user): Viewer, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    page(&state, &user, &CampaignForm::default(), &FieldErrors::new(), None).await
}

fn parse(form: &CampaignForm) -> Result<NewCampaign, FieldErrors> {
    let mut errors = FieldErrors::new();
    // A blank target or last day is none at all (a share issue may run without either).
    let target = match given(&form.target) {
        None => Some(None),
        Some(t) => parse_amount(t).map_err(|e| errors.insert("target", e.to_string())).ok().map(Some),
    };
    let starts_on = form_date(&mut errors, "starts_on", &form.starts_on);
    let ends_on = match given(&form.ends_on) {
        None => Some(None),
        Some(e) => form_date(&mut errors, "ends_on", e).map(Some),
    };
    let kind = match form.kind.as_str() {
        "" | "donations" => CampaignKind::Donations,
        "shares" => CampaignKind::Shares,
        _ => {
            errors.insert("kind", "Choose donations or shares".to_owned());
            CampaignKind::Donations
        }
    };
    let (Some(target), Some(starts_on), Some(ends_on)) = (target, starts_on, ends_on) else {
        return Err(errors);
    };
    let slug = given(&form.slug);
    match NewCampaign::parse(kind, &form.title, target, starts_on, ends_on, slug, form.monthly.is_some()) {
        Ok(campaign) if errors.is_empty() => Ok(campaign),
        Ok(_) => Err(errors),
        Err(e) => {
            let field = match e {
                CampaignError::EmptyTitle | CampaignError::UnreadableTitle(_) => "title",
                CampaignError::TargetNotPositive | CampaignError::NoTarget => "target",
                CampaignError::EndsBeforeStart | CampaignError::NoLastDay => "ends_on",
                CampaignError::MonthlyShares => "monthly",
                CampaignError::BadSlug => "slug",
            };
            errors.insert(field, e.to_string());
            Err(errors)
        }
    }
}

pub async fn create(
    AtLeast(user): Admin,
    State(state): State<AppState>,
    Fields(form, repeated): Fields<CampaignForm>,
) -> Result<Response, PageError> {
    let refuse = async |errors: FieldErrors| -> Result<Response, PageError> {
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page(&state, &user, &form, &errors, None).await?).into_response())
    };
    let campaign = match repeated.check(parse(&form)) {
        Ok(campaign) => campaign,
        Err(errors) => return refuse(errors).await,
    };
    match state.store.create_campaign(&campaign, &user.actor(), state.clock.now()).await {
        Ok(_) => {}
        Err(StoreError::DuplicateSlug(slug)) => {
            return refuse(FieldErrors::from([("slug", format!("A campaign {slug} already exists"))])).await;
        }
        Err(e) => return Err(e.into()),
    }
    state.fund.changed();
    Ok(Redirect::to("/staff/campaigns").into_response())
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    target: String,
    #[serde(default)]
    ends_on: String,
}

/// Applies a change, or shows the campaigns page with why it was refused.
async fn apply(
    state: &AppState,
    user: &StaffUser,
    campaign: &Campaign,
    change: Result<CampaignChange, String>,
) -> Result<Response, PageError> {
    let change = change.and_then(|c| {
        if c.ends_on.is_some_and(|ends_on| ends_on < campaign.starts_on) {
            Err(format!("It starts on {}: it cannot end before that", campaign.starts_on))
        } else if c.target.is_some_and(|target| target <= Pence::ZERO) {
            Err("The target must be more than £0".to_owned())
        } else if campaign.kind == CampaignKind::Donations && (c.target.is_none() || c.ends_on.is_none()) {
            Err("A fund needs a target and a last day".to_owned())
        } else {
            Ok(c)
        }
    });
    match change {
        Ok(change) => {
            state.store.change_campaign(&campaign.slug, &change, &user.actor(), state.clock.now()).await?;
            state.fund.changed();
            Ok(Redirect::to("/staff/campaigns").into_response())
        }
        Err(why) => {
            let blank = CampaignForm::default();
            let html = page(state, user, &blank, &FieldErrors::new(), Some((campaign.slug.clone(), why))).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
    }
}

pub async fn change(
    AtLeast(user): Admin,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Fields(form, repeated): Fields<ChangeForm>,
) -> Result<Response, PageError> {
    let Some(campaign) = state.store.campaign(&slug).await? else {
        return Ok(super::not_found(&state, "campaign"));
    };
    if !repeated.is_empty() {
        return apply(&state, &user, &campaign, Err("Enter one target and one last day".to_owned())).await;
    }
    let target = given(&form.target).map(parse_amount).transpose().map_err(|e| format!("Target: {e}"));
    let change = target.and_then(|target| {
        given(&form.ends_on)
            .map(|e| NaiveDate::parse_from_str(e, "%Y-%m-%d"))
            .transpose()
            .map(|ends_on| CampaignChange { target, ends_on })
            .map_err(|_| "Enter the last day as YYYY-MM-DD".to_owned())
    });
    apply(&state, &user, &campaign, change).await
}

/// Ends a campaign yesterday: from today it counts nothing new of its own.
pub async fn close(
    AtLeast(user): Admin,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let Some(campaign) = state.store.campaign(&slug).await? else {
        return Ok(super::not_found(&state, "campaign"));
    };
    let today = state.fund.today();
    let yesterday = today.pred_opt().unwrap_or(today);
    let change = if campaign.ends_on.is_some_and(|ends_on| ends_on <= yesterday) {
        Err("It has already closed".to_owned())
    } else {
        Ok(CampaignChange { target: campaign.target, ends_on: Some(yesterday) })
    };
    apply(&state, &user, &campaign, change).await
}
