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

#[cfg(test)]
mod tests {
    use super::Tlp;

    #[test]
    fn most_restrictive_is_the_maximum() {
        let codes = [Tlp::Green, Tlp::AmberStrict, Tlp::Clear, Tlp::Amber];
        assert_eq!(codes.into_iter().max(), Some(Tlp::AmberStrict));
        assert!(Tlp::Red > Tlp::AmberStrict);
    }
}
