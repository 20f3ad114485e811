//! `{ outcomeId, monetaryValue, currencyCode }`: an outcome, its value kept as an exact decimal.

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

    fn claims(&self) -> Vec<String> {
        vec!["outcomeId".into()]
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        dispatch(args, "outcomeId", |input: Input, args| {
            let mut event = triggered(args, DefinitionKind::Outcome, &input.outcome_id)?;
            let money = input
                .monetary_value
                .as_ref()
                .map(parse_money)
                .transpose()?
                .flatten();
            if let Some(money) = money {
                let max = args.context().limits.max_monetary_value;
                if money.abs() > Decimal::from(max) {
                    return Err(EventError::Invalid(format!(
                        "monetaryValue {money} is larger than {max}, the most one outcome may \
                         carry (tracker.limits.max_monetary_value)"
                    )));
                }
                let resolved = args
                    .context()
                    .definitions
                    .resolve(DefinitionKind::Outcome, &input.outcome_id)?;
                let definition = resolved.definition;
                if definition.refuse_money {
                    return Err(EventError::Invalid(format!(
                        "outcome '{}' carries no monetary value (its definition says refuse_money)",
                        definition.name
                    )));
                }
                if money.is_sign_negative()
                    && !money.is_zero()
                    && !definition.negative_money_allowed
                {
                    return Err(EventError::Invalid(format!(
                        "monetaryValue {money} is negative; outcome '{}' does not allow that \
                         (negative_money_allowed in its definition)",
                        definition.name
                    )));
                }
            }
            event.monetary_value = money;
            event.currency_code = input.currency_code.map(parse_currency).transpose()?;
            apply_common(&mut event, input.timestamp, input.custom, args)?;
            Ok(event)
        });
    }
}

/// A number or a numeric string, as an exact decimal. Numbers are read from their JSON text
/// (serde_json's `arbitrary_precision`), so `19.99` stays `19.99` and
/// `1234567890123456789.99` stays itself instead of passing through a binary float; a value
/// that does not fit a decimal exactly (28 significant digits) is refused, never rounded.
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
    if !text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        || text.is_empty()
    {
        return Err(EventError::Invalid(format!(
            "monetaryValue '{text}' is not a number"
        )));
    }
    let exact = if text.contains(['e', 'E']) {
        Decimal::from_scientific(&text).ok().filter(|d| {
            // Scientific notation is exact only if it round-trips.
            Decimal::from_scientific(&format!("{d}e0")).ok() == Some(*d)
                && d.to_string().len() <= 40
        })
    } else {
        Decimal::from_str_exact(&text).ok()
    };
    exact.map(Some).ok_or_else(|| {
        EventError::Invalid(format!(
            "monetaryValue '{text}' does not fit an exact decimal (at most 28 significant digits)"
        ))
    })
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
        // From the JSON text, not through a float.
        let body: Value = serde_json::from_str("1234567890123456789.99").expect("json");
        assert_eq!(
            parse_money(&body).expect("big").map(|d| d.to_string()),
            Some("1234567890123456789.99".to_string())
        );
        for too_big in [
            "123456789012345678901234567890.5",
            "1e40",
            "0.00000000000000000000000000000001",
        ] {
            let body: Value = serde_json::from_str(too_big).expect("json");
            assert!(parse_money(&body).is_err(), "{too_big}");
        }
        assert!(parse_money(&json!([1])).is_err());
        assert!(parse_currency("usd".into()).is_ok());
        assert!(parse_currency("dollars".into()).is_err());
    }
}
