"""What every hosted-API backend shares, so that each provider module keeps only its wire.

    Endpoint        a provider's name, key, key variables, base URL and timeout, from settings
    HostedModel     the loaded model: its SDK client, endpoint name, offline token counts
    HostedFactory   claims ``api`` specs of one adapter; checks the SDK, reads the endpoint

The key is a ``SecretStr`` from the environment or config.toml, read once here and handed
to the SDK; no backend keeps it, and errors name the variables that hold it, never its text.
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from fondasi.backends.base import Backend, Capability, ModelSpec
from fondasi.backends.remote import ProviderError
from fondasi.backends.tokens import count_tokens
from fondasi.errors import BadInputError
from fondasi.extras import require
from fondasi.types import Usage

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from pydantic import SecretStr

    from fondasi.providers import ProviderConfig
    from fondasi.settings import Settings

NO_KEY = "not-needed"  # sent to servers that need no key; an explicit value stops SDKs
# reading credentials from the environment on their own


@dataclass(frozen=True)
class Endpoint:
    """Where one provider is and how to authenticate to it, as settings say."""

    provider: str
    key: SecretStr | None  # None: a local server that needs none
    key_env: tuple[str, ...]
    base_url: str | None  # None: the SDK's own default
    timeout_s: float

    @classmethod
    def of(cls, name: str, config: ProviderConfig) -> Endpoint:
        """The endpoint a provider's config describes; a missing key names its variables."""
        return cls(
            name, config.require_key(name), tuple(config.key_env), config.url(), config.timeout_s
        )

    @classmethod
    def from_settings(cls, settings: Settings, name: str) -> Endpoint:
        """The endpoint of the provider ``name`` in ``settings`` (built-in or configured)."""
        return cls.of(name, settings.provider(name))

    def api_key(self) -> str:
        """The key's text, for the SDK's constructor only."""
        return self.key.get_secret_value() if self.key else NO_KEY


def trace_into(headers: Any) -> None:
    """The current trace's W3C ``traceparent`` added to a request's ``headers``.

    The model call's span is current while a hosted request is made
    (``fondasi.models.tracing``), so the provider (or a proxy in front of it) continues
    the same trace. Without OpenTelemetry, or with no span current, nothing is added.
    """
    if _inject is not None:
        _inject(headers)


async def trace_headers(request: Any) -> None:
    """``trace_into`` as an httpx request hook."""
    trace_into(request.headers)


try:
    from opentelemetry.propagate import inject as _inject
except ImportError:  # the core install has no OpenTelemetry
    _inject = None  # type: ignore[assignment]


_WHOLE: ContextVar[bool] = ContextVar("fondasi_whole_answers", default=False)


@contextmanager
def whole_answers() -> Iterator[None]:
    """Within it, the caller reads each answer whole (a non-streamed server request).

    An adapter whose API answers in one response as well as in events may then ask for
    the one response: the same text, calls, log-probabilities and usage, without the
    upstream writing and fondasi parsing an event per token (``OpenAIModel.astream``).
    Chunks still come out of ``astream``; there are just fewer of them.
    """
    token = _WHOLE.set(True)
    try:
        yield
    finally:
        _WHOLE.reset(token)


def wants_whole() -> bool:
    """Whether the running call sits inside ``whole_answers``."""
    return _WHOLE.get()


def async_twin(sync: Any, make: Callable[..., Any], http: Callable[..., Any]) -> Any:
    """An async client of a Stainless-made SDK (openai, anthropic) on ``sync``'s endpoint,
    key and timeout, with no SDK retries and trace headers on every request."""
    return make(
        api_key=sync.api_key,
        base_url=sync.base_url,
        timeout=sync.timeout,
        max_retries=0,
        http_client=http(event_hooks={"request": [trace_headers]}),
    )


def key_refused(
    provider: str, key_env: Sequence[str], *, why: str | None = None, status: int | None = 401
) -> ProviderError:
    """A refused key as a ProviderError naming where the key comes from."""
    where = " or ".join(key_env) or f"[providers.{provider}] api_key in config.toml"
    reason = f" ({why})" if why else ""
    return ProviderError(provider, f"the API key was refused{reason}; check {where}", status=status)


