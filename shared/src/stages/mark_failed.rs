//! `mark-failed`: where every `Catch` of the state machine leads. Records the error's
//! stable name and message in the document's state, so that `lexpipe status` shows why
//! the document stopped; the execution then ends in its `Fail` state with the same
//! error. (A queue worker records the failure on the queue row itself, with its claim's
//! fencing token; so does the Lambda flow once it has a queue of its own.)

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::redis::state::StageStatus;

use super::{DocumentRef, StageError, names};

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
}

/// Output of `mark-failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub error_type: String,
    /// Whether the document state now says so (false without state tracking).
    pub recorded: bool,
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
    let Some(states) = &app.states else {
        return Ok(Output {
            error_type,
            recorded: false,
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
    })
}
