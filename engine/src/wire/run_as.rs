//! Who user code runs as ([`RunAs`]), and its wire form in bus messages, sessions blobs,
//! time-event values and the AOF: `0` = unrestricted, `1` followed by the ACL user name
//! (which may be empty). The Python layer carries the identity (`gearpy::caller`
//! re-exports it) and the module enforces it (`module/src/acl.rs`).

use crate::sync::Arc;

/// The identity user code runs as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RunAs {
    /// No ACL restrictions: RedisGears 1.2's behaviour (its opt-in config), and the code
    /// Redis's own replication link or AOF loading starts.
    Superuser,
    /// The ACL user of this name (it may have been deleted since).
    User(Arc<str>),
}

impl RunAs {
    /// The ACL user `name`.
    pub fn user(name: &str) -> RunAs {
        RunAs::User(Arc::from(name))
    }

    /// The user name, `None` for [`RunAs::Superuser`].
    pub fn name(&self) -> Option<&str> {
        match self {
            RunAs::Superuser => None,
            RunAs::User(n) => Some(n),
        }
    }
}

/// Who the code of data saved before ACL support runs as: the user every client was
/// before it authenticated.
pub const LEGACY_USER: &str = "default";

/// An identity as bytes.
pub fn encode(run_as: &RunAs) -> Vec<u8> {
    match run_as {
        RunAs::Superuser => vec![0],
        RunAs::User(name) => {
            let mut f = Vec::with_capacity(name.len() + 1);
            f.push(1);
            f.extend_from_slice(name.as_bytes());
            f
        }
    }
}

/// The identity [`encode`] wrote; `None` for anything else.
pub fn decode(field: &[u8]) -> Option<RunAs> {
    match field.split_first()? {
        (0, []) => Some(RunAs::Superuser),
        (1, name) => Some(RunAs::user(std::str::from_utf8(name).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_and_anything_else_is_refused() {
        for r in [RunAs::Superuser, RunAs::user(""), RunAs::user("app ü")] {
            assert_eq!(decode(&encode(&r)), Some(r));
        }
        for bad in [&b""[..], b"\x00x", b"\x02", b"\x01\xff"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
