//! Ingest stage: border agencies publish incident events (HTTP, bulk import, native Kafka)
//! into `relec.incidents`. The stage itself arrives with issue #3; this crate holds its place
//! in the workspace so the layout shows the whole pipeline.
