"""Where code of the code_interpreter tool runs: one stateful Python process per container,
behind a small interface (bubblewrap today; gVisor, nsjail or a remote runner later)."""
