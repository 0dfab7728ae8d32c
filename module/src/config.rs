//! Module configuration: RedisGears 1.2's built-in keys (REFERENCE §6) parsed from the
//! module arguments, plus the extra dictionary of unknown keys that `configGet` reads.

use std::collections::HashMap;
use std::sync::Mutex;

/// Built-in numeric settings and their 1.2 defaults.
const BUILTIN_DEFAULTS: [(&str, i64); 8] = [
    ("MaxExecutions", 1000),
    ("MaxExecutionsPerRegistration", 100),
    ("ProfileExecutions", 0),
    ("PythonAttemptTraceback", 1),
    ("ExecutionMaxIdleTime", 5000),
    ("PythonInstallReqMaxIdleTime", 30000),
    ("SendMsgRetries", 3),
    ("ExecutionThreads", 3),
];

/// The module's configuration.
#[derive(Debug)]
pub struct Config {
    builtins: Mutex<HashMap<&'static str, i64>>,
    extra: Mutex<HashMap<String, String>>,
    /// Overrides where the embedded Python finds its standard library.
    pub python_home: Option<String>,
}

impl Config {
    /// Parses `key value` pairs (names case-insensitive, any order). Unknown keys go to the
    /// extra dictionary.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let cfg = Config {
            builtins: Mutex::new(BUILTIN_DEFAULTS.iter().copied().collect()),
            extra: Mutex::new(HashMap::new()),
            python_home: std::env::var("GEARSHIFT_PYTHON_HOME").ok(),
        };
        let mut cfg = cfg;
        let mut it = args.iter();
        while let Some(key) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("Value was not given to {key}"))?;
            cfg.set(key, value)?;
        }
        Ok(cfg)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        if key.eq_ignore_ascii_case("PythonHome") {
            self.python_home = Some(value.to_owned());
            return Ok(());
        }
        let builtin = BUILTIN_DEFAULTS
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(k, _)| *k);
        match builtin {
            Some(k) => {
                let v: i64 = value
                    .parse()
                    .map_err(|_| format!("Failed setting config value {key}"))?;
                if k == "ExecutionThreads" && v <= 0 {
                    return Err(format!("Failed setting config value {key}"));
                }
                self.builtins.lock().expect("config lock").insert(k, v);
            }
            None => {
                self.extra
                    .lock()
                    .expect("config lock")
                    .insert(key.to_owned(), value.to_owned());
            }
        }
        Ok(())
    }

    /// A built-in numeric setting.
    pub fn int(&self, key: &str) -> i64 {
        self.builtins
            .lock()
            .expect("config lock")
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// A value of the extra dictionary.
    pub fn extra(&self, key: &str) -> Option<String> {
        self.extra.lock().expect("config lock").get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_args(&args(&["executionthreads", "5", "myKey", "v"])).unwrap();
        assert_eq!(c.int("ExecutionThreads"), 5);
        assert_eq!(c.int("MaxExecutions"), 1000);
        assert_eq!(c.extra("myKey").as_deref(), Some("v"));
        assert_eq!(c.extra("ExecutionThreads"), None);
    }

    #[test]
    fn bad_values_fail_loading() {
        assert!(Config::from_args(&args(&["ExecutionThreads", "x"])).is_err());
        assert!(Config::from_args(&args(&["ExecutionThreads", "0"])).is_err());
        assert!(Config::from_args(&args(&["lonely"])).is_err());
    }
}
