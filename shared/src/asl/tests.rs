use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::*;

/// Records every call and answers by resource name:
/// - scripted failures for a resource come first, one per call;
/// - `increment` returns `input.count + 1`;
/// - `slow` sleeps `input.ms` milliseconds, then echoes;
/// - `fail` always fails with `Boom` / `bad`;
/// - anything else echoes its input.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, Value, Instant)>>,
    failures: Mutex<HashMap<String, VecDeque<TaskError>>>,
    completed: Mutex<Vec<Value>>,
    in_flight: AtomicUsize,
    high_water: AtomicUsize,
}

impl Recorder {
    fn failing(resource: &str, errors: &[&str]) -> Recorder {
        let recorder = Recorder::default();
        let queue = errors
            .iter()
            .map(|error| TaskError::new(*error, format!("{error} happened")))
            .collect();
        recorder
            .failures
            .lock()
            .unwrap()
            .insert(resource.to_owned(), queue);
        recorder
    }

    fn inputs(&self, resource: &str) -> Vec<Value> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(r, _, _)| r == resource)
            .map(|(_, input, _)| input.clone())
            .collect()
    }

    /// Seconds between consecutive calls.
    fn gaps(&self) -> Vec<f64> {
        let calls = self.calls.lock().unwrap();
        calls
            .windows(2)
            .map(|pair| (pair[1].2 - pair[0].2).as_secs_f64())
            .collect()
    }
}

