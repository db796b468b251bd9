//! The hostile-input suite (docs/security.md): what an untrusted
//! Dockerfile, context or base image may do, tried for real, as root and
//! as an unprivileged user made by the set-up, with a canary tree outside
//! the store that must come out unchanged.
//!
//! Without root the tests that need users are skipped (they cannot make
//! them); CI runs as root.

use hoist_test_support::lab;

mod extract;
mod huge_inputs;
mod store_access;
mod support;
mod user_db;
