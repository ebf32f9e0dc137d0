"""uvicorn's HTTP/1.1 protocol, answering a request it cannot parse in the broker's JSON error shape.

Such a request never reaches the app (and so neither `errors.py` nor the request id): uvicorn answers it
itself, by default with a plain-text 400 "Invalid HTTP request received." whatever the fault. The
common fault is a request head over `VIGIL_REST_MAX_HEAD_BYTES` (a long query string or cookie), which
h11 marks with status 431; the client should learn that, and the limit.
"""

from __future__ import annotations

import json
import sys

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from connectors.rest.middleware import head_too_large


class JsonErrorH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this only from its `except h11.RemoteProtocolError`, so the error being handled is h11's.
        error = sys.exc_info()[1]
        status = error.error_status_hint if isinstance(error, h11.RemoteProtocolError) else 400
        if status == 431:
            code = "head_too_large"
            detail = head_too_large(None, self.config.h11_max_incomplete_event_size or 0)
        else:
            code, detail = "malformed_http", f"not a valid HTTP/1.1 request: {error or msg}"
        self.logger.warning("refused with %d %s: %s", status, code, detail)
        body = json.dumps({"error": code, "detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        for event in (h11.Response(status_code=status, headers=headers), h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()
