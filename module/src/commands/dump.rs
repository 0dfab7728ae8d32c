//! How registrations look in RG.DUMPREGISTRATIONS and RG.PYDUMPSESSIONS (REFERENCE §1.3).

use crate::model::registrations::{Registration, Stats};
use crate::model::sessions::Sessions;
use crate::model::streams::StreamRegistration;
use crate::redis::ffi::replies::{bulk, Reply};

fn opt_list(v: &Option<Vec<String>>) -> Reply {
    match v {
        None => Reply::Null,
        Some(items) => Reply::Array(items.iter().map(|s| bulk(s)).collect()),
    }
}

/// `numTriggered` … `avgRunDurationMS`, shared by every reader's RegistrationData.
fn stats_fields(s: &Stats) -> Vec<Reply> {
    let avg = if s.finished() == 0 {
        0.0
    } else {
        s.total_run_ms as f64 / s.finished() as f64
    };
    vec![
        bulk("numTriggered"),
        Reply::Int(s.triggered as i64),
        bulk("numSuccess"),
        Reply::Int(s.success as i64),
        bulk("numFailures"),
        Reply::Int(s.failures as i64),
        bulk("numAborted"),
        Reply::Int(s.aborted as i64),
        bulk("lastRunDurationMS"),
        Reply::Int(s.last_run_ms as i64),
        bulk("totalRunDurationMS"),
        Reply::Int(s.total_run_ms as i64),
        bulk("avgRunDurationMS"),
        // A double, as 1.2 replies it (Redis prints it: a bulk `0` in RESP2).
        Reply::Double(avg),
    ]
}

fn registration_data(r: &Registration) -> Reply {
    let s = r.stats().clone();
    let key_types: Option<Vec<String>> = r
        .key_types
        .as_ref()
        .map(|ts| ts.iter().map(|t| t.name().to_owned()).collect());
    // A hook is listed like a trigger, under the hooked command's name (REFERENCE §1.3).
    let args = match r.trigger.as_ref().or(r.hook.as_ref()) {
        Some(t) => Reply::Array(vec![
            bulk("trigger"),
            bulk(t),
            bulk("inorder"),
            Reply::Int(r.inorder as i64),
        ]),
        None => keys_args(r, &key_types),
    };
    let mut data = vec![bulk("mode"), bulk(r.mode.name())];
    data.extend(stats_fields(&s));
    data.extend([
        bulk("lastError"),
        s.last_error.as_deref().map(bulk).unwrap_or(Reply::Null),
        bulk("args"),
        args,
    ]);
    Reply::Array(data)
}

fn keys_args(r: &Registration, key_types: &Option<Vec<String>>) -> Reply {
    Reply::Array(vec![
        bulk("regex"),
        bulk(&r.prefix),
        bulk("eventTypes"),
        opt_list(&r.event_types),
        bulk("keyTypes"),
        opt_list(key_types),
        bulk("hookCommands"),
        opt_list(&r.commands),
    ])
}

/// The `PD` session string of 1.2's dump.
fn session_text(
    session: &str,
    reg_id: &str,
    sessions: &crate::model::sessions::Sessions,
) -> String {
    let (desc, regs, reqs) = match sessions.get(session) {
        Some(s) => (
            s.desc.clone(),
            s.registrations.clone(),
            s.requirements.clone(),
        ),
        None => (None, vec![reg_id.to_owned()], Vec::new()),
    };
    // Each requirement as `{'name':'<spec>'}` (what gears-cli's --registration-id reads).
    let deps: Vec<String> = reqs
        .iter()
        .map(|r| {
            format!(
                "{{'name':'{}'}}",
                r.replace('\\', "\\\\").replace('\'', "\\'")
            )
        })
        .collect();
    let desc = desc
        .map(|d| format!("'{d}'"))
        .unwrap_or_else(|| "null".to_owned());
    let list: Vec<String> = regs.iter().map(|id| format!("'{id}'")).collect();
    format!(
        "{{'sessionName':'{}', 'sessionDescription':{desc}, 'refCount': {}, 'linkedTo': primary, 'dead': false, 'isInstallationNeeded':0, 'registrationsList':[{}], 'depsList':[{}]}}",
        session,
        regs.len(),
        list.join(", "),
        deps.join(", ")
    )
}

/// The 12-element entry around a registration's data (`pd`: include the session, found in these sessions).
fn entry(
    id: &str,
    reader: &str,
    desc: Option<&str>,
    session: &str,
    data: Reply,
    pd: Option<&Sessions>,
) -> Reply {
    let mut row = vec![
        bulk("id"),
        bulk(id),
        bulk("reader"),
        bulk(reader),
        bulk("desc"),
        desc.map(bulk).unwrap_or(Reply::Null),
        bulk("RegistrationData"),
        data,
    ];
    if let Some(sessions) = pd {
        row.push(bulk("PD"));
        row.push(bulk(&session_text(session, id, sessions)));
    }
    row.push(bulk("ExecutionThreadPool"));
    row.push(bulk("DefaultPool"));
    Reply::Array(row)
}

/// A KeysReader or CommandReader registration.
pub fn keys_dump(r: &Registration, pd: Option<&Sessions>) -> Reply {
    entry(
        &r.id,
        r.reader(),
        r.desc.as_deref(),
        &r.session,
        registration_data(r),
        pd,
    )
}

/// A StreamReader registration (26-element data ending with its status).
pub fn stream_dump(r: &StreamRegistration, pd: Option<&Sessions>) -> Reply {
    let s = r.stats().clone();
    let (lag_last, lag_avg) = r.lag();
    let o = &r.opts;
    let mut data = vec![bulk("mode"), bulk(r.mode.name())];
    data.extend(stats_fields(&s));
    data.extend([
        bulk("lastEstimatedLagMS"),
        Reply::Int(lag_last as i64),
        bulk("avgEstimatedLagMS"),
        Reply::Double(lag_avg),
        bulk("lastError"),
        s.last_error.as_deref().map(bulk).unwrap_or(Reply::Null),
        bulk("args"),
        Reply::Array(vec![
            bulk("batchSize"),
            Reply::Int(o.batch as i64),
            bulk("durationMS"),
            Reply::Int(o.duration_ms as i64),
            bulk("stream"),
            bulk(&r.prefix),
            bulk("trimStream"),
            Reply::Int(o.trim as i64),
            bulk("onFailedPolicy"),
            bulk(&o.on_failed_policy),
            bulk("retryInterval"),
            Reply::Int(o.retry_interval_s as i64),
        ]),
        bulk("status"),
        bulk(r.status().name()),
    ]);
    entry(
        &r.id,
        "StreamReader",
        r.desc.as_deref(),
        &r.session,
        Reply::Array(data),
        pd,
    )
}
