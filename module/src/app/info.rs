//! `INFO rg` (REFERENCE §10): 1.2's sections and fields (registrations, plugins, Python
//! memory, requirements and sessions), plus Gearshift's own counters under
//! a `gearshift_` prefix (Redis prefixes every module field with `rg_`). Prometheus' redis
//! exporter does not see them on its own (it reads `INFO ALL`, which leaves module sections
//! out); `tools/prometheus/rg_metrics.lua` as its `-script` publishes them (docs/monitoring.md).

use redis_module::{raw, InfoContext};

use crate::model::executions::Status;
use crate::model::state;

fn section(ctx: &InfoContext, name: Option<&str>) {
    raw::add_info_section(ctx.ctx, name);
}

fn int(ctx: &InfoContext, name: &str, v: i64) {
    raw::add_info_field_long_long(ctx.ctx, name, v);
}

fn text(ctx: &InfoContext, name: &str, v: &str) {
    raw::add_info_field_str(ctx.ctx, name, v);
}

/// The INFO callback Redis calls for `INFO rg` / `INFO everything`.
pub extern "C" fn info_callback(
    ctx: *mut raw::RedisModuleInfoCtx,
    _for_crash_report: std::os::raw::c_int,
) {
    let ctx = InfoContext::new(ctx);
    crate::redis::ffi::trampoline::callback("INFO rg", (), || fill(&ctx));
}

fn fill(ctx: &InfoContext) {
    let Some(st) = state::get() else { return };
    let kept = st.registry.newest_first();
    let running = kept
        .iter()
        .filter(|e| matches!(e.status(), Status::Running | Status::Created))
        .count();
    let m = engine::metrics::global().snapshot();
    section(ctx, None);
    int(ctx, "nexecutions", kept.len() as i64);
    int(
        ctx,
        "nregistrations",
        (st.registrations.len() + st.streams.all().len()) as i64,
    );
    int(ctx, "gearshift_executions_running", running as i64);
    int(
        ctx,
        "gearshift_executions_started",
        m.executions_started as i64,
    );
    int(
        ctx,
        "gearshift_executions_finished",
        m.executions_finished as i64,
    );
    int(
        ctx,
        "gearshift_executions_aborted",
        m.executions_aborted as i64,
    );
    int(ctx, "gearshift_stage_batches", m.batches as i64);
    int(ctx, "gearshift_stage_records", m.records as i64);
    int(ctx, "gearshift_worker_threads", st.pool.size() as i64);
    int(ctx, "gearshift_sessions", st.sessions.all().len() as i64);
    let (triggered, dropped) = st
        .registrations
        .all()
        .iter()
        .fold((0u64, 0u64), |(t, d), r| {
            let s = r.stats();
            (t + s.triggered, d + s.dropped)
        });
    int(ctx, "gearshift_events_triggered", triggered as i64);
    int(ctx, "gearshift_events_dropped", dropped as i64);
    let pending: usize = st.registrations.all().iter().map(|r| r.pending()).sum();
    int(ctx, "gearshift_events_pending", pending as i64);
    let (holds, wait_us) = gearpy::metrics::gil_stats();
    int(ctx, "gearshift_gil_holds", holds as i64);
    int(ctx, "gearshift_gil_wait_us", wait_us as i64);
    int(
        ctx,
        "gearshift_stream_registrations",
        st.streams.all().len() as i64,
    );
    data_plane(ctx);
    section(ctx, Some("regisrations"));
    for r in st.registrations.all() {
        // A CommandReader's hook is listed under `trigger`, as RG.DUMPREGISTRATIONS does.
        let (arg, value) = match (&r.trigger, &r.hook) {
            (Some(t), _) | (None, Some(t)) => ("trigger", t.as_str()),
            (None, None) => ("regex", r.prefix.as_str()),
        };
        let line = registration_line(r.reader(), r.mode.name(), &r.stats(), arg, value);
        text(ctx, &r.id, &line);
    }
    for r in st.streams.all() {
        let line = registration_line(
            "StreamReader",
            r.mode.name(),
            &r.stats(),
            "stream",
            &r.prefix,
        );
        text(ctx, &r.id, &line);
    }
    section(ctx, Some("plugins"));
    text(ctx, "GearsPythonPlugin", "version=10000");
    section(ctx, Some("python_stats"));
    let (total, peak, current) = gearpy::pymem::stats();
    int(ctx, "TotalAllocated", total);
    int(ctx, "PeakAllocated", peak);
    int(ctx, "CurrAllocated", current);
    python_sections(ctx, st);
}

