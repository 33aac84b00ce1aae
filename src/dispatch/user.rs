//! User handlers from `[[handlers]]`: run with the event on stdin, NDJSON follow-ups on
//! stdout, retries with exponential backoff, dead letters, and a circuit breaker.

use super::FollowUp;
use super::process;
use crate::config::HandlerConfig;
use crate::event::pattern::Pattern;
use crate::event::{Envelope, check_payload, validate_event_type, validate_topic};
use crate::fsutil::{PathError, read_json, write_json};
use crate::node::Node;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

mod dead_letter;

pub use dead_letter::{
    DeadLetter, DeadLetterKind, DeadLetterReason, append_dead_letter, pending_dead_letters,
};

/// The `handler` name of a user handler's follow-ups: `handler:<name>`.
pub fn handler_tag(name: &str) -> String {
    format!("handler:{name}")
}

/// One handler's circuit breaker, persisted in `state/event_mesh/handlers.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Breaker {
    /// Events that failed in a row (after all retries).
    pub consecutive_failures: u32,
    /// While set and in the future, events are skipped (dead-lettered as `circuit_open`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<String>,
    /// Events skipped while open, in total.
    #[serde(default)]
    pub skipped_events: u64,
}

/// What the breaker lets through now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Run normally.
    Closed,
    /// Cool-down over: one trial run decides.
    HalfOpen,
    /// Skip.
    Open,
}

/// What the breaker lets one run of a handler do (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The breaker is open: skip the event into the dead-letter file.
    Skip,
    /// Run, at most this many attempts.
    Attempts(u32),
}

/// The admission of a run: skipped while open (unless the operator overrides the
/// breaker), a single probe while half-open, else the first try plus `retries`.
pub fn admit(gate: Gate, ignore_breaker: bool, retries: u32) -> Admission {
    match gate {
        Gate::Open if !ignore_breaker => Admission::Skip,
        Gate::HalfOpen => Admission::Attempts(1),
        _ => Admission::Attempts(retries + 1),
    }
}

impl Breaker {
    /// The gate at `now`.
    pub fn gate(&self, now: chrono::DateTime<chrono::Utc>) -> Gate {
        match self
            .open_until
            .as_deref()
            .map(crate::event::parse_timestamp)
        {
            None => Gate::Closed,
            Some(Some(t)) if now < t => Gate::Open,
            Some(_) => Gate::HalfOpen,
        }
    }

    /// A success closes the breaker.
    pub fn success(&mut self) {
        self.consecutive_failures = 0;
        self.open_until = None;
    }

    /// A failed event: opens after `threshold` in a row, or at once after a failed trial.
    pub fn failure(
        &mut self,
        threshold: u32,
        cooldown: Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let trial = self.gate(now) == Gate::HalfOpen;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if trial || self.consecutive_failures >= threshold.max(1) {
            let until =
                now + chrono::Duration::from_std(cooldown).unwrap_or(chrono::Duration::zero());
            self.open_until = Some(crate::event::format_timestamp(until));
        }
    }
}

/// Delay before retry number `retry` (0-based): `base * 2^retry`, capped at one minute.
pub fn backoff(base: Duration, retry: u32) -> Duration {
    base.saturating_mul(1u32 << retry.min(16))
        .min(Duration::from_secs(60))
}

/// Why a handler's output was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputError {
    /// A line is not a valid follow-up.
    Invalid(String),
    /// More follow-ups than the handler's `max_followups`.
    TooMany(usize),
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputError::Invalid(m) => f.write_str(m),
            OutputError::TooMany(max) => write!(
                f,
                "more than {max} follow-ups for one event (max_followups); none appended"
            ),
        }
    }
}

/// Parses a handler's stdout: one JSON object per non-empty line with
/// `topic`, `event_type` and optional `payload`; at most `max` of them.
pub fn parse_output(
    handler: &str,
    stdout: &[u8],
    limits: &crate::event::PayloadLimits,
    max: usize,
) -> Result<Vec<FollowUp>, OutputError> {
    let text = std::str::from_utf8(stdout)
        .map_err(|_| OutputError::Invalid("stdout is not UTF-8".to_string()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if out.len() >= max {
            return Err(OutputError::TooMany(max));
        }
        let at = |e: String| OutputError::Invalid(format!("stdout line {}: {e}", i + 1));
        let v: Map<String, Value> =
            serde_json::from_str(line).map_err(|e| at(format!("not a JSON object: {e}")))?;
        for k in v.keys() {
            if !matches!(k.as_str(), "topic" | "event_type" | "payload") {
                return Err(at(format!(
                    "unknown key {k:?} (expected topic, event_type, payload)"
                )));
            }
        }
        let topic = v.get("topic").and_then(Value::as_str).unwrap_or("");
        let event_type = v.get("event_type").and_then(Value::as_str).unwrap_or("");
        validate_topic(topic).map_err(|e| at(e.to_string()))?;
        validate_event_type(event_type).map_err(|e| at(e.to_string()))?;
        let payload = match v.get("payload") {
            None => Map::new(),
            Some(Value::Object(m)) => crate::event::ijson::canonical_payload(m.clone()),
            Some(_) => return Err(at("payload must be an object".into())),
        };
        check_payload(&payload, limits).map_err(|e| at(e.to_string()))?;
        out.push(FollowUp::new(
            &handler_tag(handler),
            topic,
            event_type,
            payload,
        ));
    }
    Ok(out)
}

/// The state file of all breakers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct BreakerFile {
    #[serde(default)]
    handlers: BTreeMap<String, Breaker>,
}

