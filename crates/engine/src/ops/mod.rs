//! Build operations the solver runs. [`mod@file`]: COPY and ADD; [`run`]: RUN in the sandbox.

pub mod file;
pub mod run;
