//! `REQUIREMENTS pkg ...` (REFERENCE §5, issue #4): packages are installed with pip from
//! PyPI into one virtual environment per server (`gearshift-venv` in the server's working
//! directory, i.e. its `dir`), then made importable. Runs on a worker, never on Redis's main
//! thread, and every step has a time bound.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a venv creation or pip run may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// An installed requirement.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub name: String,
    pub sessions: usize,
}

/// The server's requirements and their environment.
#[derive(Debug)]
pub struct Requirements {
    venv: PathBuf,
    installed: Mutex<Vec<Requirement>>,
    /// One installation at a time (pip is not concurrency-safe on one environment).
    installing: Mutex<()>,
}

impl Default for Requirements {
    fn default() -> Self {
        Requirements {
            venv: PathBuf::from("gearshift-venv"),
            installed: Mutex::new(Vec::new()),
            installing: Mutex::new(()),
        }
    }
}

fn wait_bounded(mut child: Child, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                let tail: String = err
                    .lines()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join(" ");
                return Err(format!("{what} failed ({status}): {tail}"));
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what} timed out after {} s",
                    STEP_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("{what} failed: {e}")),
        }
    }
}

fn run(program: &Path, args: &[&str], what: &str) -> Result<(), String> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what} failed to start: {e}"))?;
    wait_bounded(child, what)
}

impl Requirements {
    fn site_packages(&self) -> Result<PathBuf, String> {
        let lib = self.venv.join("lib");
        let entries = std::fs::read_dir(&lib).map_err(|e| format!("no venv lib dir: {e}"))?;
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("site-packages"))
            .find(|p| p.is_dir())
            .ok_or_else(|| "venv has no site-packages".to_owned())
    }

    /// Installs `names` (skipping installed ones unless `force`) and makes them importable.
    pub fn ensure(&self, names: &[String], force: bool) -> Result<(), String> {
        let _one_at_a_time = self.installing.lock().unwrap_or_else(|e| e.into_inner());
        let missing: Vec<&str> = {
            let installed = self.installed.lock().unwrap_or_else(|e| e.into_inner());
            names
                .iter()
                .filter(|n| force || !installed.iter().any(|r| &r.name == *n))
                .map(String::as_str)
                .collect()
        };
        if !missing.is_empty() {
            if !self.venv.join("bin").join("python").exists() {
                let venv = self.venv.to_string_lossy().into_owned();
                run(
                    Path::new(gearpy::site::python_executable()),
                    &["-m", "venv", &venv],
                    "creating the virtual environment",
                )?;
            }
            let pip = self.venv.join("bin").join("python");
            let mut args = vec![
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-q",
            ];
            if force {
                args.push("--force-reinstall");
            }
            // Names are requirement specifiers, never options (`-r /etc/…`, `--index-url …`).
            args.push("--");
            args.extend(missing.iter().copied());
            run(&pip, &args, "pip install")?;
        }
        let site = self.site_packages()?;
        gearpy::site::add_site_dir(&site.to_string_lossy())?;
        self.mark_installed(names);
        Ok(())
    }

    /// After a restart: makes an existing environment importable again and records
    /// `names` as installed, without running pip.
    pub fn activate_existing(&self, names: &[String]) -> Result<(), String> {
        let site = self.site_packages()?;
        gearpy::site::add_site_dir(&site.to_string_lossy())?;
        self.mark_installed(names);
        Ok(())
    }

    fn mark_installed(&self, names: &[String]) {
        let mut installed = self.installed.lock().unwrap_or_else(|e| e.into_inner());
        for n in names {
            match installed.iter_mut().find(|r| &r.name == n) {
                Some(r) => r.sessions += 1,
                None => installed.push(Requirement {
                    name: n.clone(),
                    sessions: 1,
                }),
            }
        }
    }

    pub fn installed(&self) -> Vec<Requirement> {
        self.installed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn venv_dir(&self) -> String {
        std::fs::canonicalize(&self.venv)
            .unwrap_or_else(|_| self.venv.clone())
            .to_string_lossy()
            .into_owned()
    }
}
