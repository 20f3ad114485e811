//! `{ identifier, source }`: the visitor says who they are (a sign-in, a form). Tracked as an
//! identification event (`data` the identifier, `dataKey` its source); the store makes the
//! contact known by it, and merges the contact that already had it (see
//! `tracker_core::store::Store`). The seed's tracker "does not support identifying contacts
//! out of the box": this is ours.
//!
//! An identification merges someone's whole history into the caller's contact, so a browser's
//! word is not enough: the key and the sitting tracker each hold in its public page. It is
//! believed only when the app's server vouches for it (see [`IdentificationTrust`]):
//!
//! - the request comes with a server-side key (`server_side = true`, a secret of the app's
//!   server, never accepted from a browser origin); or
//! - the element is signed by the app's server: `{"identifier", "source", "expires",
//!   "signature"}` with `signature = hex(HMAC-SHA256(identification_secret, source + "\n" +
//!   identifier + "\n" + expires))`, `expires` in epoch seconds, not past and not further ahead
//!   than the configured lifetime; or
//! - the operator opted out (`identification.trust = "client"`, for an intranet).
//!
//! Anything else is refused with [`EventError::Forbidden`] (403), and nothing of the batch is
//! stored. Identifiers are normalised per source before they are stored or compared: trimmed,
//! and case-folded for sources that are case-insensitive (`email` by default).

use chrono::Duration;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;

use super::{apply_common, dispatch};
use crate::{
    event::{EventKind, TrackedEvent},
    pipeline::{Processor, TrackEventArgs},
    EventError,
};

/// The element key identification claims.
pub const IDENTIFIER_KEY: &str = "identifier";

/// Whose word identifies a visitor in one batch: from the caller's API key and the
/// configuration. The default believes nothing unsigned and knows no secret, so that it
/// refuses every identification.
#[derive(Debug, Clone, Copy)]
pub struct IdentificationTrust<'a> {
    /// Identifications are believed without a signature: the caller is the app's server (a
    /// server-side key), or the operator trusts browsers (`identification.trust = "client"`).
    pub unsigned_ok: bool,
    /// The key's `identification_secret`, which signatures are checked against.
    pub secret: Option<&'a [u8]>,
    /// How far ahead a signature's `expires` may lie.
    pub max_lifetime: Duration,
    /// Sources whose identifiers are case-insensitive (folded to lower case).
    pub fold_case: &'a [String],
}

impl Default for IdentificationTrust<'_> {
    fn default() -> Self {
        Self {
            unsigned_ok: false,
            secret: None,
            max_lifetime: Duration::hours(1),
            fold_case: &[],
        }
    }
}

/// An identifier as stored and compared: trimmed, and in lower case when its source is one of
/// `fold_case` (`Ada@Example.com ` and `ada@example.com` are one person).
pub fn normalise_identifier(source: &str, identifier: &str, fold_case: &[String]) -> String {
    let identifier = identifier.trim();
    if fold_case.iter().any(|s| s.eq_ignore_ascii_case(source)) {
        identifier.to_lowercase()
    } else {
        identifier.to_string()
    }
}

