//! CloudTrail's records of role assumptions, as `aws cloudtrail lookup-events` prints them: the
//! evidence of who still assumes a role through the legacy path and which service accounts
//! assume it through web identity (docs/evidence.md). Only `AssumeRole` and
//! `AssumeRoleWithWebIdentity` are kept; each record's `CloudTrailEvent` is a JSON string.
//!
//! A reading knows its window (the region and the time range it covers) only when it says so:
//! the tool writes `LookupWindow` beside `Events`, and a by-hand file gets it from the command of
//! docs/snapshot.md. Without a window, events still prove use, but silence proves nothing.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

/// The role assumptions read, and the windows the readings covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trail {
    /// By event id (a record read twice, from two files or two pages, is one event).
    pub events: BTreeMap<String, TrailEvent>,
    pub windows: Vec<TrailWindow>,
    /// IAM's `RoleLastUsed`, by role ARN: a coarse second signal (one instant a role, no caller).
    pub last_used: BTreeMap<String, LastUsed>,
}

/// When, and where, IAM last saw a role's credentials used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUsed {
    /// Seconds since the epoch.
    pub time: i64,
    pub region: Option<String>,
}

/// The name of the document (`cloudtrail/<name>.json`) [`Trail::documents`] writes the roles'
/// `RoleLastUsed` into.
pub const LAST_USED_DOCUMENT: &str = "role-last-used";

/// The region and time range one reading covered: every event in it was returned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrailWindow {
    pub region: String,
    /// Seconds since the epoch.
    pub start: i64,
    pub end: i64,
}

/// One `AssumeRole` or `AssumeRoleWithWebIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailEvent {
    pub id: String,
    pub name: String,
    /// Seconds since the epoch.
    pub time: i64,
    /// Where it was logged (`us-east-1` for the global STS endpoint).
    pub region: String,
    /// `requestParameters.roleArn`: the role assumed.
    pub role_arn: String,
    pub session_name: String,
    pub source_ip: String,
    pub caller: Caller,
}

/// Who assumed the role (`userIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A session of a role (the kiam server's role, a node's instance profile): that role's ARN
    /// (`sessionContext.sessionIssuer.arn`).
    RoleSession { issuer: String },
    /// A service account through an OIDC provider: `system:serviceaccount:<ns>:<sa>`.
    WebIdentity { subject: String, provider: String },
    /// Anyone else (a user, a service): their ARN.
    Other { arn: String },
}

pub const ASSUME_ROLE: &str = "AssumeRole";
pub const ASSUME_ROLE_WITH_WEB_IDENTITY: &str = "AssumeRoleWithWebIdentity";

/// The top-level of a `lookup-events` output, as the snapshot loader reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LookupEvents {
    pub events: Vec<LookupEvent>,
    pub lookup_window: Option<LookupWindow>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LookupEvent {
    pub event_id: String,
    pub event_name: String,
    /// The whole record, as a JSON string.
    pub cloud_trail_event: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LookupWindow {
    pub region: String,
    pub start_time: String,
    pub end_time: String,
}

/// What a `lookup-events` document could not be read for: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailError {
    pub field: String,
    pub message: String,
}

impl Trail {
    /// Adds a `lookup-events` document.
    pub fn add(&mut self, document: LookupEvents) -> Result<(), TrailError> {
        if let Some(window) = document.lookup_window {
            let instant = |field: &str, text: &str| {
                crate::time::parse(text).ok_or_else(|| TrailError {
                    field: format!("LookupWindow.{field}"),
                    message: format!("{text:?} is not a UTC time such as 2026-11-28T15:45:30Z"),
                })
            };
            let start = instant("StartTime", &window.start_time)?;
            let end = instant("EndTime", &window.end_time)?;
            if !is_region(&window.region) || start > end {
                return Err(TrailError {
                    field: "LookupWindow".into(),
                    message: "needs a Region (such as us-east-1) and a StartTime no later than its EndTime".into(),
                });
            }
            self.windows.push(TrailWindow {
                region: window.region,
                start,
                end,
            });
            self.windows.sort();
            self.windows.dedup();
        }
        for (index, event) in document.events.into_iter().enumerate() {
            if event.event_name != ASSUME_ROLE && event.event_name != ASSUME_ROLE_WITH_WEB_IDENTITY
            {
                continue;
            }
            let field = format!("Events[{index}].CloudTrailEvent");
            let record = event
                .cloud_trail_event
                .as_deref()
                .ok_or_else(|| TrailError {
                    field: field.clone(),
                    message: "missing: the record is what tells who assumed the role".into(),
                })?;
            let record: Value = serde_json::from_str(record).map_err(|e| TrailError {
                field: field.clone(),
                message: format!("not a JSON record: {e}"),
            })?;
            let parsed = TrailEvent::from_record(&record).map_err(|message| TrailError {
                field: format!("{field}.{message}"),
                message: "missing or not as CloudTrail writes it".into(),
            })?;
            if !is_region(&parsed.region) {
                return Err(TrailError {
                    field: format!("{field}.awsRegion"),
                    message: format!("{:?} is not a region name", parsed.region),
                });
            }
            self.events.insert(parsed.id.clone(), parsed);
        }
        Ok(())
    }

