//! What the pipeline produces: events resolved against the definitions, ready for the session
//! engine to place in an interaction.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{definitions::Definition, ids::Guid, EventError};

/// The kinds of stored event, named as the admin API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    /// A page (route) view.
    PageView,
    /// A goal.
    Goal,
    /// A page event that is not a goal.
    PageEvent,
    /// An outcome.
    Outcome,
    /// A campaign trigger.
    Campaign,
    /// The visitor said who they are: `data_key` holds the identifier's source (`email`),
    /// `data` the identifier. The store makes the contact known by it, merging the contact
    /// that already had it.
    Identification,
}

impl EventKind {
    /// Every kind, in declaration order (so `kind as usize` indexes it).
    pub const ALL: [EventKind; 6] = [
        Self::PageView,
        Self::Goal,
        Self::PageEvent,
        Self::Outcome,
        Self::Campaign,
        Self::Identification,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PageView => "pageView",
            Self::Goal => "goal",
            Self::PageEvent => "pageEvent",
            Self::Outcome => "outcome",
            Self::Campaign => "campaign",
            Self::Identification => "identification",
        }
    }

    /// The inverse of [`EventKind::as_str`].
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// A definition as recorded on an event: copied, so that later edits of the definitions file do
/// not rewrite history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionRef {
    /// The definition's GUID.
    pub id: Guid,
    /// Its name at the time of tracking.
    pub name: String,
    /// Its engagement-value points at the time of tracking.
    pub points: i64,
}

impl From<&Definition> for DefinitionRef {
    fn from(def: &Definition) -> Self {
        Self {
            id: def.id,
            name: def.name.clone(),
            points: def.points,
        }
    }
}

/// The page of a page view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// The Sitecore item id the view is tracked against.
    pub page_id: Guid,
    /// The URL, as sent (any value).
    pub url: String,
    /// Item language.
    pub language: Option<String>,
    /// Item version.
    pub item_version: Option<i64>,
    /// Referrer URL.
    pub referrer: Option<String>,
}

/// One tracked event, before it is placed in an interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedEvent {
    /// Its kind.
    pub kind: EventKind,
    /// The definition triggered (none for page views).
    pub definition: Option<DefinitionRef>,
    /// When it happened, if the client said; otherwise the time of receipt.
    pub timestamp: Option<DateTime<Utc>>,
    /// Page views: the page.
    pub page: Option<PageInfo>,
    /// Outcomes: the monetary value, exact.
    pub monetary_value: Option<Decimal>,
    /// Outcomes: ISO 4217 currency code.
    pub currency_code: Option<String>,
    /// Page events and goals: `data`.
    pub data: Option<String>,
    /// Page events and goals: `dataKey`.
    pub data_key: Option<String>,
    /// Page events and goals: `text`.
    pub text: Option<String>,
    /// Page events and goals: `value`.
    pub value: Option<f64>,
    /// Every key the processor did not know, kept as sent.
    pub custom: Map<String, Value>,
}

impl TrackedEvent {
    /// An event of `kind` with nothing else set.
    pub fn new(kind: EventKind) -> Self {
        Self {
            kind,
            definition: None,
            timestamp: None,
            page: None,
            monetary_value: None,
            currency_code: None,
            data: None,
            data_key: None,
            text: None,
            value: None,
            custom: Map::new(),
        }
    }

    /// Engagement-value points this event adds to its interaction.
    pub fn points(&self) -> i64 {
        match self.kind {
            EventKind::Goal | EventKind::PageEvent | EventKind::Outcome => {
                self.definition.as_ref().map_or(0, |d| d.points)
            }
            EventKind::PageView | EventKind::Campaign | EventKind::Identification => 0,
        }
    }
}

/// Parses an event `timestamp`: RFC 3339 text or epoch milliseconds. One later than
/// `now + max_skew` is refused: queued events come from the past.
pub fn parse_timestamp(
    raw: &Value,
    now: DateTime<Utc>,
    max_skew: Duration,
    earliest: DateTime<Utc>,
) -> Result<DateTime<Utc>, EventError> {
    let at = match raw {
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| EventError::Invalid(format!("timestamp '{text}' is not RFC 3339: {e}")))?,
        Value::Number(n) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .ok_or_else(|| {
                EventError::Invalid(format!("timestamp {n} is not epoch milliseconds"))
            })?,
        other => {
            return Err(EventError::Invalid(format!(
                "timestamp must be RFC 3339 text or epoch milliseconds, not {}",
                crate::body::json_type(other)
            )))
        }
    };
    if at > now + max_skew {
        return Err(EventError::Invalid(format!(
            "timestamp {} is in the future",
            at.to_rfc3339()
        )));
    }
    if at < earliest {
        return Err(EventError::Invalid(format!(
            "timestamp {} is before {} (tracker.limits.earliest_timestamp)",
            at.to_rfc3339(),
            earliest.to_rfc3339()
        )));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_kinds_are_listed_in_discriminant_order() {
        for (i, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i);
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
    }

    #[test]
    fn timestamps_parse_both_forms_and_refuse_the_future_and_the_distant_past() {
        let now = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("date");
        let skew = Duration::minutes(2);
        let floor = Utc
            .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
            .single()
            .expect("floor");
        let parse = |raw: Value| parse_timestamp(&raw, now, skew, floor);
        let text = parse(json!("2026-01-02T03:00:00Z")).expect("text");
        let millis = parse(json!(text.timestamp_millis())).expect("ms");
        assert_eq!(text, millis);
        assert!(parse(json!("2026-01-02T03:05:05Z")).is_ok());
        assert!(parse(json!("2026-01-02T03:07:06Z")).is_err());
        assert!(parse(json!("yesterday")).is_err());
        assert!(parse(json!(true)).is_err());
        assert!(parse(json!("2000-01-01T00:00:00Z")).is_ok());
        assert!(parse(json!("1999-12-31T23:59:59Z")).is_err());
        assert!(parse(json!(0)).is_err(), "epoch 0 is before the floor");
    }
}
