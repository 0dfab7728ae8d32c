//! Module configuration (REFERENCE §6): RedisGears 1.2's core and Python-plugin keys with
//! their defaults and runtime rules, plus the extra dictionary of unknown keys that
//! `configGet` reads. Parsed from module arguments; read and changed by RG.CONFIGGET/SET.

use ahash::AHashMap as HashMap;
use std::sync::Mutex;

/// A key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Str(String),
    List(Vec<String>),
}

/// Who owns a key, which decides RG.CONFIGSET's replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Core,
    Plugin,
}

struct KeySpec {
    name: &'static str,
    default: fn() -> Value,
    owner: Owner,
    runtime: bool,
    /// Smallest accepted value for integer keys.
    min: i64,
}

const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "MaxExecutions",
        default: || Value::Int(1000),
        owner: Owner::Core,
        runtime: true,
        min: i64::MIN,
    },
    KeySpec {
        name: "MaxExecutionsPerRegistration",
        default: || Value::Int(100),
        owner: Owner::Core,
        runtime: true,
        min: i64::MIN,
    },
    KeySpec {
        name: "ProfileExecutions",
        default: || Value::Int(0),
        owner: Owner::Core,
        runtime: true,
        min: 0,
    },
    // Gearshift's own: 1 = RG.GETEXECUTION appends the progress fields (`records_in`,
    // `records_out`, `records_read`; docs/monitoring.md). 0 = 1.2's exact layout, which
    // clients that map every field to a name (redgrease) require.
    KeySpec {
        name: "ExecutionProgress",
        default: || Value::Int(0),
        owner: Owner::Core,
        runtime: true,
        min: 0,
    },
    KeySpec {
        name: "ExecutionThreads",
        default: || Value::Int(3),
        owner: Owner::Core,
        runtime: false,
        min: 1,
    },
    KeySpec {
        name: "ExecutionMaxIdleTime",
        default: || Value::Int(5000),
        owner: Owner::Core,
        runtime: true,
        min: 1,
    },
    // Gearshift's own: the Python memory one execution may hold (bytes, 0: unlimited).
    KeySpec {
        name: "ExecutionMemoryLimit",
        default: || Value::Int(2 << 30),
        owner: Owner::Core,
        runtime: true,
        min: 0,
    },
    KeySpec {
        name: "SendMsgRetries",
        default: || Value::Int(3),
        owner: Owner::Core,
        runtime: true,
        min: 0,
    },
    // Gearshift's own: 1 = a running part of a distributed execution tells the other
    // shards so (heartbeats), so a slow but working part never ends the run with `Execution
    // max idle reached`; 0 = 1.2: the run ends when no shard message arrives within
    // `ExecutionMaxIdleTime` (docs/compat.md).
    KeySpec {
        name: "ExecutionHeartbeats",
        default: || Value::Int(1),
        owner: Owner::Core,
        runtime: true,
        min: 0,
    },
    // Gearshift's own: shuffle bundles (about 64 KiB each) a shard keeps in flight to each
    // other shard before it queues the rest until the receiver catches up (0: unlimited,
    // no flow control; docs/configuration.md). Default 0: windows of 16 and 64 measured
    // slower on the cluster bench's collect (perf/results/credit-*.md).
    KeySpec {
        name: "ShuffleCreditWindow",
        default: || Value::Int(0),
        owner: Owner::Core,
        runtime: true,
        min: 0,
    },
    // Gearshift's own: 1 = user code ignores ACLs, as in 1.2 (docs/security.md, "ACL").
    KeySpec {
        name: "ExecuteAsSuperuser",
        default: || Value::Int(0),
        owner: Owner::Core,
        runtime: true,
        min: 0,
    },
    KeySpec {
        name: "Plugin",
        default: || Value::List(Vec::new()),
        owner: Owner::Core,
        runtime: false,
        min: 0,
    },
    KeySpec {
        name: "PythonAttemptTraceback",
        default: || Value::Int(1),
        owner: Owner::Plugin,
        runtime: true,
        min: 0,
    },
    KeySpec {
        name: "OverridePythonAllocators",
        default: || Value::Int(1),
        owner: Owner::Plugin,
        runtime: false,
        min: 0,
    },
    KeySpec {
        name: "PythonInstallReqMaxIdleTime",
        default: || Value::Int(30000),
        owner: Owner::Plugin,
        runtime: true,
        min: 1,
    },
    KeySpec {
        name: "CreateVenv",
        default: || Value::Int(0),
        owner: Owner::Plugin,
        runtime: false,
        min: 0,
    },
    KeySpec {
        name: "DownloadDeps",
        default: || Value::Int(0),
        owner: Owner::Plugin,
        runtime: false,
        min: 0,
    },
    KeySpec {
        name: "ForeceDownloadDepsOnEnterprise",
        default: || Value::Int(0),
        owner: Owner::Plugin,
        runtime: false,
        min: 0,
    },
    KeySpec {
        name: "DependenciesUrl",
        default: || Value::Str(String::new()),
        owner: Owner::Plugin,
        runtime: false,
        min: 0,
    },
    KeySpec {
        name: "DependenciesSha256",
        default: || Value::Str(String::new()),
        owner: Owner::Plugin,
        runtime: false,
        min: 0,
    },
    KeySpec {
        name: "PythonInstallationDir",
        default: || Value::Str("/var/opt/redislabs/modules/rg".to_owned()),
        owner: Owner::Plugin,
        runtime: false,
        min: 0,
    },
];

