"""What operators watch: metrics, request ids and the log."""
