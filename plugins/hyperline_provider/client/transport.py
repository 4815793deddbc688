"""One HTTP request to Hyperline over the hook's session, and the boundary where failures are scrubbed.

Every exception raised while making a request leaves this module as one of two kinds, with a message
that holds neither the API key nor any ``Bearer`` value (requests puts header values, the key
included, into some messages, e.g. ``InvalidHeader``):

- :class:`Dropped`: no answer, worth resending (refused or dropped connection, timeout, answer cut short);
- :class:`Unsendable`: the request cannot be made at all (invalid URL or header...); resending cannot help.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
import urllib3

from hyperline_provider.client.answers import Reply
from hyperline_provider.client.redaction import redact

_DROPPED = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class Dropped(Exception):
    """No answer came; the message is the failure's type name (e.g. ``ReadTimeout``)."""


class Unsendable(Exception):
    """The request could not be made; the message is redacted."""


class Transport:
    """Sends requests over ``session``; holds the key only to scrub it out of failures."""

    def __init__(self, session: requests.Session, timeout: float, api_key: str) -> None:
        self.session = session
        self.timeout = timeout
        self._api_key = api_key

    def redact(self, text: str) -> str:
        return redact(text, self._api_key)

    def post(self, url: str, body: bytes) -> Reply:
        """POST ``body`` and read the whole answer."""
        return self._request("POST", url, data=body, stream=True)

    def get(self, url: str, params: Mapping[str, Any]) -> Reply:
        return self._request("GET", url, params=params, stream=True)

    def delete(self, url: str, body: bytes) -> Reply:
        return self._request("DELETE", url, data=body, stream=True)

    def _request(self, method: str, url: str, **kwargs: Any) -> Reply:
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            content = _read_all(response)
        except _DROPPED as exc:
            raise Dropped(type(exc).__name__) from None  # requests' messages may hold the key
        except Exception as exc:
            raise Unsendable(f"{type(exc).__name__}: {self.redact(str(exc))}") from None
        return Reply(response.status_code, response.headers, content, response.reason)

    def close(self) -> None:
        self.session.close()


def _read_all(response: requests.Response) -> bytes:
    """Read a streamed answer in one call (requests reads 10 KB at a time, which costs ~3x the CPU
    on 650 KB answers) and give the connection back for keep-alive. A broken read counts as a
    dropped connection."""
    try:
        content = response.raw.read(decode_content=True)
    except urllib3.exceptions.HTTPError as exc:
        response.close()
        raise requests.ConnectionError(f"answer cut short: {type(exc).__name__}") from exc
    response.raw.release_conn()
    return content
