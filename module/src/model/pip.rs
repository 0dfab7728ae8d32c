//! Downloading a requirement's wheels: `pip wheel` run by the `gearshift-venv` virtual
//! environment in the server's `dir` (created on first use with the embedded interpreter's
//! `-m venv`, so pip exists even where the system Python has none). Only this needs a
//! package index; installing is unpacking the wheels (`requirements`). Every step is a
//! child process with a time bound, run on a worker, never on Redis's main thread.
//!
//! Depends on `gearpy::site` (the interpreter's path) only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The longest a venv creation or pip run may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// The virtual environment whose pip downloads wheels.
pub fn venv() -> PathBuf {
    PathBuf::from("gearshift-venv")
}

/// `pip wheel <spec> …` into `wheel_dir`: the requirements' wheels and their dependencies',
/// resolved together (one set of versions that satisfies every spec).
pub fn wheel(specs: &[&str], wheel_dir: &Path) -> Result<(), String> {
    let venv = venv();
    let python = venv.join("bin").join("python");
    if !python.exists() {
        let dir = venv.to_string_lossy().into_owned();
        run(
            Path::new(gearpy::site::python_executable()),
            &["-m", "venv", &dir],
            "creating the virtual environment",
        )?;
    }
    let dir = wheel_dir.to_string_lossy().into_owned();
    let mut args = vec![
        "-m",
        "pip",
        "wheel",
        "--disable-pip-version-check",
        "--no-input",
        "-q",
        "--wheel-dir",
        &dir,
        // The specs are requirements, never options (`-r /etc/…`, `--index-url …`).
        "--",
    ];
    args.extend_from_slice(specs);
    run(&python, &args, "pip wheel")
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
                return Err(format!("{what} failed ({status}): {}", tail(&err, 3)));
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

/// The last `n` lines of `text`, joined with spaces.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" ")
}
