//! The offline `feedback` command's library: every figure of the analysis on the team's data and
//! our labels (`evaluation`), and the training rows the `train-*` commands build.

pub mod corrections;
pub mod evaluation;
