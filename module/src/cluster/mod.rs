//! Redis Cluster support (docs/cluster.md): bus messages between shards, the shuffle
//! transport over them, asking and answering other shards, distributed runs and call
//! forwarding. Bottom to top: `bus`, `sweeper`, `handler` → `transport`, `ask` → `dist` →
//! `registered`, `answer`, `forward` → `dispatch`; `startup` reads the topology at start. Depends on `run`, `model` and `redis`; what it needs
//! of the application it reaches through `handler::ShardHandler`.

pub mod answer;
pub mod ask;
pub mod bus;
pub mod dispatch;
pub mod dist;
pub mod forward;
pub mod handler;
pub mod registered;
pub mod startup;
pub mod sweeper;
pub mod transport;