class HostedModel:
    """A model behind a hosted API; subclasses add the wire format (stream, embed ...)."""

    client: Any  # the provider's SDK client; subclasses name its type
    native_json: ClassVar[bool] = False  # whether the API constrains output to JSON itself
    # The SDK's async clients, one per event loop: a client's connections belong to the
    # loop that opened them (a server has one loop; each asyncio.run makes a new one).
    _async: weakref.WeakKeyDictionary[Any, Any] | None = None

    def __init__(
        self,
        client: Any,
        model: str,
        endpoint: Endpoint,
        capabilities: frozenset[Capability],
        url: str,
    ) -> None:
        self.client = client
        self.model = model
        self.provider = endpoint.provider
        self.key_env = list(endpoint.key_env)
        self.capabilities = capabilities
        # Names the endpoint for retries and circuit breaking (fondasi.models.load).
        self.remote_endpoint = f"{endpoint.provider}:{url}"

    def async_client(self) -> Any:
        """The SDK's async client for the running event loop, made on first use."""
        import asyncio

        loop = asyncio.get_running_loop()
        if self._async is None:
            self._async = weakref.WeakKeyDictionary()
        # A client's pooled connections hold its loop, so the weak key alone never lets a
        # client go: drop those of ended loops (one per asyncio.run not followed by aclose).
        for ended in [known for known in self._async if known.is_closed()]:
            del self._async[ended]
        client = self._async.get(loop)
        if client is None:
            client = self._async[loop] = self.open_async()
        return client

    def open_async(self) -> Any:
        """A new async client on the same endpoint (adapters with an async path say how)."""
        raise NotImplementedError(f"{type(self).__name__} has no async client")

    async def close_async(self, client: Any) -> None:
        """Close one async client and its connections."""
        await client.close()

    async def aclose(self) -> None:
        """Close the running loop's async client, if one was made (before the loop ends)."""
        import asyncio

        clients = self._async if self._async is not None else {}
        client = clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await self.close_async(client)

    def count_tokens(self, text: str) -> int:
        """Tokens by the bundled cl100k tokenizer (the provider's own is not offline)."""
        return count_tokens(text)

    def estimated_usage(self, prompt: str, answer: str) -> Usage:
        """Usage counted here, for when the API reports none."""
        return Usage(prompt_tokens=count_tokens(prompt), completion_tokens=count_tokens(answer))

    def normalised_rows(
        self, vectors: Sequence[Sequence[float]], texts: int
    ) -> npt.NDArray[np.float32]:
        """The API's embeddings as L2-normalised float32 rows, one per text, or an error."""
        import numpy as np

        array = np.asarray(vectors, dtype=np.float32)
        if len(vectors) != texts or array.ndim != 2 or array.shape[1] == 0:
            raise ProviderError(self.provider, f"returned {len(vectors)} vectors for {texts} texts")
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        normalised: npt.NDArray[np.float32] = (array / np.clip(norms, 1e-12, None)).astype(
            np.float32
        )
        return normalised


def nothing_to_embed(texts: Sequence[str]) -> None:
    """Refuse an empty list before any request is made."""
    if not texts:
        raise BadInputError("nothing to embed: the list of texts is empty")


class HostedFactory(ABC):
    """Loads models of one adapter: checks the SDK is installed, then reads the endpoint."""

    name: str
    adapter: str  # the ProviderConfig.adapter this factory serves
    sdk: tuple[str, str, str]  # (module, extra, what for): the lazy import's message
    priority = 10

    def claims(self, spec: ModelSpec) -> bool:
        """API specs of this adapter's providers."""
        return spec.format == "api" and spec.extra.get("adapter") == self.adapter

    def load(self, spec: ModelSpec, settings: Settings) -> Backend:
        """A client with the provider's URL, key and timeout; retries are fondasi's."""
        require(*self.sdk)
        return self.connect(spec, Endpoint.from_settings(settings, spec.extra["provider"]))

    @abstractmethod
    def connect(self, spec: ModelSpec, endpoint: Endpoint) -> Backend:
        """The provider's SDK client and model for ``spec`` (the SDK is importable)."""
