//! Unit tests for the expander.
