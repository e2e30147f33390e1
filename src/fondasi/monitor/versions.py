"""Model versions behind aliases: ``support-bot -> tuned:runs/lora-7``, canaries, rollbacks.

An alias maps a served name to one or more targets with traffic shares (percent). Every
change is a row in ``alias_history``, so ``rollback`` restores the state before the latest
change. The server re-reads the table every second, so changes from the CLI or the admin
endpoints take effect without a restart.
"""

from __future__ import annotations

import json
import random
import time

from pydantic import ValidationError
from sqlalchemy import delete, select

from fondasi.errors import BadInputError
from fondasi.models.split import choose, split_text
from fondasi.monitor import tables
from fondasi.monitor.records import Alias, AliasChange, AliasTarget
from fondasi.monitor.store import Store
from fondasi.registry import unknown

A = tables.aliases
H = tables.alias_history


def _targets(raw: str | None) -> list[AliasTarget] | None:
    return None if raw is None else [AliasTarget(**t) for t in json.loads(raw)]


def _dump(targets: list[AliasTarget]) -> str:
    return json.dumps([t.model_dump() for t in targets])


def pick(alias: Alias, rng: random.Random) -> AliasTarget:
    """One target, chosen by the traffic shares."""
    ref = choose(shares(alias), rng)
    return next(target for target in alias.targets if target.model == ref)


def describe(alias: Alias) -> str:
    """``support-bot -> a (90%), b (10%)``."""
    return split_text(alias.name, shares(alias))


def shares(alias: Alias) -> list[tuple[str, float]]:
    """The alias's targets as (model, percent) pairs."""
    return [(target.model, target.weight) for target in alias.targets]


class Versions:
    """Set, split, promote, roll back and remove aliases in a ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def all(self) -> dict[str, Alias]:
        """Every alias by name."""
        with self.store.engine.connect() as conn:
            rows = list(conn.execute(select(A)))
        return {
            row.name: Alias(name=row.name, targets=_targets(row.targets) or [], updated=row.updated)
            for row in rows
        }

    def get(self, name: str) -> Alias:
        """One alias; an unknown name lists close ones."""
        found = self.all()
        if name not in found:
            raise unknown("alias", name, found)
        return found[name]

    def history(self, name: str) -> list[AliasChange]:
        """An alias's changes, oldest first."""
        query = select(H).where(H.c.name == name).order_by(H.c.id)
        with self.store.engine.connect() as conn:
            return [
                AliasChange(name=r.name, ts=r.ts, action=r.action, targets=_targets(r.targets))
                for r in conn.execute(query)
            ]

    def _save(self, name: str, action: str, targets: list[AliasTarget] | None) -> Alias | None:
        now = time.time()
        with self.store.engine.begin() as conn:
            conn.execute(delete(A).where(A.c.name == name))
            if targets:
                conn.execute(A.insert().values(name=name, targets=_dump(targets), updated=now))
            conn.execute(
                H.insert().values(
                    name=name, ts=now, action=action, targets=_dump(targets) if targets else None
                )
            )
        return Alias(name=name, targets=targets, updated=now) if targets else None

    def set(self, name: str, targets: list[AliasTarget] | list[dict[str, object]]) -> Alias:
        """Point ``name`` at targets whose weights add up to 100."""
        if not name.strip() or len(name) > 200:
            raise BadInputError("an alias needs a name of 1 to 200 characters")
        try:
            checked = [AliasTarget.model_validate(t) for t in targets]
        except ValidationError as exc:
            first = exc.errors()[0]
            raise BadInputError(f"bad alias target: {first['msg']}") from None
        if not checked:
            raise BadInputError("an alias needs at least one target")
        if len({t.model for t in checked}) != len(checked):
            raise BadInputError("each target may appear once in an alias")
        total = sum(t.weight for t in checked)
        if abs(total - 100) > 1e-6:
            raise BadInputError(f"the weights add up to {total:g}%, not 100%")
        if name in {t.model for t in checked}:
            raise BadInputError(f"alias {name!r} cannot point at itself")
        saved = self._save(name, "set", checked)
        assert saved is not None
        return saved

    def point(self, name: str, model: str) -> Alias:
        """All traffic of ``name`` to one model (a promotion when it was a canary)."""
        return self.set(name, [AliasTarget(model=model, weight=100)])

    def canary(self, name: str, model: str, percent: float) -> Alias:
        """Send ``percent`` of ``name``'s traffic to ``model``, the rest to the current target."""
        if not 0 < percent < 100:
            raise BadInputError("a canary share must be between 0 and 100 percent")
        current = self.get(name)
        stable = [t for t in current.targets if t.model != model]
        if len(stable) != 1:
            raise BadInputError(
                f"{describe(current)}: a canary needs exactly one current target besides "
                f"{model!r}; promote or roll back first"
            )
        targets = [
            AliasTarget(model=stable[0].model, weight=100 - percent),
            AliasTarget(model=model, weight=percent),
        ]
        return self.set(name, targets)

    def promote(self, name: str, model: str | None = None) -> Alias:
        """Give all traffic to ``model`` (default: the canary, the smallest and newest share)."""
        current = self.get(name)
        # The canary: the smallest share, and on a tie the newest (canary() adds it last).
        chosen = model or min(reversed(current.targets), key=lambda t: t.weight).model
        if chosen not in {t.model for t in current.targets}:
            raise BadInputError(f"{chosen!r} is not behind {name!r}: {describe(current)}")
        return self.point(name, chosen)

    def rollback(self, name: str) -> Alias | None:
        """Restore the alias as it was before its latest change (None: it did not exist)."""
        changes = self.history(name)
        if not changes:
            self.get(name)  # an unknown alias: raises with close matches
        # Each change pushes a state and each rollback pops one, so repeated rollbacks
        # walk further back instead of toggling between the last two states.
        states: list[list[AliasTarget] | None] = []
        for change in changes:
            if change.action == "rollback":
                if states:
                    states.pop()
            else:
                states.append(change.targets)
        if len(states) < 2:
            raise BadInputError(f"alias {name!r} has no earlier version to roll back to")
        return self._save(name, "rollback", states[-2])

    def remove(self, name: str) -> None:
        """Delete an alias (kept in its history)."""
        self.get(name)
        self._save(name, "remove", None)
