//! Rules stage: consumes `relec.incidents`, keeps event-time windowed state per group key,
//! runs the analysts' rhai rules over it, and writes alert transitions to `relec.alerts`.
//!
//! Evaluation is in event time and does not depend on arrival order: a group key is
//! evaluated for day D once the stage has seen reports past the end of D plus the allowed
//! lateness, over the events *reported* by the end of D ("what was known that day"), so
//! the same events give the same alerts however they were interleaved.

pub mod backtest;
pub mod checkpoint;
pub mod detectors;
pub mod dims;
pub mod error;
pub mod events;
pub mod fixture;
pub mod group;
pub mod lifecycle;
pub mod lint;
pub mod processor;
pub mod reload;
pub mod rule;
pub mod sandbox;
pub mod stage;
pub mod state;
pub mod template;
pub mod time;
