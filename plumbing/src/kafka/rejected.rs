//! Records that were not taken in, kept for an operator on `relec.incidents.rejected`:
//! bytes and key as they arrived, with why and where from in these headers. The ingest
//! screen and the rules stage both write them.

use rdkafka::message::{Header, OwnedHeaders};

pub const REASON_HEADER: &str = "relec.reject.reason";
pub const DETAIL_HEADER: &str = "relec.reject.detail";
/// `topic/partition/offset` of the original.
pub const SOURCE_HEADER: &str = "relec.source";

/// The headers of a rejected copy: `reason` is one of a few words (for metrics and
/// filtering), `detail` names the field and what is wrong with it.
pub fn headers(
    reason: &str,
    detail: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> OwnedHeaders {
    let source = format!("{topic}/{partition}/{offset}");
    OwnedHeaders::new()
        .insert(Header {
            key: REASON_HEADER,
            value: Some(reason),
        })
        .insert(Header {
            key: DETAIL_HEADER,
            value: Some(detail),
        })
        .insert(Header {
            key: SOURCE_HEADER,
            value: Some(&source),
        })
}
