"""The handle tier: the one model contract every model object meets, and its composition.

Between the loop (evaluate, tune, guard, serve) and the backends: ``Model`` wraps a loaded
backend; ``Fallback``, ``PrivateRoute`` and guarded models wrap other models and meet the
same contract; ``compose`` stacks them. It imports neither guard nor monitor: what it needs
from them (a PII detector, a ledger, a guard wrapper) is passed in.
"""