/// How one run of a handler on an event ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunResult {
    /// Follow-ups to append.
    Done(Vec<FollowUp>),
    /// Gave up; the event is in the dead-letter file.
    DeadLettered,
    /// Skipped by the open breaker; the event is in the dead-letter file.
    Skipped,
}

/// The configured user handlers of a node with their breakers.
pub struct UserHandlers<'n> {
    node: &'n Node,
    handlers: Vec<(HandlerConfig, Pattern)>,
    breakers: BreakerFile,
}

impl<'n> UserHandlers<'n> {
    /// Loads handlers from the configuration and breakers from the state file.
    pub fn load(node: &'n Node) -> Result<UserHandlers<'n>, PathError> {
        let handlers = node
            .config
            .handlers
            .iter()
            .filter_map(|h| Pattern::parse(&h.pattern).ok().map(|p| (h.clone(), p)))
            .collect();
        let breakers = read_json(&node.paths.handler_state())?.unwrap_or_default();
        Ok(UserHandlers {
            node,
            handlers,
            breakers,
        })
    }

    /// Number of handlers.
    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    /// Whether no handler is configured.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// Handler `i`'s pattern.
    pub fn pattern(&self, i: usize) -> &Pattern {
        &self.handlers[i].1
    }

    /// Whether handler `i` takes this event: its pattern matches and the event is
    /// not one of the handler's own follow-ups (which would loop forever).
    pub fn takes(&self, i: usize, ev: &Envelope) -> bool {
        let (h, p) = &self.handlers[i];
        p.matches_parts(&ev.topic, &ev.event_type)
            && ev
                .handler
                .as_deref()
                .and_then(|t| t.strip_prefix("handler:"))
                != Some(h.name.as_str())
    }

    /// Handler `i`'s name.
    pub fn name(&self, i: usize) -> &str {
        &self.handlers[i].0.name
    }

    /// The handler config by name.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.handlers.iter().position(|(h, _)| h.name == name)
    }

    /// Runs handler `i` on `ev` through its breaker; failures end in the dead-letter file.
    pub fn run(
        &mut self,
        i: usize,
        ev: &Envelope,
        ignore_breaker: bool,
    ) -> Result<RunResult, PathError> {
        let h = self.handlers[i].0.clone();
        let now = chrono::Utc::now();
        let gate = self
            .breakers
            .handlers
            .get(&h.name)
            .map(|b| b.gate(now))
            .unwrap_or(Gate::Closed);
        let attempts_max = match admit(gate, ignore_breaker, h.retries) {
            Admission::Attempts(n) => n,
            Admission::Skip => {
                let b = self.breakers.handlers.entry(h.name.clone()).or_default();
                b.skipped_events += 1;
                let until = b.open_until.clone().unwrap_or_default();
                self.save()?;
                tracing::warn!(handler = %h.name, event_id = %ev.event_id, "circuit open; event skipped into the dead-letter file");
                append_dead_letter(
                    self.node,
                    &DeadLetter::given_up(
                        &h.name,
                        ev,
                        DeadLetterReason::CircuitOpen,
                        format!("circuit breaker open until {until}"),
                        0,
                    ),
                )?;
                return Ok(RunResult::Skipped);
            }
        };
        let mut error = String::new();
        let mut reason = DeadLetterReason::Failed;
        let mut attempts = 0;
        for attempt in 0..attempts_max {
            if attempt > 0 {
                std::thread::sleep(backoff(h.backoff.0, attempt - 1));
            }
            attempts += 1;
            match self.attempt(&h, ev) {
                Ok(f) => {
                    let b = self.breakers.handlers.entry(h.name.clone()).or_default();
                    if b.consecutive_failures > 0 || b.open_until.is_some() {
                        b.success();
                        self.save()?;
                    }
                    return Ok(RunResult::Done(f));
                }
                Err((why, e)) => {
                    tracing::warn!(handler = %h.name, event_id = %ev.event_id, attempt = attempts, error = %e, "handler failed");
                    error = e;
                    reason = why;
                    // A flood is not a passing fault: another attempt would flood again.
                    if why != DeadLetterReason::Failed {
                        break;
                    }
                }
            }
        }
        let b = self.breakers.handlers.entry(h.name.clone()).or_default();
        b.failure(
            h.breaker_threshold,
            h.breaker_cooldown.0,
            chrono::Utc::now(),
        );
        self.save()?;
        append_dead_letter(
            self.node,
            &DeadLetter::given_up(&h.name, ev, reason, error, attempts),
        )?;
        Ok(RunResult::DeadLettered)
    }

