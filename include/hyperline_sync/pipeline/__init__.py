"""The engine of one partition: transform, dedup, the sync loop, day planning and the circuit breaker."""
