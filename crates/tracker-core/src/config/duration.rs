//! Durations in the configuration: read as humantime writes them (`20m`, `1h 30m`, `3650days`)
//! and printed in the largest unit that keeps them exact, as a person would write them
//! (`3650days`, not humantime's calendar rendering `9years 11months 27days 21h 50m 24s`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Formats `d` in its largest exact unit: `3650days`, `20m`, `90s`, `250ms`.
pub fn format(d: Duration) -> String {
    const UNITS: [(u128, &str); 5] = [
        (86_400_000, "days"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    let millis = d.as_millis();
    if d.subsec_nanos() % 1_000_000 != 0 {
        // Finer than a millisecond: humantime's own rendering is exact.
        return humantime::format_duration(d).to_string();
    }
    if millis == 0 {
        return "0s".into();
    }
    for (unit, name) in UNITS {
        if millis % unit == 0 {
            let n = millis / unit;
            // "1days" reads badly.
            let name = if n == 1 && name == "days" {
                "day"
            } else {
                name
            };
            return format!("{n}{name}");
        }
    }
    unreachable!("every whole number of milliseconds is a multiple of 1 ms")
}

/// `#[serde(with = "duration")]` for a `Duration` field.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// `#[serde(with = "duration")]` for a `Duration` field.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|_| {
        serde::de::Error::invalid_value(
            serde::de::Unexpected::Str(&text),
            &"a duration such as 90s, 20m, 1h 30m or 3650days",
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_people_write_them() {
        let cases = [
            (Duration::from_secs(10 * 365 * 24 * 3600), "3650days"),
            (Duration::from_secs(24 * 3600), "1day"),
            (Duration::from_secs(20 * 60), "20m"),
            (Duration::from_secs(90 * 60), "90m"),
            (Duration::from_secs(2 * 3600), "2h"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::ZERO, "0s"),
        ];
        for (duration, text) in cases {
            assert_eq!(format(duration), text);
            assert_eq!(
                humantime::parse_duration(text).unwrap(),
                duration,
                "{text} reads back"
            );
        }
    }
}
