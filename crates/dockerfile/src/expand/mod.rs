//! BuildKit's shell-word expansion.
