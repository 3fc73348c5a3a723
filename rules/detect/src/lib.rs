//! Statistical aberration detectors over a series of counts, for the rules stage: EARS
//! C1/C2/C3, CUSUM and Farrington (1996) and Farrington-flexible (Noufaily 2013) as R's
//! `surveillance` package computes them, and an EWMA control chart.
//!
//! Every detector is a plain function over the whole series (`&[f64]`, oldest first) with a
//! params struct whose `Default` is the R package's default, and returns one
//! [`Evaluation`] per time point of its range. [`Detector`] parses a method name and
//! `relec detect`'s flags into one of them, so the command line, the golden tests and (later)
//! rhai share one code path.

mod cusum;
mod dist;
mod ears;
mod error;
mod ewma;
mod farrington;
mod flexible;
mod glm;
mod series;
mod spec;

pub use cusum::{CusumParams, CusumTrans, cusum};
pub use ears::{EarsMethod, EarsParams, ears_c};
pub use error::Error;
pub use ewma::{EwmaParams, ewma};
pub use farrington::{FarringtonParams, PowerTrans, farrington};
pub use flexible::{FlexibleParams, ThresholdMethod, farrington_flexible};
pub use series::{Evaluation, TimeRange};
pub use spec::{Detector, METHODS};
