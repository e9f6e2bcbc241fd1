//! Running a definition: the state loop, input/output processing, Retry/Catch, Wait and Map.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};

use super::definition::{
    Catcher, Machine, MapState, Retrier, STATES_ALL, State, StateKind, WaitFor,
};
use super::path::{ResultPath, Template};
use super::{Execution, ExecutionFailed, RunOptions, StateRun, Tasks};

/// The error the runner raises for a bad path or a runaway loop. AWS never retries or
/// catches it, not even with `States.ALL`, and neither does this runner.
pub(crate) const STATES_RUNTIME: &str = "States.Runtime";
/// A Choice state with no matching rule and no `Default`.
pub(crate) const STATES_NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";

/// A failure on its way out of a state: caught by a Catch, or ending the execution.
struct Failure {
    error: String,
    cause: String,
    state: String,
}

fn runtime(state: &State, cause: impl Into<String>) -> Failure {
    Failure {
        error: STATES_RUNTIME.into(),
        cause: cause.into(),
        state: state.name.clone(),
    }
}

pub(crate) struct Runner<'a> {
    tasks: &'a dyn Tasks,
    opts: &'a RunOptions,
    /// `$$.Execution`.
    execution: Value,
    entered: AtomicU64,
    history: Mutex<Vec<StateRun>>,
}

/// Where a state sends its output: to the named state, or out of its machine.
type Step<'d> = (Option<&'d str>, Value);

pub(crate) async fn run(
    machine: &Machine,
    input: Value,
    tasks: &dyn Tasks,
    opts: &RunOptions,
) -> Result<Execution, ExecutionFailed> {
    let runner = Runner {
        tasks,
        opts,
        execution: json!({ "Name": opts.execution_name, "Input": input }),
        entered: AtomicU64::new(0),
        history: Mutex::new(Vec::new()),
    };
    let result = runner.run_machine(machine, input).await;
    let states_entered = runner.entered.load(Ordering::Relaxed);
    match result {
        Ok(output) => Ok(Execution {
            output,
            states_entered,
            history: runner
                .history
                .into_inner()
                .unwrap_or_else(|e| e.into_inner()),
        }),
        Err(Failure {
            error,
            cause,
            state,
        }) => Err(ExecutionFailed {
            error,
            cause,
            state,
        }),
    }
}