#[async_trait]
impl Tasks for Recorder {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        self.calls
            .lock()
            .unwrap()
            .push((resource.to_owned(), input.clone(), Instant::now()));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.high_water.fetch_max(now, Ordering::SeqCst);
        let scripted = self
            .failures
            .lock()
            .unwrap()
            .get_mut(resource)
            .and_then(VecDeque::pop_front);
        let result = match (scripted, resource) {
            (Some(error), _) => Err(error),
            (None, "increment") => Ok(json!(input["count"].as_i64().unwrap_or(0) + 1)),
            (None, "slow") => {
                tokio::time::sleep(Duration::from_millis(input["ms"].as_u64().unwrap_or(0))).await;
                self.completed.lock().unwrap().push(input.clone());
                Ok(input)
            }
            (None, "fail") => Err(TaskError::new("Boom", "bad")),
            (None, _) => Ok(input),
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

fn load(definition: Value) -> Definition {
    Definition::load(&definition.to_string(), &HashMap::new()).expect("definition loads")
}

fn load_error(definition: Value) -> AslError {
    Definition::load(&definition.to_string(), &HashMap::new()).expect_err("definition is refused")
}

fn no_waiting() -> RunOptions {
    RunOptions {
        time_scale: 0.0,
        ..RunOptions::default()
    }
}

/// A one-state machine around `state`, named `name`.
fn single(name: &str, state: Value) -> Definition {
    load(json!({ "StartAt": name, "States": { name: state } }))
}

#[test]
fn execute_returns_a_future_that_can_be_spawned() {
    // Arrange
    fn assert_send<T: Send>(_: &T) {}
    let definition = single("Done", json!({ "Type": "Succeed" }));
    let tasks = Recorder::default();
    let opts = RunOptions::default();

    // Act
    let future = execute(&definition, json!({}), &tasks, &opts);

    // Assert
    assert_send(&future);
}

#[tokio::test]
async fn parameters_with_dollar_keys_take_values_from_the_input_and_the_context() {
    // Arrange
    let definition = single(
        "Call",
        json!({
            "Type": "Task", "Resource": "echo", "End": true,
            "Parameters": {
                "doc.$": "$.doc",
                "fixed": 1,
                "ids.$": "$.items[*].id",
                "nested": {
                    "state.$": "$$.State.Name",
                    "execution.$": "$$.Execution.Name",
                    "original.$": "$$.Execution.Input.doc",
                    "retries.$": "$$.State.RetryCount"
                },
                "list": [{ "first.$": "$.items[0].id" }]
            }
        }),
    );
    let tasks = Recorder::default();
    let opts = RunOptions {
        execution_name: "run-1".into(),
        ..no_waiting()
    };

    // Act
    let execution = execute(
        &definition,
        json!({"doc": "d1", "items": [{"id": 1}, {"id": 2}]}),
        &tasks,
        &opts,
    )
    .await
    .unwrap();

    // Assert
    let expected = json!({
        "doc": "d1", "fixed": 1, "ids": [1, 2],
        "nested": { "state": "Call", "execution": "run-1", "original": "d1", "retries": 0 },
        "list": [{ "first": 1 }]
    });
    assert_eq!(tasks.inputs("echo"), vec![expected.clone()]);
    assert_eq!(execution.output, expected);
}

#[tokio::test]
async fn input_path_result_selector_result_path_and_output_path_compose_in_that_order() {
    // Arrange
    let definition = single(
        "T",
        json!({
            "Type": "Task", "Resource": "echo", "End": true,
            "InputPath": "$.payload",
            "Parameters": { "t.$": "$.text" },
            "ResultSelector": { "upper.$": "$.t", "state.$": "$$.State.Name" },
            "ResultPath": "$.out.selected",
            "OutputPath": "$.out"
        }),
    );
    let tasks = Recorder::default();

    // Act
    let execution = execute(
        &definition,
        json!({"meta": {"id": 7}, "payload": {"text": "hi"}}),
        &tasks,
        &no_waiting(),
    )
    .await
    .unwrap();

    // Assert
    assert_eq!(tasks.inputs("echo"), vec![json!({"t": "hi"})]);
    assert_eq!(
        execution.output,
        json!({"selected": {"upper": "hi", "state": "T"}})
    );
}

#[tokio::test]
async fn result_path_null_keeps_the_input_and_pass_result_lands_at_its_result_path() {
    // Arrange
    let definition = load(json!({
        "StartAt": "Call",
        "States": {
            "Call": { "Type": "Task", "Resource": "echo", "Parameters": {"x": 1}, "ResultPath": null, "Next": "Mark" },
            "Mark": { "Type": "Pass", "Result": {"ok": true}, "ResultPath": "$.mark", "End": true }
        }
    }));
    let tasks = Recorder::default();

    // Act
    let execution = execute(&definition, json!({"doc": "d"}), &tasks, &no_waiting())
        .await
        .unwrap();

    // Assert
    assert_eq!(tasks.inputs("echo"), vec![json!({"x": 1})]);
    assert_eq!(execution.output, json!({"doc": "d", "mark": {"ok": true}}));
    assert_eq!(
        execution.history,
        vec![
            StateRun {
                state: "Call".into(),
                attempts: 1
            },
            StateRun {
                state: "Mark".into(),
                attempts: 1
            }
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_choice_and_wait_loop_counts_to_three_waiting_each_round() {
    // Arrange
    let definition = load(json!({
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{ "Variable": "$.count", "NumericLessThan": 3, "Next": "Pause" }],
                "Default": "Done"
            },
            "Pause": { "Type": "Wait", "Seconds": 10, "Next": "Increment" },
            "Increment": { "Type": "Task", "Resource": "increment", "ResultPath": "$.count", "Next": "Check" },
            "Done": { "Type": "Succeed" }
        }
    }));
    let tasks = Recorder::default();
    let started = Instant::now();

    // Act
    let execution = execute(
        &definition,
        json!({"count": 0}),
        &tasks,
        &RunOptions::default(),
    )
    .await
    .unwrap();

    // Assert
    assert_eq!(execution.output, json!({"count": 3}));
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert_eq!(execution.states_entered, 11);
}

#[tokio::test]
async fn choice_rules_combine_and_or_not_type_tests_and_path_comparisons() {
    // Arrange
    let pass = |result: &str| json!({ "Type": "Pass", "Result": result, "End": true });
    let definition = load(json!({
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [
                    {
                        "And": [
                            { "Variable": "$.kind", "StringEquals": "pdf" },
                            { "Not": { "Variable": "$.pages", "NumericGreaterThan": 100 } }
                        ],
                        "Next": "Small"
                    },
                    {
                        "Or": [
                            { "Variable": "$.missing", "IsPresent": true },
                            { "Variable": "$.limit", "NumericLessThanEqualsPath": "$.pages" }
                        ],
                        "Next": "Limited"
                    },
                    { "Variable": "$.flag", "IsNull": true, "Next": "Null" },
                    {
                        "And": [
                            { "Variable": "$.flag", "IsBoolean": true },
                            { "Variable": "$.flag", "BooleanEquals": false },
                            { "Variable": "$.kind", "StringGreaterThan": "a" }
                        ],
                        "Next": "Off"
                    }
                ],
                "Default": "Other"
            },
            "Small": pass("Small"), "Limited": pass("Limited"), "Null": pass("Null"),
            "Off": pass("Off"), "Other": pass("Other")
        }
    }));
    let tasks = Recorder::default();
    let cases = [
        (json!({"kind": "pdf", "pages": 5}), "Small"),
        (
            json!({"kind": "pdf", "pages": 500, "limit": 200}),
            "Limited",
        ),
        (
            json!({"kind": "txt", "pages": 1, "limit": 5, "flag": null}),
            "Null",
        ),
        (
            json!({"kind": "txt", "pages": 1, "limit": 5, "flag": false}),
            "Off",
        ),
        (
            json!({"kind": "txt", "pages": 1, "limit": 5, "flag": true}),
            "Other",
        ),
        (
            json!({"kind": "txt", "pages": 1, "limit": 5, "flag": "false"}),
            "Other",
        ),
    ];

