//! A local interpreter for Amazon States Language (ASL): runs a Step Functions state
//! machine definition in-process, each Task's `Resource` resolved by name to an async Rust
//! function through [`Tasks`].
//!
//! Why: `lexpipe process` runs the very definition deployed to Step Functions
//! (`statemachine/pipeline.asl.json`), so the local run exercises the same Retry, Catch,
//! Choice and Map wiring as production instead of a hand-written copy of it that can drift.
//!
//! This module is generic: it knows nothing of lexpipe's stages and depends only on
//! serde_json, tokio, futures, rand, thiserror, async-trait, tracing and `serde_json_path`
//! (which runs every JSONPath query).
//!
//! ## What is supported
//!
//! Only the JSONPath query language. Everything below is run as AWS documents it; anything
//! else is refused by [`Definition::load`] with an error naming the construct and the state,
//! so a definition either runs faithfully or not at all.
//!
//! - Top level: `Comment`, `StartAt`, `States`, `Version`, `TimeoutSeconds` (accepted,
//!   ignored), `QueryLanguage` absent or `"JSONPath"`.
//! - `Task`: `Resource`, `Parameters`, `ResultSelector`, `ResultPath`, `InputPath`,
//!   `OutputPath`, `Retry`, `Catch`, `Next`/`End`, `TimeoutSeconds` (accepted, ignored).
//! - `Pass`: `Result`, `Parameters`, `ResultPath`, `InputPath`, `OutputPath`.
//! - `Choice`: `Choices` with `Variable` and `String…`/`Numeric…` (`Equals`, `LessThan`,
//!   `GreaterThan`, `LessThanEquals`, `GreaterThanEquals`, each also as `…Path`),
//!   `BooleanEquals[Path]`, `IsPresent`, `IsNull`, `IsBoolean`, `IsNumeric`, `IsString`;
//!   `And` / `Or` / `Not`; `Default`. No match and no Default: `States.NoChoiceMatched`.
//! - `Wait`: `Seconds`, `SecondsPath` (no timestamps).
//! - `Map` (inline only): `ItemsPath`, `ItemSelector` (or legacy `Parameters`),
//!   `MaxConcurrency` (0 = unlimited), `ItemProcessor` (`ProcessorConfig.Mode` `INLINE`) or
//!   legacy `Iterator`, `ResultSelector`, `ResultPath`, `Retry`, `Catch`. Items run
//!   concurrently on the calling task (resources doing CPU work should `spawn_blocking`);
//!   results come back in item order; the first failing item fails the Map with its error.
//! - `Succeed`, `Fail` (`Error`, `Cause`).
//! - Payload templates (`Parameters`, `ItemSelector`, `ResultSelector`): `"key.$"` fields take
//!   `$…` from the effective input or `$$…` from the context object, recursively through
//!   objects and arrays. Intrinsic functions (`States.Format(…)`) are refused.
//! - Context object: `$$.Execution.Name`, `$$.Execution.Input`, `$$.State.Name`,
//!   `$$.State.RetryCount`, and in an ItemSelector `$$.Map.Item.Index` / `$$.Map.Item.Value`.
//! - Retry: `ErrorEquals` (`States.ALL` alone and last), `IntervalSeconds` (1),
//!   `MaxAttempts` (3; 0 = never), `BackoffRate` (2.0), `MaxDelaySeconds`, `JitterStrategy`
//!   (`FULL` draws each wait from 0 to the delay; `NONE`). The first retrier whose
//!   `ErrorEquals` matches decides, each with its own attempt count; then Catch, whose
//!   `ResultPath` (default `$`) places `{"Error", "Cause"}` into the state's raw input.
//! - Errors: a task's [`TaskError::error`] is the name Retry and Catch match (there is no
//!   `States.TaskFailed` wrapping). The runner's own errors are `States.Runtime` (a path that
//!   matches nothing, a non-array ItemsPath, more than [`RunOptions::max_states_entered`]
//!   states), which, as in AWS, no Retry or Catch handles, not even `States.ALL`.
//!
//! Paths: a *reference path* (`$.a.b`, `$['a'][0]`) selects its one node, and matching
//! nothing is `States.Runtime` (except under `IsPresent`); any other JSONPath (wildcards,
//! filters, `..`) selects the array of all matches, as AWS's engine does. `ResultPath` must
//! be a reference path of member names; missing objects on the way are created.
//!
//! ## Layout
//!
//! - this file: the public API ([`Definition`], [`Tasks`], [`execute`] and their types).
//! - `definition`: loading, substitutions and validation into typed states.
//! - `path`: JSONPath queries, reference paths, payload templates, `ResultPath` writes.
//! - `choice`: Choice rules.
//! - `run`: the state loop, Retry/Catch, Wait and Map.

