//! The request body shapes the JSS clients send, turned into a list of elements.
//!
//! See the wire contract, section 2: a JSON array (the usual form, `[]` included), a single event
//! object, or the wrapper that `@sitecore-jss/sitecore-jss` 22.5+ produces when the app's fetcher
//! serialises the request-init object it is handed (`{"0": {..}, "method": "POST", "body": "[..]"}`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;

/// Limits on what one request may carry; all configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted body, in bytes.
    pub max_body_bytes: usize,
    /// Most events in one batch.
    pub max_events: usize,
    /// Longest string value, in bytes.
    pub max_string_bytes: usize,
    /// Most custom (unknown) keys on one event.
    pub max_custom_values: usize,
    /// The earliest event `timestamp` accepted (RFC 3339); earlier ones are refused (400).
    pub earliest_timestamp: chrono::DateTime<chrono::Utc>,
    /// The largest `monetaryValue` of one outcome, either sign; a larger one is refused (400).
    /// Sums of any number of values are exact whatever this is ([`crate::money::MoneySum`]).
    pub max_monetary_value: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            max_events: 1000,
            max_string_bytes: 4 * 1024,
            max_custom_values: 32,
            earliest_timestamp: chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(30 * 365 + 7), // 2000-01-01T00:00:00Z
            max_monetary_value: 1_000_000_000_000,
        }
    }
}

/// Parses a tracking body into its elements, in order. Elements are not validated here: that is
/// the pipeline's job, so that errors can name the element. `event_keys` are the keys the
/// pipeline's processors claim ([`crate::pipeline::Pipeline::event_keys`]): an object with one
/// of them at the top level is an event, not the request-init wrapper `{"body": "..."}`.
pub fn parse_elements(
    body: &[u8],
    limits: &Limits,
    event_keys: &[String],
) -> Result<Vec<Value>, Error> {
    if body.len() > limits.max_body_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "body is {} bytes; the limit is {}",
            body.len(),
            limits.max_body_bytes
        )));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::InvalidPayload(
            "body is empty; send a JSON array of events".into(),
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::InvalidPayload(format!("body is not valid JSON: {e}")))?;
    let elements = unwrap_shape(value, true, event_keys)?;
    if elements.len() > limits.max_events {
        return Err(Error::PayloadTooLarge(format!(
            "batch has {} events; the limit is {}",
            elements.len(),
            limits.max_events
        )));
    }
    Ok(elements)
}

fn unwrap_shape(
    value: Value,
    allow_wrapper: bool,
    event_keys: &[String],
) -> Result<Vec<Value>, Error> {
    match value {
        Value::Array(elements) => Ok(elements),
        Value::Object(mut object) => {
            let is_wrapper = allow_wrapper
                && matches!(object.get("body"), Some(Value::String(_)))
                && !event_keys.iter().any(|k| object.contains_key(k));
            if !is_wrapper {
                return Ok(vec![Value::Object(object)]);
            }
            let Some(Value::String(inner)) = object.remove("body") else {
                return Err(Error::InvalidPayload("wrapper has no body".into()));
            };
            let inner: Value = serde_json::from_str(&inner).map_err(|e| {
                Error::InvalidPayload(format!("the wrapper's body string is not valid JSON: {e}"))
            })?;
            unwrap_shape(inner, false, event_keys)
        }
        other => Err(Error::InvalidPayload(format!(
            "body must be a JSON array of events or one event object, not {}",
            json_type(&other)
        ))),
    }
}

/// The JSON type name of a value, for messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> Vec<String> {
        crate::pipeline::PipelineBuilder::with_defaults()
            .build()
            .event_keys()
            .to_vec()
    }

    fn parse(body: &str) -> Result<Vec<Value>, Error> {
        parse_elements(body.as_bytes(), &Limits::default(), &keys())
    }

    #[test]
    fn accepts_every_shape() {
        assert_eq!(parse("[]").expect("empty array"), Vec::<Value>::new());
        assert_eq!(parse(r#"[{"goalId":"Register"}]"#).expect("array").len(), 1);
        assert_eq!(
            parse(r#"{"eventId":"Download"}"#).expect("object"),
            vec![json!({"eventId": "Download"})]
        );
        let wrapper = json!({
            "0": {"goalId": "Register"}, "1": {"eventId": "Download"},
            "method": "POST", "headers": {"Content-Type": "application/json"},
            "body": "[{\"goalId\":\"Register\"},{\"eventId\":\"Download\"}]"
        });
        let elements = parse(&wrapper.to_string()).expect("wrapper");
        assert_eq!(
            elements,
            vec![
                json!({"goalId": "Register"}),
                json!({"eventId": "Download"})
            ]
        );
    }

    #[test]
    fn an_event_with_a_body_key_is_an_event() {
        let elements = parse(r#"{"goalId":"Register","body":"x"}"#).expect("event");
        assert_eq!(elements.len(), 1);
    }

    #[test]
    fn rejects_bad_bodies_with_the_right_error() {
        assert!(matches!(parse(""), Err(Error::InvalidPayload(_))));
        assert!(matches!(parse("{not json"), Err(Error::InvalidPayload(_))));
        assert!(matches!(parse("42"), Err(Error::InvalidPayload(_))));
        assert!(matches!(
            parse(r#"{"body":"nope"}"#),
            Err(Error::InvalidPayload(_))
        ));
        let limits = Limits {
            max_events: 2,
            ..Limits::default()
        };
        assert!(matches!(
            parse_elements(b"[{},{},{}]", &limits, &keys()),
            Err(Error::PayloadTooLarge(_))
        ));
        let limits = Limits {
            max_body_bytes: 4,
            ..Limits::default()
        };
        assert!(matches!(
            parse_elements(b"[{}, {}]", &limits, &keys()),
            Err(Error::PayloadTooLarge(_))
        ));
    }
}
