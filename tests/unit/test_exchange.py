"""One HTTP/1.1 exchange on a socket: the request as written, the answer as read.

The answer is written into one end of a socket pair before the request is
sent on the other, so each case is exactly the bytes a server would send.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator

import pytest

from stowage.drivers.exchange import Headers, exchange


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    client, server = socket.socketpair()
    client.settimeout(5)
    server.settimeout(5)
    yield client, server
    client.close()
    server.close()


def _request(server: socket.socket) -> bytes:
    """Return what the client sent (it has sent it all by now)."""
    server.setblocking(False)
    data = b""
    try:
        while chunk := server.recv(65536):
            data += chunk
    except BlockingIOError:
        pass
    return data


def test_a_request_is_written_whole_and_a_sized_answer_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    server.sendall(
        b'HTTP/1.1 200 OK\r\nETag: "abc"\r\nx-amz-meta-A: 1\r\nX-AMZ-META-a: 2\r\n'
        b"Content-Length: 5\r\n\r\nhello"
    )
    answer = exchange(client, "PUT", "/bucket/key?partNumber=1", {"Host": "h"}, b"body")
    assert (answer.status, answer.body, answer.will_close) == (200, b"hello", False)
    assert answer.headers["etag"] == '"abc"'
    assert answer.headers.get("X-Amz-Meta-A") == "1, 2"  # repeated headers joined
    assert _request(server) == (
        b"PUT /bucket/key?partNumber=1 HTTP/1.1\r\nHost: h\r\nAccept-Encoding: identity\r\n"
        b"Content-Length: 4\r\n\r\nbody"
    )


def test_pieces_go_out_one_after_another_under_one_length(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    received = bytearray()

    def serve() -> None:  # reads as the client writes: the request outgrows the socket's buffer
        while not received.endswith(b"-tail"):
            received.extend(server.recv(65536))
        server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve)
    thread.start()
    middle = memoryview(b"m" * 70_000)  # past the size sent with the headers in one piece
    exchange(client, "POST", "/u", {"Accept-Encoding": "gzip"}, (b"head-", middle, b"-tail"))
    thread.join()
    sent = bytes(received)
    assert sent.startswith(
        b"POST /u HTTP/1.1\r\nAccept-Encoding: gzip\r\nContent-Length: 70010\r\n\r\nhead-m"
    )  # the caller's Accept-Encoding, and no other
    assert sent.endswith(b"m-tail")
    assert len(sent.split(b"\r\n\r\n", 1)[1]) == 70_010


def test_an_empty_post_says_its_length(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    server.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    answer = exchange(client, "POST", "/b/k?uploads", {}, None)
    assert (answer.status, answer.body) == (204, b"")
    assert b"\r\nContent-Length: 0\r\n" in _request(server)


def test_a_chunked_answer_is_joined(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    server.sendall(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"
    )
    answer = exchange(client, "GET", "/b", {}, None)
    assert answer.body == b"hello, world"
    assert not answer.will_close


def test_interim_answers_are_skipped_and_head_reads_no_body(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    server.sendall(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n"
    )
    answer = exchange(client, "HEAD", "/b/k", {}, None)
    assert (answer.status, answer.body) == (200, b"")
    assert answer.headers["content-length"] == "1048576"


def test_an_answer_without_length_runs_to_the_close(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    server.sendall(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    server.shutdown(socket.SHUT_WR)
    answer = exchange(client, "GET", "/b", {}, None)
    assert (answer.body, answer.will_close) == (b"all of it", True)


@pytest.mark.parametrize(
    ("answer", "closes"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", True),
    ],
)
def test_the_answer_says_whether_the_connection_stays_open(
    pair: tuple[socket.socket, socket.socket], answer: bytes, closes: bool
) -> None:
    client, server = pair
    server.sendall(answer)
    assert exchange(client, "GET", "/b", {}, None).will_close is closes


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        # What a kept-alive connection the server had dropped looks like: sent again once.
        (b"", http.client.RemoteDisconnected),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http.client.IncompleteRead),
        (b"HTTP/1.1 200 OK\r\nContent-", http.client.IncompleteRead),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            http.client.IncompleteRead,
        ),
        (b"SPDY/3 200 OK\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 OK\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", http.client.HTTPException),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            http.client.HTTPException,
        ),
    ],
    ids=["none", "cut-body", "cut-header", "cut-chunk", "protocol", "status", "length", "chunk"],
)
def test_a_cut_or_malformed_answer_is_an_http_client_error(
    pair: tuple[socket.socket, socket.socket], answer: bytes, error: type[Exception]
) -> None:
    """The errors http.client raises, which the S3 error table already translates."""
    client, server = pair
    server.sendall(answer)
    server.shutdown(socket.SHUT_WR)
    with pytest.raises(error):
        exchange(client, "GET", "/b", {}, None)


@pytest.mark.parametrize("header", [{"x-amz-meta-a": "1\r\nEvil: yes"}, {"a\nb": "1"}])
def test_a_header_that_would_break_the_request_is_refused(
    pair: tuple[socket.socket, socket.socket], header: dict[str, str]
) -> None:
    client, server = pair
    with pytest.raises(ValueError, match="line break"):
        exchange(client, "PUT", "/b/k", header, b"")
    assert _request(server) == b""


def test_a_large_body_is_sent_whole_without_a_copy(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    body = bytearray(b"x" * (3 * 1024 * 1024))
    received = bytearray()

    def serve() -> None:
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < len(body):
            received.extend(server.recv(1 << 20))
        server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve)
    thread.start()
    answer = exchange(client, "PUT", "/b/k", {}, memoryview(body))
    thread.join()
    assert answer.status == 200
    head, sent = bytes(received).split(b"\r\n\r\n", 1)
    assert b"Content-Length: 3145728" in head
    assert sent == body


def test_headers_look_up_any_case_and_list_names_as_sent() -> None:
    headers = Headers([("Content-Type", "text/plain"), ("ETag", '"e"')])
    assert headers["content-type"] == headers["CONTENT-TYPE"] == "text/plain"
    assert list(headers) == ["Content-Type", "ETag"]
    assert dict(headers.items()) == {"Content-Type": "text/plain", "ETag": '"e"'}
    assert "etag" in headers
    assert "Range" not in headers
    assert len(headers) == 2


@pytest.mark.parametrize(
    "declaration",
    ['xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', 'xmlns="urn:other"', ""],
    ids=["s3", "other", "none"],
)
def test_an_answer_is_read_in_whatever_namespace_it_declares(declaration: str) -> None:
    import xml.etree.ElementTree as ET

    from stowage.drivers.s3.rest import find_all, find_text

    root = ET.fromstring(
        f"<ListBucketResult {declaration}><IsTruncated>false</IsTruncated>"
        "<Contents><Key>a</Key></Contents><Contents><Key>b</Key></Contents></ListBucketResult>"
    )
    assert find_text(root, "IsTruncated") == "false"
    assert find_text(root, "NextContinuationToken") == ""
    assert [find_text(entry, "Key") for entry in find_all(root, "Contents")] == ["a", "b"]
    assert find_all(root, "CommonPrefixes") == []
