#![doc = include_str!("../README.md")]
// The JSON types of jss-tracker's HTTP API (camelCase), shared by the server that answers with
// them, the Rust client that reads them, and the tests: one declaration, `Serialize +
// Deserialize`. A field is the JSON key of the same name in camelCase, described in the
// README's endpoint table; fields say more only where the name does not.
//
// Features: `domain` adds the conversions from the experience database's records
// (`tracker-core`), for the server; `openapi` derives the OpenAPI schemas (utoipa).
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[cfg(feature = "domain")]
mod domain;

/// `POST {prefix}/event`: the success body; JSS clients accept any 2xx and ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrackedBody {
    /// Events accepted (for a robot, answered as if stored).
    pub tracked: usize,
}

/// `{prefix}/flush`: the success body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlushedBody {
    /// Whether a live interaction was ended.
    pub closed: bool,
}

/// The error envelope every endpoint answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorEnvelope {
    /// What went wrong.
    pub error: ErrorBody,
}

/// Every code the error envelope carries, as the server emits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 404: `tracker.enabled` is false.
    TrackerDisabled,
    /// 400: no API key, or not one of `[[api_keys]]`.
    InvalidApiKey,
    /// 403: the key does not allow the request's origin (or is server-side only).
    OriginNotAllowed,
    /// 400: the body is not a batch of events.
    InvalidPayload,
    /// 413: the body or the batch is over its limit.
    PayloadTooLarge,
    /// 400: one element of the batch is wrong (`index` names it).
    InvalidEvent,
    /// 400: an id names no definition (`index` names the element).
    UnknownDefinition,
    /// 403: an identification the app's server did not vouch for (`index`).
    UntrustedIdentification,
    /// 401: the admin API without its token.
    Unauthorized,
    /// 404: no such endpoint or resource.
    NotFound,
    /// 405: the endpoint does not take the method.
    MethodNotAllowed,
    /// 429: over the rate limit (`Retry-After`).
    RateLimited,
    /// 415: a content encoding the tracker does not read.
    UnsupportedMediaType,
    /// 408: the body did not arrive in time.
    RequestTimeout,
    /// 400: the request line or headers do not parse.
    InvalidRequest,
    /// 414: the request line is over its limit.
    UriTooLong,
    /// 431: the headers are over their limit.
    HeadersTooLarge,
    /// 503: the store or the session state cannot answer now; retry.
    Unavailable,
    /// 500: a bug; nothing of the request was stored.
    InternalError,
    /// 502: the Layout Service in front did not answer.
    BadGateway,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [Self; 20] = [
        Self::TrackerDisabled,
        Self::InvalidApiKey,
        Self::OriginNotAllowed,
        Self::InvalidPayload,
        Self::PayloadTooLarge,
        Self::InvalidEvent,
        Self::UnknownDefinition,
        Self::UntrustedIdentification,
        Self::Unauthorized,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RateLimited,
        Self::UnsupportedMediaType,
        Self::RequestTimeout,
        Self::InvalidRequest,
        Self::UriTooLong,
        Self::HeadersTooLarge,
        Self::Unavailable,
        Self::InternalError,
        Self::BadGateway,
    ];

    /// The code as the envelope writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TrackerDisabled => "tracker_disabled",
            Self::InvalidApiKey => "invalid_api_key",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::InvalidPayload => "invalid_payload",
            Self::PayloadTooLarge => "payload_too_large",
            Self::InvalidEvent => "invalid_event",
            Self::UnknownDefinition => "unknown_definition",
            Self::UntrustedIdentification => "untrusted_identification",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RateLimited => "rate_limited",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RequestTimeout => "request_timeout",
            Self::InvalidRequest => "invalid_request",
            Self::UriTooLong => "uri_too_long",
            Self::HeadersTooLarge => "headers_too_large",
            Self::Unavailable => "unavailable",
            Self::InternalError => "internal_error",
            Self::BadGateway => "bad_gateway",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorBody {
    /// The code, if it is one this version knows.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == self.code)
    }
}

/// The inside of [`ErrorEnvelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable code, one of [`ErrorCode`] (text on the wire, so that a client reads a code a
    /// newer server adds).
    #[cfg_attr(feature = "openapi", schema(value_type = ErrorCode))]
    pub code: String,
    /// For people.
    pub message: String,
    /// The element of the batch at fault, where one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

