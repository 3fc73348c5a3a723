//! A detector chosen by name and configured by `relec detect`'s flags (the surveillance
//! package's control names in kebab-case), shared by the command line and the golden tests
//! so both go through one parser.

use crate::{
    CusumParams, CusumTrans, EarsMethod, EarsParams, Error, Evaluation, EwmaParams,
    FarringtonParams, FlexibleParams, PowerTrans, ThresholdMethod, TimeRange, cusum, ears_c, ewma,
    farrington, farrington_flexible,
};

/// The method names `relec detect` takes.
pub const METHODS: &[&str] = &[
    "ears-c1",
    "ears-c2",
    "ears-c3",
    "cusum",
    "ewma",
    "farrington",
    "farrington-flexible",
];

/// One configured detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Detector {
    Ears(EarsParams),
    Cusum(CusumParams),
    Ewma(EwmaParams),
    Farrington(FarringtonParams),
    FarringtonFlexible(FlexibleParams),
}

impl Detector {
    /// The detector `method` with the package's defaults, overridden by `flags`: pairs of a
    /// flag name without its dashes (`"alpha"`, `"min-sigma"`) and its value as typed.
    pub fn from_flags<'a>(
        method: &str,
        flags: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Error> {
        let mut detector = match method {
            "ears-c1" => Self::Ears(EarsParams::new(EarsMethod::C1)),
            "ears-c2" => Self::Ears(EarsParams::new(EarsMethod::C2)),
            "ears-c3" => Self::Ears(EarsParams::new(EarsMethod::C3)),
            "cusum" => Self::Cusum(CusumParams::default()),
            "ewma" => Self::Ewma(EwmaParams::default()),
            "farrington" => Self::Farrington(FarringtonParams::default()),
            "farrington-flexible" => Self::FarringtonFlexible(FlexibleParams::default()),
            other => return Err(Error::UnknownMethod(other.to_owned())),
        };
        let name = detector.method();
        for (flag, value) in flags {
            if !detector.set(flag, value)? {
                return Err(Error::NotApplicable {
                    flag: flag.to_owned(),
                    method: name,
                });
            }
        }
        Ok(detector)
    }

    /// The method's name as `relec detect` takes it.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Ears(p) => match p.method {
                EarsMethod::C1 => "ears-c1",
                EarsMethod::C2 => "ears-c2",
                EarsMethod::C3 => "ears-c3",
            },
            Self::Cusum(_) => "cusum",
            Self::Ewma(_) => "ewma",
            Self::Farrington(_) => "farrington",
            Self::FarringtonFlexible(_) => "farrington-flexible",
        }
    }

    /// Runs the detector over `counts` (oldest first).
    pub fn run(&self, counts: &[f64]) -> Result<Vec<Evaluation>, Error> {
        match self {
            Self::Ears(p) => ears_c(counts, p),
            Self::Cusum(p) => cusum(counts, p),
            Self::Ewma(p) => ewma(counts, p),
            Self::Farrington(p) => farrington(counts, p),
            Self::FarringtonFlexible(p) => farrington_flexible(counts, p),
        }
    }

    /// Applies one flag; `Ok(false)` if this method has no such parameter.
    fn set(&mut self, flag: &str, value: &str) -> Result<bool, Error> {
        match self {
            Self::Ears(p) => match flag {
                "range" => p.range = Some(range(flag, value)?),
                "baseline" => p.baseline = count(flag, value)?,
                "alpha" => p.alpha = number(flag, value)?,
                "min-sigma" => p.min_sigma = number(flag, value)?,
                _ => return Ok(false),
            },
            Self::Cusum(p) => match flag {
                "range" => p.range = Some(range(flag, value)?),
                "k" => p.k = number(flag, value)?,
                "h" => p.h = number(flag, value)?,
                "m" => p.m = Some(number(flag, value)?),
                "alpha" => p.alpha = number(flag, value)?,
                "trans" => {
                    p.trans = CusumTrans::parse(value).ok_or_else(|| {
                        Error::invalid(
                            flag,
                            format!(
                                "{value:?} is not one of standard, rossi, anscombe, \
                                 anscombe2nd, pearsonNegBin, none"
                            ),
                        )
                    })?
                }
                _ => return Ok(false),
            },
            Self::Ewma(p) => match flag {
                "range" => p.range = Some(range(flag, value)?),
                "lambda" => p.lambda = number(flag, value)?,
                "l" | "limit" => p.l = number(flag, value)?,
                _ => return Ok(false),
            },
            Self::Farrington(p) => match flag {
                "range" => p.range = Some(range(flag, value)?),
                "b" => p.b = count(flag, value)?,
                "w" => p.w = count(flag, value)?,
                "reweight" => p.reweight = boolean(flag, value)?,
                "trend" => p.trend = boolean(flag, value)?,
                "alpha" => p.alpha = number(flag, value)?,
                "powertrans" => p.powertrans = powertrans(flag, value)?,
                "limit54" => p.limit54 = limit54(flag, value)?,
                "period" => p.period = count(flag, value)?,
                _ => return Ok(false),
            },
            Self::FarringtonFlexible(p) => match flag {
                "range" => p.range = Some(range(flag, value)?),
                "b" => p.b = count(flag, value)?,
                "w" => p.w = count(flag, value)?,
                "reweight" => p.reweight = boolean(flag, value)?,
                "trend" => p.trend = boolean(flag, value)?,
                "alpha" => p.alpha = number(flag, value)?,
                "powertrans" => p.powertrans = powertrans(flag, value)?,
                "limit54" => p.limit54 = limit54(flag, value)?,
                "period" => p.period = count(flag, value)?,
                "weights-threshold" => p.weights_threshold = number(flag, value)?,
                "p-threshold-trend" => p.p_threshold_trend = number(flag, value)?,
                "no-periods" => p.no_periods = count(flag, value)?,
                "past-weeks-not-included" => p.past_weeks_not_included = Some(count(flag, value)?),
                "threshold-method" => {
                    p.threshold_method = ThresholdMethod::parse(value).ok_or_else(|| {
                        Error::invalid(
                            flag,
                            format!("{value:?} is not one of delta, nbPlugin, muan"),
                        )
                    })?
                }
                _ => return Ok(false),
            },
        }
        Ok(true)
    }
}

