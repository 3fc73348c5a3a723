//! Email locales: the fixed strings of the templates ("Firing", "Route", "Value"...) in
//! each RELEC language, one TOML file per locale under `templates/locales/`, and whether
//! the script runs right to left.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The locale used when a subscriber names none, or one that does not exist; also the
/// source of any string a locale file leaves out.
pub const DEFAULT_LOCALE: &str = "en";

/// The built-in locales: id and TOML source.
pub(crate) const BUILT_IN: [(&str, &str); 9] = [
    ("en", include_str!("../../templates/locales/en.toml")),
    ("fa", include_str!("../../templates/locales/fa.toml")),
    ("ps", include_str!("../../templates/locales/ps.toml")),
    ("prs", include_str!("../../templates/locales/prs.toml")),
    ("ar", include_str!("../../templates/locales/ar.toml")),
    ("ku", include_str!("../../templates/locales/ku.toml")),
    ("ur", include_str!("../../templates/locales/ur.toml")),
    ("bn", include_str!("../../templates/locales/bn.toml")),
    ("tr", include_str!("../../templates/locales/tr.toml")),
];

/// Which way a locale's script runs; RTL locales get `dir="rtl"` in the HTML part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ltr,
    Rtl,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ltr => "ltr",
            Self::Rtl => "rtl",
        }
    }
}

/// One locale file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locale {
    /// The language's name in its own script, e.g. "فارسی".
    pub name: String,
    /// The BCP 47 tag for HTML `lang` and the Content-Language header: usually the locale
    /// id, but `ku` is written in Sorani, whose tag is `ckb`.
    pub lang: String,
    pub direction: Direction,
    /// The fixed strings, by key; the keys of `en.toml` are the full set.
    pub strings: BTreeMap<String, String>,
}

impl Locale {
    pub fn parse(source: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(source)
    }

    /// The string for `key`, or the key itself if even the default locale lacks it.
    pub fn text<'a>(&'a self, key: &'a str) -> &'a str {
        self.strings.get(key).map_or(key, String::as_str)
    }

    /// Fills the strings this locale lacks from `fallback`, so a partial translation
    /// still renders every label (in the fallback language) instead of failing.
    pub(crate) fn fill_from(&mut self, fallback: &Locale) {
        for (key, text) in &fallback.strings {
            self.strings
                .entry(key.clone())
                .or_insert_with(|| text.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built_in(id: &str) -> Locale {
        let (_, source) = BUILT_IN.iter().find(|(i, _)| *i == id).expect("built in");
        Locale::parse(source).expect("parses")
    }

    /// The Unicode block each built-in locale is written in, to catch a translation
    /// left in English or pasted in the wrong script.
    fn script_of(id: &str) -> fn(char) -> bool {
        match id {
            "fa" | "ps" | "prs" | "ar" | "ku" | "ur" => |c| ('\u{0600}'..='\u{06FF}').contains(&c),
            "bn" => |c| ('\u{0980}'..='\u{09FF}').contains(&c),
            _ => |c| c.is_ascii_alphabetic() || "çğıöşüâÇĞİÖŞÜ".contains(c),
        }
    }

    #[test]
    fn every_locale_has_every_string_in_its_own_script() {
        let english = built_in(DEFAULT_LOCALE);
        for (id, _) in BUILT_IN {
            let locale = built_in(id);
            let keys: Vec<_> = locale.strings.keys().collect();
            let expected: Vec<_> = english.strings.keys().collect();
            assert_eq!(keys, expected, "{id}: keys differ from en");
            let in_script = script_of(id);
            for (key, text) in &locale.strings {
                let letters = text.chars().filter(|c| c.is_alphabetic());
                let foreign = letters.clone().filter(|c| !in_script(*c)).count();
                let total = letters.count();
                // "RELEC" and "TLP" stay in Latin letters in every language.
                let allowed = text.matches("RELEC").count() * 5 + text.matches("TLP").count() * 3;
                assert!(total > 0 && foreign <= allowed, "{id}.{key} = {text:?}");
            }
        }
    }

    #[test]
    fn right_to_left_locales_are_marked() {
        for (id, _) in BUILT_IN {
            let rtl = matches!(id, "fa" | "ps" | "prs" | "ar" | "ku" | "ur");
            let expected = if rtl { Direction::Rtl } else { Direction::Ltr };
            assert_eq!(built_in(id).direction, expected, "{id}");
        }
        assert_eq!(built_in("ku").lang, "ckb");
    }

    #[test]
    fn missing_strings_come_from_the_fallback() {
        let mut partial = Locale::parse(
            "name = \"x\"\nlang = \"x\"\ndirection = \"ltr\"\n[strings]\nfiring = \"On\"",
        )
        .expect("parses");
        partial.fill_from(&built_in("en"));
        assert_eq!(partial.text("firing"), "On");
        assert_eq!(partial.text("resolved"), "Resolved");
        assert_eq!(partial.text("no_such_key"), "no_such_key");
    }
}
