//! Identifier newtypes, parsed once at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        uuid_id!($(#[$doc])* $name, "A fresh random id (UUIDv4).", Uuid::new_v4);
    };
    ($(#[$doc:meta])* $name:ident, $new_doc:literal, $new:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            #[doc = $new_doc]
            pub fn new_random() -> Self {
                Self($new())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A contact: the person behind one or more devices.
    ContactId,
    "A fresh id, time-ordered (UUIDv7: 48 bits of milliseconds, then 74 random bits). Still a GUID to every client; new rows land at the end of the store's indexes instead of at random places, so ingest stays as cheap with ten million rows as with none.",
    Uuid::now_v7
);
uuid_id!(
    /// An interaction (a visit): the events of one session.
    InteractionId,
    "A fresh id, time-ordered (UUIDv7: 48 bits of milliseconds, then 74 random bits). Still a GUID to every client; new rows land at the end of the store's indexes instead of at random places, so ingest stays as cheap with ten million rows as with none.",
    Uuid::now_v7
);
uuid_id!(
    /// One stored event.
    EventId,
    "A fresh id, time-ordered (UUIDv7: 48 bits of milliseconds, then 74 random bits). Still a GUID to every client; new rows land at the end of the store's indexes instead of at random places, so ingest stays as cheap with ten million rows as with none.",
    Uuid::now_v7
);
uuid_id!(
    /// A live session, as named by the session cookie.
    SessionId
);
uuid_id!(
    /// A marketing definition (goal, page event, outcome, campaign) or a page item.
    Guid
);

impl Guid {
    /// Parses any spelling Sitecore users write: braced or not, hyphenated or not, any case.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let bare = raw
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .unwrap_or(raw);
        // Only the 32-digit and the hyphenated forms: not URNs, not nested braces.
        if bare.len() != 32 && bare.len() != 36 {
            return None;
        }
        Uuid::try_parse(bare).ok().map(Self)
    }
}

impl SessionId {
    /// Parses the session cookie's value; anything else is ignored and replaced.
    pub fn from_cookie(raw: &str) -> Option<Self> {
        Uuid::try_parse(raw).ok().map(Self)
    }

    /// The value written to the session cookie.
    pub fn to_cookie(self) -> String {
        self.0.simple().to_string()
    }
}

/// A browser, as named by `SC_ANALYTICS_GLOBAL_COOKIE`: 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceId(pub Uuid);

impl DeviceId {
    /// A fresh device id, time-ordered (UUIDv7: 74 random bits after the millisecond), so that
    /// new visitors' device and identifier rows append to their indexes instead of landing on
    /// random pages (each new visitor cost two random page writes). 74 random bits stay far
    /// beyond guessing; to the client it is 32 hex digits like any other.
    pub fn new_random() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses a 32-hex-digit device id (any case), as used in the cookie and the admin API.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        (raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Uuid::try_parse(raw).ok().map(Self))
            .flatten()
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.simple().fmt(f)
    }
}

/// The value of `SC_ANALYTICS_GLOBAL_COOKIE`: `<device id>|<True|False>`, as Sitecore writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalCookie {
    /// The device.
    pub device: DeviceId,
    /// Whether the visitor has been classified as human (`True`), or not yet / a robot (`False`).
    pub human: bool,
}

impl GlobalCookie {
    /// A new, not yet classified device.
    pub fn new_random() -> Self {
        Self {
            device: DeviceId::new_random(),
            human: false,
        }
    }

    /// Parses the cookie; a malformed value gives `None` and is replaced by the caller.
    pub fn parse(raw: &str) -> Option<Self> {
        let (device, flag) = raw.split_once('|')?;
        let human = match flag {
            "True" => true,
            "False" => false,
            _ => return None,
        };
        Some(Self {
            device: DeviceId::parse(device)?,
            human,
        })
    }
}

impl fmt::Display for GlobalCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = if self.human { "True" } else { "False" };
        write!(f, "{}|{flag}", self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_accepts_every_spelling() {
        let want = Guid::parse("110d559f-dea5-42ea-9c1c-8a5df7e70ef9").expect("hyphenated");
        for raw in [
            "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}",
            "110D559FDEA542EA9C1C8A5DF7E70EF9",
            "{110d559fdea542ea9c1c8a5df7e70ef9}",
            " 110d559f-dea5-42ea-9c1c-8a5df7e70ef9 ",
        ] {
            assert_eq!(Guid::parse(raw), Some(want), "{raw}");
        }
        assert_eq!(Guid::parse("Download"), None);
        assert_eq!(Guid::parse("{110d559f-dea5-42ea-9c1c}"), None);
    }

    #[test]
    fn global_cookie_round_trips_and_rejects_garbage() {
        let cookie = GlobalCookie::parse("0123456789ABCDEF0123456789abcdef|True").expect("valid");
        assert!(cookie.human);
        assert_eq!(cookie.to_string(), "0123456789abcdef0123456789abcdef|True");
        let fresh = GlobalCookie::new_random().to_string();
        let (hex, flag) = fresh.split_once('|').expect("pipe");
        assert_eq!(flag, "False");
        assert_eq!(hex.len(), 32);
        assert!(hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        for bad in [
            "",
            "abc|True",
            "0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef|true",
            "0123456789abcdef0123456789abcdeg|True",
            "01234567-89ab-cdef-0123-456789abcdef|True",
        ] {
            assert_eq!(GlobalCookie::parse(bad), None, "{bad}");
        }
    }
}
