//! CloudTrail's role assumptions (`LookupEvents`), read as `aws cloudtrail lookup-events` prints
//! them with the window the reading covered (`LookupWindow`), so live evidence, `snapshot --out`
//! and the snapshot loader share one path ([`crate::inventory::trail`]).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Aws, AwsError};
use crate::inventory::trail::{ASSUME_ROLE, ASSUME_ROLE_WITH_WEB_IDENTITY, Trail};

/// CloudTrail answers two lookups a second per account and region; the reader keeps a little
/// below that, so that jitter on the way never makes two requests closer than half a second.
const LOOKUP_INTERVAL: Duration = Duration::from_millis(550);

impl Aws {
    /// The role assumptions logged in each of `regions` from `start` to `end` (seconds since the
    /// epoch), read into one [`Trail`]: what `evidence`, `snapshot --cloudtrail-since` and a live
    /// decommission judge by. `page` is told the region of each page read.
    pub fn trail(
        &self,
        regions: &[String],
        start: i64,
        end: i64,
        page: &dyn Fn(&str),
    ) -> Result<Trail, AwsError> {
        let mut trail = Trail::default();
        for region in regions {
            let document = self.role_assumptions(region, start, end, &|| page(region))?;
            let unexpected = |missing: String| AwsError::Answer {
                operation: "cloudtrail:LookupEvents",
                missing: format!("{missing} (region {region})"),
            };
            let lookup = serde_json::from_value(document)
                .map_err(|e| unexpected(format!("events as CloudTrail writes them: {e}")))?;
            trail
                .add(lookup)
                .map_err(|e| unexpected(format!("{} ({})", e.field, e.message)))?;
        }
        Ok(trail)
    }

    /// Every `AssumeRole` and `AssumeRoleWithWebIdentity` logged in `region` from `start` to
    /// `end`, page by page (50 events a page), at most two requests a second, as
    /// `lookup-events` prints them with their `LookupWindow`; `page_read` is told of each page.
    fn role_assumptions(
        &self,
        region: &str,
        start: i64,
        end: i64,
        page_read: &dyn Fn(),
    ) -> Result<Value, AwsError> {
        use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
        let config = aws_sdk_cloudtrail::config::Builder::from(&self.config)
            .region(aws_sdk_cloudtrail::config::Region::new(region.to_string()))
            .build();
        let client = aws_sdk_cloudtrail::Client::from_conf(config);
        self.runtime.block_on(async {
            let mut events = Vec::new();
            let mut last_request: Option<Instant> = None;
            for name in [ASSUME_ROLE, ASSUME_ROLE_WITH_WEB_IDENTITY] {
                let attribute = LookupAttribute::builder()
                    .attribute_key(LookupAttributeKey::EventName)
                    .attribute_value(name)
                    .build()
                    .map_err(|e| AwsError::Answer {
                        operation: "cloudtrail:LookupEvents",
                        missing: format!("a lookup attribute: {e}"),
                    })?;
                let mut token: Option<String> = None;
                loop {
                    if let Some(at) = last_request {
                        tokio::time::sleep(LOOKUP_INTERVAL.saturating_sub(at.elapsed())).await;
                    }
                    last_request = Some(Instant::now());
                    let page = client
                        .lookup_events()
                        .lookup_attributes(attribute.clone())
                        .start_time(aws_sdk_cloudtrail::primitives::DateTime::from_secs(start))
                        .end_time(aws_sdk_cloudtrail::primitives::DateTime::from_secs(end))
                        .max_results(50)
                        .set_next_token(token.take())
                        .send()
                        .await
                        .map_err(|e| AwsError::call("cloudtrail:LookupEvents", e))?;
                    page_read();
                    events.extend(page.events().iter().map(|event| {
                        json!({
                            "EventId": event.event_id(),
                            "EventName": event.event_name(),
                            "CloudTrailEvent": event.cloud_trail_event(),
                        })
                    }));
                    match page.next_token() {
                        Some(next) if !next.is_empty() => token = Some(next.to_string()),
                        _ => break,
                    }
                }
            }
            Ok(json!({
                "Events": events,
                "LookupWindow": {
                    "Region": region,
                    "StartTime": crate::time::format(start),
                    "EndTime": crate::time::format(end),
                },
            }))
        })
    }
}
