//! Staff accounts (admin): add someone with a first password, change a role, remove an account.
//! An admin cannot change or remove their own, so the last admin cannot lock everyone out.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::Frame;
use super::auth::{Admin, AtLeast, StaffUser};
use crate::domain::staff::hash_password;
use crate::domain::{EmailAddress, FieldErrors, Role};
use crate::http::AppState;
use crate::http::error::PageError;
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
    Form(form): Form<NewStaffForm>,
) -> Result<Response, PageError> {
    let mut errors = FieldErrors::new();
    let email = EmailAddress::parse(&form.email).map_err(|e| errors.insert("email", e.to_string())).ok();
    let role = Role::parse(&form.role);
    if role.is_none() {
        errors.insert("role", "Choose viewer, finance or admin".to_owned());
    }
    let password = form.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .unwrap_or_else(|e| Err(crate::domain::PasswordError::Hashing(e.to_string())));
    let hash = hash.map_err(|e| errors.insert("password", e.to_string())).ok();
    let refuse = async |errors: FieldErrors| -> Result<Response, PageError> {
        let blank = NewStaffForm { password: String::new(), ..form.clone() };
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page(&state, &user, &blank, &errors).await?).into_response())
    };
    let (Some(email), Some(role), Some(hash)) = (email, role, hash) else {
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
    Form(form): Form<ChangeForm>,
) -> Result<Response, PageError> {
    if id == user.id {
        return Ok(super::auth::forbidden("You cannot change or remove your own account: ask another admin."));
    }
    let role = match form.role.as_str() {
        "remove" => None,
        other => match Role::parse(other) {
            Some(role) => Some(role),
            None => {
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html("Choose viewer, finance, admin or remove."))
                    .into_response());
            }
        },
    };
    if !state.store.change_staff(id, role, &user.actor(), state.clock.now()).await? {
        return Ok((StatusCode::NOT_FOUND, Html("No such member of staff.")).into_response());
    }
    Ok(Redirect::to("/staff/team").into_response())
}
