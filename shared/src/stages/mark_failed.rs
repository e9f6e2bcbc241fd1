//! `mark-failed`: where every `Catch` of the state machine leads. Records the error's
//! stable name and message in the document's state, so that `lexpipe status` shows why
//! the document stopped; the execution then ends in its `Fail` state with the same
//! error.
//!
//! In PostgreSQL: when the execution owns the document's queue row (the Lambda flow,
//! where `ingest` claimed the row for the execution), the row and the document are
//! failed here, fenced by the claim's token, with the error's name and message. A queue
//! worker's claim is left alone: the worker records the failure on the row itself once
//! the execution has ended (and decides whether to requeue it).

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::redis::state::StageStatus;

use super::persist::QueueClaim;
use super::{DocumentRef, StageError, names};
use crate::store::queue::{self, FailOutcome};

/// What a `Catch` puts at its `ResultPath`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

/// Input of `mark-failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub document: DocumentRef,
    pub error: CaughtError,
    /// The execution's queue claim (`$.queue`), if any.
    #[serde(default)]
    pub queue: Option<QueueClaim>,
}

/// Output of `mark-failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub error_type: String,
    /// Whether the document state now says so (false without state tracking).
    pub recorded: bool,
    /// What happened to the queue row: `failed`, `stale` (a newer claim owns it), or
    /// null when this step does not settle it (no database, or a worker's claim).
    #[serde(default)]
    pub queue: Option<String>,
}

/// Longest message kept (a cause can carry a whole stack of context).
const MAX_MESSAGE_CHARS: usize = 2000;

/// Records the failure in the document state: on the stage that failed when a step
/// already recorded it, otherwise on the first stage not done (an error the state
/// machine raised itself, such as a poll cap).
///
/// # Errors
/// Only an invalid input: a state that cannot be written is logged, and the document
/// fails all the same.
#[tracing::instrument(skip_all, fields(document_uuid = %input.document.document_uuid, stage = "mark_failed"))]
pub async fn run(app: &App, input: Input) -> Result<Output, StageError> {
    input.document.validate()?;
    let error_type: String = input.error.error.chars().take(128).collect();
    let message: String = input.error.cause.chars().take(MAX_MESSAGE_CHARS).collect();
    tracing::warn!(error_type = %error_type, "document failed: {message}");
    let queue = settle_row(app, &input, &error_type, &message).await?;
    let Some(states) = &app.states else {
        return Ok(Output {
            error_type,
            recorded: false,
            queue,
        });
    };
    let doc = input.document.document_uuid;
    let recorded = match states.get(doc).await {
        Ok(Some(state)) => {
            let already = state.stages.iter().any(|s| s.status == StageStatus::Failed);
            if already {
                true
            } else {
                let stage = state
                    .stages
                    .iter()
                    .find(|s| !s.status.is_done())
                    .map(|s| s.name.clone())
                    .unwrap_or_else(|| names::PERSIST.to_string());
                match states.fail_stage(doc, &stage, &error_type, &message).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "failure not recorded in the document state");
                        false
                    }
                }
            }
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = %e, "document state unreadable; failure not recorded");
            false
        }
    };
    Ok(Output {
        error_type,
        recorded,
        queue,
    })
}

/// Fails the queue row and the document in PostgreSQL when the execution owns the row.
/// For good: the state machine has already retried what was worth retrying.
///
/// # Errors
/// The database failed ([`StageError::Db`]; `DatabaseUnavailable` is retried by the state
/// machine).
async fn settle_row(
    app: &App,
    input: &Input,
    error_type: &str,
    message: &str,
) -> Result<Option<String>, StageError> {
    let (Some(pool), Some(claim)) = (&app.db, input.queue.filter(|c| c.settles_row)) else {
        return Ok(None);
    };
    let error = format!("{error_type}: {message}");
    let outcome = queue::fail_typed(
        pool,
        &claim.claim(&input.document),
        Some(error_type),
        &error,
        false,
    )
    .await?;
    Ok(Some(
        match outcome {
            FailOutcome::Failed { .. } | FailOutcome::Requeued { .. } => "failed",
            FailOutcome::Stale => {
                tracing::warn!(
                    item_id = claim.item_id,
                    "queue row taken over; left to its new owner"
                );
                "stale"
            }
        }
        .to_string(),
    ))
}