/// 1.2's `python_requirements` section (one dict field per requirement, named by its spec:
/// `IsDownloaded`, `IsInstalled`, `CompiledOs`, `Wheels` as `['a.whl'|'b.whl']`) and
/// `python_sessions` (one field per session, live then dead, whose value is the session's
/// description string, as RG.DUMPREGISTRATIONS' `PD`).
fn python_sections(ctx: &InfoContext, st: &crate::model::state::ModuleState) {
    section(ctx, Some("python_requirements"));
    let os = crate::model::requirements::compiled_os();
    for r in st.requirements.installed() {
        let wheels: Vec<String> = r.wheels.iter().map(|w| format!("'{w}'")).collect();
        let line = format!(
            "IsDownloaded=yes,IsInstalled=yes,CompiledOs={os},Wheels=[{}]",
            info_safe(&wheels.join("|"))
        );
        text(ctx, &info_name(&r.name), &line);
    }
    section(ctx, Some("python_sessions"));
    let live = st.sessions.all().into_iter().map(|s| (s, None));
    let dead = st.sessions.dead().into_iter().map(|(s, n)| (s, Some(n)));
    for (s, dead) in live.chain(dead) {
        text(ctx, &info_name(&s.id), &session_line(&s, dead));
    }
}

/// A session as 1.2 describes it in INFO (`dead`: how many of its holds still run).
fn session_line(s: &crate::model::sessions::Session, dead: Option<usize>) -> String {
    let quoted = |v: &str| format!("'{}'", v.replace('\'', "\\'"));
    let desc = s.desc.as_deref().map(quoted);
    let regs: Vec<String> = s.registrations.iter().map(|r| quoted(r)).collect();
    let deps: Vec<String> = s
        .requirements
        .iter()
        .map(|r| format!("{{'name':{}}}", quoted(r)))
        .collect();
    let line = format!(
        "{{'sessionName':{}, 'sessionDescription':{}, 'refCount': {}, 'linkedTo': {}, 'dead': {}, 'isInstallationNeeded':0, 'registrationsList':[{}], 'depsList':[{}]}}",
        quoted(&s.id),
        desc.as_deref().unwrap_or("null"),
        dead.unwrap_or(s.registrations.len()),
        if dead.is_some() { "None" } else { "primary" },
        dead.is_some(),
        regs.join(", "),
        deps.join(", ")
    );
    line.replace(['\r', '\n'], " ")
}

/// A field name as Redis writes it: the characters that end a name or a line become `_`.
fn info_name(v: &str) -> String {
    v.chars()
        .map(|c| match c {
            ':' | '#' | '\r' | '\n' | ' ' | ',' => '_',
            c => c,
        })
        .collect()
}

/// User text inside an INFO dict field: the characters that separate fields, lines or a
/// field's name from its value become `_`.
fn info_safe(v: &str) -> String {
    v.chars()
        .map(|c| match c {
            ',' | '=' | ':' | '\r' | '\n' => '_',
            c => c,
        })
        .collect()
}

/// One registration's dict field of the `regisrations` section: reader, mode, counters and
/// the reader's main argument (named as in RG.DUMPREGISTRATIONS' `args`).
fn registration_line(
    reader: &str,
    mode: &str,
    s: &crate::model::registrations::Stats,
    arg: &str,
    value: &str,
) -> String {
    format!(
        "reader={reader},mode={mode},numTriggered={},numSuccess={},numFailures={},numAborted={},{arg}={value}",
        s.triggered, s.success, s.failures, s.aborted
    )
}

/// The buffer pool's counters and the batches queued between stages (docs/monitoring.md).
fn data_plane(ctx: &InfoContext) {
    let d = engine::metrics::data_plane();
    int(ctx, "gearshift_pool_idle_bytes", d.pool.idle_bytes as i64);
    int(
        ctx,
        "gearshift_pool_in_use_bytes",
        d.pool.in_use_bytes as i64,
    );
    int(ctx, "gearshift_pool_hits", d.pool.hits as i64);
    int(ctx, "gearshift_pool_misses", d.pool.misses as i64);
    let rate = d.pool.hit_rate_percent() as i64;
    int(ctx, "gearshift_pool_hit_rate_percent", rate);
    int(ctx, "gearshift_queued_batches", d.queued_batches as i64);
}