impl<'a> Runner<'a> {
    fn run_machine<'s>(
        &'s self,
        machine: &'s Machine,
        input: Value,
    ) -> BoxFuture<'s, Result<Value, Failure>> {
        Box::pin(async move {
            let mut state = &machine.states[&machine.start_at];
            let mut input = input;
            loop {
                let entered = self.entered.fetch_add(1, Ordering::Relaxed) + 1;
                if entered > self.opts.max_states_entered {
                    return Err(runtime(
                        state,
                        format!(
                            "more than {} states entered in this execution (a Choice loop without an exit?)",
                            self.opts.max_states_entered
                        ),
                    ));
                }
                tracing::debug!(state = %state.name, "entering state");
                let (next, output) = self.run_state(state, input).await?;
                match next {
                    Some(next) => {
                        state = &machine.states[next];
                        input = output;
                    }
                    None => return Ok(output),
                }
            }
        })
    }

    fn record(&self, state: &State, attempts: u32) {
        let run = StateRun {
            state: state.name.clone(),
            attempts,
        };
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(run);
    }

    /// `$$` for a state: the execution, the state, and for an ItemSelector the Map item.
    fn context(&self, state: &State, retry_count: u32, item: Option<(usize, &Value)>) -> Value {
        let mut context = json!({
            "Execution": self.execution,
            "State": { "Name": state.name, "RetryCount": retry_count },
        });
        if let Some((index, value)) = item {
            context["Map"] = json!({ "Item": { "Index": index, "Value": value } });
        }
        context
    }

    async fn run_state<'d>(&self, state: &'d State, raw: Value) -> Result<Step<'d>, Failure> {
        let next = state.next.as_deref();
        match &state.kind {
            StateKind::Task { .. } | StateKind::Map(_) => {
                return self.run_with_retry(state, raw).await;
            }
            StateKind::Fail { error, cause } => {
                self.record(state, 1);
                return Err(Failure {
                    error: error.clone(),
                    cause: cause.clone(),
                    state: state.name.clone(),
                });
            }
            _ => {}
        }
        let context = self.context(state, 0, None);
        let input = effective_input(state, &raw)?;
        let (next, output) = match &state.kind {
            StateKind::Pass { result } => {
                let result = match (result, &state.parameters) {
                    (Some(result), _) => result.clone(),
                    (None, Some(parameters)) => {
                        render(state, "Parameters", parameters, &input, &context)?
                    }
                    (None, None) => input,
                };
                (
                    next,
                    apply_result_path(state, &state.result_path, raw, result)?,
                )
            }
            StateKind::Choice { choices, default } => {
                let mut chosen = None;
                for (rule, target) in choices {
                    if rule
                        .holds(&input, &context)
                        .map_err(|cause| runtime(state, cause))?
                    {
                        chosen = Some(target.as_str());
                        break;
                    }
                }
                let Some(target) = chosen.or(default.as_deref()) else {
                    return Err(Failure {
                        error: STATES_NO_CHOICE_MATCHED.into(),
                        cause: format!(
                            "no choice rule matched and state \"{}\" has no Default",
                            state.name
                        ),
                        state: state.name.clone(),
                    });
                };
                (Some(target), input)
            }
            StateKind::Wait(wait) => {
                let seconds = match wait {
                    WaitFor::Seconds(seconds) => *seconds as f64,
                    WaitFor::SecondsPath(path) => path
                        .select(&input, &context)
                        .and_then(|value| value.as_f64())
                        .filter(|seconds| *seconds >= 0.0)
                        .ok_or_else(|| {
                            runtime(
                                state,
                                format!(
                                    "SecondsPath \"{}\" is not a non-negative number",
                                    path.text()
                                ),
                            )
                        })?,
                };
                self.sleep(seconds).await;
                (next, input)
            }
            StateKind::Succeed => (None, input),
            StateKind::Task { .. } | StateKind::Map(_) | StateKind::Fail { .. } => {
                unreachable!("handled above")
            }
        };
        self.record(state, 1);
        Ok((next, output_of(state, output)?))
    }

    /// Task and Map: attempts, Retry (each retrier with its own count), then Catch.
    async fn run_with_retry<'d>(&self, state: &'d State, raw: Value) -> Result<Step<'d>, Failure> {
        let mut attempts_by_retrier = vec![0u32; state.retry.len()];
        let mut retry_count = 0u32;
        loop {
            let failure = match self.attempt(state, &raw, retry_count).await {
                Ok(result) => {
                    self.record(state, retry_count + 1);
                    let output = apply_result_path(state, &state.result_path, raw, result)?;
                    return Ok((state.next.as_deref(), output_of(state, output)?));
                }
                Err(failure) if failure.error == STATES_RUNTIME => return Err(failure),
                Err(failure) => failure,
            };
            let retrier = state
                .retry
                .iter()
                .position(|retrier| matches(&retrier.error_equals, &failure.error));
            if let Some(index) = retrier {
                let retrier = &state.retry[index];
                if attempts_by_retrier[index] < retrier.max_attempts {
                    let delay = retry_delay(retrier, attempts_by_retrier[index]);
                    attempts_by_retrier[index] += 1;
                    retry_count += 1;
                    tracing::warn!(
                        state = %state.name, error = %failure.error, cause = %failure.cause,
                        retry = retry_count, delay_seconds = delay, "retrying state"
                    );
                    self.sleep(delay).await;
                    continue;
                }
            }
            self.record(state, retry_count + 1);
            let catcher = state
                .catch
                .iter()
                .find(|catcher| matches(&catcher.error_equals, &failure.error));
            let Some(Catcher {
                next, result_path, ..
            }) = catcher
            else {
                return Err(failure);
            };
            tracing::info!(state = %state.name, error = %failure.error, next = %next, "caught error");
            let error_output = json!({ "Error": failure.error, "Cause": failure.cause });
            return Ok((
                Some(next.as_str()),
                apply_result_path(state, result_path, raw, error_output)?,
            ));
        }
    }

    /// One try of a Task or Map: the result after ResultSelector.
    async fn attempt(
        &self,
        state: &State,
        raw: &Value,
        retry_count: u32,
    ) -> Result<Value, Failure> {
        let context = self.context(state, retry_count, None);
        let input = effective_input(state, raw)?;
        let result = match &state.kind {
            StateKind::Task { resource } => {
                let payload = match &state.parameters {
                    Some(parameters) => render(state, "Parameters", parameters, &input, &context)?,
                    None => input,
                };
                self.tasks
                    .invoke(resource, payload)
                    .await
                    .map_err(|e| Failure {
                        error: e.error,
                        cause: e.cause,
                        state: state.name.clone(),
                    })?
            }
            StateKind::Map(map) => self.run_map(state, map, &input, retry_count).await?,
            _ => unreachable!("only Task and Map states are attempted"),
        };
        match &state.result_selector {
            Some(selector) => render(state, "ResultSelector", selector, &result, &context),
            None => Ok(result),
        }
    }

    /// Runs the processor once per item, at most `MaxConcurrency` at a time, results in
    /// item order. The first item to fail fails the Map (the others are dropped).
    async fn run_map(
        &self,
        state: &State,
        map: &MapState,
        input: &Value,
        retry_count: u32,
    ) -> Result<Value, Failure> {
        let items = match map
            .items_path
            .select(input, &self.context(state, retry_count, None))
        {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(runtime(
                    state,
                    format!(
                        "ItemsPath \"{}\" does not select an array",
                        map.items_path.text()
                    ),
                ));
            }
        };
        let limit = if map.max_concurrency == 0 {
            items.len().max(1)
        } else {
            map.max_concurrency
        };
        let mut results: Vec<(usize, Value)> = futures::stream::iter(items.into_iter().enumerate())
            .map(|(index, item)| async move {
                let item_input = match &map.item_selector {
                    Some(selector) => {
                        let context = self.context(state, retry_count, Some((index, &item)));
                        render(state, "ItemSelector", selector, input, &context)?
                    }
                    None => item,
                };
                self.run_machine(&map.processor, item_input)
                    .await
                    .map(|output| (index, output))
            })
            .buffer_unordered(limit)
            .try_collect()
            .await?;
        results.sort_by_key(|(index, _)| *index);
        Ok(Value::Array(
            results.into_iter().map(|(_, output)| output).collect(),
        ))
    }

    async fn sleep(&self, seconds: f64) {
        let scaled = seconds * self.opts.time_scale;
        if scaled > 0.0 && scaled.is_finite() {
            tokio::time::sleep(Duration::from_secs_f64(scaled)).await;
        }
    }
}

