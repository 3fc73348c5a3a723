//! TLP enforcement at routing: which alerts a recipient may receive, given the alert's
//! handling code, the subscriber's clearance and whether a route named it for RED.

use std::fmt;

use relec_schemas::{Alert, Tlp};
use serde::{Deserialize, Serialize};

/// The most restrictive code a subscriber may receive. RED is never a clearance: RED goes
/// only to the recipients a receiver or route names in `red_recipients`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Tlp", into = "Tlp")]
pub struct Clearance(Tlp);

impl Clearance {
    pub const CLEAR: Self = Self(Tlp::Clear);
    pub const GREEN: Self = Self(Tlp::Green);
    pub const AMBER: Self = Self(Tlp::Amber);
    pub const AMBER_STRICT: Self = Self(Tlp::AmberStrict);

    pub fn tlp(self) -> Tlp {
        self.0
    }
}

/// Why a code cannot be a clearance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedIsNoClearance;

impl fmt::Display for RedIsNoClearance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "RED is never a clearance: name the subscriber in a receiver's or route's \
             red_recipients to send it RED alerts",
        )
    }
}

impl TryFrom<Tlp> for Clearance {
    type Error = RedIsNoClearance;

    fn try_from(tlp: Tlp) -> Result<Self, RedIsNoClearance> {
        match tlp {
            Tlp::Red => Err(RedIsNoClearance),
            tlp => Ok(Self(tlp)),
        }
    }
}

impl From<Clearance> for Tlp {
    fn from(c: Clearance) -> Tlp {
        c.0
    }
}

/// What one recipient may receive on one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub clearance: Clearance,
    /// Named in the route's or receiver's `red_recipients`.
    pub named_for_red: bool,
}

impl Access {
    /// CLEAR and GREEN go to every subscriber routing picked (the NCPs are one community);
    /// AMBER and AMBER_STRICT only to a clearance at least as high; RED only to recipients
    /// named for it.
    pub fn may_receive(self, handling: Tlp) -> bool {
        match handling {
            Tlp::Clear | Tlp::Green => true,
            Tlp::Amber | Tlp::AmberStrict => self.clearance.tlp() >= handling,
            Tlp::Red => self.named_for_red,
        }
    }

    /// The alerts this recipient may receive, in their order. An alert it may not receive
    /// is left out whole: a redacted copy would still say that something happened.
    pub fn cut<'a>(self, alerts: impl IntoIterator<Item = &'a Alert>) -> Vec<&'a Alert> {
        alerts
            .into_iter()
            .filter(|a| self.may_receive(a.handling))
            .collect()
    }
}

/// The marking of a message carrying these alerts: the most restrictive of their codes
/// (CLEAR for none).
pub fn marking<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> Tlp {
    alerts
        .into_iter()
        .map(|a| a.handling)
        .max()
        .unwrap_or(Tlp::Clear)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::alert;

    fn access(clearance: Clearance, named_for_red: bool) -> Access {
        Access {
            clearance,
            named_for_red,
        }
    }

    #[test]
    fn every_code_against_every_clearance() {
        use Tlp::*;
        let clearances = [
            Clearance::CLEAR,
            Clearance::GREEN,
            Clearance::AMBER,
            Clearance::AMBER_STRICT,
        ];
        // expected[handling][clearance], for a recipient not named for RED.
        let expected = [
            (Clear, [true, true, true, true]),
            (Green, [true, true, true, true]),
            (Amber, [false, false, true, true]),
            (AmberStrict, [false, false, false, true]),
            (Red, [false, false, false, false]),
        ];
        for (handling, row) in expected {
            for (clearance, allowed) in clearances.into_iter().zip(row) {
                assert_eq!(
                    access(clearance, false).may_receive(handling),
                    allowed,
                    "{handling:?} to {clearance:?}"
                );
            }
        }
    }

    #[test]
    fn red_goes_only_to_named_recipients_whatever_their_clearance() {
        for clearance in [Clearance::CLEAR, Clearance::AMBER_STRICT] {
            assert!(access(clearance, true).may_receive(Tlp::Red));
            assert!(!access(clearance, false).may_receive(Tlp::Red));
        }
        // Being named for RED does not lift the clearance for AMBER.
        assert!(!access(Clearance::GREEN, true).may_receive(Tlp::Amber));
    }

    #[test]
    fn red_is_refused_as_a_clearance() {
        assert_eq!(Clearance::try_from(Tlp::Red), Err(RedIsNoClearance));
        let parsed: Result<Clearance, _> = serde_json::from_str("\"RED\"");
        let message = parsed.expect_err("RED refused").to_string();
        assert!(message.contains("RED is never a clearance"), "{message}");
        let amber: Clearance = serde_json::from_str("\"AMBER_STRICT\"").expect("parses");
        assert_eq!(amber, Clearance::AMBER_STRICT);
    }

    #[test]
    fn a_cut_keeps_what_the_recipient_may_receive_and_is_marked_by_it() {
        let alerts: Vec<Alert> = Tlp::ALL
            .iter()
            .enumerate()
            .map(|(i, &tlp)| {
                let mut a = alert(&format!("a{i}"), &[]);
                a.handling = tlp;
                a
            })
            .collect();
        let kept = |access: Access| -> Vec<Tlp> {
            access.cut(&alerts).iter().map(|a| a.handling).collect()
        };
        use Tlp::*;
        assert_eq!(kept(access(Clearance::GREEN, false)), [Clear, Green]);
        assert_eq!(kept(access(Clearance::AMBER, false)), [Clear, Green, Amber]);
        assert_eq!(
            kept(access(Clearance::AMBER_STRICT, false)),
            [Clear, Green, Amber, AmberStrict]
        );
        assert_eq!(kept(access(Clearance::CLEAR, true)), [Clear, Green, Red]);
        assert_eq!(marking(access(Clearance::AMBER, false).cut(&alerts)), Amber);
        assert_eq!(marking(access(Clearance::GREEN, true).cut(&alerts)), Red);
        assert_eq!(marking([]), Clear);
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        fn tlp() -> impl Strategy<Value = Tlp> {
            proptest::sample::select(Tlp::ALL.to_vec())
        }

        fn clearance() -> impl Strategy<Value = Clearance> {
            tlp().prop_filter_map("not RED", |t| Clearance::try_from(t).ok())
        }

        proptest! {
            #[test]
            fn a_cut_never_exceeds_the_recipient(
                codes in proptest::collection::vec(tlp(), 0..12),
                clearance in clearance(),
                named in any::<bool>(),
            ) {
                let alerts: Vec<Alert> = codes.iter().enumerate().map(|(i, &tlp)| {
                    let mut a = alert(&format!("a{i}"), &[]);
                    a.handling = tlp;
                    a
                }).collect();
                let access = access(clearance, named);
                let kept = access.cut(&alerts);
                let marked = marking(kept.iter().copied());
                prop_assert!(kept.is_empty() || access.may_receive(marked));
                prop_assert_eq!(kept.len(), codes.iter().filter(|&&c| access.may_receive(c)).count());
            }
        }
    }
}
