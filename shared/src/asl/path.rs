//! JSONPath as ASL uses it: queries (run by `serde_json_path`), reference paths, payload
//! templates and `ResultPath` writes.
//!
//! Querying is the crate's job. What is written here by hand is only the small part the
//! crate does not do: recognising a *reference path* (`$.a.b`, `$['a'][0]`: names and
//! indices only, so it names at most one node) and writing a value at one.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

/// The document a path reads: the state's effective input (`$…`) or the context object (`$$…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    Input,
    Context,
}

/// A compiled JSONPath as written in the definition.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    text: String,
    root: Root,
    query: JsonPath,
    /// A reference path selects its one node; any other path (wildcards, filters, `..`,
    /// slices) selects the array of every match, as AWS's JSONPath engine does.
    definite: bool,
}

impl Path {
    /// Compiles `text`, which starts with `$` (input) or `$$` (context object).
    ///
    /// A reference path is handed to the crate in bracket notation, so member names that
    /// RFC 9535's shorthand refuses but AWS accepts (`$.document-id`) still work.
    pub(crate) fn parse(text: &str) -> Result<Path, String> {
        let (root, rest) = match text.strip_prefix("$$") {
            Some(rest) => (Root::Context, format!("${rest}")),
            None => (Root::Input, text.to_owned()),
        };
        if !rest.starts_with('$') {
            return Err(format!("bad JSONPath \"{text}\": it must start with $"));
        }
        let (query_text, definite) = match parse_reference(&rest) {
            Some(segments) => (bracketed(&segments), true),
            None => (rest, false),
        };
        let query =
            JsonPath::parse(&query_text).map_err(|e| format!("bad JSONPath \"{text}\": {e}"))?;
        Ok(Path {
            text: text.to_owned(),
            root,
            query,
            definite,
        })
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn root(&self) -> Root {
        self.root
    }

    /// The value the path selects, or `None` when a reference path matches nothing.
    pub(crate) fn select(&self, input: &Value, context: &Value) -> Option<Value> {
        let document = match self.root {
            Root::Input => input,
            Root::Context => context,
        };
        let nodes = self.query.query(document);
        if self.definite {
            nodes.exactly_one().ok().cloned()
        } else {
            Some(Value::Array(nodes.all().into_iter().cloned().collect()))
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Name(String),
    Index(usize),
}

/// Splits a reference path (`$`, `.name`, `['name']`, `["name"]`, `[0]`) into segments;
/// `None` for anything else (wildcards, filters, `..`, slices, unions).
fn parse_reference(text: &str) -> Option<Vec<Segment>> {
    let mut rest = text.strip_prefix('$')?;
    let mut segments = Vec::new();
    while !rest.is_empty() {
        if let Some(after_dot) = rest.strip_prefix('.') {
            let end = after_dot.find(['.', '[']).unwrap_or(after_dot.len());
            let name = &after_dot[..end];
            if name.is_empty() || !name.chars().all(is_plain_name_char) {
                return None;
            }
            segments.push(Segment::Name(name.to_owned()));
            rest = &after_dot[end..];
        } else if let Some(inside) = rest.strip_prefix('[') {
            let quote = inside.chars().next()?;
            if quote == '\'' || quote == '"' {
                let body = &inside[1..];
                let close = body.find(quote)?;
                let name = &body[..close];
                if name.contains('\\') {
                    return None;
                }
                segments.push(Segment::Name(name.to_owned()));
                rest = body[close + 1..].strip_prefix(']')?;
            } else {
                let close = inside.find(']')?;
                let digits = &inside[..close];
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                segments.push(Segment::Index(digits.parse().ok()?));
                rest = &inside[close + 1..];
            }
        } else {
            return None;
        }
    }
    Some(segments)
}

fn is_plain_name_char(c: char) -> bool {
    !c.is_whitespace() && !"*?()@$,:'\"\\[]".contains(c)
}

fn bracketed(segments: &[Segment]) -> String {
    let mut out = String::from("$");
    for segment in segments {
        match segment {
            Segment::Name(name) => {
                out.push_str("['");
                out.push_str(&name.replace('\\', "\\\\").replace('\'', "\\'"));
                out.push_str("']");
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// A parsed `ResultPath` (and `Catch` `ResultPath`): where a state's result goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ResultPath {
    /// `null`: the result is discarded and the state's input passes through.
    Discard,
    /// `$` (no names) replaces the input; `$.a.b` sets `a.b` inside it.
    At(Vec<String>),
}

impl ResultPath {
    /// Parses the JSON value of a `ResultPath` field (absent means `$`).
    pub(crate) fn parse(value: Option<&Value>) -> Result<ResultPath, String> {
        let text = match value {
            None => return Ok(ResultPath::At(Vec::new())),
            Some(Value::Null) => return Ok(ResultPath::Discard),
            Some(Value::String(text)) => text,
            Some(other) => return Err(format!("ResultPath must be a string or null, not {other}")),
        };
        let names = parse_reference(text).and_then(|segments| {
            segments
                .into_iter()
                .map(|segment| match segment {
                    Segment::Name(name) => Some(name),
                    Segment::Index(_) => None,
                })
                .collect::<Option<Vec<_>>>()
        });
        names.map(ResultPath::At).ok_or_else(|| {
            format!("ResultPath \"{text}\" must be a reference path of member names, like $.a.b")
        })
    }

    /// The state output: `result` placed into `input` as this path says.
    ///
    /// # Errors
    /// A message when a value on the way is not an object (so the result has nowhere to go).
    pub(crate) fn apply(&self, input: Value, result: Value) -> Result<Value, String> {
        let names = match self {
            ResultPath::Discard => return Ok(input),
            ResultPath::At(names) => names,
        };
        let Some((last, parents)) = names.split_last() else {
            return Ok(result);
        };
        let mut output = input;
        let mut current = &mut output;
        for name in parents {
            let object = current.as_object_mut().ok_or_else(|| {
                format!("cannot set \"{name}\" for the ResultPath in a non-object")
            })?;
            current = object
                .entry(name.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        current
            .as_object_mut()
            .ok_or_else(|| format!("cannot set \"{last}\" for the ResultPath in a non-object"))?
            .insert(last.clone(), result);
        Ok(output)
    }
}

/// A `Parameters` / `ItemSelector` / `ResultSelector` payload template, compiled at load.
#[derive(Debug, Clone)]
pub(crate) enum Template {
    Literal(Value),
    /// From a `"key.$": "$.path"` field.
    Path(Path),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
}

impl Template {
    /// Compiles a template; intrinsic functions (`States.Format(…)`) are refused.
    pub(crate) fn parse(value: &Value) -> Result<Template, String> {
        Ok(match value {
            Value::Object(fields) => {
                let mut compiled = Vec::with_capacity(fields.len());
                for (key, field) in fields {
                    match key.strip_suffix(".$") {
                        Some(name) => {
                            let Value::String(text) = field else {
                                return Err(format!("field \"{key}\" must be a path string"));
                            };
                            if text.starts_with("States.") {
                                return Err(format!(
                                    "intrinsic function \"{text}\" (field \"{key}\") is not supported"
                                ));
                            }
                            let path = Path::parse(text)?;
                            compiled.push((name.to_owned(), Template::Path(path)));
                        }
                        None => compiled.push((key.clone(), Template::parse(field)?)),
                    }
                }
                Template::Object(compiled)
            }
            Value::Array(items) => Template::Array(
                items
                    .iter()
                    .map(Template::parse)
                    .collect::<Result<_, _>>()?,
            ),
            other => Template::Literal(other.clone()),
        })
    }

    /// Builds the payload from the effective input and the context object.
    ///
    /// # Errors
    /// A message naming the path when a reference path matches nothing.
    pub(crate) fn render(&self, input: &Value, context: &Value) -> Result<Value, String> {
        Ok(match self {
            Template::Literal(value) => value.clone(),
            Template::Path(path) => path.select(input, context).ok_or_else(|| {
                format!(
                    "the JSONPath \"{}\" could not be found in the input",
                    path.text()
                )
            })?,
            Template::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (key, field) in fields {
                    out.insert(key.clone(), field.render(input, context)?);
                }
                Value::Object(out)
            }
            Template::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| item.render(input, context))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_paths_select_one_node_and_other_paths_an_array_of_matches() {
        // Arrange
        let input = json!({"a": {"b-c": [10, 20]}, "xs": [{"v": 1}, {"v": 2}]});
        let context = json!({"State": {"Name": "S"}});

        // Act / Assert
        let select = |p: &str| Path::parse(p).unwrap().select(&input, &context);
        assert_eq!(select("$.a.b-c[1]"), Some(json!(20)));
        assert_eq!(select("$['a']['b-c'][0]"), Some(json!(10)));
        assert_eq!(select("$.missing"), None);
        assert_eq!(select("$.xs[*].v"), Some(json!([1, 2])));
        assert_eq!(select("$..v"), Some(json!([1, 2])));
        assert_eq!(select("$$.State.Name"), Some(json!("S")));
        assert_eq!(Path::parse("$$.State").unwrap().root(), Root::Context);
    }

    #[test]
    fn result_path_creates_missing_objects_and_refuses_non_objects() {
        // Arrange
        let path = ResultPath::parse(Some(&json!("$.a.b"))).unwrap();

        // Act / Assert
        assert_eq!(
            path.apply(json!({"x": 1}), json!(5)).unwrap(),
            json!({"x": 1, "a": {"b": 5}})
        );
        assert!(path.apply(json!({"a": 3}), json!(5)).is_err());
        assert!(ResultPath::parse(Some(&json!("$.a[0]"))).is_err());
        assert!(ResultPath::parse(Some(&json!("$.a[*]"))).is_err());
        assert_eq!(
            ResultPath::parse(Some(&Value::Null)).unwrap(),
            ResultPath::Discard
        );
    }
}