    /// The instant the readings of `regions` all reach: the earliest of each region's latest
    /// reading end; `None` when none of them was read. Evidence from a snapshot is judged as of
    /// then, not as of today: silence after a reading ended proves nothing.
    pub fn reached(&self, regions: &[String]) -> Option<i64> {
        regions
            .iter()
            .filter_map(|region| {
                self.windows
                    .iter()
                    .filter(|w| w.region == *region)
                    .map(|w| w.end)
                    .max()
            })
            .min()
    }

    /// The trail as `lookup-events` documents, one per region (windows and events of that
    /// region), for a snapshot: what [`Trail::add`] reads back into an equal trail.
    pub fn documents(&self) -> BTreeMap<String, Value> {
        let mut regions: BTreeMap<String, (Vec<Value>, Vec<&TrailWindow>)> = BTreeMap::new();
        for event in self.events.values() {
            regions
                .entry(event.region.clone())
                .or_default()
                .0
                .push(event.lookup_event());
        }
        for window in &self.windows {
            regions
                .entry(window.region.clone())
                .or_default()
                .1
                .push(window);
        }
        let mut documents = BTreeMap::new();
        for (region, (events, windows)) in regions {
            // One window a file (the loader reads one); a second window of a region, from a
            // second reading, goes into a file of its own.
            let mut windows = windows.into_iter();
            let first = windows.next();
            let mut document = json!({"Events": events});
            if let Some(window) = first {
                document["LookupWindow"] = window.json();
            }
            documents.insert(region.clone(), document);
            for (index, window) in windows.enumerate() {
                documents.insert(
                    format!("{region}-{}", index + 2),
                    json!({"Events": [], "LookupWindow": window.json()}),
                );
            }
        }
        if !self.last_used.is_empty() {
            let roles: Vec<Value> = self
                .last_used
                .iter()
                .map(|(arn, used)| {
                    let mut role =
                        json!({"Arn": arn, "LastUsedDate": crate::time::format(used.time)});
                    if let Some(region) = &used.region {
                        role["Region"] = json!(region);
                    }
                    role
                })
                .collect();
            documents.insert(LAST_USED_DOCUMENT.into(), json!({"RoleLastUsed": roles}));
        }
        documents
    }
}

