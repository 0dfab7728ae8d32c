//! A dict's version tag (PEP 509, `ma_version_tag`): CPython gives a dict a new tag at
//! every change (set, delete, clear, update, pop), so two equal tags read at two moments
//! mean the dict was not changed in between. Used to check that a callback left the
//! records it was given as they were (`stage::through`).
//!
//! The named `unsafe` module for it: reading the field of CPython's `PyDictObject`
//! (3.11's layout, the interpreter Gearshift embeds; the field is deprecated from 3.12 and
//! gone in 3.14, where this module has to change).
//!
//! Bottom layer: depends on pyo3 only.
#![allow(unsafe_code)]

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The version tag of `d` now.
#[allow(deprecated)]
pub(crate) fn version(d: &Bound<'_, PyDict>) -> u64 {
    let p = d.as_ptr().cast::<ffi::PyDictObject>();
    // SAFETY: `d` is a live dict (a `PyDict` or a subclass, whose objects start with a
    // `PyDictObject`) borrowed with the GIL held, so the struct is readable and nothing
    // writes it while we read; `PyDictObject` is pyo3-ffi's declaration of the
    // interpreter's layout.
    unsafe { (*p).ma_version_tag }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // tests take the GIL directly

    use super::*;

    #[test]
    fn every_change_gives_a_new_tag() {
        crate::embed::init_for_tests();
        Python::attach(|py| {
            let d = PyDict::new(py);
            d.set_item("a", 1).unwrap();
            d.set_item("b", 2).unwrap();
            let mut seen = vec![version(&d)];
            let ns = PyDict::new(py);
            ns.set_item("d", &d).unwrap();
            for change in [
                c"d['a'] = 3",
                c"d.pop('b')",
                c"d.update({'c': 4})",
                c"d.setdefault('e', 5)",
                c"d.popitem()",
                c"d |= {'f': 6}",
                c"del d['a']",
                c"d.clear()",
            ] {
                py.run(change, None, Some(&ns)).unwrap();
                let v = version(&d);
                assert!(!seen.contains(&v), "{change:?} kept the tag");
                seen.push(v);
            }
            // Reading is not a change.
            py.run(c"d.get('x'); len(d); list(d.items())", None, Some(&ns))
                .unwrap();
            assert_eq!(version(&d), *seen.last().unwrap());
        });
    }
}
