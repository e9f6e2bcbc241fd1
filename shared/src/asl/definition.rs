//! Loading a definition: substitutions, then every state parsed into typed form and checked,
//! so that anything this interpreter would not run faithfully is refused before it starts.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::AslError;
use super::choice::{Rule, parse_rule};
use super::path::{Path, ResultPath, Root, Template};

/// The error name that matches any error except `States.Runtime`.
pub(crate) const STATES_ALL: &str = "States.ALL";

/// A parsed, validated state machine definition, ready for [`super::execute`].
#[derive(Debug, Clone)]
pub struct Definition {
    pub(crate) machine: Machine,
}

/// A `StartAt` with its `States`: the whole machine, or a Map state's item processor.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) start_at: String,
    pub(crate) states: HashMap<String, State>,
}

#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) name: String,
    pub(crate) kind: StateKind,
    /// `None` when the field is `null` (the input becomes `{}`); absent means `$`.
    pub(crate) input_path: Option<Path>,
    pub(crate) output_path: Option<Path>,
    pub(crate) result_path: ResultPath,
    pub(crate) parameters: Option<Template>,
    pub(crate) result_selector: Option<Template>,
    pub(crate) retry: Vec<Retrier>,
    pub(crate) catch: Vec<Catcher>,
    /// `None` for `End: true` and for Choice, Succeed and Fail.
    pub(crate) next: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum StateKind {
    Task {
        resource: String,
    },
    Pass {
        result: Option<Value>,
    },
    Choice {
        choices: Vec<(Rule, String)>,
        default: Option<String>,
    },
    Wait(WaitFor),
    Map(Box<MapState>),
    Succeed,
    Fail {
        error: String,
        cause: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum WaitFor {
    Seconds(u64),
    SecondsPath(Path),
}

#[derive(Debug, Clone)]
pub(crate) struct MapState {
    pub(crate) items_path: Path,
    /// `ItemSelector`, or the legacy `Parameters` of a Map state.
    pub(crate) item_selector: Option<Template>,
    /// 0 means no limit.
    pub(crate) max_concurrency: usize,
    pub(crate) processor: Machine,
}

#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub(crate) error_equals: Vec<String>,
    pub(crate) interval_seconds: f64,
    pub(crate) max_attempts: u32,
    pub(crate) backoff_rate: f64,
    pub(crate) max_delay_seconds: Option<f64>,
    /// `JitterStrategy: FULL`: each wait is random between 0 and the computed delay.
    pub(crate) full_jitter: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Catcher {
    pub(crate) error_equals: Vec<String>,
    pub(crate) next: String,
    pub(crate) result_path: ResultPath,
}

impl Definition {
    /// Parses the JSON text; replaces `${Name}` DefinitionSubstitutions in every string
    /// (keys included) with `substitutions[Name]`, then parses and checks every state.
    ///
    /// # Errors
    /// [`AslError`] for invalid JSON, a missing substitution (naming it), a query language
    /// other than JSONPath, and any state type, field, path or transition this interpreter
    /// does not support or that is invalid, naming the state.
    pub fn load(
        json: &str,
        substitutions: &HashMap<String, String>,
    ) -> Result<Definition, AslError> {
        let value: Value = serde_json::from_str(json).map_err(|e| AslError::Json(e.to_string()))?;
        let value = substitute(value, substitutions)?;
        let Value::Object(fields) = &value else {
            return Err(AslError::Definition(
                "the definition must be a JSON object".into(),
            ));
        };
        check_query_language(fields).map_err(|language| AslError::QueryLanguage { language })?;
        const TOP_LEVEL: &[&str] = &[
            "Comment",
            "StartAt",
            "States",
            "TimeoutSeconds",
            "QueryLanguage",
            "Version",
        ];
        if let Some(key) = fields.keys().find(|key| !TOP_LEVEL.contains(&key.as_str())) {
            return Err(AslError::Definition(format!("unsupported field \"{key}\"")));
        }
        let machine = parse_machine(fields, &|message| AslError::Definition(message))?;
        Ok(Definition { machine })
    }

    /// Every Task `Resource`, including those inside Map processors (deduplicated, sorted):
    /// what a [`super::Tasks`] implementation must answer.
    pub fn task_resources(&self) -> Vec<String> {
        let mut resources = Vec::new();
        self.machine.walk(&mut |state| {
            if let StateKind::Task { resource } = &state.kind {
                resources.push(resource.clone());
            }
        });
        resources.sort();
        resources.dedup();
        resources
    }

    /// Every `ErrorEquals` name in Retry and Catch, everywhere (deduplicated, sorted), so a
    /// test can check that each names an error the tasks really raise.
    pub fn error_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.machine.walk(&mut |state| {
            let retried = state.retry.iter().flat_map(|r| &r.error_equals);
            let caught = state.catch.iter().flat_map(|c| &c.error_equals);
            names.extend(retried.chain(caught).cloned());
        });
        names.sort();
        names.dedup();
        names
    }
}

impl Machine {
    fn walk(&self, visit: &mut dyn FnMut(&State)) {
        let mut names: Vec<&String> = self.states.keys().collect();
        names.sort();
        for name in names {
            let state = &self.states[name];
            visit(state);
            if let StateKind::Map(map) = &state.kind {
                map.processor.walk(visit);
            }
        }
    }
}

/// `Err(language)` for anything but an absent or `"JSONPath"` QueryLanguage.
fn check_query_language(fields: &Map<String, Value>) -> Result<(), String> {
    match fields.get("QueryLanguage") {
        None => Ok(()),
        Some(Value::String(language)) if language == "JSONPath" => Ok(()),
        Some(Value::String(language)) => Err(language.clone()),
        Some(other) => Err(other.to_string()),
    }
}

fn substitute(value: Value, substitutions: &HashMap<String, String>) -> Result<Value, AslError> {
    Ok(match value {
        Value::String(text) => Value::String(substitute_text(&text, substitutions)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| substitute(item, substitutions))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (key, field) in fields {
                out.insert(
                    substitute_text(&key, substitutions)?,
                    substitute(field, substitutions)?,
                );
            }
            Value::Object(out)
        }
        other => other,
    })
}

