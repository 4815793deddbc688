"""The Hyperline ingest client the hook hands its session to: batching and bisection (``batching``),
the request boundary (``transport``), what an answer is (``answers.classify``), what to do about it
(``retry.RetryPolicy``), and the send loop itself (``client.HyperlineClient``)."""

from hyperline_provider.client.client import CONNECTION_TEST_EVENT_TYPE, HyperlineClient
from hyperline_provider.client.queries import EventPage, EventQueries
from hyperline_provider.client.retry import RetryPolicy
from hyperline_provider.client.transport import Transport

__all__ = ["CONNECTION_TEST_EVENT_TYPE", "EventPage", "EventQueries", "HyperlineClient", "RetryPolicy", "Transport"]
