//! Revenue analytics over REST: a coach's figures (`GET
//! /api/v1/me/revenue`) and the platform's for admins (`GET
//! /api/v1/admin/revenue`), both over whole UTC months `from` ..= `to`
//! (`YYYY-MM`, default the last 12). Amounts are integer minor units,
//! grouped by currency. Definitions: docs/PROTOCOL.md, "Revenue
//! analytics"; the service is `chalktalk_services::programs::revenue`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;
use chalktalk_services::permissions::decide;
use chalktalk_services::programs::ProgramError;
use chalktalk_services::programs::figures::Period;

use super::programs;
use crate::app::App;
use crate::permissions::{ApiResult, LiveCaller, require, subject};

/// The period of a query string: `from` and `to`, each at most once; any
/// other parameter is `bad_period` too.
fn period(query: Option<&str>) -> Result<Period, ProgramError> {
    let (mut from, mut to) = (None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match k {
            "from" => &mut from,
            "to" => &mut to,
            _ => {
                return Err(ProgramError::BadPeriod(format!(
                    "unknown parameter {k:?}: only from and to (YYYY-MM)"
                )));
            }
        };
        if slot.replace(v).is_some() {
            return Err(ProgramError::BadPeriod(format!("{k} given twice")));
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Period::parse(from, to, now)
}

/// `GET /api/v1/me/revenue?from=YYYY-MM&to=YYYY-MM`: the calling coach's
/// revenue.
#[utoipa::path(get, path = "/api/v1/me/revenue", tag = "payments", params(("from" = Option<String>, Query, description = "first month YYYY-MM (UTC), default 11 months before to"), ("to" = Option<String>, Query, description = "last month YYYY-MM (included), default the current month")), responses((status = 200, body = chalktalk_services::programs::revenue::CoachRevenue, description = "per currency totals, per program, per month, subscribers and churn; amounts in minor units"), (status = 400, description = "bad_period: from/to not YYYY-MM, from after to, more than 120 months, unknown parameter"), (status = 403, description = "forbidden: coaches only"), (status = 503, description = "unavailable"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn coach(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let svc = programs(&app)?;
    let p = period(q.as_deref())?;
    let out = svc.coach_revenue(&c.sub, c.role, &p).await?;
    Ok(Json(out).into_response())
}

/// `GET /api/v1/admin/revenue?from=YYYY-MM&to=YYYY-MM`: the platform's
/// revenue (admins).
#[utoipa::path(get, path = "/api/v1/admin/revenue", tag = "admin", params(("from" = Option<String>, Query, description = "first month YYYY-MM (UTC), default 11 months before to"), ("to" = Option<String>, Query, description = "last month YYYY-MM (included), default the current month")), responses((status = 200, body = chalktalk_services::programs::revenue::PlatformRevenue, description = "per currency totals (fees: the platform's revenue, net: the coaches'), per month, paying coaches, plan subscriptions by plan and status"), (status = 400, description = "bad_period"), (status = 403, description = "admins only"), (status = 503, description = "unavailable"), (status = 401, description = "unauthorized")), security(("bearer" = [])))]
pub async fn platform(
    State(app): State<App>,
    LiveCaller(c): LiveCaller,
    RawQuery(q): RawQuery,
) -> ApiResult {
    require(decide::admin(subject(&c)))?;
    let svc = programs(&app)?;
    let p = period(q.as_deref())?;
    Ok(Json(svc.platform_revenue(&p).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_from_and_to_once() {
        let p = period(Some("from=2024-01&to=2024-03")).unwrap();
        assert_eq!((p.from.as_str(), p.to.as_str()), ("2024-01", "2024-03"));
        for bad in [
            "from=2024-01&from=2024-02",
            "month=2024-01",
            "from=",
            "to=2024-1",
        ] {
            assert_eq!(period(Some(bad)).unwrap_err().code(), "bad_period", "{bad}");
        }
        assert!(period(None).is_ok());
    }
}