fn substitute_text(
    text: &str,
    substitutions: &HashMap<String, String>,
) -> Result<String, AslError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(length) = rest[start + 2..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + 2 + length];
        let value = substitutions
            .get(name)
            .ok_or_else(|| AslError::MissingSubstitution {
                name: name.to_owned(),
            })?;
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[start + 3 + length..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses `StartAt` and `States`; `scope` turns a machine-level problem into the error for
/// where the machine sits (the top level, or a Map state).
fn parse_machine(
    fields: &Map<String, Value>,
    scope: &dyn Fn(String) -> AslError,
) -> Result<Machine, AslError> {
    let start_at = match fields.get("StartAt") {
        Some(Value::String(start_at)) => start_at.clone(),
        _ => return Err(scope("StartAt must name a state".into())),
    };
    let Some(Value::Object(state_fields)) = fields.get("States") else {
        return Err(scope("States must be an object".into()));
    };
    let mut states = HashMap::with_capacity(state_fields.len());
    for (name, state) in state_fields {
        states.insert(name.clone(), parse_state(name, state)?);
    }
    if !states.contains_key(&start_at) {
        return Err(scope(format!("StartAt \"{start_at}\" does not exist")));
    }
    for name in state_fields.keys() {
        for (field, target) in states[name].transitions() {
            if !states.contains_key(target) {
                return Err(state_error(
                    name,
                    format!("{field} \"{target}\" does not exist"),
                ));
            }
        }
    }
    Ok(Machine { start_at, states })
}

impl State {
    /// Every state this one can go to, with the field that names it.
    fn transitions(&self) -> Vec<(&'static str, &str)> {
        let mut targets: Vec<(&'static str, &str)> = self
            .next
            .iter()
            .map(|next| ("Next", next.as_str()))
            .collect();
        if let StateKind::Choice { choices, default } = &self.kind {
            targets.extend(choices.iter().map(|(_, next)| ("Next", next.as_str())));
            targets.extend(default.iter().map(|default| ("Default", default.as_str())));
        }
        targets.extend(
            self.catch
                .iter()
                .map(|catcher| ("Next", catcher.next.as_str())),
        );
        targets
    }
}

fn state_error(state: &str, message: impl Into<String>) -> AslError {
    AslError::State {
        state: state.to_owned(),
        message: message.into(),
    }
}

const TASK_FIELDS: &[&str] = &[
    "Resource",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "InputPath",
    "OutputPath",
    "Retry",
    "Catch",
    "Next",
    "End",
    "TimeoutSeconds",
];
const PASS_FIELDS: &[&str] = &[
    "Result",
    "Parameters",
    "ResultPath",
    "InputPath",
    "OutputPath",
    "Next",
    "End",
];
const CHOICE_FIELDS: &[&str] = &["Choices", "Default", "InputPath", "OutputPath"];
const WAIT_FIELDS: &[&str] = &[
    "Seconds",
    "SecondsPath",
    "InputPath",
    "OutputPath",
    "Next",
    "End",
];
const MAP_FIELDS: &[&str] = &[
    "ItemsPath",
    "ItemSelector",
    "Parameters",
    "MaxConcurrency",
    "ItemProcessor",
    "Iterator",
    "ResultSelector",
    "ResultPath",
    "InputPath",
    "OutputPath",
    "Retry",
    "Catch",
    "Next",
    "End",
];
const SUCCEED_FIELDS: &[&str] = &["InputPath", "OutputPath"];
const FAIL_FIELDS: &[&str] = &["Error", "Cause"];

fn parse_state(name: &str, value: &Value) -> Result<State, AslError> {
    let err = |message: String| state_error(name, message);
    let Value::Object(fields) = value else {
        return Err(err("a state must be an object".into()));
    };
    let state_type = fields
        .get("Type")
        .and_then(Value::as_str)
        .ok_or_else(|| err("Type is missing".into()))?;
    let allowed = match state_type {
        "Task" => TASK_FIELDS,
        "Pass" => PASS_FIELDS,
        "Choice" => CHOICE_FIELDS,
        "Wait" => WAIT_FIELDS,
        "Map" => MAP_FIELDS,
        "Succeed" => SUCCEED_FIELDS,
        "Fail" => FAIL_FIELDS,
        other => return Err(err(format!("unsupported state type \"{other}\""))),
    };
    check_query_language(fields)
        .map_err(|language| err(format!("QueryLanguage {language} is not supported")))?;
    let common = ["Type", "Comment", "QueryLanguage"];
    if let Some(key) = fields
        .keys()
        .find(|key| !common.contains(&key.as_str()) && !allowed.contains(&key.as_str()))
    {
        return Err(err(format!("unsupported field \"{key}\"")));
    }

    let mut parameters = template(fields, "Parameters").map_err(err)?;
    let kind = match state_type {
        "Task" => match fields.get("Resource") {
            Some(Value::String(resource)) => StateKind::Task {
                resource: resource.clone(),
            },
            _ => return Err(err("Resource must be a string".into())),
        },
        "Pass" => StateKind::Pass {
            result: fields.get("Result").cloned(),
        },
        "Choice" => parse_choice(fields).map_err(err)?,
        "Wait" => parse_wait(fields).map_err(err)?,
        "Map" => {
            let item_selector = match (
                template(fields, "ItemSelector").map_err(err)?,
                parameters.take(),
            ) {
                (Some(_), Some(_)) => {
                    return Err(err("ItemSelector and Parameters cannot both be set".into()));
                }
                (selector, legacy) => selector.or(legacy),
            };
            StateKind::Map(Box::new(parse_map(name, fields, item_selector)?))
        }
        "Succeed" => StateKind::Succeed,
        _ => StateKind::Fail {
            error: optional_string(fields, "Error").map_err(err)?,
            cause: optional_string(fields, "Cause").map_err(err)?,
        },
    };
    let next = match (fields.get("Next"), fields.get("End")) {
        (Some(Value::String(next)), None) => Some(next.clone()),
        (None, Some(Value::Bool(true))) => None,
        (None, None) if matches!(state_type, "Choice" | "Succeed" | "Fail") => None,
        _ => {
            return Err(err(
                "needs exactly one of Next (a state name) or End: true".into()
            ));
        }
    };
    Ok(State {
        name: name.to_owned(),
        kind,
        input_path: io_path(fields, "InputPath").map_err(err)?,
        output_path: io_path(fields, "OutputPath").map_err(err)?,
        result_path: ResultPath::parse(fields.get("ResultPath")).map_err(err)?,
        parameters,
        result_selector: template(fields, "ResultSelector").map_err(err)?,
        retry: parse_retry(fields).map_err(err)?,
        catch: parse_catch(fields).map_err(err)?,
        next,
    })
}

fn template(fields: &Map<String, Value>, key: &str) -> Result<Option<Template>, String> {
    match fields.get(key) {
        None => Ok(None),
        Some(value @ Value::Object(_)) => Template::parse(value)
            .map(Some)
            .map_err(|message| format!("{key}: {message}")),
        Some(other) => Err(format!("{key} must be an object, not {other}")),
    }
}

/// `InputPath` / `OutputPath`: absent means `$`, `null` means `{}` (returned as `None`).
fn io_path(fields: &Map<String, Value>, key: &str) -> Result<Option<Path>, String> {
    match fields.get(key) {
        None => Path::parse("$").map(Some),
        Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            let path = Path::parse(text).map_err(|e| format!("{key}: {e}"))?;
            if path.root() == Root::Context {
                return Err(format!(
                    "{key} \"{text}\" must be a path into the input, not $$"
                ));
            }
            Ok(Some(path))
        }
        Some(other) => Err(format!("{key} must be a path string or null, not {other}")),
    }
}

fn optional_string(fields: &Map<String, Value>, key: &str) -> Result<String, String> {
    match fields.get(key) {
        None => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(format!("{key} must be a string, not {other}")),
    }
}

fn whole_number(
    fields: &Map<String, Value>,
    key: &str,
    minimum: u64,
) -> Result<Option<u64>, String> {
    match fields.get(key) {
        None => Ok(None),
        Some(value) => match value.as_u64() {
            Some(number) if number >= minimum => Ok(Some(number)),
            _ => Err(format!(
                "{key} must be a whole number of at least {minimum}, not {value}"
            )),
        },
    }
}

fn parse_choice(fields: &Map<String, Value>) -> Result<StateKind, String> {
    let Some(Value::Array(rules)) = fields.get("Choices") else {
        return Err("Choices must be a non-empty array".into());
    };
    if rules.is_empty() {
        return Err("Choices must be a non-empty array".into());
    }
    let choices = rules
        .iter()
        .map(|rule| {
            let (rule, next) = parse_rule(rule, true)?;
            Ok((rule, next.expect("a top-level rule has Next")))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let default = match fields.get("Default") {
        None => None,
        Some(Value::String(default)) => Some(default.clone()),
        Some(other) => return Err(format!("Default must be a state name, not {other}")),
    };
    Ok(StateKind::Choice { choices, default })
}

fn parse_wait(fields: &Map<String, Value>) -> Result<StateKind, String> {
    match (
        whole_number(fields, "Seconds", 0)?,
        fields.get("SecondsPath"),
    ) {
        (Some(seconds), None) => Ok(StateKind::Wait(WaitFor::Seconds(seconds))),
        (None, Some(Value::String(text))) => Ok(StateKind::Wait(WaitFor::SecondsPath(
            Path::parse(text).map_err(|e| format!("SecondsPath: {e}"))?,
        ))),
        _ => Err("needs exactly one of Seconds (a whole number) or SecondsPath (a path)".into()),
    }
}

fn parse_map(
    name: &str,
    fields: &Map<String, Value>,
    item_selector: Option<Template>,
) -> Result<MapState, AslError> {
    let err = |message: String| state_error(name, message);
    let items_path = match fields.get("ItemsPath") {
        None => Path::parse("$"),
        Some(Value::String(text)) => Path::parse(text).map_err(|e| format!("ItemsPath: {e}")),
        Some(other) => Err(format!("ItemsPath must be a path string, not {other}")),
    }
    .map_err(err)?;
    let max_concurrency = whole_number(fields, "MaxConcurrency", 0)
        .map_err(err)?
        .unwrap_or(0);
    let (key, processor) = match (fields.get("ItemProcessor"), fields.get("Iterator")) {
        (Some(Value::Object(processor)), None) => ("ItemProcessor", processor),
        (None, Some(Value::Object(processor))) => ("Iterator", processor),
        _ => {
            return Err(err(
                "needs exactly one of ItemProcessor or Iterator (an object)".into(),
            ));
        }
    };
    let allowed: &[&str] = if key == "ItemProcessor" {
        &["ProcessorConfig", "StartAt", "States", "Comment"]
    } else {
        &["StartAt", "States", "Comment"]
    };
    if let Some(field) = processor
        .keys()
        .find(|field| !allowed.contains(&field.as_str()))
    {
        return Err(err(format!("unsupported field \"{key}.{field}\"")));
    }
    if let Some(config) = processor.get("ProcessorConfig") {
        let Value::Object(config) = config else {
            return Err(err("ProcessorConfig must be an object".into()));
        };
        if let Some(field) = config.keys().find(|field| field.as_str() != "Mode") {
            return Err(err(format!(
                "unsupported field \"ProcessorConfig.{field}\""
            )));
        }
        match config.get("Mode") {
            None => {}
            Some(Value::String(mode)) if mode == "INLINE" => {}
            Some(mode) => return Err(err(format!("unsupported ProcessorConfig Mode {mode}"))),
        }
    }
    let processor = parse_machine(processor, &|message| err(format!("{key}: {message}")))?;
    Ok(MapState {
        items_path,
        item_selector,
        max_concurrency: max_concurrency as usize,
        processor,
    })
}

fn error_equals(fields: &Map<String, Value>) -> Result<Vec<String>, String> {
    let names = match fields.get("ErrorEquals") {
        Some(Value::Array(names)) if !names.is_empty() => names,
        _ => return Err("ErrorEquals must be a non-empty array of error names".into()),
    };
    names
        .iter()
        .map(|name| {
            name.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("error name {name} is not a string"))
        })
        .collect()
}

/// AWS's rule: `States.ALL` stands alone, in the last retrier or catcher.
fn check_states_all(field: &str, lists: &[&Vec<String>]) -> Result<(), String> {
    for (index, names) in lists.iter().enumerate() {
        if names.iter().any(|name| name == STATES_ALL)
            && (names.len() > 1 || index + 1 < lists.len())
        {
            return Err(format!(
                "{field}: {STATES_ALL} must appear alone in the last entry"
            ));
        }
    }
    Ok(())
}

fn entries<'a>(
    fields: &'a Map<String, Value>,
    key: &str,
) -> Result<Vec<&'a Map<String, Value>>, String> {
    match fields.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_object()
                    .ok_or_else(|| format!("each {key} entry must be an object"))
            })
            .collect(),
        Some(other) => Err(format!("{key} must be an array, not {other}")),
    }
}

