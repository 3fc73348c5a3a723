//! Secrets in config (passwords, keys): given inline, from a file, or from an environment
//! variable; never printed by `Debug`, `Display` or logs.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret value. The config may say `password = "..."`, `password = { file = "/run/..." }`
/// or `password = { env = "VAR" }`; the file or variable is read when the config loads.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for handing to the client that needs it, never to a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Serializes redacted, so printing an effective config never leaks it.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Source {
    Inline(String),
    File { file: String },
    Env { env: String },
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = match Source::deserialize(d).map_err(|_| {
            D::Error::custom("expected a string, { file = \"PATH\" } or { env = \"VAR\" }")
        })? {
            Source::Inline(s) => s,
            Source::File { file } => std::fs::read_to_string(&file)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|e| D::Error::custom(format!("cannot read secret file {file}: {e}")))?,
            Source::Env { env } => std::env::var(&env)
                .map_err(|_| D::Error::custom(format!("environment variable {env} is not set")))?,
        };
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Holder {
        password: Secret,
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let h: Holder = toml::from_str(r#"password = "hunter2""#).expect("parse");
        assert_eq!(h.password.expose(), "hunter2");
        assert!(!format!("{h:?}").contains("hunter2"));
    }

    #[test]
    fn secret_from_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").expect("write");
        let text = format!("password = {{ file = {:?} }}", path.display().to_string());
        let h: Holder = toml::from_str(&text).expect("parse");
        assert_eq!(h.password.expose(), "s3cret");
    }
}
