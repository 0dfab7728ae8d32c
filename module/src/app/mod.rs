//! The application: running RG.PYEXECUTE scripts, persistence, the local halves of
//! cluster-wide commands, the services the Python layer gets, and INFO. Depends on
//! `cluster`, `run`, `model` and `redis`.

pub mod info;
pub mod install;
pub mod load;
pub mod local;
pub mod nested;
pub mod persist;
pub mod pickle_hint;
pub mod requirements;
pub mod scripts;
pub mod services;
pub mod step_register;
