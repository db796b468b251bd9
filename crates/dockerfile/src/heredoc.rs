//! Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`) and bodies.
