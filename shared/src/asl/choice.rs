//! Choice rules: parsing (`Variable` + one comparison, or `And` / `Or` / `Not`) and evaluation.

use std::cmp::Ordering;

use serde_json::Value;

use super::path::Path;

/// One rule of a Choice state, compiled.
#[derive(Debug, Clone)]
pub(crate) enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Test { variable: Path, test: Test },
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// `StringEquals`, `NumericLessThanPath`, `BooleanEquals`, …
    Compare {
        kind: Kind,
        op: Op,
        operand: Operand,
    },
    IsPresent(bool),
    IsNull(bool),
    IsBoolean(bool),
    IsNumeric(bool),
    IsString(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Numeric,
    Boolean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Literal(Value),
    /// From a `…Path` operator: the value at this path in the input.
    Path(Path),
}

const COMBINATORS: [&str; 3] = ["And", "Or", "Not"];

/// Parses one rule. `top` rules carry a `Next`, which is returned; nested ones must not.
pub(crate) fn parse_rule(rule: &Value, top: bool) -> Result<(Rule, Option<String>), String> {
    let Value::Object(fields) = rule else {
        return Err(format!("a choice rule must be an object, not {rule}"));
    };
    let next = match fields.get("Next") {
        Some(_) if !top => return Err("a nested choice rule cannot have Next".into()),
        Some(Value::String(next)) => Some(next.clone()),
        Some(other) => return Err(format!("Next must be a string, not {other}")),
        None if top => return Err("a choice rule needs Next".into()),
        None => None,
    };
    let mut operators = fields
        .keys()
        .filter(|key| !matches!(key.as_str(), "Next" | "Comment" | "Variable"));
    let (Some(operator), None) = (operators.next(), operators.next()) else {
        return Err("a choice rule needs exactly one comparison or And/Or/Not".into());
    };
    let argument = &fields[operator.as_str()];
    if COMBINATORS.contains(&operator.as_str()) {
        if fields.contains_key("Variable") {
            return Err(format!(
                "a choice rule with {operator} cannot have Variable"
            ));
        }
        let rule = match (operator.as_str(), argument) {
            ("Not", inner) => Rule::Not(Box::new(parse_rule(inner, false)?.0)),
            (_, Value::Array(inner)) if !inner.is_empty() => {
                let rules = inner
                    .iter()
                    .map(|rule| parse_rule(rule, false).map(|(rule, _)| rule))
                    .collect::<Result<Vec<_>, _>>()?;
                if operator == "And" {
                    Rule::And(rules)
                } else {
                    Rule::Or(rules)
                }
            }
            _ => return Err(format!("{operator} must be a non-empty array of rules")),
        };
        return Ok((rule, next));
    }
    let variable = match fields.get("Variable") {
        Some(Value::String(text)) => Path::parse(text)?,
        _ => {
            return Err(format!(
                "a choice rule with {operator} needs a Variable string"
            ));
        }
    };
    let test = parse_test(operator, argument)?;
    Ok((Rule::Test { variable, test }, next))
}

fn parse_test(operator: &str, argument: &Value) -> Result<Test, String> {
    let flag = || {
        argument
            .as_bool()
            .ok_or_else(|| format!("{operator} must be true or false, not {argument}"))
    };
    match operator {
        "IsPresent" => return Ok(Test::IsPresent(flag()?)),
        "IsNull" => return Ok(Test::IsNull(flag()?)),
        "IsBoolean" => return Ok(Test::IsBoolean(flag()?)),
        "IsNumeric" => return Ok(Test::IsNumeric(flag()?)),
        "IsString" => return Ok(Test::IsString(flag()?)),
        _ => {}
    }
    let unsupported = || format!("unsupported choice operator \"{operator}\"");
    let (base, by_path) = match operator.strip_suffix("Path") {
        Some(base) => (base, true),
        None => (operator, false),
    };
    let (kind, op_name) = [
        ("String", Kind::String),
        ("Numeric", Kind::Numeric),
        ("Boolean", Kind::Boolean),
    ]
    .into_iter()
    .find_map(|(prefix, kind)| base.strip_prefix(prefix).map(|rest| (kind, rest)))
    .ok_or_else(unsupported)?;
    let op = match op_name {
        "Equals" => Op::Equals,
        "LessThan" => Op::LessThan,
        "GreaterThan" => Op::GreaterThan,
        "LessThanEquals" => Op::LessThanEquals,
        "GreaterThanEquals" => Op::GreaterThanEquals,
        _ => return Err(unsupported()),
    };
    if kind == Kind::Boolean && op != Op::Equals {
        return Err(unsupported());
    }
    let operand = if by_path {
        let text = argument
            .as_str()
            .ok_or_else(|| format!("{operator} must be a path string"))?;
        Operand::Path(Path::parse(text)?)
    } else {
        let fits = match kind {
            Kind::String => argument.is_string(),
            Kind::Numeric => argument.is_number(),
            Kind::Boolean => argument.is_boolean(),
        };
        if !fits {
            return Err(format!("{operator} cannot compare with {argument}"));
        }
        Operand::Literal(argument.clone())
    };
    Ok(Test::Compare { kind, op, operand })
}

impl Rule {
    /// Whether the rule holds for this effective input.
    ///
    /// # Errors
    /// A message when a `Variable` (or `…Path` operand) is missing, except under `IsPresent`:
    /// AWS fails the execution with `States.Runtime` there too.
    pub(crate) fn holds(&self, input: &Value, context: &Value) -> Result<bool, String> {
        match self {
            Rule::And(rules) => {
                for rule in rules {
                    if !rule.holds(input, context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rules) => {
                for rule in rules {
                    if rule.holds(input, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(rule) => Ok(!rule.holds(input, context)?),
            Rule::Test { variable, test } => {
                let value = variable.select(input, context);
                if let Test::IsPresent(expected) = test {
                    return Ok(value.is_some() == *expected);
                }
                let missing = |path: &Path| {
                    format!(
                        "the choice rule's path \"{}\" matches nothing in the input",
                        path.text()
                    )
                };
                let value = value.ok_or_else(|| missing(variable))?;
                Ok(match test {
                    Test::IsPresent(_) => unreachable!("handled above"),
                    Test::IsNull(expected) => value.is_null() == *expected,
                    Test::IsBoolean(expected) => value.is_boolean() == *expected,
                    Test::IsNumeric(expected) => value.is_number() == *expected,
                    Test::IsString(expected) => value.is_string() == *expected,
                    Test::Compare { kind, op, operand } => {
                        let other = match operand {
                            Operand::Literal(literal) => literal.clone(),
                            Operand::Path(path) => {
                                path.select(input, context).ok_or_else(|| missing(path))?
                            }
                        };
                        compare(*kind, &value, &other).is_some_and(|ordering| op.accepts(ordering))
                    }
                })
            }
        }
    }
}

/// `None` when either side is not of the compared kind: the rule is then false, as in AWS.
fn compare(kind: Kind, left: &Value, right: &Value) -> Option<Ordering> {
    match (kind, left, right) {
        (Kind::String, Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Kind::Numeric, Value::Number(a), Value::Number(b)) => {
            a.as_f64()?.partial_cmp(&b.as_f64()?)
        }
        (Kind::Boolean, Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl Op {
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Op::Equals => ordering.is_eq(),
            Op::LessThan => ordering.is_lt(),
            Op::GreaterThan => ordering.is_gt(),
            Op::LessThanEquals => ordering.is_le(),
            Op::GreaterThanEquals => ordering.is_ge(),
        }
    }
}