    for (input, expected) in cases {
        // Act
        let execution = execute(&definition, input.clone(), &tasks, &no_waiting())
            .await
            .unwrap();

        // Assert
        assert_eq!(execution.output, json!(expected), "input {input}");
    }
}

#[tokio::test]
async fn a_choice_without_a_match_or_default_fails_with_no_choice_matched() {
    // Arrange
    let definition = load(json!({
        "StartAt": "Route",
        "States": {
            "Route": { "Type": "Choice", "Choices": [{ "Variable": "$.n", "NumericEquals": 1, "Next": "One" }] },
            "One": { "Type": "Succeed" }
        }
    }));

    // Act
    let failed = execute(
        &definition,
        json!({"n": 2}),
        &Recorder::default(),
        &no_waiting(),
    )
    .await
    .unwrap_err();

    // Assert
    assert_eq!(failed.error, "States.NoChoiceMatched");
    assert_eq!(failed.state, "Route");
}

#[tokio::test]
async fn a_choice_comparing_a_missing_variable_fails_with_states_runtime() {
    // Arrange
    let definition = load(json!({
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [{ "Variable": "$.n", "NumericEquals": 1, "Next": "One" }],
                "Default": "One"
            },
            "One": { "Type": "Succeed" }
        }
    }));

    // Act
    let failed = execute(&definition, json!({}), &Recorder::default(), &no_waiting())
        .await
        .unwrap_err();

    // Assert
    assert_eq!(failed.error, "States.Runtime");
    assert!(failed.cause.contains("$.n"), "{}", failed.cause);
}

#[tokio::test(start_paused = true)]
async fn map_item_selector_sees_item_value_and_index_and_results_keep_item_order() {
    // Arrange
    let definition = single(
        "Each",
        json!({
            "Type": "Map", "End": true,
            "ItemsPath": "$.docs",
            "ItemSelector": {
                "ms.$": "$$.Map.Item.Value.ms",
                "index.$": "$$.Map.Item.Index",
                "batch.$": "$.batch"
            },
            "ItemProcessor": {
                "ProcessorConfig": { "Mode": "INLINE" },
                "StartAt": "Work",
                "States": { "Work": { "Type": "Task", "Resource": "slow", "End": true } }
            },
            "ResultPath": "$.results"
        }),
    );
    let tasks = Recorder::default();
    let input = json!({"batch": "b", "docs": [{"ms": 30}, {"ms": 10}, {"ms": 20}]});

    // Act
    let execution = execute(&definition, input, &tasks, &RunOptions::default())
        .await
        .unwrap();

    // Assert
    let item = |ms: u64, index: u64| json!({"ms": ms, "index": index, "batch": "b"});
    assert_eq!(
        execution.output["results"],
        json!([item(30, 0), item(10, 1), item(20, 2)])
    );
    let completion_order = tasks.completed.lock().unwrap().clone();
    assert_eq!(
        completion_order,
        vec![item(10, 1), item(20, 2), item(30, 0)]
    );
    assert_eq!(execution.states_entered, 4);
}

