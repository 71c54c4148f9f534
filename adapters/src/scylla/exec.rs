//! Running statements: driver errors as [`StoreError`]s, what is retried,
//! lightweight transactions and their unknown outcomes, paging.
//!
//! | driver error | port error | retried once |
//! |---|---|---|
//! | overloaded, unavailable, bootstrapping, rate limit, read timeout/failure, no connection | `Unavailable` | reads and idempotent plain writes |
//! | write timeout/failure, client timeout, broken connection | `Unavailable` | reads and idempotent plain writes; an LWT is settled instead ([`Lwt::Unknown`]) |
//! | anything else (invalid, syntax, server error, ...) | `Unavailable` | no |
//! | a row that does not decode | `Corrupt` | no |
//!
//! The driver itself never retries (`FallthroughRetryPolicy` in the
//! session's profile), so the counts above are exact.

use std::ops::ControlFlow;

use chalktalk_actors::store::StoreError;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::response::PagingState;
use scylla::response::query_result::{QueryResult, QueryRowsResult};
use scylla::serialize::batch::BatchValues;
use scylla::serialize::row::SerializeRow;
use scylla::statement::Consistency;
use scylla::statement::batch::Batch;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};

use super::Inner;

/// What an error says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Nothing happened and trying again may work (no replicas, overload).
    Transient,
    /// The request may or may not have been applied (a write timeout, a
    /// lost connection): safe to repeat only if it is idempotent.
    Unknown,
    /// Retrying will not help.
    Fatal,
}

pub(super) fn kind(e: &ExecutionError) -> Kind {
    match e {
        ExecutionError::LastAttemptError(a) => match a {
            RequestAttemptError::DbError(db, _) => match db {
                DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::RateLimitReached { .. }
                | DbError::ReadTimeout { .. }
                | DbError::ReadFailure { .. } => Kind::Transient,
                DbError::WriteTimeout { .. } | DbError::WriteFailure { .. } => Kind::Unknown,
                _ => Kind::Fatal,
            },
            RequestAttemptError::BrokenConnectionError(_) => Kind::Unknown,
            RequestAttemptError::UnableToAllocStreamId => Kind::Transient,
            _ => Kind::Fatal,
        },
        ExecutionError::RequestTimeout(_) => Kind::Unknown,
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => Kind::Transient,
        _ => Kind::Fatal,
    }
}

/// Every driver error is `Unavailable` to the port: the store refused or
/// could not be reached, nothing was acknowledged.
pub(super) fn unavailable(e: &ExecutionError) -> StoreError {
    StoreError::Unavailable(format!("scylla: {e}"))
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("scylla {what}: {e}"))
}

/// The outcome of a lightweight transaction.
#[derive(Debug)]
pub(super) enum Lwt {
    Applied,
    NotApplied,
    /// Timed out or lost: settle it with a read at the serial consistency.
    Unknown(StoreError),
    /// Refused before anything was written (no replicas, overloaded, ...).
    Failed(StoreError),
}

/// `[applied]`, the first column of an LWT's answer (ScyllaDB sends every
/// column of the row, Cassandra only the condition's: read it generically).
pub(super) fn applied(result: QueryResult) -> Result<bool, StoreError> {
    let rows = result
        .into_rows_result()
        .map_err(|e| corrupt("LWT result", e))?;
    let first = rows
        .maybe_first_row::<Row>()
        .map_err(|e| corrupt("LWT result", e))?;
    match first.and_then(|r| r.columns.into_iter().next()) {
        Some(Some(CqlValue::Boolean(b))) => Ok(b),
        other => Err(corrupt(
            "LWT result",
            format!("no [applied] column: {other:?}"),
        )),
    }
}

impl Inner {
    /// A read (or an idempotent plain write): retried once after an error
    /// that is not fatal.
    pub(super) async fn run(
        &self,
        stmt: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<QueryResult, StoreError> {
        match self.session.execute_unpaged(stmt, &values).await {
            Ok(r) => Ok(r),
            Err(e) if kind(&e) != Kind::Fatal => {
                tracing::debug!(error = %e, "scylla: retrying once");
                self.session
                    .execute_unpaged(stmt, &values)
                    .await
                    .map_err(|e| unavailable(&e))
            }
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// A read at the serial consistency: sees (and completes) every LWT
    /// that any coordinator accepted, so a timed-out one is settled.
    pub(super) async fn run_serial(
        &self,
        stmt: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<QueryResult, StoreError> {
        let mut stmt = stmt.clone();
        stmt.set_consistency(match self.serial {
            scylla::statement::SerialConsistency::Serial => Consistency::Serial,
            scylla::statement::SerialConsistency::LocalSerial => Consistency::LocalSerial,
        });
        self.run(&stmt, values).await
    }

    /// An idempotent plain batch (upserts, deletes): retried once.
    pub(super) async fn run_batch(
        &self,
        batch: &Batch,
        values: impl BatchValues,
    ) -> Result<(), StoreError> {
        match self.session.batch(batch, &values).await {
            Ok(_) => Ok(()),
            Err(e) if kind(&e) != Kind::Fatal => {
                tracing::debug!(error = %e, "scylla: retrying batch once");
                self.session
                    .batch(batch, &values)
                    .await
                    .map(drop)
                    .map_err(|e| unavailable(&e))
            }
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// A conditional statement: never retried.
    pub(super) async fn lwt(&self, stmt: &PreparedStatement, values: impl SerializeRow) -> Lwt {
        lwt_outcome(self.session.execute_unpaged(stmt, values).await)
    }

    /// A conditional batch (one partition): never retried.
    pub(super) async fn lwt_batch(&self, batch: &Batch, values: impl BatchValues) -> Lwt {
        lwt_outcome(self.session.batch(batch, values).await)
    }

    /// Rows of a paged read, page by page with the driver's paging state,
    /// until `want` items were produced or the rows end. `each` decodes one
    /// page into `out`.
    pub(super) async fn pages<T>(
        &self,
        stmt: &PreparedStatement,
        values: impl SerializeRow,
        want: usize,
        mut each: impl FnMut(&QueryRowsResult, &mut Vec<T>) -> Result<(), StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut state = PagingState::start();
        while out.len() < want {
            let page = match self
                .session
                .execute_single_page(stmt, &values, state.clone())
                .await
            {
                Ok(p) => Ok(p),
                Err(e) if kind(&e) != Kind::Fatal => self
                    .session
                    .execute_single_page(stmt, &values, state.clone())
                    .await
                    .map_err(|e| unavailable(&e)),
                Err(e) => Err(unavailable(&e)),
            };
            let (result, paging) = page?;
            let rows = result.into_rows_result().map_err(|e| corrupt("page", e))?;
            each(&rows, &mut out)?;
            match paging.into_paging_control_flow() {
                ControlFlow::Break(()) => break,
                ControlFlow::Continue(next) => state = next,
            }
        }
        out.truncate(want);
        Ok(out)
    }
}

fn lwt_outcome(result: Result<QueryResult, ExecutionError>) -> Lwt {
    match result {
        Ok(r) => match applied(r) {
            Ok(true) => Lwt::Applied,
            Ok(false) => Lwt::NotApplied,
            Err(e) => Lwt::Unknown(e),
        },
        Err(e) if kind(&e) == Kind::Unknown => {
            tracing::warn!(error = %e, "scylla: LWT outcome unknown, settling with a serial read");
            Lwt::Unknown(unavailable(&e))
        }
        Err(e) => Lwt::Failed(unavailable(&e)),
    }
}
