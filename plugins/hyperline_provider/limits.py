"""Hyperline's ingest API limits, and the client's own bounds derived from them, stated once."""

from __future__ import annotations

MAX_BATCH_EVENTS = 5000  # maxItems of POST /v1/events/batch
# Hyperline documents no byte limit; 5 MiB keeps a 5000-event batch of ordinary events whole while
# bounding memory and the cost of a resend. A 413 still works: the batch is bisected.
MAX_BATCH_BYTES = 5 * 1024 * 1024
MAX_TAKE = 100  # GET /v1/events: take is 0..100
RATE_LIMIT_REQUESTS = 1000  # per API key ...
RATE_LIMIT_WINDOW_SECONDS = 10  # ... in this many seconds; beyond it Hyperline answers 429
DEFAULT_TIMEOUT = 60.0  # seconds per request when the connection sets none

BATCH_ENDPOINT = "v1/events/batch"
LIST_ENDPOINT = "v1/events"
