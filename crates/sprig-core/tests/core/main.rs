//! Integration tests of the domain: rules, journals, projection, erasure, convergence.

mod erasure;
mod journal;
mod projection;
mod props;
mod rules;
mod validate;

use sprig_core::Timestamp;

pub(crate) const T0: Timestamp = Timestamp(1_750_000_000_000);

pub(crate) fn at(minutes: i64) -> Timestamp {
    Timestamp(T0.0 + minutes * 60_000)
}
