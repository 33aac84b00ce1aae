//! First-hit scaling decision tables: loading (JSON or TOML), validation, evaluation.

use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Why a decision table file cannot be used (names the file and the rule).
#[derive(Debug, thiserror::Error)]
#[error("decision table {path}: {}{reason}", rule.as_ref().map(|r| format!("{r}: ")).unwrap_or_default())]
pub struct TableError {
    /// The table file.
    pub path: PathBuf,
    /// `rule N ("id")` when one rule is at fault.
    pub rule: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// What a decision asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start one more lane.
    ScaleUp,
    /// Stop one lane.
    ScaleDown,
    /// Change nothing.
    Hold,
}

impl Action {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScaleUp => "scale_up",
            Action::ScaleDown => "scale_down",
            Action::Hold => "hold",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "scale_up" => Some(Action::ScaleUp),
            "scale_down" => Some(Action::ScaleDown),
            "hold" => Some(Action::Hold),
            _ => None,
        }
    }
}

/// A comparison operator of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal (numbers compare by value).
    Eq,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Equal to one of a list.
    In,
}

/// One condition: `fact op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Name of the fact in the request payload.
    pub fact: String,
    /// The comparison.
    pub op: Op,
    /// The right-hand side.
    pub value: Value,
}

/// One rule: all conditions hold -> this outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Stable id, reported in `matched_rule_ids`.
    pub id: String,
    /// Conditions that must all hold (none: always matches).
    pub when: Vec<Condition>,
    /// Decided action.
    pub action: Action,
    /// Why, as a short code.
    pub reason: String,
    /// Change in the number of running lanes.
    pub target_delta: i64,
}

/// An ordered list of rules; the first that matches decides.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionTable {
    /// Reported as `decision_trace.decision_table_version`.
    pub version: String,
    /// The rules in order.
    pub rules: Vec<Rule>,
}

/// The outcome of evaluating a table on some facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Decided action.
    pub action: Action,
    /// Reason code.
    pub reason: String,
    /// Lane count change.
    pub target_delta: i64,
    /// Ids of every rule whose conditions held, in table order (the first decided).
    pub matched_rule_ids: Vec<String>,
}

impl DecisionTable {
    /// The built-in table.
    pub fn default_table() -> DecisionTable {
        let v = json!({
            "version": "default-1",
            "rules": [
                {"id": "failures_present", "when": {"failed_count": {"gt": 0}},
                 "then": {"action": "scale_down", "reason": "failures_present", "target_delta": -1}},
                {"id": "capacity_saturated",
                 "when": {"parallel_groups_at_limit": {"gt": 0}, "started_count": {"eq": 0}, "restarted_count": {"eq": 0}},
                 "then": {"action": "scale_up", "reason": "capacity_saturated", "target_delta": 1}},
                {"id": "recent_scale_down", "when": {"scaled_down_count": {"gt": 0}},
                 "then": {"action": "hold", "reason": "recent_scale_down", "target_delta": 0}},
                {"id": "recent_scale_up", "when": {"scaled_up_count": {"gt": 0}},
                 "then": {"action": "hold", "reason": "recent_scale_up", "target_delta": 0}},
                {"id": "stable", "when": {},
                 "then": {"action": "hold", "reason": "stable", "target_delta": 0}}
            ]
        });
        // The literal above is valid by construction (checked by a unit test).
        DecisionTable::from_value(&v, Path::new("<built-in>")).unwrap_or(DecisionTable {
            version: "default-1".into(),
            rules: Vec::new(),
        })
    }

    /// Loads a table file: `.toml` as TOML, anything else as JSON.
    pub fn load(path: &Path) -> Result<DecisionTable, TableError> {
        let err = |reason: String| TableError {
            path: path.to_path_buf(),
            rule: None,
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let is_toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        let v: Value = if is_toml {
            toml::from_str(&text).map_err(|e| err(format!("not valid TOML: {e}")))?
        } else {
            serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))?
        };
        DecisionTable::from_value(&v, path)
    }

    /// Builds and validates a table from its JSON form.
    pub fn from_value(v: &Value, path: &Path) -> Result<DecisionTable, TableError> {
        let top = |reason: &str| TableError {
            path: path.to_path_buf(),
            rule: None,
            reason: reason.to_string(),
        };
        let obj = v
            .as_object()
            .ok_or_else(|| top("must be an object with `version` and `rules`"))?;
        for k in obj.keys() {
            if k != "version" && k != "rules" {
                return Err(top(&format!(
                    "unknown key {k:?} (expected `version`, `rules`)"
                )));
            }
        }
        let version = match obj.get("version") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(top("`version` must be a non-empty string")),
        };
        let rules_v = obj
            .get("rules")
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| top("`rules` must be a non-empty list"))?;
        let mut rules = Vec::with_capacity(rules_v.len());
        let mut ids = std::collections::HashSet::new();
        for (i, r) in rules_v.iter().enumerate() {
            let id = r.get("id").and_then(Value::as_str).unwrap_or("");
            let at = TableError {
                path: path.to_path_buf(),
                rule: Some(if id.is_empty() {
                    format!("rule {}", i + 1)
                } else {
                    format!("rule {} ({id:?})", i + 1)
                }),
                reason: String::new(),
            };
            let rule = parse_rule(r).map_err(|reason| TableError { reason, ..at })?;
            if !ids.insert(rule.id.clone()) {
                return Err(TableError {
                    path: path.to_path_buf(),
                    rule: Some(format!("rule {} ({:?})", i + 1, rule.id)),
                    reason: "duplicate rule id".into(),
                });
            }
            rules.push(rule);
        }
        Ok(DecisionTable { version, rules })
    }

    /// Evaluates the rules in order on `facts`; no match is `hold` / `no_rule_matched`.
    pub fn decide(&self, facts: &Map<String, Value>) -> Decision {
        let matched: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.when.iter().all(|c| c.holds(facts)))
            .collect();
        match matched.first() {
            Some(first) => Decision {
                action: first.action,
                reason: first.reason.clone(),
                target_delta: first.target_delta,
                matched_rule_ids: matched.iter().map(|r| r.id.clone()).collect(),
            },
            None => Decision {
                action: Action::Hold,
                reason: "no_rule_matched".into(),
                target_delta: 0,
                matched_rule_ids: Vec::new(),
            },
        }
    }
}

