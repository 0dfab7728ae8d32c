//! Reading keys and values with the raw module API (RM_Scan, RM_ScanKey, StringDMA):
//! about 15% faster than reopening each key through the safe wrappers (STACK-NOTES).
//! Every function here must be called with the Redis lock held on `ctx`.

use std::ffi::c_void;
use std::os::raw::c_int;
use std::time::{Duration, Instant};

use engine::batch::{KeyBuilder, KeyType};
use engine::glob::Matcher;
use redis_module::{raw, CallOptionsBuilder, CallReply, CallResult, Context};

use super::acl::ModuleUser;
use crate::redis::access::KeyGate;

/// An RM_Scan cursor. Owned by one reader; used only under the Redis lock.
pub struct ScanCursor(*mut raw::RedisModuleScanCursor);

// SAFETY: the cursor is plain heap state of Redis; it is only dereferenced by Redis inside
// RM_Scan, which we call with the Redis lock held, so moving it between threads is safe.
unsafe impl Send for ScanCursor {}

impl ScanCursor {
    pub fn new() -> Self {
        // SAFETY: no preconditions; returns a fresh cursor.
        ScanCursor(unsafe { raw::RedisModule_ScanCursorCreate.expect("scan api")() })
    }
}

impl Default for ScanCursor {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ScanCursor {
    fn drop(&mut self) {
        // SAFETY: the cursor came from ScanCursorCreate and is destroyed once.
        unsafe { raw::RedisModule_ScanCursorDestroy.expect("scan api")(self.0) }
    }
}

/// Limits of one lock hold.
#[derive(Debug, Clone, Copy)]
pub struct ScanBudget {
    pub max_rows: usize,
    pub max_time: Duration,
}

struct ScanState<'a> {
    ctx: &'a Context,
    matcher: Matcher<'a>,
    /// The user whose read permission each key needs; `None`: every key may be read.
    user: Option<&'a ModuleUser>,
    out: &'a mut KeyBuilder,
}

/// RM_Scan calls between two looks at the clock. One call scans one hash-table bucket (about
/// one key), and reading the clock each time was 3-4% of a key-count scan (perf, issue
/// #13); 32 buckets of small keys take some tens of microseconds, far below the budget.
const CALLS_PER_CLOCK_READ: u32 = 32;
/// Work (`KeyBuilder::work_done`: bytes, fields, items) after which the clock is read at
/// once: a call that read a big value (a huge hash or list) is checked at its end, as every
/// call was before.
const WORK_PER_CLOCK_READ: usize = 16 << 10;

/// Scans on from `cursor`, appending matching keys (and values) that `gate` lets through
/// to `out` until the budget is used; returns false once the keyspace is exhausted.
pub fn scan_some(
    ctx: &Context,
    cursor: &mut ScanCursor,
    pattern: &[u8],
    gate: &KeyGate,
    out: &mut KeyBuilder,
    budget: ScanBudget,
) -> bool {
    let start = Instant::now();
    let mut state = ScanState {
        ctx,
        matcher: Matcher::new(pattern),
        user: gate.user(),
        out,
    };
    let mut calls = 0u32;
    let mut checked = state.out.work_done();
    loop {
        // SAFETY: lock held (caller contract); the callback only runs during this call and
        // `state` outlives it.
        let more = unsafe {
            raw::RedisModule_Scan.expect("scan api")(
                ctx.ctx,
                cursor.0,
                Some(on_key),
                (&mut state as *mut ScanState).cast::<c_void>(),
            )
        };
        if more == 0 {
            return false;
        }
        if state.out.len() >= budget.max_rows {
            return true;
        }
        calls += 1;
        let work = state.out.work_done();
        if calls >= CALLS_PER_CLOCK_READ || work.saturating_sub(checked) >= WORK_PER_CLOCK_READ {
            (calls, checked) = (0, work);
            if start.elapsed() >= budget.max_time {
                return true;
            }
        }
    }
}

extern "C" fn on_key(
    _ctx: *mut raw::RedisModuleCtx,
    keyname: *mut raw::RedisModuleString,
    key: *mut raw::RedisModuleKey,
    privdata: *mut c_void,
) {
    // SAFETY: `privdata` is the `ScanState` passed by `scan_some`, alive for the scan call.
    let state = unsafe { &mut *privdata.cast::<ScanState>() };
    let name = string_bytes(keyname);
    if !state.matcher.matches(name) {
        return;
    }
    if let Some(user) = state.user {
        // SAFETY: `keyname` is the live key name string of this callback.
        if !unsafe { user.may_read_string(keyname) } {
            return;
        }
    }
    let read_value = state.out.read_value();
    // Panics must not unwind into Redis. `name` borrows `keyname`, alive for this call.
    super::trampoline::callback("a key scan", (), || {
        if key.is_null() {
            read_key(state.ctx, name, state.out, read_value);
        } else {
            push_open_key(state.ctx, name, key, state.out, read_value);
        }
    });
}

