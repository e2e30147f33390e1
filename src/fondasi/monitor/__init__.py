"""Monitor: the log store (requests, guard events, feedback), API keys, model versions."""

from fondasi.extras import require

# Every command that reaches the store (serve, keys, logs, stats, spend ...) comes through
# here first: without the serve extra, one clear error naming it.
require("sqlalchemy", "serve", "the log store, API keys and model versions")

from fondasi.monitor.keys import KeyStore  # noqa: E402
from fondasi.monitor.records import (  # noqa: E402
    Alias,
    AliasTarget,
    Bucket,
    FeedbackRecord,
    FeedbackRow,
    GuardEventRecord,
    GuardEventRow,
    KeyInfo,
    ModelSummary,
    RequestRecord,
    Sample,
)
from fondasi.monitor.store import Store  # noqa: E402
from fondasi.monitor.versions import Versions  # noqa: E402
from fondasi.monitor.writer import LogWriter  # noqa: E402

__all__ = [
    "Alias",
    "AliasTarget",
    "Bucket",
    "FeedbackRecord",
    "FeedbackRow",
    "GuardEventRecord",
    "GuardEventRow",
    "KeyInfo",
    "KeyStore",
    "LogWriter",
    "ModelSummary",
    "RequestRecord",
    "Sample",
    "Store",
    "Versions",
]