fn number(flag: &str, value: &str) -> Result<f64, Error> {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(Error::invalid(flag, format!("{value:?} is not a number"))),
    }
}

fn count(flag: &str, value: &str) -> Result<usize, Error> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::invalid(flag, format!("{value:?} is not a whole number >= 0")))
}

fn boolean(flag: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "1" => Ok(true),
        "false" | "f" | "no" | "0" => Ok(false),
        _ => Err(Error::invalid(
            flag,
            format!("{value:?} is not true or false"),
        )),
    }
}

fn range(flag: &str, value: &str) -> Result<TimeRange, Error> {
    let bad = || {
        Error::invalid(
            flag,
            format!("{value:?} is not FROM:TO (1-based, inclusive)"),
        )
    };
    let (from, to) = value.split_once(':').ok_or_else(bad)?;
    let from: usize = from.trim().parse().map_err(|_| bad())?;
    let to: usize = to.trim().parse().map_err(|_| bad())?;
    if from < 1 || from > to {
        return Err(bad());
    }
    Ok(TimeRange::new(from, to))
}

fn powertrans(flag: &str, value: &str) -> Result<PowerTrans, Error> {
    PowerTrans::parse(value.trim())
        .ok_or_else(|| Error::invalid(flag, format!("{value:?} is not one of 2/3, 1/2, none")))
}

fn limit54(flag: &str, value: &str) -> Result<(f64, usize), Error> {
    let bad = || Error::invalid(flag, format!("{value:?} is not CASES,PERIOD (e.g. 5,4)"));
    let (cases, period) = value.split_once(',').ok_or_else(bad)?;
    let cases: f64 = cases.trim().parse().map_err(|_| bad())?;
    let period: usize = period.trim().parse().map_err(|_| bad())?;
    Ok((cases, period))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let d = Detector::from_flags("ears-c3", [("baseline", "10"), ("range", "20:30")])
            .expect("parses");
        let Detector::Ears(p) = d else {
            panic!("not EARS")
        };
        assert_eq!(p.baseline, 10);
        assert_eq!(p.alpha, 0.025);
        assert_eq!(p.range, Some(TimeRange::new(20, 30)));
    }

    #[test]
    fn errors_name_the_flag() {
        let e = Detector::from_flags("cusum", [("k", "abc")]).unwrap_err();
        assert_eq!(e.to_string(), "--k: \"abc\" is not a number");
        let e = Detector::from_flags("cusum", [("baseline", "7")]).unwrap_err();
        assert_eq!(e.to_string(), "--baseline does not apply to cusum");
        let e = Detector::from_flags("holt-winters", []).unwrap_err();
        assert!(e.to_string().starts_with("unknown method \"holt-winters\""));
    }
}
