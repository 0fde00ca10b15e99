"""Code interpreter containers: `/v1/containers` and their files, and the live sandboxed
processes the code_interpreter tool runs code in."""