/// The result of setting one key at runtime, as RG.CONFIGSET reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOutcome {
    Ok,
    SavedInExtra,
    Error(String),
}

/// The module's configuration.
#[derive(Debug)]
pub struct Config {
    values: Mutex<HashMap<&'static str, Value>>,
    extra: Mutex<HashMap<String, String>>,
    /// Overrides where the embedded Python finds its standard library.
    pub python_home: Option<String>,
}

fn spec_ci(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name.eq_ignore_ascii_case(key))
}

fn parse(spec: &KeySpec, value: &str, current: Option<&Value>) -> Option<Value> {
    match (spec.default)() {
        Value::Int(_) => value
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= spec.min)
            .map(Value::Int),
        Value::Str(_) => Some(Value::Str(value.to_owned())),
        Value::List(_) => {
            let mut l = match current {
                Some(Value::List(l)) => l.clone(),
                _ => Vec::new(),
            };
            l.push(value.to_owned());
            Some(Value::List(l))
        }
    }
}

impl Config {
    /// Parses `key value` pairs (names case-insensitive, any order); unknown keys go to the
    /// extra dictionary; any error fails loading, as in 1.2.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut cfg = Config {
            values: Mutex::new(KEYS.iter().map(|k| (k.name, (k.default)())).collect()),
            extra: Mutex::new(HashMap::new()),
            python_home: std::env::var("GEARSHIFT_PYTHON_HOME").ok(),
        };
        let mut it = args.iter();
        while let Some(key) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("Value was not given to {key}"))?;
            if key.eq_ignore_ascii_case("PythonHome") {
                cfg.python_home = Some(value.clone());
                continue;
            }
            match spec_ci(key) {
                Some(spec) => {
                    let mut values = cfg.values.lock().expect("config lock");
                    let v = parse(spec, value, values.get(spec.name))
                        .ok_or_else(|| format!("Failed setting config value {key}"))?;
                    values.insert(spec.name, v);
                }
                None => {
                    cfg.extra
                        .lock()
                        .expect("config lock")
                        .insert(key.clone(), value.clone());
                }
            }
        }
        Ok(cfg)
    }

    /// An integer key's value (0 for unknown or non-integer keys).
    pub fn int(&self, key: &str) -> i64 {
        match self.values.lock().expect("config lock").get(key) {
            Some(Value::Int(i)) => *i,
            _ => 0,
        }
    }

    /// A value of the extra dictionary.
    pub fn extra(&self, key: &str) -> Option<String> {
        self.extra.lock().expect("config lock").get(key).cloned()
    }

    /// RG.CONFIGGET of one key: built-in names are matched case-sensitively (1.2).
    pub fn get(&self, key: &str) -> Option<Value> {
        if let Some(v) = self.values.lock().expect("config lock").get(key) {
            return Some(v.clone());
        }
        self.extra(key).map(Value::Str)
    }

    /// RG.CONFIGSET of one key (names case-insensitive).
    pub fn set(&self, key: &str, value: &str) -> SetOutcome {
        let Some(spec) = spec_ci(key) else {
            self.extra
                .lock()
                .expect("config lock")
                .insert(key.to_owned(), value.to_owned());
            return SetOutcome::SavedInExtra;
        };
        if !spec.runtime {
            return SetOutcome::Error(match spec.owner {
                Owner::Core => format!("Config value {key} not modifiable at runtime"),
                Owner::Plugin => format!("{key} is not configurable at runtime"),
            });
        }
        let mut values = self.values.lock().expect("config lock");
        let Some(v) = parse(spec, value, values.get(spec.name)) else {
            return SetOutcome::Error(format!("Failed setting config value {key}"));
        };
        values.insert(spec.name, v);
        drop(values);
        if spec.owner == Owner::Plugin {
            // 1.2 hands plugin keys to the plugin and also keeps them in the extra dictionary.
            self.extra
                .lock()
                .expect("config lock")
                .insert(key.to_owned(), value.to_owned());
            return SetOutcome::SavedInExtra;
        }
        SetOutcome::Ok
    }

    /// Sets a built-in integer key while the module loads (`MODULE LOADEX ... CONFIG`),
    /// where even keys that are fixed at runtime may be set.
    pub fn set_at_load(&self, key: &'static str, value: i64) -> Result<(), String> {
        let spec = spec_ci(key).ok_or_else(|| format!("Unsupported config parameter: {key}"))?;
        let v = parse(spec, &value.to_string(), None)
            .ok_or_else(|| format!("Failed setting config value {key}"))?;
        self.values
            .lock()
            .expect("config lock")
            .insert(spec.name, v);
        Ok(())
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
        assert_eq!(c.get("ExecutionMaxIdleTime"), Some(Value::Int(5000)));
        assert_eq!(
            c.get("executionmaxidletime"),
            None,
            "CONFIGGET is case-sensitive"
        );
    }

    #[test]
    fn bad_values_fail_loading() {
        assert!(Config::from_args(&args(&["ExecutionThreads", "x"])).is_err());
        assert!(Config::from_args(&args(&["ExecutionThreads", "0"])).is_err());
        assert!(Config::from_args(&args(&["lonely"])).is_err());
    }

    #[test]
    fn runtime_rules() {
        let c = Config::from_args(&[]).unwrap();
        assert_eq!(c.set("maxexecutions", "10"), SetOutcome::Ok);
        assert_eq!(c.int("MaxExecutions"), 10);
        assert_eq!(
            c.set("ExecutionThreads", "4"),
            SetOutcome::Error("Config value ExecutionThreads not modifiable at runtime".into())
        );
        assert_eq!(c.set("foo", "bar"), SetOutcome::SavedInExtra);
        assert_eq!(c.get("foo"), Some(Value::Str("bar".into())));
        assert_eq!(
            c.set("MaxExecutions", "x"),
            SetOutcome::Error("Failed setting config value MaxExecutions".into())
        );
        assert_eq!(
            c.set("PythonAttemptTraceback", "0"),
            SetOutcome::SavedInExtra
        );
        assert_eq!(c.int("PythonAttemptTraceback"), 0);
        assert_eq!(
            c.set("CreateVenv", "1"),
            SetOutcome::Error("CreateVenv is not configurable at runtime".into())
        );
    }
}
