//! Build operations the solver runs. [`file`]: COPY and ADD.

pub mod file;
