"""Monitor: the log store (requests, guard events, feedback), API keys, model versions."""

from fondasi.monitor.keys import KeyStore
from fondasi.monitor.records import (
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
from fondasi.monitor.store import Store
from fondasi.monitor.versions import Versions
from fondasi.monitor.writer import LogWriter

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