/// A region's name as AWS spells them (`us-east-1`, `cn-north-1`): it names a snapshot file.
fn is_region(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl TrailWindow {
    fn json(&self) -> Value {
        json!({"Region": self.region, "StartTime": crate::time::format(self.start), "EndTime": crate::time::format(self.end)})
    }
}

impl TrailEvent {
    /// Reads a CloudTrail record; the error names the missing field.
    pub fn from_record(record: &Value) -> Result<TrailEvent, &'static str> {
        let text = |pointer: &'static str| -> Result<String, &'static str> {
            record
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or(&pointer[1..])
        };
        let identity = &record["userIdentity"];
        let caller = match identity["type"].as_str() {
            Some("AssumedRole") => Caller::RoleSession {
                issuer: text("/userIdentity/sessionContext/sessionIssuer/arn")?,
            },
            Some("WebIdentityUser") => Caller::WebIdentity {
                subject: text("/userIdentity/userName")?,
                provider: text("/userIdentity/identityProvider")?,
            },
            _ => Caller::Other {
                arn: identity["arn"]
                    .as_str()
                    .or(identity["invokedBy"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            },
        };
        let time = text("/eventTime")?;
        Ok(TrailEvent {
            id: text("/eventID")?,
            name: text("/eventName")?,
            time: crate::time::parse(&time).ok_or("eventTime")?,
            region: text("/awsRegion")?,
            role_arn: text("/requestParameters/roleArn")?,
            session_name: text("/requestParameters/roleSessionName").unwrap_or_default(),
            source_ip: text("/sourceIPAddress").unwrap_or_default(),
            caller,
        })
    }

    /// The record, as CloudTrail writes the fields this tool reads.
    pub fn record(&self) -> Value {
        let identity = match &self.caller {
            Caller::RoleSession { issuer } => {
                json!({"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"type": "Role", "arn": issuer}}})
            }
            Caller::WebIdentity { subject, provider } => {
                json!({"type": "WebIdentityUser", "userName": subject, "identityProvider": provider})
            }
            Caller::Other { arn } => json!({"type": "Unknown", "arn": arn}),
        };
        let mut parameters = json!({"roleArn": self.role_arn});
        if !self.session_name.is_empty() {
            parameters["roleSessionName"] = json!(self.session_name);
        }
        let mut record = json!({
            "eventVersion": "1.08", "userIdentity": identity,
            "eventTime": crate::time::format(self.time), "eventSource": "sts.amazonaws.com",
            "eventName": self.name, "awsRegion": self.region,
            "requestParameters": parameters, "eventID": self.id,
        });
        if !self.source_ip.is_empty() {
            record["sourceIPAddress"] = json!(self.source_ip);
        }
        record
    }

    /// The event as an entry of `lookup-events`' `Events`.
    fn lookup_event(&self) -> Value {
        json!({
            "EventId": self.id, "EventName": self.name,
            "EventTime": crate::time::format(self.time), "EventSource": "sts.amazonaws.com",
            "Resources": [{"ResourceType": "AWS::IAM::Role", "ResourceName": self.role_arn}],
            "CloudTrailEvent": self.record().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kiam_record() -> Value {
        json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:1764755130000000000",
                "arn": "arn:aws:sts::111122223333:assumed-role/kiam-server/1764755130000000000",
                "accountId": "111122223333",
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                    "arn": "arn:aws:iam::111122223333:role/kiam-server", "accountId": "111122223333",
                    "userName": "kiam-server"}}},
            "eventTime": "2026-12-02T10:00:00Z", "eventSource": "sts.amazonaws.com",
            "eventName": "AssumeRole", "awsRegion": "us-east-1", "sourceIPAddress": "10.0.12.7",
            "requestParameters": {"roleArn": "arn:aws:iam::111122223333:role/payments-api",
                "roleSessionName": "kiam-kiam", "durationSeconds": 900},
            "eventID": "5b0a9a4e-0000-4000-8000-000000000001",
        })
    }

    #[test]
    fn records_read_as_cloudtrail_writes_them_and_render_back_the_same() {
        let mut trail = Trail::default();
        let document = json!({
            "Events": [
                {"EventId": "5b0a9a4e-0000-4000-8000-000000000001", "EventName": "AssumeRole",
                 "CloudTrailEvent": kiam_record().to_string()},
                {"EventId": "other", "EventName": "GetCallerIdentity", "CloudTrailEvent": "{}"},
            ],
            "LookupWindow": {"Region": "us-east-1", "StartTime": "2026-11-26T00:00:00Z", "EndTime": "2026-12-03T00:00:00Z"},
        });
        trail
            .add(serde_json::from_value(document).unwrap())
            .expect("a lookup-events document");
        let [event] = &trail.events.values().collect::<Vec<_>>()[..] else {
            panic!("one AssumeRole: {trail:?}")
        };
        assert_eq!(
            event.caller,
            Caller::RoleSession {
                issuer: "arn:aws:iam::111122223333:role/kiam-server".into()
            }
        );
        assert_eq!(event.session_name, "kiam-kiam");
        assert_eq!(event.region, "us-east-1");
        let mut again = Trail::default();
        for document in trail.documents().into_values() {
            again
                .add(serde_json::from_value(document).unwrap())
                .unwrap();
        }
        assert_eq!(again, trail);
    }

    #[test]
    fn a_record_without_who_assumed_the_role_names_the_missing_field() {
        let mut record = kiam_record();
        record["userIdentity"]["sessionContext"] = json!({});
        let document = json!({"Events": [{"EventId": "1", "EventName": "AssumeRole", "CloudTrailEvent": record.to_string()}]});
        let error = Trail::default()
            .add(serde_json::from_value(document).unwrap())
            .unwrap_err();
        assert_eq!(
            error.field,
            "Events[0].CloudTrailEvent.userIdentity/sessionContext/sessionIssuer/arn"
        );
    }
}