/// Whether a retrier's or catcher's `ErrorEquals` covers `error`.
fn matches(error_equals: &[String], error: &str) -> bool {
    error_equals
        .iter()
        .any(|name| name == error || (name == STATES_ALL && error != STATES_RUNTIME))
}

/// Seconds before retry number `done + 1`: `IntervalSeconds × BackoffRate^done`, capped by
/// `MaxDelaySeconds`, then drawn from `[0, delay]` with full jitter.
fn retry_delay(retrier: &Retrier, done: u32) -> f64 {
    let exponent = i32::try_from(done).unwrap_or(i32::MAX);
    let mut delay = retrier.interval_seconds * retrier.backoff_rate.powi(exponent);
    if let Some(max) = retrier.max_delay_seconds {
        delay = delay.min(max);
    }
    if retrier.full_jitter && delay > 0.0 {
        delay = rand::random_range(0.0..=delay);
    }
    delay
}

fn effective_input(state: &State, raw: &Value) -> Result<Value, Failure> {
    match &state.input_path {
        None => Ok(Value::Object(Map::new())),
        Some(path) => path.select(raw, &Value::Null).ok_or_else(|| {
            runtime(
                state,
                format!("InputPath \"{}\" matches nothing in the input", path.text()),
            )
        }),
    }
}

fn output_of(state: &State, output: Value) -> Result<Value, Failure> {
    match &state.output_path {
        None => Ok(Value::Object(Map::new())),
        Some(path) => path.select(&output, &Value::Null).ok_or_else(|| {
            runtime(
                state,
                format!(
                    "OutputPath \"{}\" matches nothing in the output",
                    path.text()
                ),
            )
        }),
    }
}

fn render(
    state: &State,
    field: &str,
    template: &Template,
    input: &Value,
    context: &Value,
) -> Result<Value, Failure> {
    template
        .render(input, context)
        .map_err(|cause| runtime(state, format!("{field}: {cause}")))
}

fn apply_result_path(
    state: &State,
    path: &ResultPath,
    raw: Value,
    result: Value,
) -> Result<Value, Failure> {
    path.apply(raw, result)
        .map_err(|cause| runtime(state, cause))
}