fn parse_retry(fields: &Map<String, Value>) -> Result<Vec<Retrier>, String> {
    const FIELDS: &[&str] = &[
        "ErrorEquals",
        "IntervalSeconds",
        "MaxAttempts",
        "BackoffRate",
        "MaxDelaySeconds",
        "JitterStrategy",
        "Comment",
    ];
    let mut retriers = Vec::new();
    for entry in entries(fields, "Retry")? {
        if let Some(key) = entry.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            return Err(format!("unsupported field \"Retry.{key}\""));
        }
        let backoff_rate = match entry.get("BackoffRate") {
            None => 2.0,
            Some(value) => value.as_f64().filter(|rate| *rate >= 1.0).ok_or_else(|| {
                format!("Retry.BackoffRate must be a number of at least 1.0, not {value}")
            })?,
        };
        let full_jitter = match entry.get("JitterStrategy") {
            None => false,
            Some(Value::String(strategy)) if strategy == "NONE" => false,
            Some(Value::String(strategy)) if strategy == "FULL" => true,
            Some(other) => {
                return Err(format!(
                    "Retry.JitterStrategy must be FULL or NONE, not {other}"
                ));
            }
        };
        let retry_field = |key: &str, minimum| {
            whole_number(entry, key, minimum).map_err(|message| format!("Retry.{message}"))
        };
        retriers.push(Retrier {
            error_equals: error_equals(entry).map_err(|message| format!("Retry.{message}"))?,
            interval_seconds: retry_field("IntervalSeconds", 1)?.unwrap_or(1) as f64,
            max_attempts: u32::try_from(retry_field("MaxAttempts", 0)?.unwrap_or(3))
                .map_err(|_| "Retry.MaxAttempts is too large".to_owned())?,
            backoff_rate,
            max_delay_seconds: retry_field("MaxDelaySeconds", 1)?.map(|seconds| seconds as f64),
            full_jitter,
        });
    }
    check_states_all(
        "Retry",
        &retriers.iter().map(|r| &r.error_equals).collect::<Vec<_>>(),
    )?;
    Ok(retriers)
}

fn parse_catch(fields: &Map<String, Value>) -> Result<Vec<Catcher>, String> {
    const FIELDS: &[&str] = &["ErrorEquals", "Next", "ResultPath", "Comment"];
    let mut catchers = Vec::new();
    for entry in entries(fields, "Catch")? {
        if let Some(key) = entry.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            return Err(format!("unsupported field \"Catch.{key}\""));
        }
        let Some(Value::String(next)) = entry.get("Next") else {
            return Err("Catch.Next must name a state".into());
        };
        catchers.push(Catcher {
            error_equals: error_equals(entry).map_err(|message| format!("Catch.{message}"))?,
            next: next.clone(),
            result_path: ResultPath::parse(entry.get("ResultPath"))
                .map_err(|message| format!("Catch.{message}"))?,
        });
    }
    check_states_all(
        "Catch",
        &catchers.iter().map(|c| &c.error_equals).collect::<Vec<_>>(),
    )?;
    Ok(catchers)
}