fn parse_rule(r: &Value) -> Result<Rule, String> {
    let o = r
        .as_object()
        .ok_or("must be an object with `id`, `when`, `then`")?;
    for k in o.keys() {
        if !matches!(k.as_str(), "id" | "when" | "then") {
            return Err(format!("unknown key {k:?} (expected `id`, `when`, `then`)"));
        }
    }
    let id = match o.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("`id` must be a non-empty string".into()),
    };
    let mut when = Vec::new();
    match o.get("when") {
        None => {}
        Some(Value::Object(conds)) => {
            for (fact, ops) in conds {
                let ops = ops
                    .as_object()
                    .ok_or_else(|| format!("when.{fact}: must be an object like {{\"gt\": 0}}"))?;
                if ops.is_empty() {
                    return Err(format!("when.{fact}: names no operator"));
                }
                for (op, value) in ops {
                    let op = match op.as_str() {
                        "eq" => Op::Eq,
                        "gt" => Op::Gt,
                        "gte" => Op::Gte,
                        "lt" => Op::Lt,
                        "lte" => Op::Lte,
                        "in" => Op::In,
                        other => {
                            return Err(format!(
                                "when.{fact}: unknown operator {other:?} (use eq, gt, gte, lt, lte, in)"
                            ));
                        }
                    };
                    if matches!(op, Op::Gt | Op::Gte | Op::Lt | Op::Lte) && !value.is_number() {
                        return Err(format!("when.{fact}: {op:?} needs a number, got {value}"));
                    }
                    if op == Op::In && !value.is_array() {
                        return Err(format!("when.{fact}: `in` needs a list, got {value}"));
                    }
                    when.push(Condition {
                        fact: fact.clone(),
                        op,
                        value: value.clone(),
                    });
                }
            }
        }
        Some(_) => return Err("`when` must be an object of fact -> {operator: value}".into()),
    }
    let then = o
        .get("then")
        .and_then(Value::as_object)
        .ok_or("`then` must be an object with `action`, `reason`, `target_delta`")?;
    for k in then.keys() {
        if !matches!(k.as_str(), "action" | "reason" | "target_delta") {
            return Err(format!("then: unknown key {k:?}"));
        }
    }
    let action_s = then.get("action").and_then(Value::as_str).unwrap_or("");
    let action = Action::parse(action_s).ok_or_else(|| {
        format!("then.action {action_s:?} is not one of scale_up, scale_down, hold")
    })?;
    let reason = match then.get("reason") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("then.reason must be a non-empty string".into()),
    };
    let target_delta = match then.get("target_delta") {
        None => match action {
            Action::ScaleUp => 1,
            Action::ScaleDown => -1,
            Action::Hold => 0,
        },
        Some(v) => v
            .as_i64()
            .ok_or_else(|| format!("then.target_delta must be an integer, got {v}"))?,
    };
    Ok(Rule {
        id,
        when,
        action,
        reason,
        target_delta,
    })
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn equal(a: &Value, b: &Value) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

impl Condition {
    /// Whether the condition holds; a missing fact fails every condition.
    pub fn holds(&self, facts: &Map<String, Value>) -> bool {
        let Some(f) = facts.get(&self.fact) else {
            return false;
        };
        match self.op {
            Op::Eq => equal(f, &self.value),
            Op::In => self
                .value
                .as_array()
                .is_some_and(|l| l.iter().any(|x| equal(f, x))),
            op => match (num(f), num(&self.value)) {
                (Some(x), Some(y)) => match op {
                    Op::Gt => x > y,
                    Op::Gte => x >= y,
                    Op::Lt => x < y,
                    _ => x <= y,
                },
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests;
