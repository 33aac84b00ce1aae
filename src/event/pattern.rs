//! Handler patterns over `topic.event_type`: `*` matches one dotted segment, `**` any rest.

/// A parsed pattern such as `routing.route.*` or `scaling.**`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<Segment>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One,
    Rest,
}

/// Why a pattern text is not a pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The offending text.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Pattern {
    /// Parses a pattern; `**` may only be the last segment.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let bad = |reason: &str| PatternError {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(bad("is empty"));
        }
        let parts: Vec<&str> = text.split('.').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let seg = match *p {
                "" => return Err(bad("has an empty segment")),
                "*" => Segment::One,
                "**" if i + 1 == parts.len() => Segment::Rest,
                "**" => return Err(bad("`**` is only allowed as the last segment")),
                lit if lit.contains('*') => {
                    return Err(bad("`*` must be a whole segment (`a.*`, not `a*`)"));
                }
                lit => Segment::Literal(lit.to_string()),
            };
            segments.push(seg);
        }
        Ok(Pattern {
            segments,
            text: text.to_string(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `topic.event_type` matches.
    pub fn matches_parts(&self, topic: &str, event_type: &str) -> bool {
        let mut names = std::iter::once(topic).chain(event_type.split('.'));
        for seg in &self.segments {
            match seg {
                Segment::Rest => return names.next().is_some(),
                Segment::One => {
                    if names.next().is_none() {
                        return false;
                    }
                }
                Segment::Literal(l) => {
                    if names.next() != Some(l.as_str()) {
                        return false;
                    }
                }
            }
        }
        names.next().is_none()
    }

    /// Whether a dotted name such as `routing.route.selected` matches.
    pub fn matches(&self, name: &str) -> bool {
        match name.split_once('.') {
            Some((topic, rest)) => self.matches_parts(topic, rest),
            // Every `topic.event_type` has a dot; a bare word names no event.
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
