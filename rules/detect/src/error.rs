//! The detectors' one error type: bad parameters, a series too short for them, or an unknown
//! method or flag on the way in from the command line.

/// Why a detector could not run; each message names the parameter (as its `relec detect`
/// flag) or the time point at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("unknown method {0:?}; expected one of: {methods}", methods = crate::METHODS.join(", "))]
    UnknownMethod(String),
    #[error("--{flag} does not apply to {method}")]
    NotApplicable { flag: String, method: &'static str },
    #[error("--{flag}: {reason}")]
    InvalidParameter { flag: String, reason: String },
    #[error("the series is too short: {0}")]
    TooShort(String),
    #[error("the count at t={t} is {value}; counts must be finite and >= 0")]
    InvalidCount { t: usize, value: f64 },
}

impl Error {
    pub(crate) fn invalid(flag: &str, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            flag: flag.to_owned(),
            reason: reason.into(),
        }
    }
}
