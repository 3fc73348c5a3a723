//! Who is publishing: API keys (Bearer tokens) checked against the SHA-256 hashes in the
//! config, and the countries each agency may report for.

use std::collections::{BTreeSet, HashMap};

use relec_plumbing::config::AgencyConfig;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// An authenticated publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    pub id: String,
    pub countries: BTreeSet<String>,
}

impl Agency {
    pub fn may_report_for(&self, country: &str) -> bool {
        self.countries.contains(country)
    }
}

/// The agencies of the config, found by the hash of their key.
#[derive(Debug, Clone, Default)]
pub struct Agencies {
    by_hash: HashMap<[u8; 32], Agency>,
}

impl Agencies {
    pub fn new(configs: &[AgencyConfig]) -> Self {
        let by_hash = configs
            .iter()
            .filter_map(|a| {
                let hash = decode_hex(&a.key_sha256)?;
                let agency = Agency {
                    id: a.id.clone(),
                    countries: a.countries.iter().cloned().collect(),
                };
                Some((hash, agency))
            })
            .collect();
        Self { by_hash }
    }

    /// The agency whose key this is, if any.
    pub fn authenticate(&self, key: &str) -> Option<&Agency> {
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Looking a digest up leaks nothing useful (the caller cannot steer the digest), but
        // confirm in constant time anyway so the comparison itself never short-circuits.
        self.by_hash
            .iter()
            .find(|(hash, _)| bool::from(hash.ct_eq(&presented)))
            .map(|(_, agency)| agency)
    }

    /// The agency with this id: who wrote to a native topic (Kafka authenticated it).
    pub fn by_id(&self, id: &str) -> Option<&Agency> {
        self.by_hash.values().find(|agency| agency.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// A new random API key and the hash to put in the config.
pub fn generate_key() -> (String, String) {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let key = format!("relec_{}{}", a.simple(), b.simple());
    let hash = hash_key(&key);
    (key, hash)
}

/// Lower-case hex SHA-256 of `key`, as `key_sha256` stores it.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_authenticates_its_agency_only() {
        let (key, hash) = generate_key();
        let (other_key, other_hash) = generate_key();
        let agencies = Agencies::new(&[
            AgencyConfig {
                id: "IRN-BORDER-GUARD".into(),
                countries: vec!["IRN".into()],
                key_sha256: hash,
            },
            AgencyConfig {
                id: "TUR-JANDARMA".into(),
                countries: vec!["TUR".into()],
                key_sha256: other_hash,
            },
        ]);
        let irn = agencies.authenticate(&key).expect("known key");
        assert_eq!(irn.id, "IRN-BORDER-GUARD");
        assert!(irn.may_report_for("IRN") && !irn.may_report_for("TUR"));
        assert_eq!(
            agencies.authenticate(&other_key).map(|a| a.id.as_str()),
            Some("TUR-JANDARMA")
        );
        assert!(agencies.authenticate("relec_wrong").is_none());
    }
}