/// The signature an app server puts on an identification element: hex of
/// HMAC-SHA256(`secret`, `source + "\n" + identifier + "\n" + expires`). Over the values
/// exactly as the element carries them.
pub fn sign_identification(secret: &[u8], source: &str, identifier: &str, expires: i64) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(format!("{source}\n{identifier}\n{expires}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    identifier: String,
    source: Option<String>,
    expires: Option<Value>,
    signature: Option<String>,
    timestamp: Option<Value>,
    #[serde(flatten)]
    custom: Map<String, Value>,
}

/// Tracks identifications.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentifyProcessor;

/// Checks that the app's server vouched for the element (see the module's documentation).
fn vouched(input: &Input, source: &str, args: &TrackEventArgs<'_>) -> Result<(), EventError> {
    let trust = args.context().identification;
    let signed = input.signature.is_some() || input.expires.is_some();
    if trust.unsigned_ok && !signed {
        return Ok(());
    }
    let refuse = |why: &str| {
        Err(EventError::Forbidden(format!(
            "identification refused: {why}. A browser may identify a visitor only with an element \
             the app's server signed ({{identifier, source, expires, signature}}, see \
             docs/security.md), or through a server-side key"
        )))
    };
    let (Some(signature), Some(expires)) = (&input.signature, &input.expires) else {
        return refuse("it is not signed");
    };
    let Some(secret) = trust.secret else {
        return refuse("this API key has no identification_secret to check a signature with");
    };
    let expires = match expires {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let Some(expires) = expires else {
        return refuse("expires is not a time in epoch seconds");
    };
    let now = args.context().now.timestamp();
    if expires < now {
        return refuse("its signature has expired");
    }
    if expires.saturating_sub(now) > trust.max_lifetime.num_seconds() {
        return refuse(
            "its signature expires too far ahead (identification.max_signature_lifetime)",
        );
    }
    let expected = sign_identification(secret, source, &input.identifier, expires);
    // Compared in constant time: the signature must not be guessable byte by byte.
    let given = signature.trim().to_ascii_lowercase();
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        refuse("its signature is wrong")
    }
}

impl Processor for IdentifyProcessor {
    fn name(&self) -> &str {
        "identify"
    }

    fn claims(&self) -> Vec<String> {
        vec![IDENTIFIER_KEY.into()]
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        dispatch(args, IDENTIFIER_KEY, |input: Input, args| {
            let source = input.source.as_deref().unwrap_or_default();
            if input.identifier.trim().is_empty() {
                return Err(EventError::Invalid("identifier is empty".into()));
            }
            if source.trim().is_empty() {
                return Err(EventError::Invalid(
                    "source is required with identifier (\"email\", \"crm\", ...)".into(),
                ));
            }
            vouched(&input, source, args)?;
            let source = source.trim();
            if source == "SC_ANALYTICS_GLOBAL_COOKIE" {
                return Err(EventError::Invalid(
                    "source SC_ANALYTICS_GLOBAL_COOKIE is the device cookie's own".into(),
                ));
            }
            let fold_case = args.context().identification.fold_case;
            let mut event = TrackedEvent::new(EventKind::Identification);
            event.data = Some(normalise_identifier(source, &input.identifier, fold_case));
            event.data_key = Some(source.to_string());
            apply_common(&mut event, input.timestamp, input.custom, args)?;
            Ok(event)
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::{
        body::Limits,
        definitions::Definitions,
        pipeline::{BatchContext, PipelineBuilder},
        Error,
    };

    fn run(trust: IdentificationTrust<'_>, elements: Value) -> Result<Vec<TrackedEvent>, Error> {
        let pipeline = PipelineBuilder::with_defaults().build();
        let definitions = Definitions::defaults();
        let limits = Limits::default();
        let context = BatchContext {
            definitions: &definitions,
            now: chrono::Utc::now(),
            max_clock_skew: Duration::minutes(2),
            limits: &limits,
            interaction: None,
            identification: trust,
        };
        let Value::Array(elements) = elements else {
            panic!("an array")
        };
        pipeline.run(&elements, &context)
    }

    fn forbidden(result: Result<Vec<TrackedEvent>, Error>) -> bool {
        matches!(
            result,
            Err(Error::Event {
                source: EventError::Forbidden(_),
                ..
            })
        )
    }

    #[test]
    fn only_what_the_app_server_vouched_for_identifies() {
        let secret = b"app-server-secret".as_slice();
        let email = ["email".to_string()];
        let trust = IdentificationTrust {
            secret: Some(secret),
            fold_case: &email,
            ..IdentificationTrust::default()
        };
        let expires = chrono::Utc::now().timestamp() + 300;
        let signature = sign_identification(secret, "email", " Ada@Example.com", expires);
        let signed = json!({"identifier": " Ada@Example.com", "source": "email",
            "expires": expires, "signature": signature});
        let events = run(trust, json!([signed])).unwrap();
        assert_eq!(events[0].data.as_deref(), Some("ada@example.com"));

        // Unsigned, wrongly signed, expired, too far ahead, another key's secret: refused.
        assert!(forbidden(run(
            trust,
            json!([{"identifier": "ada@example.com", "source": "email"}])
        )));
        let mut wrong = signed.clone();
        wrong["identifier"] = json!("eve@example.com");
        assert!(forbidden(run(trust, json!([wrong]))));
        let old = expires - 3600;
        let expired = json!({"identifier": "a", "source": "email", "expires": old,
            "signature": sign_identification(secret, "email", "a", old)});
        assert!(forbidden(run(trust, json!([expired]))));
        let far = expires + 86_400;
        let too_far = json!({"identifier": "a", "source": "email", "expires": far,
            "signature": sign_identification(secret, "email", "a", far)});
        assert!(forbidden(run(trust, json!([too_far]))));
        let other = IdentificationTrust {
            secret: Some(b"another".as_slice()),
            ..trust
        };
        assert!(forbidden(run(other, json!([signed]))));

        // A server-side key (or trust = "client") needs no signature.
        let server = IdentificationTrust {
            unsigned_ok: true,
            ..trust
        };
        let events = run(
            server,
            json!([{"identifier": "ADA@example.com", "source": "email"},
                   {"goalId": "Register"}]),
        )
        .unwrap();
        assert_eq!(events[0].data.as_deref(), Some("ada@example.com"));
        // Sources other than email keep their case; all are trimmed.
        let events = run(server, json!([{"identifier": " CRM-42 ", "source": "crm"}])).unwrap();
        assert_eq!(events[0].data.as_deref(), Some("CRM-42"));
    }

    #[test]
    fn a_batch_identifies_once() {
        let trust = IdentificationTrust {
            unsigned_ok: true,
            ..IdentificationTrust::default()
        };
        let result = run(
            trust,
            json!([{"identifier": "a@x.com", "source": "email"},
                   {"identifier": "b@x.com", "source": "email"}]),
        );
        assert!(
            matches!(result, Err(Error::Event { index: 1, .. })),
            "{result:?}"
        );
    }
}
