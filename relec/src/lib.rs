//! What the `relec` binary shares with its black-box tests: the process harness that runs
//! the three stages as child processes (`relec bench e2e` and the chaos suite use it).

pub mod pipeline;
