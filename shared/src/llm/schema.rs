//! A validator for the subset of JSON Schema the prompts use, so that every LLM answer is
//! checked before a stage trusts it (or a cache keeps it).
//!
//! Supported keywords: `type` (a name or a list of names: `object`, `array`, `string`,
//! `integer`, `number`, `boolean`, `null`), `properties`, `required`,
//! `additionalProperties: false`, `items`, `enum`, `minimum`, `maximum`, `minItems`,
//! `maxItems`, `minLength`. That is what OpenAI's strict structured outputs accept as well,
//! minus references and combinators, which the prompts do not use. Other keywords are
//! ignored.

use serde_json::Value;

/// Checks `value` against `schema`.
///
/// # Errors
/// The first violation, as `path: problem` (`$.entities[2].kind: "FOO" is not one of
/// [...]`).
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, value, "$")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, v: &Value) -> bool {
    let actual = type_name(v);
    actual == expected
        || (expected == "number" && actual == "integer")
        // 3.0 is an integer to JSON Schema.
        || (expected == "integer" && v.as_f64().is_some_and(|f| f.fract() == 0.0))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let mut t: String = s.chars().take(57).collect();
        t.push_str("...");
        t
    } else {
        s
    }
}

fn check(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(s) = schema.as_object() else {
        return Ok(());
    };
    if let Some(t) = s.get("type") {
        let names: Vec<&str> = match t {
            Value::String(n) => vec![n.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !names.is_empty() && !names.iter().any(|n| type_matches(n, value)) {
            return Err(format!(
                "{path}: expected {}, got {} {}",
                names.join(" or "),
                type_name(value),
                short(value)
            ));
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum")
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(short).collect();
        return Err(format!(
            "{path}: {} is not one of [{}]",
            short(value),
            list.join(", ")
        ));
    }
    if let Some(x) = value.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64)
            && x < min
        {
            return Err(format!("{path}: {x} is below the minimum {min}"));
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64)
            && x > max
        {
            return Err(format!("{path}: {x} is above the maximum {max}"));
        }
    }
    match value {
        Value::String(text) => {
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && (text.chars().count() as u64) < min
            {
                return Err(format!("{path}: shorter than {min} characters"));
            }
        }
        Value::Array(items) => {
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                return Err(format!("{path}: fewer than {min} items"));
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                return Err(format!("{path}: more than {max} items"));
            }
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"))?;
                }
            }
        }
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(Value::Array(required)) = s.get("required") {
                for name in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(name) {
                        return Err(format!("{path}: missing required property {name:?}"));
                    }
                }
            }
            for (name, v) in map {
                match props.and_then(|p| p.get(name)) {
                    Some(prop_schema) => check(prop_schema, v, &format!("{path}.{name}"))?,
                    None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Err(format!("{path}: unexpected property {name:?}"));
                    }
                    None => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "entities": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": ["PERSON", "ORG"]},
                        "text": {"type": "string", "minLength": 1},
                        "page": {"type": ["integer", "null"], "minimum": 1}
                    },
                    "required": ["kind", "text", "page"],
                    "additionalProperties": false
                }}
            },
            "required": ["entities"],
            "additionalProperties": false
        })
    }

    #[test]
    fn a_conforming_answer_passes() {
        let v = json!({"entities": [{"kind": "ORG", "text": "Acme", "page": 2},
                                    {"kind": "PERSON", "text": "Jo", "page": null}]});
        assert_eq!(validate(&schema(), &v), Ok(()));
    }

    #[test]
    fn each_violation_is_reported_with_its_path() {
        let cases = [
            (json!({}), "$: missing required property \"entities\""),
            (
                json!({"entities": {}}),
                "$.entities: expected array, got object",
            ),
            (
                json!({"entities": [{"kind": "X", "text": "a", "page": 1}]}),
                "$.entities[0].kind: \"X\" is not one of",
            ),
            (
                json!({"entities": [{"kind": "ORG", "text": "", "page": 1}]}),
                "$.entities[0].text: shorter than 1",
            ),
            (
                json!({"entities": [{"kind": "ORG", "text": "a", "page": 0}]}),
                "$.entities[0].page: 0 is below the minimum 1",
            ),
            (
                json!({"entities": [{"kind": "ORG", "text": "a", "page": 1, "x": 1}]}),
                "$.entities[0]: unexpected property \"x\"",
            ),
            (
                json!({"entities": [], "extra": true}),
                "$: unexpected property \"extra\"",
            ),
        ];
        for (value, expected) in cases {
            let err = validate(&schema(), &value).unwrap_err();
            assert!(err.starts_with(expected), "{err} / {expected}");
        }
    }
}
