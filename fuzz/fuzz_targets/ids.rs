//! Ids and cookies as clients send them: GUIDs in any spelling, the device cookie, the session
//! cookie. Whatever parses must print back to something that parses to the same value, and the
//! device id's signature check takes whatever parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracker_core::ids::{DeviceKey, GlobalCookie, Guid, SessionId};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(guid) = Guid::parse(text) {
        assert_eq!(Guid::parse(&guid.to_string()), Some(guid));
    }
    if let Some(cookie) = GlobalCookie::parse(text) {
        assert_eq!(GlobalCookie::parse(&cookie.to_string()), Some(cookie));
        // The signature check takes any device id; only the key's own pass.
        let key = DeviceKey::from_bytes([7; 32]);
        let _ = key.issued(cookie.device);
        assert!(key.issued(key.issue()));
    }
    if let Some(session) = SessionId::from_cookie(text) {
        assert_eq!(SessionId::from_cookie(&session.to_string()), Some(session));
    }
});