/// The browser, version, OS and device type parsed from an interaction's user agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClientJson {
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    /// `desktop`, `smartphone`, `mobilephone`, `appliance`, `crawler` or `other`.
    pub device_type: Option<String>,
}

/// `GET /api/v1/contacts`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContactList {
    /// The contacts of this page, most recently active first.
    pub contacts: Vec<ContactSummaryJson>,
    /// How many contacts match, on every page.
    pub total: u64,
    /// The `cursor` of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// A contact in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContactSummaryJson {
    pub id: String,
    pub created_at: String,
    pub last_activity: String,
    pub engagement_value: i64,
    pub interaction_count: i64,
    pub goal_count: i64,
}

/// `GET /api/v1/interactions?open=true`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenInteractionList {
    /// The open interactions, most recently active first.
    pub interactions: Vec<OpenInteractionJson>,
}

/// A visit open now, with its totals as they stand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OpenInteractionJson {
    pub id: String,
    pub contact_id: String,
    pub device_id: String,
    pub site_name: Option<String>,
    pub campaign: Option<DefinitionRefJson>,
    pub start: String,
    pub last_activity: String,
    pub duration_seconds: i64,
    pub engagement_value: i64,
    pub page_view_count: i64,
    pub event_count: i64,
}

/// `GET /api/v1/dashboard`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DashboardJson {
    pub from: String,
    pub to: String,
    pub visits: u64,
    pub page_views: u64,
    /// Share of the visits with one page view and nothing else (0 to 1).
    pub bounce_rate: f64,
    pub engagement_value: i64,
    pub engagement_value_per_visit: f64,
    pub goals: Vec<GoalJson>,
    pub outcomes: Vec<OutcomeJson>,
    pub campaigns: Vec<CampaignJson>,
    pub top_pages: Vec<PageCountJson>,
    /// Every day of the range, in order, days without visits included.
    pub series: Vec<DayJson>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GoalJson {
    pub id: String,
    pub name: String,
    pub conversions: u64,
    /// Share of the visits that reached it (0 to 1).
    pub conversion_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OutcomeJson {
    pub id: String,
    pub name: String,
    pub count: u64,
    /// Exact decimal per currency code, as text: `{"USD": "1337.50"}`.
    pub monetary_value: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignJson {
    pub id: String,
    pub name: String,
    pub visits: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PageCountJson {
    pub url: String,
    pub page_views: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DayJson {
    pub date: String,
    pub visits: u64,
    pub page_views: u64,
    pub conversions: u64,
}

/// `GET /api/v1/contacts/{id}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContactJson {
    #[serde(flatten)]
    pub summary: ContactSummaryJson,
    pub devices: Vec<DeviceJson>,
    pub identifiers: Vec<IdentifierJson>,
    /// The newest interactions (up to `interactions`), oldest first.
    pub interactions: Vec<InteractionJson>,
    /// Cursor of the older interactions (`before=`), when there are more.
    #[serde(default)]
    pub older_interactions: Option<String>,
}

/// `GET /api/v1/contacts/{id}/export`: everything stored of one contact, in one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ContactExportJson {
    /// When the export was made (RFC 3339).
    pub exported_at: String,
    /// The contact with every device, identifier, interaction and event.
    pub contact: ContactJson,
}

/// `GET {service_prefix}/visitor`: the caller's own profile (never anyone else's), what XP
/// personalisation rules look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VisitorJson {
    /// Whether the tracker knows this visitor at all (a device cookie it issued, with visits).
    pub known: bool,
    /// Whether the visitor identified (an identifier besides the device cookie).
    pub identified: bool,
    /// The sources of its identifiers (`email`, `crm`...), not their values.
    pub identifier_sources: Vec<String>,
    /// Its visits, the current one included.
    pub visits: i64,
    /// Its engagement value (every visit, the current one as it stands).
    pub engagement_value: i64,
    /// The goals it reached (names, most recent first), and how often in all.
    pub goals: Vec<String>,
    /// Goal conversions in all.
    pub goal_count: i64,
    /// The campaigns it came with (names, most recent first).
    pub campaigns: Vec<String>,
    /// Page views in its recent visits.
    pub page_views: i64,
    /// When its first visit started (RFC 3339), if known.
    pub first_visit: Option<String>,
}

/// `POST /api/v1/contacts/{id}/identifiers`: the identifier to give the contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewIdentifierJson {
    /// Where it comes from: `email`, `crm`...
    pub source: String,
    /// The identifier.
    pub identifier: String,
}

