"""A streamed chat completion read straight off the wire, for the sync and async clients.

Sync: the SDK makes the request (endpoint, key, headers, timeout, and its typed errors for
a refused one) and hands back the raw response. Async (the server's path): one pooled
aiohttp session per event loop posts the body itself, with the SDK's key and endpoint. The
SDK's request machinery cost a third of a millisecond of CPU per request on a proxied call
(``bench/serve_proxy.py``), and httpx's connection pool, which checks every pooled
connection on every request, was 40% of the server's CPU at 16 clients; aiohttp's
connector hands out a free connection without that scan. Either way the events are read as
plain JSON, not first validated into pydantic models, which cost more than the rest of the
request.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from fondasi.backends.hosted_dialect import CallAssembler, finish_for
from fondasi.types import Chunk, TokenLogprob, TopLogprob, Usage

if TYPE_CHECKING:
    from fondasi.backends.openai_api import OpenAIModel
    from fondasi.backends.remote import ProviderError

PATH = "/chat/completions"


class WireResponse:
    """An aiohttp response read the way the callers read an httpx one: a status, headers,
    the whole body or its lines, and ``aclose``; a connection that breaks while reading is
    the httpx error the sync path meets for the same break."""

    def __init__(self, response: Any) -> None:
        self.raw = response
        self.status_code: int = response.status
        self.headers = response.headers

    async def aread(self) -> bytes:
        """The whole body."""
        with _read_errors():
            body: bytes = await self.raw.read()
        return body

    async def aiter_lines(self) -> AsyncIterator[str]:
        """The body line by line, without line endings."""
        with _read_errors():
            async for line in self.raw.content:
                yield line.decode("utf-8").rstrip("\r\n")

    async def aclose(self) -> None:
        """Give the connection back when the body was read whole, else drop it."""
        if self.raw.content.at_eof():
            self.raw.release()
        else:
            self.raw.close()


INCOMPLETE = (
    "peer closed connection without sending complete message body (incomplete chunked read)"
)
DISCONNECTED = "Server disconnected without sending a response."


@contextlib.contextmanager
def _read_errors() -> Iterator[None]:
    """aiohttp's read failures as the httpx errors the sync path meets for the same break,
    in httpx's words, so both paths report a broken answer alike."""
    import aiohttp
    import httpx

    try:
        yield
    except aiohttp.ClientPayloadError as exc:
        raise httpx.RemoteProtocolError(INCOMPLETE) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpx.RemoteProtocolError(DISCONNECTED) from exc
    except TimeoutError as exc:
        raise httpx.ReadTimeout("The read operation timed out") from exc
    except aiohttp.ClientError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc


class AsyncWire:
    """What an OpenAI-wire model holds per event loop: the SDK's async client (embeddings)
    and a pooled aiohttp session for chat, on the same endpoint, key and timeout."""

    def __init__(self, sdk: Any, session: Any, url: str, headers: dict[str, str]) -> None:
        self.sdk = sdk
        self.session = session
        self.url = url
        self.headers = headers

    @classmethod
    def twin(cls, client: Any, sdk: Any) -> AsyncWire:
        """The pair for the sync SDK ``client`` (its key stays in these clients only); made
        in the event loop that will use it."""
        import aiohttp

        headers = {"Content-Type": "application/json"}
        if client.api_key:
            headers["Authorization"] = f"Bearer {client.api_key}"
        for name, value in (
            ("OpenAI-Organization", client.organization),
            ("OpenAI-Project", client.project),
        ):
            if value:
                headers[name] = value
        timeout = client.timeout if isinstance(client.timeout, int | float) else None
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, limit_per_host=0),
            # Connecting, then each read, may take ``timeout``: a long stream is not cut.
            timeout=aiohttp.ClientTimeout(
                total=None, connect=min(timeout or 10.0, 10.0), sock_read=timeout
            ),
            trust_env=False,
        )
        return cls(sdk, session, str(client.base_url).rstrip("/") + PATH, headers)

    async def post(self, body: dict[str, Any], provider: str, key_env: Any) -> WireResponse:
        """The response to ``body``, its body not yet read (events, or one JSON answer
        when ``body`` asks for no stream); a refusal or a failure to connect as a
        ``ProviderError`` like the SDK's own would translate to."""
        import aiohttp

        from fondasi.backends.hosted import trace_into
        from fondasi.backends.openai_api import status_error
        from fondasi.backends.remote import ProviderError

        content = json.dumps(body, ensure_ascii=False).encode()
        headers = dict(self.headers)
        headers["Accept"] = "text/event-stream" if body.get("stream") else "application/json"
        trace_into(headers)
        try:
            raw = await self.session.post(self.url, data=content, headers=headers)
        except TimeoutError:
            raise ProviderError(provider, "the request timed out", retryable=True) from None
        except aiohttp.ClientError as exc:
            why = str(exc) or type(exc).__name__
            raise ProviderError(
                provider, f"cannot reach the server ({why})", retryable=True
            ) from None
        response = WireResponse(raw)
        if response.status_code >= 400:
            try:
                text = await response.aread()
            except Exception:
                text = b""
            finally:
                await response.aclose()
            try:
                detail: Any = json.loads(text)
            except ValueError:
                detail = text.decode("utf-8", "replace")[:500]
            raise status_error(provider, response.status_code, detail, response.headers, key_env)
        return response

    async def close(self) -> None:
        """Close both clients and their connections."""
        await self.session.close()
        await self.sdk.close()


