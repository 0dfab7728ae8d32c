//! Redis's allocator for the embedded Python, the server's memory headroom and integer
//! configs (raw API).

use gearpy::pymem::HostAllocator;
use redis_module::{raw, Context};

/// Redis's allocator as Python's, if this server has every function it needs.
pub fn python_allocator() -> Option<HostAllocator> {
    // SAFETY: the API pointers are written once by RedisModule_Init, before any caller.
    unsafe {
        Some(HostAllocator {
            alloc: raw::RedisModule_TryAlloc.or(raw::RedisModule_Alloc)?,
            calloc: raw::RedisModule_Calloc?,
            realloc: raw::RedisModule_Realloc?,
            free: raw::RedisModule_Free?,
            usable_size: raw::RedisModule_MallocUsableSize?,
        })
    }
}

/// Bytes the server may still allocate before `maxmemory` (`None`: no limit). Main
/// thread (or the Redis lock held): Redis computes the ratio from unlocked state.
pub fn headroom(ctx: &Context) -> Option<i64> {
    let max = config_int(ctx, "maxmemory").filter(|&m| m > 0)?;
    // SAFETY: plain query with no arguments, called under the Redis lock.
    let ratio = unsafe { raw::RedisModule_GetUsedMemoryRatio.map(|f| f()) }?;
    Some(max - (f64::from(ratio) * max as f64) as i64)
}

/// An integer server config (`CONFIG GET name`).
pub fn config_int(ctx: &Context, name: &str) -> Option<i64> {
    let reply = super::acl::own_call(|| ctx.call("CONFIG", &["GET", name])).ok()?;
    let redis_module::RedisValue::Array(items) = reply else {
        return None;
    };
    let value = match items.get(1)? {
        redis_module::RedisValue::SimpleString(s) => s.parse::<i64>().ok()?,
        redis_module::RedisValue::BulkString(s) => s.parse::<i64>().ok()?,
        redis_module::RedisValue::StringBuffer(b) => std::str::from_utf8(b).ok()?.parse().ok()?,
        _ => return None,
    };
    Some(value)
}
