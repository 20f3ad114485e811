//! `GET /api/v1/dashboard?from=YYYY-MM-DD&to=YYYY-MM-DD&site=`: the figures of the visits that
//! started in a range of days (UTC, both included; default the last 30 days; at most
//! `profile.max_range_days`, 400 by default), on one site or all.

use axum::{
    extract::{Query, State},
    Json,
};
use axum_extra::extract::WithRejection;
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use tracker_core::store::DashboardQuery;

use super::Admin;
use crate::{api_types::DashboardJson, error::ApiError, state::AppState};

/// Query of the dashboard.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DashboardParams {
    /// The first day (default: 29 days before `to`).
    pub(crate) from: Option<String>,
    /// The last day (default: today).
    pub(crate) to: Option<String>,
    /// Only this site (`sc_site`).
    pub(crate) site: Option<String>,
}

/// The dashboard's figures.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard", operation_id = "getDashboard",
    tag = "admin",
    params(DashboardParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = DashboardJson),
        (status = 400, description = "A bad parameter, or a range over `profile.max_range_days` (400 days by default)", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No or wrong admin token", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn show(
    _: Admin,
    State(state): State<AppState>,
    WithRejection(Query(params), _): WithRejection<Query<DashboardParams>, ApiError>,
) -> Result<Json<DashboardJson>, ApiError> {
    Ok(Json(dashboard(&state, params).await?))
}

/// The figures the parameters ask for (the API's answer and the Profile's page).
pub(crate) async fn dashboard(
    state: &AppState,
    params: DashboardParams,
) -> Result<DashboardJson, ApiError> {
    let bad = ApiError::InvalidPayload;
    let day = |name: &str, raw: Option<String>| -> Result<Option<NaiveDate>, ApiError> {
        raw.map(|raw| {
            NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
                .map_err(|_| bad(format!("{name} '{raw}' is not a date like 2026-03-01")))
        })
        .transpose()
    };
    let to = day("to", params.to)?.unwrap_or_else(|| state.clock().now().date_naive());
    let from = day("from", params.from)?.unwrap_or(to - Duration::days(29));
    if from > to {
        return Err(bad(format!("from {from} is after to {to}")));
    }
    let site = match params.site {
        Some(site) if site.trim().is_empty() => return Err(bad("site is empty".into())),
        other => other.map(|s| s.trim().to_string()),
    };
    if to.succ_opt().is_none() || from.pred_opt().is_none() {
        return Err(bad("the range is out of bounds".into()));
    }
    // The answer has a row per day: an unbounded range is an unbounded answer (0001 to 9999
    // once answered 230 MB, 860 MB of memory).
    let max = state.settings().profile.max_range_days.max(1);
    let days = (to - from).num_days() + 1;
    if days > i64::from(max) {
        return Err(bad(format!(
            "the range is {days} days; the longest is {max} (profile.max_range_days)"
        )));
    }
    let figures = state
        .store()
        .dashboard(DashboardQuery { from, to, site })
        .await?;
    Ok(DashboardJson::new(from, to, figures))
}
