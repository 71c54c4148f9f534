//! The backfill of Stripe events the webhook never delivered (an endpoint
//! down longer than Stripe retries, events before the endpoint existed):
//! [`ProgramService::backfill`] lists the account's events
//! (`GET /v1/events`, newest first, the 30 days Stripe keeps) and reports
//! those no receipt holds; with `apply` it stores each as a receipt (the
//! body as the API returned it, fetched with the secret key, so no
//! signature) and applies the pending receipts, exactly as if the webhook
//! had delivered them: once per event id, in any order.

use chalktalk_adapters::programs::Receipt;
use serde::Serialize;

use super::{ProgramError, ProgramService, now_ms};

/// An event no receipt holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub id: String,
    pub kind: String,
    pub created: i64,
}

/// What a backfill found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Backfill {
    /// Events listed.
    pub listed: usize,
    /// Those not stored before, oldest first.
    pub missing: Vec<Missing>,
    /// Stored now (with `apply`).
    pub stored: usize,
    /// Receipts applied by the pass that followed (with `apply`).
    pub applied: usize,
}

impl ProgramService {
    /// Lists at most `max` events and reports (and, with `apply`, stores
    /// and applies) those missing from the store.
    #[tracing::instrument(skip(self))]
    pub async fn backfill(&self, apply: bool, max: usize) -> Result<Backfill, ProgramError> {
        let payments = self
            .payments
            .as_deref()
            .ok_or(ProgramError::PaymentsDisabled)?;
        let mut out = Backfill::default();
        let mut missing = Vec::new();
        let mut after: Option<String> = None;
        'pages: loop {
            let (events, more) = payments.events(after.as_deref()).await?;
            for e in &events {
                if out.listed >= max {
                    break 'pages;
                }
                out.listed += 1;
                let (Some(id), Some(kind), Some(created)) = (
                    e["id"].as_str().filter(|s| !s.is_empty() && s.len() <= 255),
                    e["type"].as_str(),
                    e["created"].as_i64(),
                ) else {
                    continue;
                };
                after = Some(id.to_owned());
                if self.store.receipt(id).await?.is_none() {
                    missing.push((
                        Missing {
                            id: id.to_owned(),
                            kind: kind.to_owned(),
                            created,
                        },
                        e.to_string().into_bytes(),
                    ));
                }
            }
            if !more || events.is_empty() {
                break;
            }
        }
        missing.reverse();
        for (m, body) in missing {
            if apply {
                let r = Receipt {
                    id: m.id.clone(),
                    kind: m.kind.clone(),
                    created: m.created,
                    body,
                    received_ms: now_ms(),
                    applied_ms: None,
                    note: Some("backfilled".into()),
                };
                if self.store.add_receipt(&r).await? {
                    out.stored += 1;
                }
            }
            out.missing.push(m);
        }
        if apply {
            out.applied = self.process_pending().await?;
        }
        tracing::info!(
            listed = out.listed,
            missing = out.missing.len(),
            stored = out.stored,
            "stripe backfill"
        );
        Ok(out)
    }
}
