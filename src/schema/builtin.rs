//! The schemas shipped in the binary: version 1 of every built-in event type.

/// One built-in schema: topic, event type, version and the file's text.
pub struct Builtin {
    /// Topic.
    pub topic: &'static str,
    /// Event type.
    pub event_type: &'static str,
    /// Schema version.
    pub version: u32,
    /// The JSON Schema text.
    pub text: &'static str,
}

macro_rules! builtin {
    ($topic:literal, $event_type:literal, $version:literal) => {
        Builtin {
            topic: $topic,
            event_type: $event_type,
            version: $version,
            text: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/schemas/",
                $topic,
                "/",
                $event_type,
                "/v",
                $version,
                ".json"
            )),
        }
    };
}

/// Every built-in schema (the event types of the built-in handlers).
pub const BUILTINS: &[Builtin] = &[
    builtin!("monitoring", "heartbeat.changed", 1),
    builtin!("monitoring", "lane.ensure_failed", 1),
    builtin!("monitoring", "lane.start_failed", 1),
    builtin!("scheduling", "tick.requested", 1),
    builtin!("scheduling", "task.enqueued", 1),
    builtin!("scheduling", "task.scheduled", 1),
    builtin!("scheduling", "lanes.ensure.summary", 1),
    builtin!("scheduling", "lanes.start.summary", 1),
    builtin!("routing", "route.requested", 1),
    builtin!("routing", "route.selected", 1),
    builtin!("routing", "route.blocked", 1),
    builtin!("scaling", "decision.requested", 1),
    builtin!("scaling", "decision.made", 1),
    builtin!("scaling", "command.requested", 1),
    builtin!("scaling", "command.applied", 1),
    builtin!("scaling", "command.rejected", 1),
];
