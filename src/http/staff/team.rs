//! Staff accounts (admin): add someone with a first password, change a role, remove an account.
//! An admin cannot change or remove their own, so the last admin cannot lock everyone out.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::Frame;
use super::auth::{Admin, AtLeast, StaffUser};
use crate::domain::staff::hash_password;
use crate::domain::{EmailAddress, FieldErrors, Role};
use crate::http::AppState;
use crate::http::error::{Framed, PageError};
use crate::http::form::Fields;
use crate::store::{StaffRow, StoreError};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewStaffForm {
    email: String,
    role: String,
    password: String,
}

#[derive(Template)]
#[template(path = "staff/team.html")]
struct TeamPage<'a> {
    frame: Frame<'a>,
    staff: Vec<StaffRow>,
    form: &'a NewStaffForm,
    errors: &'a FieldErrors,
}

async fn page(
    state: &AppState,
    user: &StaffUser,
    form: &NewStaffForm,
    errors: &FieldErrors,
) -> Result<Html<String>, PageError> {
    let staff = state.store.staff_list().await?;
    Ok(Html(TeamPage { frame: Frame::new(state, user, "team"), staff, form, errors }.render()?))
}

pub async fn list(AtLeast(user): Admin, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    page(&state, &user, &NewStaffForm { role: "viewer".into(), ..NewStaffForm::default() }, &FieldErrors::new()).await
}

pub async fn add(
    AtLeast(user): Admin,
    State(state): State<AppState>,
    Fields(form, repeated): Fields<NewStaffForm>,
) -> Result<Response, PageError> {
    // A field sent twice is refused like any other mistake.
    let mut errors = repeated.check(Ok(())).err().unwrap_or_default();
    let email = EmailAddress::parse(&form.email).map_err(|e| errors.insert("email", e.to_string())).ok();
    let role = Role::parse(&form.role);
    if role.is_none() {
        errors.insert("role", "Choose viewer, finance or admin".to_owned());
    }
    let password = form.password.clone();
    let hash =
        state.password_checks.run(move || hash_password(&password)).await.unwrap_or_else(|_| {
            Err(crate::domain::PasswordError::Hashing("the service is busy; try again".to_owned()))
        });
    let hash = hash.map_err(|e| errors.insert("password", e.to_string())).ok();
    let refuse = async |errors: FieldErrors| -> Result<Response, PageError> {
        let blank = NewStaffForm { password: String::new(), ..form.clone() };
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page(&state, &user, &blank, &errors).await?).into_response())
    };
    let (Some(email), Some(role), Some(hash), true) = (email, role, hash, errors.is_empty()) else {
        return refuse(errors).await;
    };
    match state.store.add_staff(&email, &hash, role, &user.actor(), state.clock.now()).await {
        Ok(()) => Ok(Redirect::to("/staff/team").into_response()),
        Err(StoreError::DuplicateStaff(who)) => {
            refuse(FieldErrors::from([("email", format!("{who} already has an account"))])).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ChangeForm {
    /// A role, or `remove`.
    #[serde(default)]
    role: String,
}

pub async fn change(
    AtLeast(user): Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Fields(form, repeated): Fields<ChangeForm>,
) -> Result<Response, PageError> {
    if id == user.id {
        return Ok(super::auth::forbidden(&state, "You cannot change or remove your own account: ask another admin."));
    }
    let choose = || {
        let text = "Choose viewer, finance, admin or remove.";
        Framed::new("Not changed", text, ("/staff/team", "Back to the team")).response(StatusCode::UNPROCESSABLE_ENTITY)
    };
    let role = match form.role.as_str() {
        _ if !repeated.is_empty() => return Ok(choose()),
        "remove" => None,
        other => match Role::parse(other) {
            Some(role) => Some(role),
            None => return Ok(choose()),
        },
    };
    if !state.store.change_staff(id, role, &user.actor(), state.clock.now()).await? {
        return Ok(super::not_found(&state, "member of staff"));
    }
    Ok(Redirect::to("/staff/team").into_response())
}