#[tokio::test(start_paused = true)]
async fn map_max_concurrency_limits_in_flight_invocations() {
    // Arrange
    let map = |max_concurrency: u64| {
        single(
            "Each",
            json!({
                "Type": "Map", "End": true, "MaxConcurrency": max_concurrency,
                "ItemProcessor": {
                    "StartAt": "Work",
                    "States": { "Work": { "Type": "Task", "Resource": "slow", "End": true } }
                }
            }),
        )
    };
    let items = json!([{"ms": 10}, {"ms": 10}, {"ms": 10}, {"ms": 10}, {"ms": 10}, {"ms": 10}]);
    let limited = Recorder::default();
    let unlimited = Recorder::default();
    let started = Instant::now();

    // Act
    let output = execute(&map(2), items.clone(), &limited, &RunOptions::default())
        .await
        .unwrap()
        .output;
    let limited_took = started.elapsed();
    execute(&map(0), items.clone(), &unlimited, &RunOptions::default())
        .await
        .unwrap();

    // Assert
    assert_eq!(output, items);
    assert_eq!(limited.high_water.load(Ordering::SeqCst), 2);
    assert_eq!(limited_took, Duration::from_millis(30));
    assert_eq!(unlimited.high_water.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn legacy_iterator_and_parameters_run_like_item_processor_and_item_selector() {
    // Arrange
    let definition = single(
        "Each",
        json!({
            "Type": "Map", "End": true, "ItemsPath": "$.xs",
            "Parameters": { "x.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index" },
            "Iterator": {
                "StartAt": "Work",
                "States": { "Work": { "Type": "Task", "Resource": "echo", "End": true } }
            },
            "ResultSelector": { "all.$": "$[*].x" }
        }),
    );

    // Act
    let execution = execute(
        &definition,
        json!({"xs": ["a", "b"]}),
        &Recorder::default(),
        &no_waiting(),
    )
    .await
    .unwrap();

    // Assert
    assert_eq!(execution.output, json!({"all": ["a", "b"]}));
}

fn retrying(retry: Value) -> Definition {
    single(
        "Call",
        json!({ "Type": "Task", "Resource": "flaky", "End": true, "Retry": retry }),
    )
}

#[tokio::test(start_paused = true)]
async fn a_retried_task_succeeds_after_backoff_and_sees_its_retry_count() {
    // Arrange
    let definition = single(
        "Call",
        json!({
            "Type": "Task", "Resource": "flaky", "End": true,
            "Parameters": { "retry.$": "$$.State.RetryCount" },
            "Retry": [{ "ErrorEquals": ["Flaky"] }]
        }),
    );
    let tasks = Recorder::failing("flaky", &["Flaky", "Flaky"]);
    let started = Instant::now();

    // Act
    let execution = execute(&definition, json!({}), &tasks, &RunOptions::default())
        .await
        .unwrap();

    // Assert
    assert_eq!(execution.output, json!({"retry": 2}));
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(
        execution.history,
        vec![StateRun {
            state: "Call".into(),
            attempts: 3
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn retries_wait_one_two_and_four_seconds_then_the_error_fails_the_execution() {
    // Arrange
    let definition = retrying(
        json!([{ "ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "BackoffRate": 2, "MaxAttempts": 3 }]),
    );
    let tasks = Recorder::failing("flaky", &["Flaky"; 10]);

    // Act
    let failed = execute(&definition, json!({}), &tasks, &RunOptions::default())
        .await
        .unwrap_err();

    // Assert
    assert_eq!(
        failed,
        ExecutionFailed {
            error: "Flaky".into(),
            cause: "Flaky happened".into(),
            state: "Call".into()
        }
    );
    assert_eq!(tasks.gaps(), vec![1.0, 2.0, 4.0]);
}

#[tokio::test(start_paused = true)]
async fn max_delay_seconds_caps_each_retry_wait() {
    // Arrange
    let definition = retrying(json!([{
        "ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "BackoffRate": 10, "MaxAttempts": 3, "MaxDelaySeconds": 5
    }]));
    let tasks = Recorder::failing("flaky", &["Flaky"; 10]);

    // Act
    execute(&definition, json!({}), &tasks, &RunOptions::default())
        .await
        .unwrap_err();

    // Assert
    assert_eq!(tasks.gaps(), vec![1.0, 5.0, 5.0]);
}

#[tokio::test(start_paused = true)]
async fn full_jitter_never_waits_longer_than_the_delay_and_does_vary_it() {
    // Arrange
    let definition = retrying(json!([{
        "ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "BackoffRate": 2, "MaxAttempts": 3, "JitterStrategy": "FULL"
    }]));
    let caps = [1.0, 2.0, 4.0];
    let mut all_gaps = Vec::new();

    for _ in 0..10 {
        // Act
        let tasks = Recorder::failing("flaky", &["Flaky"; 10]);
        execute(&definition, json!({}), &tasks, &RunOptions::default())
            .await
            .unwrap_err();

        // Assert
        let gaps = tasks.gaps();
        assert_eq!(gaps.len(), 3);
        for (gap, cap) in gaps.iter().zip(caps) {
            assert!(
                *gap <= cap + 0.001,
                "waited {gap}s, more than the {cap}s delay"
            );
            all_gaps.push((*gap, cap));
        }
    }
    assert!(
        all_gaps.iter().any(|(gap, cap)| *gap < cap - 0.01),
        "no wait was shortened: {all_gaps:?}"
    );
}

#[tokio::test]
async fn retriers_keep_their_own_attempt_counts() {
    // Arrange
    let definition = retrying(json!([
        { "ErrorEquals": ["A"], "MaxAttempts": 1 },
        { "ErrorEquals": ["B"], "MaxAttempts": 1 }
    ]));
    let one_of_each = Recorder::failing("flaky", &["A", "B"]);
    let two_of_a = Recorder::failing("flaky", &["A", "A"]);

    // Act
    let succeeded = execute(&definition, json!({}), &one_of_each, &no_waiting()).await;
    let failed = execute(&definition, json!({}), &two_of_a, &no_waiting()).await;

    // Assert
    assert!(succeeded.is_ok(), "{succeeded:?}");
    assert_eq!(one_of_each.inputs("flaky").len(), 3);
    assert_eq!(failed.unwrap_err().error, "A");
    assert_eq!(two_of_a.inputs("flaky").len(), 2);
}

#[tokio::test]
async fn max_attempts_zero_never_retries() {
    // Arrange
    let definition = retrying(json!([{ "ErrorEquals": ["States.ALL"], "MaxAttempts": 0 }]));
    let tasks = Recorder::failing("flaky", &["Flaky"]);

    // Act
    let failed = execute(&definition, json!({}), &tasks, &no_waiting())
        .await
        .unwrap_err();

    // Assert
    assert_eq!(failed.error, "Flaky");
    assert_eq!(tasks.inputs("flaky").len(), 1);
}

#[tokio::test]
async fn exhausted_retries_are_caught_and_the_error_lands_at_the_catch_result_path() {
    // Arrange
    let definition = load(json!({
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task", "Resource": "fail", "Next": "Unreached",
                "Retry": [{ "ErrorEquals": ["Boom"], "MaxAttempts": 1 }],
                "Catch": [
                    { "ErrorEquals": ["Other"], "Next": "Unreached" },
                    { "ErrorEquals": ["Boom"], "Next": "Recover", "ResultPath": "$.error" }
                ]
            },
            "Recover": { "Type": "Pass", "End": true },
            "Unreached": { "Type": "Fail", "Error": "Unreached" }
        }
    }));
    let tasks = Recorder::default();

    // Act
    let execution = execute(&definition, json!({"doc": "d"}), &tasks, &no_waiting())
        .await
        .unwrap();

    // Assert
    assert_eq!(
        execution.output,
        json!({"doc": "d", "error": {"Error": "Boom", "Cause": "bad"}})
    );
    assert_eq!(tasks.inputs("fail").len(), 2);
}

#[tokio::test]
async fn states_all_catches_any_task_error_but_not_a_runtime_error() {
    // Arrange
    let catching = |input_path: &str| {
        load(json!({
            "StartAt": "Call",
            "States": {
                "Call": {
                    "Type": "Task", "Resource": "fail", "End": true, "InputPath": input_path,
                    "Retry": [{ "ErrorEquals": ["States.ALL"], "MaxAttempts": 2 }],
                    "Catch": [{ "ErrorEquals": ["States.ALL"], "Next": "Handled" }]
                },
                "Handled": { "Type": "Pass", "Result": "handled", "End": true }
            }
        }))
    };
    let task_error = Recorder::default();
    let runtime_error = Recorder::default();

    // Act
    let handled = execute(&catching("$"), json!({}), &task_error, &no_waiting())
        .await
        .unwrap();
    let failed = execute(
        &catching("$.missing"),
        json!({}),
        &runtime_error,
        &no_waiting(),
    )
    .await
    .unwrap_err();

    // Assert
    assert_eq!(handled.output, json!("handled"));
    assert_eq!(task_error.inputs("fail").len(), 3);
    assert_eq!(failed.error, "States.Runtime");
    assert!(failed.cause.contains("$.missing"), "{}", failed.cause);
    assert!(runtime_error.inputs("fail").is_empty());
}

#[tokio::test]
async fn a_fail_state_ends_the_execution_with_its_error_and_cause() {
    // Arrange
    let definition = load(json!({
        "StartAt": "Start",
        "States": {
            "Start": { "Type": "Pass", "Next": "Stop" },
            "Stop": { "Type": "Fail", "Error": "Rejected", "Cause": "not a contract" }
        }
    }));

    // Act
    let failed = execute(&definition, json!({}), &Recorder::default(), &no_waiting())
        .await
        .unwrap_err();

    // Assert
    assert_eq!(
        failed,
        ExecutionFailed {
            error: "Rejected".into(),
            cause: "not a contract".into(),
            state: "Stop".into()
        }
    );
}

fn map_with_a_failing_item(catch: Value) -> Definition {
    load(json!({
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map", "ItemsPath": "$.items", "ResultPath": "$.results", "Next": "Done",
                "Catch": catch,
                "ItemProcessor": {
                    "StartAt": "Check",
                    "States": {
                        "Check": {
                            "Type": "Choice",
                            "Choices": [{ "Variable": "$", "NumericEquals": 2, "Next": "Stop" }],
                            "Default": "Work"
                        },
                        "Stop": { "Type": "Fail", "Error": "BadItem", "Cause": "two" },
                        "Work": { "Type": "Task", "Resource": "echo", "End": true }
                    }
                }
            },
            "Handled": { "Type": "Pass", "End": true },
            "Done": { "Type": "Succeed" }
        }
    }))
}

#[tokio::test]
async fn a_failing_map_item_fails_the_map_and_the_maps_catch_handles_it() {
    // Arrange
    let caught = map_with_a_failing_item(
        json!([{ "ErrorEquals": ["BadItem"], "Next": "Handled", "ResultPath": "$.failure" }]),
    );
    let uncaught = map_with_a_failing_item(json!([]));
    let input = json!({"items": [1, 2, 3]});

    // Act
    let handled = execute(&caught, input.clone(), &Recorder::default(), &no_waiting())
        .await
        .unwrap();
    let failed = execute(
        &uncaught,
        input.clone(),
        &Recorder::default(),
        &no_waiting(),
    )
    .await
    .unwrap_err();

    // Assert
    assert_eq!(
        handled.output,
        json!({"items": [1, 2, 3], "failure": {"Error": "BadItem", "Cause": "two"}})
    );
    assert_eq!(
        failed,
        ExecutionFailed {
            error: "BadItem".into(),
            cause: "two".into(),
            state: "Stop".into()
        }
    );
}

#[tokio::test]
async fn an_input_path_matching_nothing_fails_with_states_runtime_naming_the_path() {
    // Arrange
    let definition = single(
        "Call",
        json!({ "Type": "Task", "Resource": "echo", "End": true, "InputPath": "$.doc.id" }),
    );
    let tasks = Recorder::default();

    // Act
    let failed = execute(&definition, json!({"doc": {}}), &tasks, &no_waiting())
        .await
        .unwrap_err();

    // Assert
    assert_eq!(failed.error, "States.Runtime");
    assert_eq!(failed.state, "Call");
    assert!(failed.cause.contains("$.doc.id"), "{}", failed.cause);
    assert!(tasks.inputs("echo").is_empty());
}

#[tokio::test]
async fn a_choice_loop_without_an_exit_stops_at_the_states_entered_cap() {
    // Arrange
    let definition = load(json!({
        "StartAt": "Spin",
        "States": {
            "Spin": { "Type": "Pass", "Next": "Again" },
            "Again": {
                "Type": "Choice",
                "Choices": [{ "Variable": "$", "IsPresent": true, "Next": "Spin" }],
                "Default": "Done"
            },
            "Done": { "Type": "Succeed" }
        }
    }));
    let opts = RunOptions {
        max_states_entered: 50,
        ..no_waiting()
    };

    // Act
    let failed = execute(&definition, json!({}), &Recorder::default(), &opts)
        .await
        .unwrap_err();

    // Assert
    assert_eq!(failed.error, "States.Runtime");
    assert!(
        failed.cause.contains("more than 50 states"),
        "{}",
        failed.cause
    );
}

#[tokio::test(start_paused = true)]
async fn wait_seconds_path_waits_that_long_and_time_scale_zero_does_not_wait() {
    // Arrange
    let definition = single(
        "Pause",
        json!({ "Type": "Wait", "SecondsPath": "$.delay", "End": true }),
    );
    let tasks = Recorder::default();
    let started = Instant::now();

    // Act
    execute(
        &definition,
        json!({"delay": 5}),
        &tasks,
        &RunOptions::default(),
    )
    .await
    .unwrap();
    let real = started.elapsed();
    execute(&definition, json!({"delay": 5}), &tasks, &no_waiting())
        .await
        .unwrap();
    let scaled = started.elapsed() - real;

    // Assert
    assert_eq!(real, Duration::from_secs(5));
    assert_eq!(scaled, Duration::ZERO);
}

#[tokio::test]
async fn substitutions_replace_placeholders_in_every_string() {
    // Arrange
    let text = json!({
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task", "Resource": "${EchoArn}", "End": true,
                "Parameters": { "bucket": "s3://${Bucket}/in/${Bucket}" }
            }
        }
    })
    .to_string();
    let substitutions = HashMap::from([
        ("EchoArn".to_owned(), "arn:echo".to_owned()),
        ("Bucket".to_owned(), "docs".to_owned()),
    ]);
    let tasks = Recorder::default();

    // Act
    let definition = Definition::load(&text, &substitutions).unwrap();
    execute(&definition, json!({}), &tasks, &no_waiting())
        .await
        .unwrap();

    // Assert
    assert_eq!(definition.task_resources(), vec!["arn:echo".to_owned()]);
    assert_eq!(
        tasks.inputs("arn:echo"),
        vec![json!({"bucket": "s3://docs/in/docs"})]
    );
}

#[test]
fn task_resources_and_error_names_include_those_inside_map_processors() {
    // Arrange
    let definition = load(json!({
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map", "Next": "Last",
                "Retry": [{ "ErrorEquals": ["Throttled", "States.Timeout"] }],
                "ItemProcessor": {
                    "StartAt": "Inner",
                    "States": {
                        "Inner": {
                            "Type": "Task", "Resource": "ocr", "End": true,
                            "Catch": [{ "ErrorEquals": ["States.ALL"], "Next": "Gone" }]
                        },
                        "Gone": { "Type": "Succeed" }
                    }
                }
            },
            "Last": {
                "Type": "Task", "Resource": "persist", "End": true,
                "Retry": [{ "ErrorEquals": ["Throttled"] }, { "ErrorEquals": ["States.ALL"] }]
            }
        }
    }));

    // Act
    let resources = definition.task_resources();
    let names = definition.error_names();

    // Assert
    assert_eq!(resources, vec!["ocr", "persist"]);
    assert_eq!(names, vec!["States.ALL", "States.Timeout", "Throttled"]);
}

#[test]
fn load_refuses_a_parallel_state_naming_it() {
    // Arrange
    let definition = json!({ "StartAt": "P", "States": { "P": { "Type": "Parallel", "Branches": [], "End": true } } });

    // Act
    let error = load_error(definition);

    // Assert
    assert_eq!(
        error.to_string(),
        "state \"P\": unsupported state type \"Parallel\""
    );
}

#[test]
fn load_refuses_an_unknown_field_naming_it_and_the_state() {
    // Arrange
    let definition = json!({
        "StartAt": "X",
        "States": { "X": { "Type": "Task", "Resource": "r", "TimeoutSecondsPath": "$.t", "End": true } }
    });

    // Act
    let error = load_error(definition);

    // Assert
    assert_eq!(
        error.to_string(),
        "state \"X\": unsupported field \"TimeoutSecondsPath\""
    );
}

#[test]
fn load_refuses_jsonata_at_the_top_and_in_a_state() {
    // Arrange
    let top = json!({ "QueryLanguage": "JSONata", "StartAt": "X", "States": { "X": { "Type": "Succeed" } } });
    let state = json!({ "StartAt": "X", "States": { "X": { "Type": "Succeed", "QueryLanguage": "JSONata" } } });

    // Act
    let top_error = load_error(top);
    let state_error = load_error(state);

    // Assert
    assert_eq!(
        top_error.to_string(),
        "QueryLanguage JSONata is not supported"
    );
    assert_eq!(
        state_error.to_string(),
        "state \"X\": QueryLanguage JSONata is not supported"
    );
}

#[test]
fn load_refuses_a_next_that_does_not_exist_even_inside_a_map() {
    // Arrange
    let top = json!({ "StartAt": "X", "States": { "X": { "Type": "Pass", "Next": "Y" } } });
    let inner = json!({
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map", "End": true,
                "ItemProcessor": { "StartAt": "A", "States": { "A": { "Type": "Pass", "Next": "M" } } }
            }
        }
    });

    // Act
    let top_error = load_error(top);
    let inner_error = load_error(inner);

    // Assert
    assert_eq!(
        top_error.to_string(),
        "state \"X\": Next \"Y\" does not exist"
    );
    assert_eq!(
        inner_error.to_string(),
        "state \"A\": Next \"M\" does not exist"
    );
}