    fn attempt(
        &self,
        h: &HandlerConfig,
        ev: &Envelope,
    ) -> Result<Vec<FollowUp>, (DeadLetterReason, String)> {
        let mut input = ev.to_json_line().into_bytes();
        input.push(b'\n');
        let root =
            std::path::absolute(&self.node.paths.root).unwrap_or(self.node.paths.root.clone());
        let env = vec![
            ("GITMESH_HANDLER".to_string(), h.name.clone()),
            ("GITMESH_EVENT_ID".to_string(), ev.event_id.clone()),
            (
                "GITMESH_NODE_ID".to_string(),
                self.node.config.node_id.clone(),
            ),
            ("GITMESH_ROOT".to_string(), root.display().to_string()),
        ];
        let limits = process::Limits {
            timeout: h.timeout.0,
            max_output: h.max_output_bytes,
            pass_env: h.env.clone(),
            leftovers: process::Leftovers::End,
        };
        let failed = |e: String| (DeadLetterReason::Failed, e);
        let out = process::run_with(&h.run, &env, Some(&input), &limits)
            .map_err(|e| failed(format!("cannot run {}: {e}", h.run[0])))?;
        if out.overflow.is_some() {
            return Err((
                DeadLetterReason::OutputTooLarge,
                format!("{}: {}", h.run[0], out.describe()),
            ));
        }
        if !out.success() {
            return Err(failed(format!("{}: {}", h.run[0], out.describe())));
        }
        parse_output(
            &h.name,
            &out.stdout,
            &self.node.config.payload_limits(),
            h.max_followups,
        )
        .map_err(|e| match e {
            OutputError::TooMany(_) => (DeadLetterReason::TooManyFollowups, e.to_string()),
            OutputError::Invalid(m) => failed(m),
        })
    }

    fn save(&self) -> Result<(), PathError> {
        write_json(&self.node.paths.handler_state(), &self.breakers)
    }
}

/// What `dead-letter retry` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetryReport {
    /// Dead letters run again.
    pub retried: u64,
    /// Of those, the ones that succeeded (now resolved).
    pub resolved: u64,
    /// Of those, the ones that failed again (dead-lettered anew).
    pub failed: u64,
    /// Follow-ups appended.
    pub followup_events: u64,
    /// Dead letters left alone because their handler is no longer configured.
    pub unknown_handler: u64,
}

/// Replays pending dead letters (optionally of one handler and/or one event).
///
/// Each runs once more with its handler's retries, ignoring an open breaker
/// (the operator asked). Success appends the follow-ups (deduplicated by id,
/// as in dispatch) and then a `resolved` line; failure appends a new dead letter.
pub fn retry_dead_letters(
    node: &Node,
    handler: Option<&str>,
    event_id: Option<&str>,
) -> Result<RetryReport, super::DispatchError> {
    let _pass = super::lock_dispatch(node)?;
    let mut users = UserHandlers::load(node)?;
    let mut report = RetryReport::default();
    for d in pending_dead_letters(node)? {
        if handler.is_some_and(|h| h != d.handler) || event_id.is_some_and(|e| e != d.event_id) {
            continue;
        }
        let Some(ev) = d.event.clone() else { continue };
        let Some(i) = users.by_name(&d.handler) else {
            report.unknown_handler += 1;
            continue;
        };
        report.retried += 1;
        match users.run(i, &ev, true)? {
            RunResult::Done(follow) => {
                let mut envs = Vec::with_capacity(follow.len());
                for f in follow {
                    envs.push(super::emit::derive(node.id(), &ev, f).map_err(|source| {
                        super::DispatchError::Event {
                            cause: ev.event_id.clone(),
                            source,
                        }
                    })?);
                }
                let mut w = node.log.writer()?;
                let fresh = super::emit::append_derived(&mut w, envs)?;
                drop(w);
                report.followup_events += fresh.len() as u64;
                report.resolved += 1;
                append_dead_letter(node, &DeadLetter::resolved(&d.handler, &d.event_id))?;
            }
            RunResult::DeadLettered | RunResult::Skipped => report.failed += 1,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
