//! A call reply owned by Gearshift: what `RM_Call` returned, freed exactly once on drop, with
//! borrowing readers for its type, string bytes, integer and array elements. Every raw
//! `RM_Call` reader in this module (`call`, `mget`, `scan::get`) reads through it. Lock held
//! while one lives (they come from `RM_Call`). Depends only on the crate's raw bindings.

use redis_module::raw;

/// A reply `RM_Call` returned (NULL: no reply), freed on drop.
pub(super) struct OwnedReply(*mut raw::RedisModuleCallReply);

/// An element of a live reply (NULL: past the end or missing), borrowed from its root.
#[derive(Clone, Copy)]
pub(super) struct Element<'a>(
    *mut raw::RedisModuleCallReply,
    std::marker::PhantomData<&'a OwnedReply>,
);

impl OwnedReply {
    /// Takes ownership of what `RM_Call` returned.
    ///
    /// # Safety
    /// `r` is NULL or a reply `RM_Call` returned that nothing else frees.
    pub(super) unsafe fn new(r: *mut raw::RedisModuleCallReply) -> Self {
        Self(r)
    }

    /// The root as an element, for the readers below.
    pub(super) fn root(&self) -> Element<'_> {
        Element(self.0, std::marker::PhantomData)
    }
}

impl Drop for OwnedReply {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a reply RM_Call returned, owned by `self` alone (`new`'s contract), freed
            // once.
            unsafe { raw::RedisModule_FreeCallReply.expect("api")(self.0) };
        }
    }
}

impl<'a> Element<'a> {
    /// Its `REDISMODULE_REPLY_*` type; `REDISMODULE_REPLY_UNKNOWN` when NULL.
    pub(super) fn kind(self) -> isize {
        if self.0.is_null() {
            return raw::REDISMODULE_REPLY_UNKNOWN;
        }
        // SAFETY: a live reply (the root or an element of it, freed with the root).
        unsafe { raw::RedisModule_CallReplyType.expect("api")(self.0) as isize }
    }

    /// The bytes of a string or error reply (empty for other types), borrowed from the root.
    pub(super) fn bytes(self) -> &'a [u8] {
        if self.0.is_null() {
            return &[];
        }
        let mut len = 0usize;
        // SAFETY: a live reply; Redis returns `len` bytes owned by it (NULL for a type without
        // a string), which live as long as the root this element borrows.
        unsafe {
            let p = raw::RedisModule_CallReplyStringPtr.expect("api")(self.0, &mut len);
            if p.is_null() {
                return &[];
            }
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }

    /// The value of an integer reply.
    pub(super) fn integer(self) -> i64 {
        if self.0.is_null() {
            return 0;
        }
        // SAFETY: a live reply.
        unsafe { raw::RedisModule_CallReplyInteger.expect("api")(self.0) }
    }

    /// Its length if it is an array.
    pub(super) fn len(self) -> Option<usize> {
        (self.kind() == raw::REDISMODULE_REPLY_ARRAY).then(|| {
            // SAFETY: a live array reply.
            unsafe { raw::RedisModule_CallReplyLength.expect("api")(self.0) }
        })
    }

    /// Element `i` of an array (NULL past its end or when not an array).
    pub(super) fn at(self, i: usize) -> Element<'a> {
        if self.len().is_none() {
            return Element(std::ptr::null_mut(), std::marker::PhantomData);
        }
        // SAFETY: a live array reply; an index past its end gives NULL; the element is freed
        // with the root.
        let e = unsafe { raw::RedisModule_CallReplyArrayElement.expect("api")(self.0, i) };
        Element(e, std::marker::PhantomData)
    }
}
