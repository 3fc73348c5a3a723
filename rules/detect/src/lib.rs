//! Statistical aberration detectors over a series of counts, for the rules stage: EARS
//! C1/C2/C3, CUSUM and Farrington (1996) and Farrington-flexible (Noufaily 2013) as R's
//! `surveillance` package computes them, and an EWMA control chart; and the point checks of
//! ElastAlert's rule types: a spike ratio between two windows, a new term, a flatline, and
//! a share shift between two windows by the two-proportion z-test.
//!
//! Every series detector is a plain function over the whole series (`&[f64]`, oldest
//! first) with a params struct whose `Default` is the R package's default, and returns one
//! [`Evaluation`] per time point of its range. [`Detector`] parses a method name and
//! `relec detect`'s flags into one of them, so the command line and the golden tests share
//! one code path. The point checks take the numbers they compare and a params struct with
//! documented defaults.

mod cusum;
mod dist;
mod ears;
mod error;
mod ewma;
mod farrington;
mod flatline;
mod flexible;
mod glm;
mod new_term;
mod series;
mod share_shift;
mod spec;
mod spike;

pub use cusum::{CusumParams, CusumTrans, cusum};
pub use ears::{EarsMethod, EarsParams, ears_c};
pub use error::Error;
pub use ewma::{EwmaParams, ewma};
pub use farrington::{FarringtonParams, PowerTrans, farrington};
pub use flatline::{Activity, Flatline, FlatlineParams, flatline};
pub use flexible::{FlexibleParams, ThresholdMethod, farrington_flexible};
pub use new_term::{NewTerm, NewTermParams, new_term};
pub use series::{Evaluation, TimeRange};
pub use share_shift::{Alternative, Proportion, ShareShift, ShareShiftParams, share_shift};
pub use spec::{Detector, METHODS};
pub use spike::{Spike, SpikeParams, SpikeType, spike};
