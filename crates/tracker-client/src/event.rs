//! Typed events, serialised exactly as the JSS `trackingApi` sends them.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// One element of a tracking batch.
///
/// Ids are GUIDs (any spelling) or definition names; the tracker resolves both.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    fields: Map<String, Value>,
}

impl Event {
    fn with(key: &str, value: impl Into<Value>) -> Self {
        let mut fields = Map::new();
        fields.insert(key.to_string(), value.into());
        Self { fields }
    }

    /// A page view: `{"pageId", "url"}`. Later events belong to it.
    pub fn page_view(page_id: impl Into<String>, url: impl Into<String>) -> Self {
        let mut event = Self::with("pageId", page_id.into());
        event.fields.insert("url".into(), url.into().into());
        event
    }

    /// A page event: `{"eventId"}`.
    pub fn page_event(event_id: impl Into<String>) -> Self {
        Self::with("eventId", event_id.into())
    }

    /// A goal: `{"goalId"}`.
    pub fn goal(goal_id: impl Into<String>) -> Self {
        Self::with("goalId", goal_id.into())
    }

    /// An outcome: `{"outcomeId"}`; see [`Event::monetary_value`].
    pub fn outcome(outcome_id: impl Into<String>) -> Self {
        Self::with("outcomeId", outcome_id.into())
    }

    /// A campaign: `{"campaignId"}`.
    pub fn campaign(campaign_id: impl Into<String>) -> Self {
        Self::with("campaignId", campaign_id.into())
    }

    /// Any JSON object, sent as is (for custom processors). Not an object: wrapped as
    /// `{"value": …}`.
    pub fn custom(value: Value) -> Self {
        match value {
            Value::Object(fields) => Self { fields },
            other => Self::with("value", other),
        }
    }

    /// An outcome's `monetaryValue` and `currencyCode`.
    pub fn monetary_value(mut self, value: f64, currency_code: impl Into<String>) -> Self {
        self.fields.insert("monetaryValue".into(), value.into());
        self.fields
            .insert("currencyCode".into(), currency_code.into().into());
        self
    }

    /// The `data` text of a page event or goal.
    pub fn data(self, data: impl Into<String>) -> Self {
        self.field("data", data.into())
    }

    /// Any other field.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// When it happened (RFC 3339); without it the tracker uses the time it received the batch.
    pub fn at(self, time: DateTime<Utc>) -> Self {
        self.field(
            "timestamp",
            time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
    }

    /// Whether it carries a `timestamp`.
    pub fn has_timestamp(&self) -> bool {
        self.fields.contains_key("timestamp")
    }

    /// The JSON object sent.
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.fields
    }
}

impl serde::Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.fields.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn events_serialise_as_the_jss_client_sends_them() {
        let at = Utc
            .with_ymd_and_hms(2026, 5, 1, 10, 0, 0)
            .single()
            .expect("date");
        let batch = vec![
            Event::page_view("{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "/"),
            Event::page_event("Download").data("brochure.pdf"),
            Event::goal("Instant Demo").at(at),
            Event::outcome("Opportunity").monetary_value(99.95, "USD"),
            Event::campaign("Spring Sale"),
            Event::custom(json!({"myId": 7})),
        ];
        assert_eq!(
            serde_json::to_value(&batch).expect("json"),
            json!([
                {"pageId": "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "url": "/"},
                {"eventId": "Download", "data": "brochure.pdf"},
                {"goalId": "Instant Demo", "timestamp": "2026-05-01T10:00:00.000Z"},
                {"outcomeId": "Opportunity", "monetaryValue": 99.95, "currencyCode": "USD"},
                {"campaignId": "Spring Sale"},
                {"myId": 7},
            ])
        );
        assert!(batch[2].has_timestamp());
        assert!(!batch[1].has_timestamp());
    }
}
