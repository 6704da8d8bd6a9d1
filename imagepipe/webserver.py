"""The web server: daphne, refusing request bodies that are too large or too slow while they arrive.

daphne (through twisted) reads a whole request body into a temporary file before the ASGI
application sees the request, so a size check in a view comes after the disk and the time are
spent, and a chunked body has no size to check at all. Here the request itself counts:
a ``Content-Length`` over ``MAX_REQUEST_BYTES`` is answered 413 before any of the body is read,
a body that grows past it is cut off with 413 as soon as it crosses, and a request whose headers
and body have not all arrived ``REQUEST_BODY_TIMEOUT_SECONDS`` after its first line gets 408.
Either way the connection is closed. A connection that sends nothing is closed a second after
that time (twisted's idle timeout, which daphne leaves at 12 hours): later than the request's
deadline, so a request that stalls always gets its 408 before its connection is dropped.

A body is never held whole in memory: twisted's own form parsing (a multipart body read whole and
split in memory, about 13 times its size) is off, and the body reaches the application a chunk at
a time from the file twisted spooled it to (``SpooledBody``).

Run it with daphne's own arguments: ``python -m imagepipe.webserver -b 0.0.0.0 -p 8000
imagepipe.asgi:application``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus
from typing import TYPE_CHECKING, BinaryIO

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from django.conf import settings

if TYPE_CHECKING:
    # What the reactor's callLater returns; its interface, IDelayedCall, is a zope Interface,
    # whose methods mypy can't read without the zope plugin.
    from twisted.internet.base import DelayedCall

logger = logging.getLogger("imagepipe.webserver")  # not __name__, which is "__main__" under -m


class LimitedRequest(WebRequest):
    """daphne's request with a size cap on its body and a deadline for its arrival."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # twisted parses a POSTed form into request.args, a multipart one whole in memory (an
        # 80 MB upload cost the web 1 GB); daphne never reads them: Django parses the body itself.
        # (The constructor's parsePOSTFormSubmission, which daphne does not pass.)
        self._parsePOSTFormSubmission = False
        self.received = 0
        self.refused = False
        # Created on the request line, so slow headers count against the deadline too.
        self.deadline: DelayedCall | None = self.channel.callLater(
            self.server.request_body_timeout, self.arrival_timed_out
        )

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.server.max_request_bytes:
            # Twisted sends "100 Continue" after this call when the client asked for one;
            # without the header it doesn't invite the body being refused.
            self.requestHeaders.removeHeader(b"Expect")
            self.refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, self.too_large_message())
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return  # the rest of a read that was already under way when the body was refused
        self.received += len(data)
        if self.received > self.server.max_request_bytes:
            self.refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, self.too_large_message())
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self.stop_deadline()
        if not self.refused:
            super().requestReceived(command, path, version)

    def connectionLost(self, reason) -> None:
        self.stop_deadline()
        super().connectionLost(reason)

    def arrival_timed_out(self) -> None:
        self.deadline = None
        timeout = self.server.request_body_timeout
        self.refuse(HTTPStatus.REQUEST_TIMEOUT, f"the request did not arrive within {timeout:g} seconds")

    def stop_deadline(self) -> None:
        if self.deadline is not None and self.deadline.active():
            self.deadline.cancel()
        self.deadline = None

    def too_large_message(self) -> str:
        return f"the request body is larger than {self.server.max_request_bytes} bytes"

    def refuse(self, status: HTTPStatus, message: str) -> None:
        """Answer with a JSON error and close, before the application has seen the request.

        Written to the transport as twisted answers a malformed request: the request line may
        not even be parsed yet, so the response machinery of ``Request`` can't be used.
        """
        self.refused = True
        self.stop_deadline()
        client = f"{self.client.host}:{self.client.port}" if hasattr(self.client, "host") else self.client
        logger.warning("%s to %s after %d body bytes: %s", status.value, client, self.received, message)
        body = json.dumps({"error": message}).encode()
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.channel.transport.write(head.encode("ascii") + body)
        self.channel.loseConnection()


class LimitedHTTPFactory(HTTPFactory):
    def __init__(self, server: LimitedServer) -> None:
        super().__init__(server)
        # Idle connections. Twisted times a request's arrival with this too, from its last byte;
        # one second more than the request's own deadline lets that answer 408 first.
        self.timeOut = server.request_body_timeout + 1

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = LimitedRequest
        return protocol


class SpooledBody(asyncio.Queue):
    """The application's input queue, holding a request body's chunks as places in the request's
    spooled body (twisted's temporary file past 100 kB), read as the application asks for each.

    daphne reads the whole body and queues every chunk before the application takes the first,
    so an upload of a few hundred megabytes was held in the web process whole. Here each chunk
    daphne queues is let go at once, and read again from the file when it is taken."""

    content: BinaryIO

    def put_nowait(self, item: dict) -> None:
        if item.get("type") == "http.request" and item.get("body"):
            length = len(item["body"])
            item = {**item, "body": (self.content.tell() - length, length)}  # just read from there
        super().put_nowait(item)

    def _get(self) -> dict:
        item = super()._get()
        if item.get("type") == "http.request" and isinstance(item.get("body"), tuple):
            offset, length = item["body"]
            try:
                self.content.seek(offset)
                item = {**item, "body": self.content.read(length)}
            except ValueError:  # the connection went and twisted closed the body
                item = {"type": "http.disconnect"}
        return item


class LimitedServer(Server):
    """daphne's Server serving HTTP through ``LimitedHTTPFactory``, with the limits from settings,
    handing request bodies to the application a chunk at a time (``SpooledBody``)."""

    def create_application(self, protocol, scope):
        queue = super().create_application(protocol, scope)
        if queue is not None and scope.get("type") == "http" and getattr(protocol, "content", None):
            queue.__class__ = SpooledBody  # the application was given its bound get(): same queue
            queue.content = protocol.content
        return queue

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_request_bytes: int = settings.MAX_REQUEST_BYTES
        self.request_body_timeout: float = settings.REQUEST_BODY_TIMEOUT_SECONDS

    # Server.run builds its factory as `self.http_factory = HTTPFactory(self)`, with no argument
    # to choose the class; this attribute swaps ours in as it is set, rather than patching the
    # name in daphne's module for every user of daphne in the process.
    @property
    def http_factory(self) -> HTTPFactory:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, _daphnes: HTTPFactory) -> None:
        self._http_factory = LimitedHTTPFactory(self)


class LimitedCommandLineInterface(CommandLineInterface):
    description = "ImagePipe's web server: daphne with request body limits"
    server_class = LimitedServer


if __name__ == "__main__":
    LimitedCommandLineInterface.entrypoint()