def body_for(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON body: unset options are left out rather than sent as null (some compatible
    servers refuse a null ``stop`` or ``seed``)."""
    return {name: value for name, value in request.items() if value is not None}


class Events:
    """Server-sent events, line by line, as the JSON objects their data holds."""

    def __init__(self) -> None:
        self.data: list[str] = []
        self.done = False

    def feed(self, line: str) -> dict[str, Any] | None:
        """The event a blank line completes, else None; ``[DONE]`` ends the stream."""
        if line.startswith("data:"):
            self.data.append(line[6:] if line.startswith("data: ") else line[5:])
            return None
        if line or not self.data:  # event:, id:, retry: or a comment; or a stray blank
            return None
        data, self.data = "\n".join(self.data), []
        if data.strip() == "[DONE]":
            self.done = True
            return None
        event = json.loads(data)
        if not isinstance(event, dict):
            raise ValueError(f"an event that is not a JSON object: {data[:200]}")
        if event.get("error"):  # a failure after the 200, told in the stream
            import openai

            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise openai.APIError(str(message or error), request=None, body=error)  # type: ignore[arg-type]
        return event

    # After [DONE] the rest of the body is still read (not parsed): a response closed
    # before its end closes its connection, and the next request would open a new one.

    def read(self, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
        """Every event in ``lines``, up to ``[DONE]``."""
        for line in lines:
            event = None if self.done else self.feed(line)
            if event is not None:
                yield event
        last = None if self.done else self.feed("")  # a last event with no blank line
        if last is not None:
            yield last

    async def aread(self, lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
        """``read`` for an async response."""
        async for line in lines:
            event = None if self.done else self.feed(line)
            if event is not None:
                yield event
        last = None if self.done else self.feed("")
        if last is not None:
            yield last


def as_event(raw: bytes) -> dict[str, Any]:
    """A whole chat completion (``stream: false``) as the one event that says the same:
    each choice's message as its delta, its tool calls numbered as streamed ones are."""
    answer = json.loads(raw)
    if not isinstance(answer, dict):
        raise ValueError(f"an answer that is not a JSON object: {raw[:200]!r}")
    if answer.get("error"):  # some compatible servers report a failure with a 200
        import openai

        error = answer["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise openai.APIError(str(message or error), request=None, body=error)  # type: ignore[arg-type]
    choices = []
    for choice in answer.get("choices") or []:
        delta = dict(choice.get("message") or {})
        calls = delta.get("tool_calls") or []
        delta["tool_calls"] = [{**call, "index": i} for i, call in enumerate(calls)]
        choices.append({**choice, "delta": delta})
    return {**answer, "choices": choices}


def logprobs_of(choice_logprobs: Any) -> list[TokenLogprob] | None:
    """A streamed choice's ``logprobs.content`` as fondasi's token log-probabilities."""
    content = choice_logprobs.get("content") if isinstance(choice_logprobs, dict) else None
    if not content:
        return None
    return [
        TokenLogprob(
            token=item["token"],
            logprob=item["logprob"],
            bytes=item.get("bytes"),
            top_logprobs=[
                TopLogprob(token=top["token"], logprob=top["logprob"], bytes=top.get("bytes"))
                for top in item.get("top_logprobs") or []
            ],
        )
        for item in content
    ]


class Reader:
    """One streamed answer read event by event."""

    def __init__(self, model: OpenAIModel) -> None:
        self.model = model
        self.parts: list[str] = []
        self.calls = CallAssembler(model.provider)
        self.length = False
        self.usage: Usage | None = None

    def feed(self, event: dict[str, Any]) -> Iterator[Chunk]:
        """The chunks one event makes (tool-call fragments are only kept)."""
        usage = event.get("usage")
        if usage:
            self.usage = Usage(
                prompt_tokens=usage.get("prompt_tokens") or 0,
                completion_tokens=usage.get("completion_tokens") or 0,
            )
        for answer in event.get("choices") or []:
            delta = answer.get("delta") or {}
            for fragment in delta.get("tool_calls") or []:
                function = fragment.get("function") or {}
                index = fragment.get("index", 0)
                self.calls.add(index, function.get("arguments"), id=fragment.get("id"))
                self.calls.name(index, function.get("name"))
            text = delta.get("content")
            logprobs = logprobs_of(answer.get("logprobs"))
            if text or logprobs:
                self.parts.append(text or "")
                yield Chunk(text=text or "", logprobs=logprobs)
            if answer.get("finish_reason") == "length":
                self.length = True

    def broke_off(self, exc: Exception, *, whole: bool = False) -> ProviderError:
        """A failure mid-stream (or while reading a whole answer), as the error to raise."""
        from fondasi.backends.openai_api import translate
        from fondasi.backends.remote import ProviderError

        error = translate(self.model.provider, exc, self.model.key_env)
        if whole:  # the answer came in one piece: what broke is reading or parsing it
            return error
        return ProviderError(self.model.provider, f"the stream broke off: {error}")

    def last(self, messages: list[dict[str, Any]]) -> Chunk:
        """The final chunk: whole tool calls, usage (counted here if none came), finish."""
        made = self.calls.finish_all()
        usage = self.usage
        if usage is None:  # some compatible servers send no usage: count it ourselves
            prompt = "\n".join(m["content"] for m in messages if isinstance(m["content"], str))
            usage = self.model.estimated_usage(prompt, "".join(self.parts))
        return Chunk(tool_calls=made, usage=usage, finish_reason=finish_for(made, self.length))


__all__ = ["PATH", "AsyncWire", "Events", "Reader", "as_event", "body_for", "logprobs_of"]
