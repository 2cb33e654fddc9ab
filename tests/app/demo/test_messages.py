"""The demonstration message board: body validation and its in-memory store."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import webtest

from okta_pyramid.app.demo.messages import MAX_BODY_BYTES, MAX_TEXT_LENGTH, MessageStore

from ...helpers import run_together
from ...issuer import LoopbackIssuer


@pytest.fixture
def writer(issuer: LoopbackIssuer) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.mint(scp=['messages:write', 'messages:read'])}"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b'{"text": NaN}', "not valid JSON"),
        (b'{"text": "\xff"}', "not valid JSON"),
        (b'"hello"', "must be a JSON object"),
        (b'["hello"]', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"{}", "'text' is required"),
        (b'{"txt": "hello"}', "'text' is required"),
        (b'{"text": null}', "must be a string"),
        (b'{"text": 42}', "must be a string"),
        (b'{"text": ["hello"]}', "must be a string"),
        (b'{"text": {"a": "b"}}', "must be a string"),
        (b'{"text": ""}', "must not be empty"),
        (b'{"text": "  \\n\\t "}', "must not be empty"),
        (b'{"text": "' + b"x" * (MAX_TEXT_LENGTH + 1) + b'"}', f"at most {MAX_TEXT_LENGTH}"),
    ],
)
def test_a_bad_body_is_a_clear_400(
    app: webtest.TestApp, writer: dict[str, str], body: bytes, fragment: str
) -> None:
    response = app.post(
        "/api/messages", body, headers=writer, content_type="application/json", status=400
    )
    assert response.json["error"] == "invalid_body"
    assert fragment in response.json["error_description"]
    assert app.get("/api/messages", headers=writer).json == {"messages": []}


# As deep as MAX_BODY_BYTES allows. How deep json.loads goes depends on the Python:
# up to 3.12 these bodies are too deep for it ("not valid JSON"), 3.13 parses them
# (then the shape is wrong). Either way the promise is the same clear 400.
DEPTH = 4000


@pytest.mark.parametrize(
    "body",
    [
        b"[" * DEPTH + b"]" * DEPTH,
        b'{"text": ' + b"[" * DEPTH + b"]" * DEPTH + b"}",
        b'{"a": ' * (DEPTH // 4) + b"1" + b"}" * (DEPTH // 4),
    ],
    ids=["arrays", "arrays-in-text", "objects"],
)
def test_a_deeply_nested_body_is_a_clear_400(
    app: webtest.TestApp, writer: dict[str, str], body: bytes
) -> None:
    assert len(body) <= MAX_BODY_BYTES
    response = app.post(
        "/api/messages", body, headers=writer, content_type="application/json", status=400
    )
    assert response.json["error"] == "invalid_body"
    description = response.json["error_description"]
    assert description.startswith(("the body ", "the field 'text' "))
    assert "Recursion" not in description and "\n" not in description
    assert app.get("/api/messages", headers=writer).json == {"messages": []}


def test_the_longest_text_is_accepted(app: webtest.TestApp, writer: dict[str, str]) -> None:
    text = "é" * MAX_TEXT_LENGTH
    assert (
        app.post_json("/api/messages", {"text": text}, headers=writer, status=201).json["text"]
        == text
    )


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
def test_a_body_that_is_not_json_is_415(
    app: webtest.TestApp, writer: dict[str, str], content_type: str
) -> None:
    response = app.post(
        "/api/messages", b'{"text": "hi"}', headers=writer, content_type=content_type, status=415
    )
    assert response.json["error"] == "unsupported_media_type"


def test_json_media_types_are_accepted(app: webtest.TestApp, writer: dict[str, str]) -> None:
    for content_type in (
        "application/json; charset=utf-8",
        "application/vnd.api+json",
        "Application/JSON",
    ):
        app.post(
            "/api/messages",
            b'{"text": "hi"}',
            headers=writer,
            content_type=content_type,
            status=201,
        )


def test_an_oversized_body_is_413_unread(app: webtest.TestApp, writer: dict[str, str]) -> None:
    body = b'{"text": "' + b" " * MAX_BODY_BYTES + b'x"}'
    response = app.post(
        "/api/messages", body, headers=writer, content_type="application/json", status=413
    )
    assert response.json["error"] == "payload_too_large"


def test_the_board_is_bounded_and_keeps_the_newest(
    app: webtest.TestApp, writer: dict[str, str]
) -> None:
    store: MessageStore = app.app.registry.message_store
    for n in range(store.capacity + 5):
        app.post_json("/api/messages", {"text": f"m{n}"}, headers=writer, status=201)
    messages = app.get("/api/messages", headers=writer).json["messages"]
    assert len(messages) == store.capacity
    assert messages[0]["text"] == "m5" and messages[-1]["text"] == f"m{store.capacity + 4}"


def test_the_store_is_thread_safe() -> None:
    store = MessageStore(capacity=10_000)
    ids: list[int] = []
    lock = threading.Lock()

    def post(n: int) -> None:
        made = [store.add(f"{n}-{i}", None).id for i in range(200)]
        with lock:
            ids.extend(made)

    run_together(post, [(n,) for n in range(8)])
    assert len(store) == 1600
    assert sorted(ids) == list(range(1, 1601))
    assert [m.id for m in store.all()] == sorted(m.id for m in store.all())


def test_each_app_has_its_own_board(make_app: Any, writer: dict[str, str]) -> None:
    first, second = make_app(), make_app()
    first.post_json("/api/messages", {"text": "hi"}, headers=writer, status=201)
    assert second.get("/api/messages", headers=writer).json == {"messages": []}
