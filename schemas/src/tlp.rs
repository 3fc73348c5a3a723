//! Traffic Light Protocol handling codes: carried by every incident and alert, and the
//! bound on who may receive what is derived from them.

use serde::{Deserialize, Serialize};

/// TLP 2.0, ordered from least to most restrictive, so `max` is "the most restrictive".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    AmberStrict,
    Red,
}

impl Tlp {
    /// Every code, least restrictive first.
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// The Avro symbol, which is also the JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clear => "CLEAR",
            Self::Green => "GREEN",
            Self::Amber => "AMBER",
            Self::AmberStrict => "AMBER_STRICT",
            Self::Red => "RED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tlp;

    #[test]
    fn most_restrictive_is_the_maximum() {
        let codes = [Tlp::Green, Tlp::AmberStrict, Tlp::Clear, Tlp::Amber];
        assert_eq!(codes.into_iter().max(), Some(Tlp::AmberStrict));
        assert!(Tlp::Red > Tlp::AmberStrict);
    }

    #[test]
    fn names_agree_with_serde() {
        for tlp in Tlp::ALL {
            let json = serde_json::to_value(tlp).expect("serialises");
            assert_eq!(json.as_str(), Some(tlp.as_str()));
        }
    }
}
