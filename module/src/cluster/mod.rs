pub mod ask;
pub mod bus;
pub mod dist;
pub mod forward;
pub mod transport;
