//! Build operations the solver runs. [`mod@file`]: COPY and ADD.

pub mod file;
