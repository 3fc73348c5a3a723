//! Event time in whole UTC days: the unit of the rules stage's buckets and evaluations.

/// Days since the Unix epoch (UTC).
pub type Day = i64;

pub const DAY_MS: i64 = 86_400_000;

/// The UTC day a timestamp (milliseconds) falls in.
pub fn day_of(ms: i64) -> Day {
    ms.div_euclid(DAY_MS)
}

/// The first millisecond after `day`: when it closes.
pub fn end_of(day: Day) -> i64 {
    (day + 1) * DAY_MS
}

/// Parses a window such as `7d`, `8w` or `72h` into whole days (hours round up).
pub fn window_days(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a window like 7d, 8w or 72h"))?;
    let days = match unit {
        "d" => Some(n),
        "w" => n.checked_mul(7),
        "h" => n.checked_add(23).map(|h| h / 24),
        _ => return Err(format!("{text:?}: the unit must be h, d or w")),
    }
    .ok_or_else(|| format!("{text:?} is too long a window"))?;
    if days < 1 {
        return Err(format!("{text:?} is shorter than a day"));
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_windows() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(-1), -1);
        assert_eq!(end_of(0), DAY_MS);
        assert_eq!(window_days("7d"), Ok(7));
        assert_eq!(window_days("8w"), Ok(56));
        assert_eq!(window_days("72h"), Ok(3));
        assert!(window_days("7x").is_err());
        assert!(window_days("0d").is_err());
        assert!(window_days(&format!("{}w", i64::MAX)).is_err());
    }
}
