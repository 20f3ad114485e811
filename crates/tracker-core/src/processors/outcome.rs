//! `{ outcomeId, monetaryValue, currencyCode }`: an outcome, its value kept as an exact decimal.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{apply_common, dispatch, triggered};
use crate::{
    definitions::DefinitionKind,
    pipeline::{Processor, TrackEventArgs},
    EventError,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    outcome_id: String,
    currency_code: Option<String>,
    monetary_value: Option<Value>,
    timestamp: Option<Value>,
    #[serde(flatten)]
    custom: Map<String, Value>,
}

/// Tracks outcomes.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutcomeProcessor;

impl Processor for OutcomeProcessor {
    fn name(&self) -> &str {
        "outcome"
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        dispatch(args, "outcomeId", |input: Input, args| {
            let mut event = triggered(args, DefinitionKind::Outcome, &input.outcome_id)?;
            event.monetary_value = input
                .monetary_value
                .as_ref()
                .map(parse_money)
                .transpose()?
                .flatten();
            event.currency_code = input.currency_code.map(parse_currency).transpose()?;
            apply_common(&mut event, input.timestamp, input.custom, args)?;
            Ok(event)
        });
    }
}

/// A number or a numeric string, as an exact decimal. Numbers are read from their JSON text, so
/// `19.99` stays `19.99` and does not pass through a binary float.
fn parse_money(raw: &Value) -> Result<Option<Decimal>, EventError> {
    let text = match raw {
        Value::Null => return Ok(None),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => {
            return Err(EventError::Invalid(format!(
                "monetaryValue must be a number or a numeric string, not {}",
                crate::body::json_type(other)
            )))
        }
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(Some)
        .map_err(|_| EventError::Invalid(format!("monetaryValue '{text}' is not a number")))
}

fn parse_currency(code: String) -> Result<String, EventError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(EventError::Invalid(format!(
            "currencyCode '{code}' is not an ISO 4217 code"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_is_exact() {
        assert_eq!(
            parse_money(&json!(19.99))
                .expect("n")
                .map(|d| d.to_string())
                .as_deref(),
            Some("19.99")
        );
        assert_eq!(
            parse_money(&json!("1234.5678"))
                .expect("s")
                .map(|d| d.to_string())
                .as_deref(),
            Some("1234.5678")
        );
        assert_eq!(
            parse_money(&json!(1e3))
                .expect("e")
                .map(|d| d.normalize().to_string())
                .as_deref(),
            Some("1000")
        );
        assert_eq!(parse_money(&json!(null)).expect("null"), None);
        assert!(parse_money(&json!("ten")).is_err());
        assert!(parse_money(&json!([1])).is_err());
        assert!(parse_currency("usd".into()).is_ok());
        assert!(parse_currency("dollars".into()).is_err());
    }
}
