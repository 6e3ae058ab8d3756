//! The analysis engine: pure, fast, no I/O. Turns a piece of feedback text into what staff and the
//! weekly prioritisation need: is it valid, is it a duplicate, its sentiment, its issue types, its
//! trigger and a severity.

pub mod cleaning;
pub mod linear;
pub mod sentiment;
