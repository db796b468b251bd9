//! Parser directives (`# syntax=`, `# escape=`, `# check=`).
