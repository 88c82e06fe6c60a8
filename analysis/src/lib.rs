//! migbench-analysis: turns results directories into reports. Loading
//! ([`load`], [`frame`] with polars), pure statistics ([`stats`]), grouping
//! ([`dims`], [`summary`]), drawing ([`charts`], one module per chart kind),
//! presentation ([`report`], [`compare`], [`export`]).

pub mod by_dim;
pub mod charts;
pub mod compare;
pub mod dims;
pub mod export;
pub mod frame;
pub mod gate;
pub mod load;
pub mod report;
pub mod stats;
pub mod summary;
pub mod synth;