thread_local! {
    static OWN_READ: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While alive, keyspace notifications on this thread come from Gearshift's own key reads.
pub(super) struct OwnRead;

impl OwnRead {
    pub(super) fn start() -> Self {
        OWN_READ.with(|r| r.set(true));
        OwnRead
    }
}

impl Drop for OwnRead {
    fn drop(&mut self) {
        OWN_READ.with(|r| r.set(false));
    }
}

/// True while Gearshift itself is opening a key on this thread (its `keymiss` is not an
/// event of the user's data).
pub fn own_read() -> bool {
    OWN_READ.with(|r| r.get())
}

/// Runs `f` with key `name` opened for reading (null when missing). Lock held.
pub(super) fn with_key<R>(
    ctx: &Context,
    name: &[u8],
    f: impl FnOnce(*mut raw::RedisModuleKey) -> R,
) -> R {
    // SAFETY: lock held (caller contract); the string and key are created, used and freed
    // here, and `f` does not keep the key.
    unsafe {
        let s =
            raw::RedisModule_CreateString.expect("api")(ctx.ctx, name.as_ptr().cast(), name.len());
        // Opening a missing key for reading raises `keymiss`; `OwnRead` marks it as ours so
        // registrations listening to every event are not triggered by their own reads.
        let key = {
            let _own = OwnRead::start();
            raw::RedisModule_OpenKey.expect("api")(ctx.ctx, s, raw::REDISMODULE_READ as c_int)
                .cast::<raw::RedisModuleKey>()
        };
        let r = f(key);
        if !key.is_null() {
            raw::RedisModule_CloseKey.expect("api")(key);
        }
        raw::RedisModule_FreeString.expect("api")(ctx.ctx, s);
        r
    }
}

/// Appends the row for key `name` (type `empty` when missing). Lock held.
///
/// With its value: while the keys this thread reads are strings (or missing), a GET is
/// tried first, which answers with one lookup (opening the key to learn its type and then
/// calling GET looked it up twice, a third of an event's read). Once another type comes,
/// keys are opened first until a string comes again: a GET failing with WRONGTYPE on every
/// hash event would cost more than it saves.
pub fn read_key(ctx: &Context, name: &[u8], out: &mut KeyBuilder, read_value: bool) {
    if read_value && STRINGS_FIRST.with(|s| s.get()) {
        // A missing key raises `keymiss`: ours, as for `with_key`.
        let _own = OwnRead::start();
        let done = get(ctx, name, |got| match got {
            Got::String(v) => {
                out.push_key(name, KeyType::String);
                out.push_str(v);
                true
            }
            Got::Null => {
                out.push_key(name, KeyType::Empty);
                true
            }
            Got::Other => false, // WRONGTYPE: another type
        });
        if done {
            return;
        }
    }
    let t = with_key(ctx, name, |key| {
        push_open_key(ctx, name, key, out, read_value)
    });
    if read_value {
        STRINGS_FIRST.with(|s| s.set(matches!(t, KeyType::String | KeyType::Empty)));
    }
}

thread_local! {
    /// Whether `read_key` tries GET first on this thread: the last key it read was a
    /// string or missing (events come in runs of one type).
    static STRINGS_FIRST: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

fn string_bytes<'a>(s: *mut raw::RedisModuleString) -> &'a [u8] {
    let mut len = 0usize;
    // SAFETY: `s` is a live RedisModuleString for the duration of the callback.
    let p = unsafe { raw::RedisModule_StringPtrLen.expect("api")(s, &mut len) };
    if p.is_null() {
        return &[];
    }
    // SAFETY: Redis returns a pointer to `len` bytes owned by `s`.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
}

fn key_type(key: *mut raw::RedisModuleKey) -> KeyType {
    if key.is_null() {
        return KeyType::Empty;
    }
    // SAFETY: `key` is an open key handle.
    let t = unsafe { raw::RedisModule_KeyType.expect("api")(key) } as isize;
    match t {
        raw::REDISMODULE_KEYTYPE_STRING => KeyType::String,
        raw::REDISMODULE_KEYTYPE_LIST => KeyType::List,
        raw::REDISMODULE_KEYTYPE_HASH => KeyType::Hash,
        raw::REDISMODULE_KEYTYPE_SET => KeyType::Set,
        raw::REDISMODULE_KEYTYPE_ZSET => KeyType::ZSet,
        raw::REDISMODULE_KEYTYPE_MODULE => KeyType::Module,
        raw::REDISMODULE_KEYTYPE_EMPTY => KeyType::Empty,
        _ => KeyType::Unknown, // streams: 1.2 reports `unknown`
    }
}

pub(super) fn push_open_key(
    ctx: &Context,
    name: &[u8],
    key: *mut raw::RedisModuleKey,
    out: &mut KeyBuilder,
    read_value: bool,
) -> KeyType {
    let t = key_type(key);
    out.push_key(name, t);
    if !read_value {
        return t;
    }
    match t {
        KeyType::String => push_string(ctx, name, out),
        KeyType::Hash => push_hash(key, out),
        KeyType::List => push_list(ctx, name, out),
        _ => {}
    }
    t
}

/// A string value read with GET: RM_StringDMA would re-encode int/embstr values as raw
/// strings (a visible side effect on the user's data), so the value is copied instead.
fn push_string(ctx: &Context, name: &[u8], out: &mut KeyBuilder) {
    get(ctx, name, |got| match got {
        Got::String(v) => out.push_str(v),
        _ => out.push_str(&[]),
    })
}

/// What a GET answered.
enum Got<'a> {
    String(&'a [u8]),
    Null,
    /// An error (WRONGTYPE) or anything else.
    Other,
}

/// GET `name` and hands the reply to `f` (lock held). A raw `RM_Call` (format `b`: the name
/// as a buffer; `E`: errors as replies): the safe `call_ext` allocated a C string for the
/// command, one for the options, a module string for the name and an argument vector on
/// every call — a sixth of a sync event's read (perf, issue #13). Made as Gearshift's own
/// call (`acl::own_call`), as before.
fn get<R>(ctx: &Context, name: &[u8], f: impl FnOnce(Got<'_>) -> R) -> R {
    super::acl::own_call(|| {
        // SAFETY: lock held (caller contract); the command and format are NUL-terminated
        // literals and format `b` takes exactly a pointer and a length, which `name`
        // provides. The reply is owned by nothing else; `f` gets a borrow that does not
        // outlive it.
        let reply = unsafe {
            super::reply::OwnedReply::new(raw::RedisModule_Call.expect("api")(
                ctx.ctx,
                c"GET".as_ptr(),
                c"bE".as_ptr(),
                name.as_ptr().cast::<std::os::raw::c_char>(),
                name.len(),
            ))
        };
        let r = reply.root();
        f(match r.kind() {
            raw::REDISMODULE_REPLY_STRING => Got::String(r.bytes()),
            raw::REDISMODULE_REPLY_NULL => Got::Null,
            _ => Got::Other,
        })
    })
}

extern "C" fn on_field(
    _key: *mut raw::RedisModuleKey,
    field: *mut raw::RedisModuleString,
    value: *mut raw::RedisModuleString,
    privdata: *mut c_void,
) {
    // SAFETY: `privdata` is the `KeyBuilder` passed by `push_hash`, alive for the call.
    let out = unsafe { &mut *privdata.cast::<KeyBuilder>() };
    let value = if value.is_null() {
        &[]
    } else {
        string_bytes(value)
    };
    out.push_field(string_bytes(field), value);
}

thread_local! {
    /// One field cursor per thread, restarted for each hash: a create and a destroy per
    /// hash were an allocation pair per row of every scan that reads hash values.
    static FIELD_CURSOR: ScanCursor = ScanCursor::new();
}

fn push_hash(key: *mut raw::RedisModuleKey, out: &mut KeyBuilder) {
    FIELD_CURSOR.with(|cursor| {
        // SAFETY: lock held; the cursor is this thread's own and is restarted before use;
        // the callback runs only inside ScanKey and `out` outlives it.
        unsafe {
            raw::RedisModule_ScanCursorRestart.expect("api")(cursor.0);
            let pd = (out as *mut KeyBuilder).cast::<c_void>();
            while raw::RedisModule_ScanKey.expect("api")(key, cursor.0, Some(on_field), pd) != 0 {}
        }
    })
}

fn push_list(ctx: &Context, name: &[u8], out: &mut KeyBuilder) {
    let opts = CallOptionsBuilder::new().errors_as_replies().build();
    let res: CallResult =
        super::acl::own_call(|| ctx.call_ext("LRANGE", &opts, &[name, b"0", b"-1"][..]));
    if let Ok(CallReply::Array(items)) = res {
        for item in items.iter() {
            if let Ok(CallReply::String(s)) = item {
                out.push_item(s.as_bytes());
            }
        }
    }
}

/// The type of key `name` right now (`Empty` when missing). Lock held.
pub fn key_type_of(ctx: &Context, name: &[u8]) -> KeyType {
    with_key(ctx, name, key_type)
}
