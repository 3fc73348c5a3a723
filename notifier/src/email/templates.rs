//! The email templates and locales, loaded once at startup: the built-in ones under
//! `notifier/templates/`, each replaceable by a file of the same name in an operator's
//! directory. Every template is test-rendered in every locale while loading, so a broken
//! override stops the start instead of the first alert.

use std::{collections::BTreeMap, path::Path};

use minijinja::{Environment, UndefinedBehavior, syntax::SyntaxConfig};

use super::{
    Error,
    locale::{BUILT_IN, DEFAULT_LOCALE, Locale},
};

/// The subject line (newlines in the output are folded into spaces).
pub const SUBJECT: &str = "subject.txt";
/// The text/plain part.
pub const BODY_TEXT: &str = "body.txt";
/// The text/html part; values are HTML-escaped automatically (by the `.html` name).
pub const BODY_HTML: &str = "body.html";

const BUILT_IN_TEMPLATES: [(&str, &str); 3] = [
    (SUBJECT, include_str!("../../templates/email/subject.txt")),
    (BODY_TEXT, include_str!("../../templates/email/body.txt")),
    (BODY_HTML, include_str!("../../templates/email/body.html")),
];

/// The loaded templates and locales.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    locales: BTreeMap<String, Locale>,
}

impl Templates {
    /// The built-in templates and locales only.
    pub fn built_in() -> Self {
        Self::load(None).expect("the built-in templates are tested to load")
    }

    /// The built-in templates and locales, each replaced by `dir/<name>` where that file
    /// exists (`subject.txt`, `body.txt`, `body.html`, `locales/<id>.toml`).
    pub fn load(dir: Option<&Path>) -> Result<Self, Error> {
        let mut env = Environment::new();
        // Block tags on their own line then leave no blank lines behind, which keeps the
        // plain-text template readable; a text part ends with a newline, as text files do.
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("default delimiters are valid");
        env.set_syntax(syntax);
        // A misspelt variable in an operator's template is an error, not an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, built_in) in BUILT_IN_TEMPLATES {
            let source = read_override(dir, name)?.unwrap_or_else(|| built_in.to_owned());
            env.add_template_owned(name, source)
                .map_err(|source| Error::Template { name, source })?;
        }

        let mut locales = BTreeMap::new();
        for (id, built_in) in BUILT_IN {
            let name = format!("locales/{id}.toml");
            let source = read_override(dir, &name)?;
            let source = source.as_deref().unwrap_or(built_in);
            let locale = Locale::parse(source).map_err(|source| Error::Locale { name, source })?;
            locales.insert(id.to_owned(), locale);
        }
        let fallback = locales[DEFAULT_LOCALE].clone();
        for locale in locales.values_mut() {
            locale.fill_from(&fallback);
        }

        let templates = Self { env, locales };
        let probe = super::render::probe();
        for id in templates.locales.keys() {
            super::render::render(&templates, &probe, id)?;
        }
        Ok(templates)
    }

    /// The locale with id `id`, else the one of its language (`fa` for `fa-IR`), else the
    /// default: an unknown locale still gets the message, in English.
    pub fn locale(&self, id: &str) -> (&str, &Locale) {
        [id, language(id), DEFAULT_LOCALE]
            .into_iter()
            .find_map(|candidate| self.locales.get_key_value(candidate))
            .map(|(id, locale)| (id.as_str(), locale))
            .expect("the default locale is always loaded")
    }

    /// Whether `id` names a locale (or a region of one), for validating subscriptions.
    pub fn supports(&self, id: &str) -> bool {
        self.locales.contains_key(id) || self.locales.contains_key(language(id))
    }

    /// The ids of the loaded locales.
    pub fn locale_ids(&self) -> impl Iterator<Item = &str> {
        self.locales.keys().map(String::as_str)
    }

    pub(crate) fn render(
        &self,
        name: &'static str,
        context: &minijinja::Value,
    ) -> Result<String, Error> {
        self.env
            .get_template(name)
            .and_then(|template| template.render(context))
            .map_err(|source| Error::Template { name, source })
    }
}

fn read_override(dir: Option<&Path>, name: &str) -> Result<Option<String>, Error> {
    let Some(path) = dir.map(|dir| dir.join(name)) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(source) => Ok(Some(source)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::TemplateFile { path, source }),
    }
}

/// The language part of a locale id: `fa` of `fa-IR` or `fa_IR`.
fn language(id: &str) -> &str {
    id.split(['-', '_']).next().unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_load_and_render_in_every_locale() {
        let templates = Templates::built_in();
        assert_eq!(templates.locale_ids().count(), 9);
    }

    #[test]
    fn locales_fall_back_by_language_then_to_english() {
        let templates = Templates::built_in();
        assert_eq!(templates.locale("fa").0, "fa");
        assert_eq!(templates.locale("fa-IR").0, "fa");
        assert_eq!(templates.locale("tr_TR").0, "tr");
        assert_eq!(templates.locale("xx").0, "en");
        assert!(templates.supports("bn") && templates.supports("en-GB"));
        assert!(!templates.supports("xx"));
    }

    #[test]
    fn an_operator_directory_overrides_single_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(SUBJECT), "{{ tlp }} custom {{ rules }}").expect("write");
        std::fs::create_dir(dir.path().join("locales")).expect("mkdir");
        let tr = BUILT_IN[8].1.replace("\"Etkin\"", "\"Aktif\"");
        std::fs::write(dir.path().join("locales/tr.toml"), tr).expect("write");

        let templates = Templates::load(Some(dir.path())).expect("loads");
        let probe = crate::email::render::probe();
        let en = crate::email::render(&templates, &probe, "en").expect("renders");
        assert_eq!(en.subject, "TLP:AMBER custom route_spike");
        assert!(
            en.text.contains("Route: IRN-TUR-VAN"),
            "body.txt still built in"
        );
        let tr = crate::email::render(&templates, &probe, "tr").expect("renders");
        assert!(tr.text.contains("Aktif"));
    }

    #[test]
    fn a_broken_override_fails_the_load_with_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(BODY_HTML), "{{ no_such_variable }}").expect("write");
        let err = Templates::load(Some(dir.path())).expect_err("undefined variable");
        assert!(err.to_string().contains("body.html"), "{err}");

        std::fs::write(dir.path().join(BODY_HTML), "{% if %}").expect("write");
        let err = Templates::load(Some(dir.path())).expect_err("syntax error");
        assert!(err.to_string().contains("body.html"), "{err}");
    }
}
