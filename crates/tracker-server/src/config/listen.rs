//! `server.listen`: an address as a person writes it, an IP address or a host name with a port,
//! checked when the configuration loads and resolved when the server binds.

use std::{
    fmt,
    net::{SocketAddr, ToSocketAddrs},
};

use serde::{Deserialize, Serialize};

/// Where the server listens: `127.0.0.1:8080`, `[::]:8080`, or a host name that resolves, such
/// as `localhost:8080`. Port 0 picks a free port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ListenAddr(String);

/// What a listen address looks like, for error messages.
pub const LISTEN_EXPECTED: &str =
    "expected an IP address and a port such as 127.0.0.1:8080 or [::]:8080, or a host name and a port such as localhost:8080";

impl ListenAddr {
    /// Resolves the address (a host name through the system's resolver); the first address
    /// is the one to bind. The error says what was written and what is expected.
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        let text = self.0.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(addr);
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(format!(
                "\"{text}\" is not an address and a port; {LISTEN_EXPECTED}"
            ));
        };
        if port.parse::<u16>().is_err() {
            return Err(format!(
                "\"{text}\": \"{port}\" is not a port (0 to 65535); {LISTEN_EXPECTED}"
            ));
        }
        if host.is_empty() || host.contains(['/', ' ', '[', ']']) {
            return Err(format!("\"{text}\" is not an address; {LISTEN_EXPECTED}"));
        }
        match text.to_socket_addrs() {
            Ok(mut addrs) => addrs
                .next()
                .ok_or_else(|| format!("\"{host}\" resolves to no address; {LISTEN_EXPECTED}")),
            Err(_) => Err(format!(
                "cannot resolve the host name \"{host}\"; {LISTEN_EXPECTED}"
            )),
        }
    }

    /// The address as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        Self(addr.to_string())
    }
}

impl From<&str> for ListenAddr {
    fn from(text: &str) -> Self {
        Self(text.to_string())
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_host_names_resolve() {
        let ok = [
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("[::]:8080", "[::]:8080"),
            ("0.0.0.0:0", "0.0.0.0:0"),
        ];
        for (text, addr) in ok {
            assert_eq!(ListenAddr::from(text).resolve().unwrap().to_string(), addr);
        }
        let localhost = ListenAddr::from("localhost:8080").resolve().unwrap();
        assert!(localhost.ip().is_loopback() && localhost.port() == 8080);
    }

    #[test]
    fn a_bad_address_says_what_it_got_and_what_it_expects() {
        assert_eq!(
            ListenAddr::from("8080").resolve().unwrap_err(),
            format!("\"8080\" is not an address and a port; {LISTEN_EXPECTED}")
        );
        assert_eq!(
            ListenAddr::from("127.0.0.1:http").resolve().unwrap_err(),
            format!("\"127.0.0.1:http\": \"http\" is not a port (0 to 65535); {LISTEN_EXPECTED}")
        );
        assert_eq!(
            ListenAddr::from("no-such-host.invalid:80")
                .resolve()
                .unwrap_err(),
            format!("cannot resolve the host name \"no-such-host.invalid\"; {LISTEN_EXPECTED}")
        );
    }
}
