//! The requirement package: one requirement's name, the OS its wheels were built on and the
//! wheels themselves (file name + bytes). It is `RG.PYEXPORTREQ`'s payload (the `Data.bin`
//! gears-cli stores in its zip), `RG.PYIMPORTREQ`'s input, the RDB aux data of every
//! installed requirement, and what replicas (`RG.PYIMPORTRETINTERNAL`) and other shards
//! (`bus::Query::Import`) receive, so no host but the first one downloads anything.
//!
//! Layout (little-endian): a package is `'R' version | name | os | wheel count u32 | per
//! wheel: file name, bytes`; a list of packages (the RDB aux data, the bus query) is
//! `'L' version | count u32 | per package: its encoding as one field`. Strings are a u32
//! length + bytes. Decoding never trusts its input: malformed bytes are `None`.

use super::{put, put_count, Reader};

const PACKAGE: u8 = b'R';
const LIST: u8 = b'L';
const VERSION: u8 = 1;

/// One wheel file of a requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheel {
    /// The wheel's file name (`name-version-tags.whl`); never contains a path separator.
    pub file: String,
    pub bytes: Vec<u8>,
}

/// A requirement with the wheels that install it (its dependencies' wheels included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The requirement as the user gave it (`humanize`, `redis==3.5.3`).
    pub name: String,
    /// The OS the wheels were built on (`linux`).
    pub os: String,
    pub wheels: Vec<Wheel>,
}

/// Encodes one package.
pub fn encode(p: &Package) -> Vec<u8> {
    let size: usize = p
        .wheels
        .iter()
        .map(|w| w.bytes.len() + w.file.len() + 8)
        .sum();
    let mut out = Vec::with_capacity(size + p.name.len() + p.os.len() + 16);
    out.extend_from_slice(&[PACKAGE, VERSION]);
    put(&mut out, p.name.as_bytes());
    put(&mut out, p.os.as_bytes());
    put_count(&mut out, p.wheels.len());
    for w in &p.wheels {
        put(&mut out, w.file.as_bytes());
        put(&mut out, &w.bytes);
    }
    out
}

/// A wheel file name that is safe to create in a directory: a plain `.whl` name.
pub fn safe_wheel_name(file: &str) -> bool {
    file.ends_with(".whl")
        && !file.starts_with('.')
        && !file.contains(['/', '\\', '\0'])
        && file.len() <= 255
}

/// Decodes one package; `None` if malformed (bad header, truncated, trailing bytes, or a
/// wheel name that is not a plain `.whl` file name).
pub fn decode(bytes: &[u8]) -> Option<Package> {
    let mut r = Reader(bytes);
    if r.take(2)? != [PACKAGE, VERSION] {
        return None;
    }
    let name = r.text()?;
    let os = r.text()?;
    let n = r.u32()? as usize;
    let mut wheels = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        let file = r.text()?;
        if !safe_wheel_name(&file) {
            return None;
        }
        wheels.push(Wheel {
            file,
            bytes: r.field()?.to_vec(),
        });
    }
    (r.is_empty() && !name.is_empty()).then_some(Package { name, os, wheels })
}

/// Whether `bytes` is a package of a newer layout than this build reads (its version byte
/// is higher), so that RG.PYIMPORTREQ can say so rather than call it malformed.
pub fn is_newer_version(bytes: &[u8]) -> bool {
    matches!(bytes, [PACKAGE, v, ..] if *v > VERSION)
}

/// Encodes a list of packages.
pub fn encode_list(packages: &[Package]) -> Vec<u8> {
    let mut out = vec![LIST, VERSION];
    put_count(&mut out, packages.len());
    for p in packages {
        put(&mut out, &encode(p));
    }
    out
}

/// Decodes a list of packages; `None` if any is malformed.
pub fn decode_list(bytes: &[u8]) -> Option<Vec<Package>> {
    let mut r = Reader(bytes);
    if r.take(2)? != [LIST, VERSION] {
        return None;
    }
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        out.push(decode(r.field()?)?);
    }
    r.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Package {
        Package {
            name: "humanize".into(),
            os: "linux".into(),
            wheels: vec![Wheel {
                file: "humanize-4.0.0-py3-none-any.whl".into(),
                bytes: vec![1, 2, 3],
            }],
        }
    }

    #[test]
    fn a_newer_version_is_told_apart() {
        let mut enc = encode(&sample());
        assert!(!is_newer_version(&enc));
        enc[1] = VERSION + 1;
        assert!(is_newer_version(&enc));
        assert_eq!(decode(&enc), None);
        assert!(!is_newer_version(b"R"));
    }

    #[test]
    fn package_and_list_roundtrip() {
        let p = sample();
        assert_eq!(decode(&encode(&p)), Some(p.clone()));
        assert_eq!(
            decode_list(&encode_list(&[p.clone(), p.clone()])),
            Some(vec![p.clone(), p])
        );
        assert_eq!(decode_list(&encode_list(&[])), Some(vec![]));
    }

    #[test]
    fn garbage_truncation_and_unsafe_names_are_rejected() {
        let enc = encode(&sample());
        for cut in 0..enc.len() {
            assert_eq!(decode(&enc[..cut]), None, "cut at {cut}");
        }
        let mut extra = enc.clone();
        extra.push(0);
        assert_eq!(decode(&extra), None);
        assert_eq!(decode(b"garbage"), None);
        for bad in ["../x.whl", "a/b.whl", "x.tar.gz", ".whl", ".hidden.whl"] {
            let mut p = sample();
            p.wheels[0].file = bad.into();
            assert_eq!(decode(&encode(&p)), None, "{bad}");
        }
    }
}
