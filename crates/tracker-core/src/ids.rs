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
    SessionId,
    "A fresh id, time-ordered (UUIDv7: 48 bits of milliseconds, then 74 random bits, still far beyond guessing). The store indexes open visits by session: with random ids every visit that opened or closed rewrote a page at a random place in that index, and a mass expiry wrote the WAL faster than it could be checkpointed; time-ordered ids keep both at the index's right edge and make sessions that expire together neighbours.",
    Uuid::now_v7
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

/// The secret that signs the device ids this tracker issues, so that a device id it never issued
/// (all zeros, say, sent by every client of a bot farm) is told apart by arithmetic alone, with no
/// database read on the hot path.
///
/// An issued id is still 16 bytes, 32 hex digits to the client: 6 bytes of milliseconds (new
/// devices append to the store's indexes), 5 random bytes, then the first 5 bytes of
/// HMAC-SHA256 over the 11 before. Forging one takes about 2^39 guesses; two visitors sharing
/// one needs two random 40-bit values to meet within the same millisecond.
#[derive(Clone)]
pub struct DeviceKey {
    /// HMAC-SHA256 keyed once (its inner and outer pads hashed): each id costs two SHA-256
    /// blocks.
    keyed: hmac::Hmac<sha2::Sha256>,
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

impl DeviceKey {
    /// The bytes of an issued id before its signature.
    const SIGNED: usize = 11;

    /// A key from its stored bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        use hmac::Mac;
        Self {
            keyed: <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&bytes)
                .expect("HMAC takes a key of any length"),
        }
    }

    /// A fresh signed device id.
    pub fn issue(&self) -> DeviceId {
        let mut bytes = [0u8; 16];
        let ms = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        bytes[6..Self::SIGNED].copy_from_slice(&Uuid::new_v4().as_bytes()[..5]);
        let tag = self.tag(&bytes[..Self::SIGNED]);
        bytes[Self::SIGNED..].copy_from_slice(&tag);
        DeviceId(Uuid::from_bytes(bytes))
    }

    /// Whether this key issued the id (constant time in the signature).
    pub fn issued(&self, device: DeviceId) -> bool {
        let bytes = device.0.as_bytes();
        let tag = self.tag(&bytes[..Self::SIGNED]);
        tag.iter()
            .zip(&bytes[Self::SIGNED..])
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
    }

    fn tag(&self, signed: &[u8]) -> [u8; 5] {
        use hmac::Mac;
        let mut mac = self.keyed.clone();
        mac.update(b"jss-tracker device id v1");
        mac.update(signed);
        let out = mac.finalize().into_bytes();
        let mut tag = [0u8; 5];
        tag.copy_from_slice(&out[..5]);
        tag
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
    fn device_ids_are_accepted_only_from_the_key_that_issued_them() {
        let key = DeviceKey::from_bytes([7; 32]);
        let other = DeviceKey::from_bytes([8; 32]);
        let a = key.issue();
        let b = key.issue();
        assert_ne!(a, b);
        assert!(key.issued(a) && key.issued(b));
        assert!(!other.issued(a));
        let zeros = DeviceId::parse("00000000000000000000000000000000").expect("hex");
        assert!(!key.issued(zeros));
        assert!(!key.issued(DeviceId::new_random()));
        // One flipped bit anywhere is a different, unissued id.
        for bit in 0..128 {
            let flipped = DeviceId(Uuid::from_u128(a.0.as_u128() ^ (1u128 << bit)));
            assert!(!key.issued(flipped), "bit {bit}");
        }
        // Issued ids sort by time, as new rows should.
        assert!(a.0.as_bytes()[..6] <= b.0.as_bytes()[..6]);
        assert_eq!(format!("{key:?}"), "DeviceKey(..)");
    }

    #[test]
    fn global_cookie_round_trips_and_rejects_garbage() {
        let cookie = GlobalCookie::parse("0123456789ABCDEF0123456789abcdef|True").expect("valid");
        assert!(cookie.human);
        assert_eq!(cookie.to_string(), "0123456789abcdef0123456789abcdef|True");
        let fresh = GlobalCookie {
            device: DeviceKey::from_bytes([1; 32]).issue(),
            human: false,
        }
        .to_string();
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
