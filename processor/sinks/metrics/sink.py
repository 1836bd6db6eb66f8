"""``MetricsSink``: per-tag counters of cost, tokens and calls, served to Prometheus and pushed
over OTLP.

The sink keeps exact running totals (``Decimal`` dollars, integer tokens and calls) per label
set and reports them through observable counters, so each exported series is the correctly
rounded value of an exact sum rather than an accumulation of float additions.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from decimal import Decimal

from aiohttp import web
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from spanledger.processor.httpserver import BackgroundServer, bearer_matches
from spanledger.processor.model import CountedCall
from spanledger.processor.sinks.metrics.cardinality import CardinalityCap
from spanledger.processor.sinks.metrics.config import MetricsConfig, otlp_http_url, split_host_port
from spanledger.semconv import (
    COST_STATUS,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_RESPONSE_MODEL,
    OVERFLOW,
    STATUS_PRICED,
    UNTAGGED,
)

log = logging.getLogger(__name__)

METER_NAME = "spanledger.processor"
COST = "spanledger.cost"
TOKENS = "spanledger.tokens"
LLM_CALLS = "spanledger.llm_calls"
TAG_OVERFLOWS = "spanledger.tag_overflows"
TOKEN_TYPE = "type"
OVERFLOW_TAG = "tag"
MODEL = GEN_AI_RESPONSE_MODEL
"""The label naming the model that served the call (the request model when no response model)."""

RESERVED_LABELS = frozenset({GEN_AI_PROVIDER_NAME, MODEL, TOKEN_TYPE, COST_STATUS, OVERFLOW_TAG})
"""Label names the counters add themselves, so they cannot also be tag keys."""

MAX_SERIES = 100_000
"""Upper bound on label sets per counter, on top of the per-label cap, to bound memory."""
DEDUP_WINDOW = 20_000
"""How many recent (trace_id, span_id) pairs are remembered to ignore a repeated delivery (the
pipeline already drops duplicates; this guards the counters against a sink called twice)."""
_LABEL_CACHE_SIZE = 50_000
_MAX_CONNECTIONS = 64
_IDLE_TIMEOUT = 15.0
_ZERO = Decimal(0)

Labels = tuple[tuple[str, str], ...]


class _Totals:
    """Exact running totals per label set, safe to update and read from different threads."""

    def __init__(self, label_keys: Sequence[str], limit: int) -> None:
        self.label_keys = tuple(label_keys)
        self.cap = CardinalityCap(limit)
        self.cost: dict[Labels, Decimal] = {}
        self.tokens: dict[tuple[Labels, str], int] = {}
        self.calls: dict[tuple[Labels, str], int] = {}
        self.overflows: dict[str, int] = {}
        self._series: set[Labels] = set()
        self._series_full = False
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._label_names = (*self.label_keys, GEN_AI_PROVIDER_NAME, MODEL)
        self._label_cache: dict[tuple[str, ...], tuple[Labels, tuple[str, ...]]] = {}
        self.lock = threading.Lock()

    def add(self, calls: Sequence[CountedCall]) -> None:
        """Count ``calls``; a malformed call is logged and skipped, changing nothing."""
        counted = []
        for call in calls:
            try:
                counted.append(self._read(call))
            except Exception:
                log.exception("could not count call %s/%s in metrics", call.trace_id, call.span_id)
        with self.lock:
            recent = self._recent
            cost_totals, call_totals, token_totals = self.cost, self.calls, self.tokens
            for key, values, status, cost, tokens in counted:
                if key in recent:
                    continue
                recent[key] = None
                if len(recent) > DEDUP_WINDOW:
                    recent.popitem(last=False)
                labels = self._labels(values)
                if cost is not None:
                    cost_totals[labels] = cost_totals.get(labels, _ZERO) + cost
                call_totals[(labels, status)] = call_totals.get((labels, status), 0) + 1
                for kind, count in tokens:
                    token_totals[(labels, kind)] = token_totals.get((labels, kind), 0) + count

    def _read(
        self, call: CountedCall
    ) -> tuple[tuple[str, str], tuple[str, ...], str, Decimal | None, list[tuple[str, int]]]:
        status = call.cost.status
        cost = call.cost.total if status == STATUS_PRICED else None
        if status == STATUS_PRICED and not isinstance(cost, Decimal | int):
            raise TypeError(f"cost must be a Decimal, got {cost!r}")
        usage = call.usage
        tags = call.tags
        values = (
            *[tags.get(key) or UNTAGGED for key in self.label_keys],
            usage.provider or UNTAGGED,
            usage.model or UNTAGGED,
        )
        tokens = [
            (kind, int(count))
            for kind, count in (
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
                ("cache_read", usage.cache_read_tokens),
                ("cache_write", usage.cache_write_tokens + usage.cache_write_1h_tokens),
                ("reasoning", usage.reasoning_tokens),
            )
            if count
        ]
        return (call.trace_id, call.span_id), values, status, cost, tokens

    def _labels(self, values: tuple[str, ...]) -> Labels:
        """The label set for ``values`` (tag values, provider, model), caps applied.

        A value's fate under the caps never changes once decided (kept values stay kept,
        folded ones stay folded), so each distinct ``values`` is worked out once and cached.
        """
        known = self._label_cache.get(values)
        if known is None:
            known = self._label_cache[values] = self._new_labels(values)
            if len(self._label_cache) > _LABEL_CACHE_SIZE:
                self._label_cache.clear()
        labels, folded = known
        for key in folded:
            self.overflows[key] = self.overflows.get(key, 0) + 1
        return labels

    def _new_labels(self, values: tuple[str, ...]) -> tuple[Labels, tuple[str, ...]]:
        pairs = []
        folded = []
        for key, value in zip(self._label_names, values, strict=True):
            kept, was_folded = self.cap.bucket(key, value)
            if was_folded:
                folded.append(key)
            pairs.append((key, kept))
        labels = tuple(pairs)
        if labels not in self._series:
            if len(self._series) >= MAX_SERIES:
                if not self._series_full:
                    log.warning("%d label sets reached; new ones count as (other)", MAX_SERIES)
                    self._series_full = True
                labels = tuple((key, OVERFLOW) for key, _ in pairs)
            self._series.add(labels)
        return labels, tuple(folded)

    def cost_points(self, _options: CallbackOptions | None = None) -> list[Observation]:
        with self.lock:
            return [Observation(float(value), dict(labels)) for labels, value in self.cost.items()]

    def token_points(self, _options: CallbackOptions | None = None) -> list[Observation]:
        with self.lock:
            return [
                Observation(count, {**dict(labels), TOKEN_TYPE: kind})
                for (labels, kind), count in self.tokens.items()
            ]

    def call_points(self, _options: CallbackOptions | None = None) -> list[Observation]:
        with self.lock:
            return [
                Observation(count, {**dict(labels), COST_STATUS: status})
                for (labels, status), count in self.calls.items()
            ]

    def overflow_points(self, _options: CallbackOptions | None = None) -> list[Observation]:
        with self.lock:
            return [
                Observation(count, {OVERFLOW_TAG: key}) for key, count in self.overflows.items()
            ]


class MetricsSink:
    """A ``CallSink`` counting cost, tokens and calls per tag value, provider and model.

    Counters (Prometheus names in brackets):
    ``spanledger.cost`` USD, priced calls only [``spanledger_cost_usd_total``];
    ``spanledger.tokens`` by ``type`` = input, output (totals) and cache_read, cache_write,
    reasoning (parts of those totals) [``spanledger_tokens_total``];
    ``spanledger.llm_calls`` by ``spanledger.cost.status`` = priced | unpriced
    [``spanledger_llm_calls_total``];
    ``spanledger.tag_overflows`` by ``tag``: calls whose value of that label was counted as
    ``(other)`` [``spanledger_tag_overflows_total``].
    """

    def __init__(self, config: MetricsConfig, tag_keys: Sequence[str]) -> None:
        problems = config.problems()
        if problems:
            raise ValueError("invalid metrics configuration: " + "; ".join(problems))
        reserved = sorted(set(tag_keys) & RESERVED_LABELS)
        if reserved:
            raise ValueError(f"tag keys {reserved} clash with labels the metrics use themselves")
        self.config = config
        self._totals = _Totals(tag_keys, config.cardinality_limit)
        self._providers: list[MeterProvider] = []
        self._cost_units: list[str] = []
        self._server: BackgroundServer | None = None
        self.prometheus_port: int | None = None
        """The port ``/metrics`` is served on, once bound (None without a Prometheus endpoint)."""
        resource = Resource.create({"service.name": "spanledger-processor"})
        limits = {ObservableCounter: MAX_SERIES * 8}
        try:
            if config.prometheus_endpoint is not None:
                self._start_prometheus(config.prometheus_endpoint, resource, limits)
            if config.otlp_endpoint is not None:
                reader = PeriodicExportingMetricReader(
                    _otlp_exporter(config),
                    export_interval_millis=config.export_interval * 1000,
                    **_series_limits(PeriodicExportingMetricReader, limits),
                )
                self._add_provider(reader, resource, cost_unit="USD")
        except Exception:
            self.shutdown(1.0)
            raise

    def record(self, calls: Sequence[CountedCall]) -> None:
        """Add each counted call to the running totals; a malformed call is logged and skipped."""
        self._totals.add(calls)

    def meters(self) -> list[Meter]:
        """This sink's meter on each of its providers, for other instruments to report on."""
        return [provider.get_meter(METER_NAME) for provider in self._providers]

    def meters_with_cost_unit(self) -> list[tuple[Meter, str]]:
        """Each meter with the unit its USD instruments use (``usd`` for Prometheus, whose
        names carry the unit in lower case; ``USD`` over OTLP)."""
        return list(zip(self.meters(), self._cost_units, strict=True))

    def shutdown(self, timeout: float) -> None:
        """Push the final totals over OTLP within ``timeout`` seconds; stop serving ``/metrics``."""
        for provider in self._providers:
            try:
                provider.shutdown(timeout_millis=max(timeout, 0.1) * 1000)
            except Exception:
                log.exception("metrics shutdown failed")
        self._providers.clear()
        self._cost_units.clear()
        if self._server is not None:
            self._server.stop(min(max(timeout, 0.1), 1.0))
            self._server = None

    def _start_prometheus(self, endpoint: str, resource: Resource, limits: dict) -> None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry

        host, port = split_host_port(endpoint)
        registry = CollectorRegistry(auto_describe=False)
        reader = PrometheusMetricReader(
            registry=registry, **_series_limits(PrometheusMetricReader, limits)
        )
        # The exporter appends unknown units verbatim ("USD" would give spanledger_cost_USD_total);
        # Prometheus names carry lower-case unit suffixes, hence "usd" on this side only.
        self._add_provider(reader, resource, cost_unit="usd")
        server = BackgroundServer(
            "Prometheus metrics endpoint",
            _exposition_app(registry, self.config.prometheus_bearer_token),
            host,
            port,
            max_connections=_MAX_CONNECTIONS,
            idle_timeout=_IDLE_TIMEOUT,
        )
        try:
            server.start()
        except OSError as exc:
            raise OSError(f"cannot serve Prometheus metrics on {endpoint}: {exc}") from exc
        self._server = server
        self.prometheus_port = server.port

    def _add_provider(self, reader: MetricReader, resource: Resource, cost_unit: str) -> None:
        provider = MeterProvider(metric_readers=[reader], resource=resource)
        self._providers.append(provider)
        self._cost_units.append(cost_unit)
        _register(provider.get_meter(METER_NAME), self._totals, cost_unit)