use async_trait::async_trait;
use serde_json::Value;

mod choice;
mod definition;
mod path;
mod run;
#[cfg(test)]
mod tests;

pub use definition::Definition;

/// A definition that cannot be loaded: each message names the construct and, where there
/// is one, the state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AslError {
    /// The text is not JSON.
    #[error("definition is not valid JSON: {0}")]
    Json(String),
    /// A `${Name}` in the definition has no entry in the substitutions.
    #[error("definition substitution \"${{{name}}}\" has no value")]
    MissingSubstitution { name: String },
    /// The top-level `QueryLanguage` is not JSONPath (JSONata is not supported).
    #[error("QueryLanguage {language} is not supported")]
    QueryLanguage { language: String },
    /// A problem at the top level of the definition.
    #[error("definition: {0}")]
    Definition(String),
    /// A problem in one state.
    #[error("state \"{state}\": {message}")]
    State { state: String, message: String },
}

/// A task failed: `error` is the stable name Retry/Catch match (like Lambda's
/// `errorType`), `cause` the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> TaskError {
        TaskError {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// What runs each Task: `resource` is the state's `Resource` after substitutions.
#[async_trait]
pub trait Tasks: Send + Sync {
    /// # Errors
    /// A [`TaskError`] whose `error` the definition's Retry and Catch can match.
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError>;
}

/// How [`execute`] runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Multiplies every Wait and Retry delay: 1.0 is real time, 0.0 never waits (tests).
    pub time_scale: f64,
    /// `$$.Execution.Name`.
    pub execution_name: String,
    /// States entered (all Map items included) past which the execution fails with
    /// `States.Runtime`, so a Choice loop without an exit cannot spin forever.
    pub max_states_entered: u64,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            time_scale: 1.0,
            execution_name: "local".into(),
            max_states_entered: 10_000,
        }
    }
}

/// A state that finished (succeeded, or failed into a Catch), with how many tries it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRun {
    pub state: String,
    /// 1 plus the number of retries.
    pub attempts: u32,
}

/// A successful execution.
#[derive(Debug, Clone)]
pub struct Execution {
    pub output: Value,
    /// Every state entered, Map items' states included.
    pub states_entered: u64,
    /// States in the order they finished (Map items interleave).
    pub history: Vec<StateRun>,
}

/// A failed execution: the error that no Catch handled, and the state it came from (for a
/// failed Map item, the state inside the item processor).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state \"{state}\" failed with {error}: {cause}")]
pub struct ExecutionFailed {
    pub error: String,
    pub cause: String,
    pub state: String,
}

/// Runs `def` on `input`, invoking `tasks` for every Task state.
///
/// # Errors
/// [`ExecutionFailed`] when an error reaches the top without being caught: a task error
/// with its own name, a Fail state's `Error`, or `States.Runtime` from the runner.
pub async fn execute(
    def: &Definition,
    input: Value,
    tasks: &dyn Tasks,
    opts: &RunOptions,
) -> Result<Execution, ExecutionFailed> {
    run::run(&def.machine, input, tasks, opts).await
}
