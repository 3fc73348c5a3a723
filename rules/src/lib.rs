//! Rules stage: consumes `relec.incidents`, keeps event-time windowed state, runs the
//! analysts' rhai rules and detectors, and writes alert transitions to `relec.alerts`.
//! The stage itself arrives with issue #4.