def _exposition_app(registry: object, token: str | None) -> web.Application:
    """``GET /metrics`` (any path, as Prometheus' own client serves it) in the format the
    scraper asks for, gzipped when it accepts gzip; with ``token``, only for ``Bearer <token>``."""
    from prometheus_client.exposition import choose_encoder

    async def scrape(request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="use GET\n", headers={"Allow": "GET"})
        if not bearer_matches(token, request.headers.get("Authorization")):
            return web.Response(
                status=401,
                text="missing or invalid bearer token\n",
                headers={"WWW-Authenticate": "Bearer"},
            )
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(None, encoder, registry)
        response = web.Response(body=body, headers={"Content-Type": content_type})
        response.enable_compression()
        return response

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", scrape)
    return app


def _series_limits(reader: type, limits: dict[type, int]) -> dict[str, dict[type, int]]:
    """``reader``'s argument raising the SDK's per-metric series cap, where the SDK has one.

    SDKs from 1.45.2 drop series past 2,000 per metric unless the reader raises the cap; earlier
    ones neither cap nor take the argument. Our own label caps bound the series either way.
    """
    if "cardinality_limits" in inspect.signature(reader.__init__).parameters:  # type: ignore[misc]
        return {"cardinality_limits": limits}
    return {}


def _register(meter: Meter, totals: _Totals, cost_unit: str) -> None:
    meter.create_observable_counter(
        COST, [totals.cost_points], unit=cost_unit, description="Cost of priced LLM calls"
    )
    meter.create_observable_counter(
        TOKENS, [totals.token_points], unit="{token}", description="LLM tokens by type"
    )
    meter.create_observable_counter(
        LLM_CALLS,
        [totals.call_points],
        unit="{call}",
        description="Counted LLM calls, priced and unpriced",
    )
    meter.create_observable_counter(
        TAG_OVERFLOWS,
        [totals.overflow_points],
        unit="{call}",
        description="Calls whose label value was counted as (other) past the cardinality limit",
    )


def _otlp_exporter(config: MetricsConfig) -> MetricExporter:
    endpoint = (config.otlp_endpoint or "").strip()
    if config.otlp_protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=otlp_http_url(endpoint))
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
        OTLPMetricExporter as GrpcMetricExporter,
    )

    insecure = not endpoint.startswith("https://")
    return GrpcMetricExporter(endpoint=endpoint, insecure=insecure)