#[test]
fn load_refuses_a_missing_substitution_naming_it() {
    // Arrange
    let text = json!({ "StartAt": "X", "States": { "X": { "Type": "Task", "Resource": "${OcrArn}", "End": true } } })
        .to_string();

    // Act
    let error = Definition::load(&text, &HashMap::new()).unwrap_err();

    // Assert
    assert_eq!(
        error,
        AslError::MissingSubstitution {
            name: "OcrArn".into()
        }
    );
    assert!(error.to_string().contains("${OcrArn}"), "{error}");
}

#[test]
fn load_refuses_a_bad_jsonpath_naming_it() {
    // Arrange
    let definition = json!({
        "StartAt": "X",
        "States": { "X": { "Type": "Task", "Resource": "r", "End": true, "Parameters": { "a.$": "$.items[" } } }
    });

    // Act
    let error = load_error(definition).to_string();

    // Assert
    assert!(
        error.starts_with("state \"X\": Parameters: bad JSONPath \"$.items[\""),
        "{error}"
    );
}

#[test]
fn load_refuses_intrinsic_functions_and_non_reference_result_paths() {
    // Arrange
    let intrinsic = json!({
        "StartAt": "X",
        "States": { "X": { "Type": "Pass", "End": true, "Parameters": { "a.$": "States.Format('{}', $.x)" } } }
    });
    let result_path = json!({ "StartAt": "X", "States": { "X": { "Type": "Pass", "End": true, "ResultPath": "$.a[*]" } } });

    // Act
    let intrinsic_error = load_error(intrinsic).to_string();
    let result_path_error = load_error(result_path).to_string();

    // Assert
    assert!(
        intrinsic_error.contains("intrinsic function \"States.Format('{}', $.x)\""),
        "{intrinsic_error}"
    );
    assert!(
        result_path_error.contains("ResultPath \"$.a[*]\""),
        "{result_path_error}"
    );
}

#[test]
fn load_refuses_states_all_unless_alone_in_the_last_entry() {
    // Arrange
    let with = |retry: Value| json!({ "StartAt": "X", "States": { "X": { "Type": "Task", "Resource": "r", "End": true, "Retry": retry } } });
    let not_last = with(json!([{ "ErrorEquals": ["States.ALL"] }, { "ErrorEquals": ["Boom"] }]));
    let not_alone = with(json!([{ "ErrorEquals": ["Boom", "States.ALL"] }]));

    // Act
    let errors = [load_error(not_last), load_error(not_alone)];

    // Assert
    for error in errors {
        assert_eq!(
            error.to_string(),
            "state \"X\": Retry: States.ALL must appear alone in the last entry"
        );
    }
}

#[test]
fn load_refuses_a_state_that_neither_ends_nor_goes_on() {
    // Arrange
    let definition = json!({ "StartAt": "X", "States": { "X": { "Type": "Pass" } } });

    // Act
    let error = load_error(definition).to_string();

    // Assert
    assert_eq!(
        error,
        "state \"X\": needs exactly one of Next (a state name) or End: true"
    );
}