/// The answer to `POST /api/v1/contacts/{id}/identifiers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IdentifiedJson {
    /// The contact that has the identifier now: this one, or the one it merged into.
    pub contact_id: String,
    /// Whether this contact merged into another that already had the identifier.
    pub merged: bool,
}

/// `DELETE /api/v1/contacts/{id}`: what erasing the contact removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ErasedJson {
    pub interactions: u64,
    pub events: u64,
    pub devices: u64,
    pub identifiers: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeviceJson {
    pub id: String,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentifierJson {
    pub source: String,
    pub identifier: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DefinitionRefJson {
    pub id: String,
    pub name: String,
}

/// Where a visit came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AcquisitionJson {
    /// `direct`, `organic_search`, `paid_search`, `social`, `email`, `referral` or `campaign`.
    pub channel: String,
    /// `utm_source`, else the host of a referrer from another site (without `www.`).
    pub source: Option<String>,
    /// The landing URL's `utm_source`.
    pub utm_source: Option<String>,
    /// `utm_medium`.
    pub utm_medium: Option<String>,
    /// `utm_campaign`.
    pub utm_campaign: Option<String>,
    /// `utm_term`.
    pub utm_term: Option<String>,
    /// `utm_content`.
    pub utm_content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InteractionJson {
    pub id: String,
    pub open: bool,
    pub start: String,
    pub end: Option<String>,
    pub last_activity: String,
    pub duration_seconds: i64,
    pub close_reason: Option<String>,
    pub device_id: String,
    pub site_name: Option<String>,
    pub campaign: Option<DefinitionRefJson>,
    pub user_agent: Option<String>,
    /// Browser, version, OS and device type parsed from the user agent.
    pub client: ClientJson,
    /// The client's address as stored (anonymised unless `privacy.ip_anonymization = "off"`).
    pub ip: Option<String>,
    /// The URL of the visit's first page view (of its first request): where it landed.
    #[serde(default)]
    pub landing_url: Option<String>,
    /// That page view's referrer (else the request's `Referer` from another site): where the
    /// visitor came from.
    #[serde(default)]
    pub referrer: Option<String>,
    /// Where the visit came from: its channel, source and the landing URL's UTM tags.
    #[serde(default)]
    pub acquisition: AcquisitionJson,
    /// The visit's language (`en-US`): its first page view's, else the browser's first
    /// `Accept-Language`.
    #[serde(default)]
    pub language: Option<String>,
    pub engagement_value: i64,
    pub page_view_count: i64,
    pub event_count: usize,
    /// The first events (up to `events`), in order.
    pub events: Vec<EventJson>,
    /// Events of the interaction not listed (over `events`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub events_omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventJson {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub definition_id: Option<String>,
    pub definition_name: Option<String>,
    pub points: i64,
    pub timestamp: String,
    pub page_id: Option<String>,
    pub url: Option<String>,
    pub language: Option<String>,
    pub item_version: Option<i64>,
    pub referrer: Option<String>,
    pub page_view_id: Option<String>,
    /// Exact decimal, as text: a float would round it.
    pub monetary_value: Option<String>,
    pub currency_code: Option<String>,
    pub data: Option<String>,
    pub data_key: Option<String>,
    pub text: Option<String>,
    pub value: Option<f64>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub custom_values: Map<String, Value>,
}

/// `GET /api/v1/definitions`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DefinitionsJson {
    /// Goals.
    pub goals: Vec<DefinitionJson>,
    /// Page events.
    pub page_events: Vec<DefinitionJson>,
    /// Outcomes.
    pub outcomes: Vec<DefinitionJson>,
    /// Campaigns.
    pub campaigns: Vec<DefinitionJson>,
}

/// One definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DefinitionJson {
    pub id: String,
    pub name: String,
    pub points: i64,
    // Left out when false, so read back as false when absent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_failure: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monetary_value_applicable: bool,
    /// Outcomes: money on them is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refuse_money: bool,
    /// Outcomes: negative money is accepted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negative_money_allowed: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn every_error_code_is_written_as_serde_writes_it() {
        for code in super::ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
        }
    }
}
