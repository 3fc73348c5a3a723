//! Label and annotation templates of a rule: `{{name}}` filled in from the group's labels
//! and the verdict when an alert is built, with numbers and days written for people.

use crate::time::Day;

/// Fills every `{{name}}` in `template` with `lookup(name)` (spaces inside the braces are
/// ignored). A name `lookup` does not know is left as written, so a typo shows in the
/// alert instead of silently vanishing.
pub fn render(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        let whole = &rest[open..open + 2 + close + 2];
        match lookup(after[..close].trim()) {
            Some(value) => out.push_str(&value),
            None => out.push_str(whole),
        }
        rest = &after[close + 2..];
    }
    // Either no placeholder is left, or an unclosed `{{` (rejected at load) stays as is.
    if let Some(open) = rest.find("{{") {
        out.push_str(&rest[open..]);
    } else {
        out.push_str(rest);
    }
    out
}

/// The placeholder names of a template, or what is wrong with it.
pub fn placeholders(template: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| {
            format!(
                "{{{{ at byte {} is never closed",
                template.len() - rest.len() + open
            )
        })?;
        let name = after[..close].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "{{{{{name}}}}} is not a placeholder; names are letters, digits and _"
            ));
        }
        names.push(name);
        rest = &after[close + 2..];
    }
    Ok(names)
}

/// A number as an analyst would write it: integers without a decimal point (`123`),
/// others rounded to two decimals or three significant digits, trailing zeros dropped
/// (`3.5`, `10.71`, `0.0123`).
pub fn format_number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let decimals = if x.abs() >= 1.0 {
        2
    } else {
        (2 - x.abs().log10().floor() as i64).clamp(2, 15) as usize
    };
    let text = format!("{x:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// A day as `YYYY-MM-DD` (proleptic Gregorian, UTC).
pub fn date(day: Day) -> String {
    // Howard Hinnant's civil_from_days: exact for every day, no calendar crate needed.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_names_and_keeps_unknown_ones() {
        let lookup = |name: &str| match name {
            "route" => Some("BALKAN".to_owned()),
            "value" => Some("60".to_owned()),
            _ => None,
        };
        assert_eq!(
            render("{{route}}: {{ value }} ({{nope}})", lookup),
            "BALKAN: 60 ({{nope}})"
        );
        assert_eq!(render("no placeholders", lookup), "no placeholders");
        assert_eq!(render("open {{route", lookup), "open {{route");
        assert_eq!(placeholders("{{a}} {{ b_1 }}"), Ok(vec!["a", "b_1"]));
        assert!(placeholders("{{a").is_err());
        assert!(placeholders("{{a b}}").is_err());
    }

    #[test]
    fn numbers_without_noise() {
        assert_eq!(format_number(123.0), "123");
        assert_eq!(format_number(3.5), "3.5");
        assert_eq!(format_number(10.714_285), "10.71");
        assert_eq!(format_number(0.0123), "0.0123");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(-2.0), "-2");
        assert_eq!(format_number(f64::NAN), "NaN");
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(20_454), "2026-01-01");
        assert_eq!(date(20_454 + 58), "2026-02-28");
        assert_eq!(date(19_782), "2024-02-29");
        assert_eq!(date(-1), "1969-12-31");
    }
}
