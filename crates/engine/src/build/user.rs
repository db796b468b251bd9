//! `USER` values to numeric ids: the sandbox crate's resolver (pure code,
//! shared so `WORKDIR`, `COPY --chown` and `RUN` agree).

pub use hoist_sandbox::user::{resolve, supplementary};
