"""Guard: safety filters on model input and output, and counterfactual bias checks.

``load_policy(settings, name)`` gives a ``Policy`` built from ``[guard]`` in config.toml (or
a built-in one); ``policy.wrap(model)`` guards every call of a model; ``policy.scan`` and
``policy.redact`` work on plain text. Filters register with ``@register(name)``.
"""

from fondasi.guard.base import FILTERS, Filter, Finding, ScanContext, available, register
from fondasi.guard.config import BUILTIN_POLICIES, GuardConfig, PolicyConfig
from fondasi.guard.events import Action, GuardBlockedError, GuardEvent, Stage
from fondasi.guard.pii import find_pii
from fondasi.guard.policy import Policy, Vault, load_policy, policy_names
from fondasi.guard.wrap import GuardedModel

__all__ = [
    "BUILTIN_POLICIES",
    "FILTERS",
    "Action",
    "Filter",
    "Finding",
    "GuardBlockedError",
    "GuardConfig",
    "GuardEvent",
    "GuardedModel",
    "Policy",
    "PolicyConfig",
    "ScanContext",
    "Stage",
    "Vault",
    "available",
    "find_pii",
    "load_policy",
    "policy_names",
    "register",
]
