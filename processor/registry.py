"""One table of the processor's component kinds: receivers, exporters and sinks, by name.

Each kind is registered once with its config class (a dataclass read from YAML by
``config_schema.build``, with a ``problems()`` method) and its factory. Reading the
configuration (``config.from_mapping``), ``spanledger check-config`` and ``Service`` all look
kinds up here, so adding an exporter takes its module and one ``register`` call:

```python
from spanledger.processor.registry import EXPORTER, ComponentKind, registry

registry().register(ComponentKind(EXPORTER, "kafka", KafkaExporterConfig, KafkaExporter))
```

after which ``exporters: [{kafka: {...}}]`` is validated and built. The factory of each role is
called as follows:

- exporter: ``factory(config, signal)`` for every signal its ``config.signals`` names
  (``traces`` when the config has no ``signals``); the component has ``export(request)`` and
  ``shutdown(timeout)`` (``components.SpanExporter``).
- receiver (a protocol under ``receivers.otlp``): ``factory(config, consumer, metrics=...,
  logs=..., limiter=...)``; the component has ``start()``, ``stop(grace)`` and ``port``.
- sink (a top-level section of its own name): ``factory(config, wiring)`` with a
  ``SinkWiring``; returns a ``components.CallSink``, or None when the section leaves it off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from spanledger.processor.config_schema import Problems, build

if TYPE_CHECKING:
    from spanledger.processor.components import CallSink
    from spanledger.processor.config import Config

Role = Literal["receiver", "exporter", "sink"]
RECEIVER: Role = "receiver"
EXPORTER: Role = "exporter"
SINK: Role = "sink"


@dataclass(frozen=True)
class ComponentKind:
    """A kind of component: its role, the name the YAML gives it, its config class, its factory.

    ``parse(raw, where, problems)`` reads its YAML section when the section's shape is not
    the config class's fields (``config_schema.build`` otherwise).
    """

    role: Role
    name: str
    config: type
    factory: Callable[..., Any]
    parse: Callable[[object, str, Problems], Any] | None = None

    def read(self, raw: object, where: str, problems: Problems) -> Any:
        """The config of this kind from its YAML section; None when unusable (see problems)."""
        if self.parse is not None:
            return self.parse(raw, where, problems)
        return build(self.config, raw, where, problems)


@dataclass
class SinkWiring:
    """What a sink's factory gets from the service besides its own section."""

    config: Config
    """The whole configuration (``tags``, and the sections the sink reads beside its own)."""
    built: Mapping[str, CallSink]
    """The sinks built before this one, by kind name (registration order)."""
    clock: Callable[[], float]
    """Wall-clock seconds, for sinks that keep time (budgets)."""


@dataclass
class Registry:
    """The component kinds, by role and name, in the order they were registered."""

    _kinds: dict[tuple[Role, str], ComponentKind] = field(default_factory=dict)

    def register(self, kind: ComponentKind) -> ComponentKind:
        """Add ``kind``; a name or config class already taken in its role is a ``ValueError``."""
        if (kind.role, kind.name) in self._kinds:
            raise ValueError(f"a {kind.role} named {kind.name!r} is already registered")
        if any(known.config is kind.config for known in self.kinds(kind.role)):
            raise ValueError(f"{kind.config.__name__} already configures a {kind.role}")
        self._kinds[(kind.role, kind.name)] = kind
        return kind

    def unregister(self, role: Role, name: str) -> None:
        """Remove the kind ``name`` of ``role`` (tests register kinds of their own)."""
        del self._kinds[(role, name)]

    def kinds(self, role: Role) -> list[ComponentKind]:
        """Every kind of ``role``, in registration order."""
        return [kind for (each, _), kind in self._kinds.items() if each == role]

    def names(self, role: Role) -> list[str]:
        return [kind.name for kind in self.kinds(role)]

    def find(self, role: Role, name: str) -> ComponentKind | None:
        return self._kinds.get((role, name))

    def kind_of(self, role: Role, config: object) -> ComponentKind:
        """The kind whose config class ``config`` is; ``KeyError`` when none is."""
        for kind in self.kinds(role):
            if type(config) is kind.config:
                return kind
        raise KeyError(f"no {role} is configured by {type(config).__name__}")


_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The processor's registry, holding the built-in kinds (``builtin_components``)."""
    global _REGISTRY  # noqa: PLW0603 - filled once, on first use, to keep imports acyclic
    if _REGISTRY is None:
        from spanledger.processor.builtin_components import register_builtins

        found = Registry()
        register_builtins(found)
        _REGISTRY = found
    return _REGISTRY


__all__ = [
    "EXPORTER",
    "RECEIVER",
    "SINK",
    "ComponentKind",
    "Registry",
    "Role",
    "SinkWiring",
    "registry",
]
