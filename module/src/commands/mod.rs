//! RG.* commands, one file each.

pub mod pyexecute;
