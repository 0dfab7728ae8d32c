//! Reading the values of several keys at once (an event drain's batch): their string
//! values with one `MGET`, the others as `scan::read_key` reads a key. A GET per key spent
//! about half its time in `RM_Call`'s own work (a temporary client, the command lookup,
//! stats, reply parsing; perf, issue #13); one MGET shares that among the keys. MGET
//! answers nil for a missing key and for another type: those keys are opened and read by
//! type, as before. Lock held.

use engine::batch::{KeyBuilder, KeyType};
use redis_module::{raw, Context, ContextFlags};

use super::reply::OwnedReply;
use super::scan::{push_open_key, read_key, with_key, OwnRead};

/// Reads `names` into `out` in order, as `read_key` reads each; `then(i, out)` runs after
/// row `i` is pushed (the caller adds its event).
pub fn read_keys(
    ctx: &Context,
    names: &[&[u8]],
    out: &mut KeyBuilder,
    mut then: impl FnMut(usize, &mut KeyBuilder),
) {
    let read_value = out.read_value();
    // A cluster refuses an MGET of several slots' keys: there each key is read alone.
    if !read_value || names.len() < 2 || ctx.get_flags().contains(ContextFlags::CLUSTER) {
        for (i, name) in names.iter().enumerate() {
            read_key(ctx, name, out, read_value);
            then(i, out);
        }
        return;
    }
    let reply = mget(ctx, names);
    let answered = reply.root().len() == Some(names.len());
    for (i, name) in names.iter().enumerate() {
        match string_at(&reply, i) {
            Some(v) if answered => {
                out.push_key(name, KeyType::String);
                out.push_str(v);
            }
            // Not a string (or missing): opened and read by its type.
            _ if answered => {
                with_key(ctx, name, |key| push_open_key(ctx, name, key, out, true));
            }
            _ => read_key(ctx, name, out, true),
        }
        then(i, out);
    }
}

/// The bytes of element `i` of an array reply if it is a string (borrowed from the reply).
fn string_at(reply: &OwnedReply, i: usize) -> Option<&[u8]> {
    let e = reply.root().at(i);
    (e.kind() == raw::REDISMODULE_REPLY_STRING).then(|| e.bytes())
}

/// `MGET names…` as Gearshift's own call (`acl::own_call`); a missing key's `keymiss`
/// is marked as its own read.
fn mget(ctx: &Context, names: &[&[u8]]) -> OwnedReply {
    let _own = OwnRead::start();
    super::acl::own_call(|| {
        // SAFETY: lock held (caller contract); the argument strings are created here,
        // handed to RM_Call as a vector of `names.len()` strings (format `v`, which only
        // takes references), and freed after it returns; the reply is owned by nothing else.
        unsafe {
            let create = raw::RedisModule_CreateString.expect("api");
            let mut argv: Vec<*mut raw::RedisModuleString> = names
                .iter()
                .map(|n| create(std::ptr::null_mut(), n.as_ptr().cast(), n.len()))
                .collect();
            let reply = raw::RedisModule_Call.expect("api")(
                ctx.ctx,
                c"MGET".as_ptr(),
                c"vE".as_ptr(),
                argv.as_mut_ptr(),
                argv.len(),
            );
            for s in argv {
                raw::RedisModule_FreeString.expect("api")(std::ptr::null_mut(), s);
            }
            OwnedReply::new(reply)
        }
    })
}
