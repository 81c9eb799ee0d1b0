"""Outbox benchmark against a real ``greenroom start`` on PostgreSQL.

Measures, for a 10,000-user group (catalog group ``everyone``, every user
with an email address):

1. ``POST /api/notifications`` to the group, repeated, with no durable
   channel (email and webhooks off), with the email and webhook modules on
   but no dispatcher (the send path alone: notification and outbox rows in
   one transaction), and with both on and delivering (SMTP to a local
   aiosmtpd sink, two signed webhook endpoints on a local HTTP receiver, both
   in this process) while the next sends arrive, once by the dispatcher of
   the web worker itself and once by a ``greenroom deliveries dispatch
   --nice 10`` process beside a web worker with ``dispatcher: false`` (with
   sinks of its own); the ratios to "off" are printed. The four hosts run
   at the same time and the sends alternate between them, the order
   rotating every round, so that the shared machine's busy spells slow
   every configuration alike; then how long after the last send the
   dispatcher process has delivered all of its emails and webhooks;
2. dispatcher throughput: after the sends with email on, deliveries per
   second until the sink has every message, and until the outbox's
   ``sent`` counter (``GET /api/notifications/delivery-metrics``) says so;
3. webhook throughput: ``--webhook-sends`` sends to one user, each one
   ``send``-scope delivery per endpoint, until the receiver has them all.
4. with ``--smtp N``: the email module's SMTP transport alone, N messages
   with 32 in flight to the local sink, one connection per message
   (``aiosmtplib.send``) and then over the transport's pooled connections;
5. with ``--noop``: the outbox alone, an in-process host on PostgreSQL with
   a durable channel that only counts (``--users`` user refs per send, five
   sends, no catalog; the body limit allows about 4,000 refs), deliveries per
   second from the first send to the last
   delivery.

Usage::

    .venv/bin/python bench/delivery.py                  # one worker, 10,000 users
    .venv/bin/python bench/delivery.py --users 2000 --rounds 3 --workers 2
    .venv/bin/python bench/delivery.py --noop --users 2000
    .venv/bin/python bench/delivery.py --smtp 3000
    .venv/bin/python bench/delivery.py --users 30 --rounds 1 --webhook-sends 5   # tiny sizes (CI)

The client, the SMTP sink and the server share the machine's CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _host import free_port, greenroom, greenroom_process, log_tail, pg_config, unique_prefix  # noqa: E402

SERVICE_TOKEN = "bench-delivery-token-0123456789"
GROUP = "group:default/everyone"
BASE_FEATURES = ["auth", "catalog", "catalog-auth-resolver", "signals", "notifications"]
#: The configuration whose deliveries a ``greenroom deliveries dispatch`` process makes.
PROCESS = "email+webhooks on, dispatcher process (nice)"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


class Sink:
    """An aiosmtpd handler that counts messages."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.count += 1
        return "250 OK"


class WebhookSink:
    """A minimal keep-alive HTTP/1.1 receiver (asyncio): answers 204 to every POST and counts them."""

    def __init__(self) -> None:
        self.count = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                self.count += 1
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        writer.close()


def write_catalog(directory: Path, users: int) -> Path:
    """One group of ``users`` users, each with ``spec.profile.email``."""
    names = [f"u{index:05d}" for index in range(users)]
    docs: list[dict[str, Any]] = [{"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                                   "metadata": {"name": "everyone"}, "spec": {"type": "team", "children": []}}]
    docs += [{"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": name},
              "spec": {"memberOf": ["everyone"], "profile": {"email": f"{name}@example.com"}}} for name in names]
    path = directory / "catalog.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


async def wait_for_group(client: httpx.AsyncClient, users: int) -> None:
    """Until the catalog has ingested every member (the group's relations)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        response = await client.get("/api/catalog/entities/by-name/group/default/everyone",
                                    headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
        if response.status_code == 200:
            members = [r for r in response.json().get("relations", []) if r.get("type") == "hasMember"]
            if len(members) >= users:
                return
        await asyncio.sleep(1)
    raise SystemExit("the catalog did not ingest the group in time")


async def group_sends(
    client: httpx.AsyncClient, users: int, rounds: int, label: str, *, warm: bool = True
) -> list[float]:
    """``rounds`` sends to the group (after one warm-up unless ``warm`` is false); their latencies in seconds."""
    service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    times = []
    first = 0 if warm else 1
    for round_ in range(first, rounds + 1):
        body = {"recipients": {"type": "entity", "entityRef": GROUP}, "payload": {"title": f"{label} {round_}"}}
        start = time.perf_counter()
        response = await client.post("/api/notifications", json=body, headers=service)
        elapsed = time.perf_counter() - start
        assert response.status_code == 200 and len(response.json()) == users, response.text[:300]
        if round_:  # the first one (round 0) warms caches and connections
            times.append(elapsed)
    return times


async def sent_counter(client: httpx.AsyncClient) -> int:
    """The outbox's ``sent`` counter of channel ``Email``."""
    response = await client.get("/api/notifications/delivery-metrics",
                                headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
    return int(response.json()["channels"].get("Email", {}).get("sent", 0))


async def sinks(stack: contextlib.AsyncExitStack) -> tuple[Sink, WebhookSink, dict[str, Any]]:
    """An SMTP sink and a webhook receiver (closed with ``stack``), and the processors' config posting to them."""
    from aiosmtpd.controller import Controller

    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    stack.callback(controller.stop)
    hooks = WebhookSink()
    hook_server = await asyncio.start_server(hooks.handle, "127.0.0.1", 0)
    stack.callback(hook_server.close)
    hook_url = f"http://127.0.0.1:{hook_server.sockets[0].getsockname()[1]}"
    email = {"sender": "bench@example.com", "concurrencyLimit": 32, "throttleInterval": {"milliseconds": 0},
             "transportConfig": {"transport": "smtp", "hostname": "127.0.0.1", "port": smtp_port}}
    webhook = {"endpoints": [{"url": f"{hook_url}/{name}", "secret": WEBHOOK_SECRET, "name": name}
                             for name in ("a", "b")]}
    return sink, hooks, {"email": email, "webhook": webhook}


@contextlib.contextmanager
def dispatch_process(config: dict[str, Any]) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``greenroom deliveries dispatch --nice 10`` on ``config``, once it runs (its log at info level)."""
    config = {**config, "backend": {**config["backend"], "logger": {"level": "info"}}}
    with greenroom_process(config, "deliveries", "dispatch", "--nice", "10") as (proc, log):
        deadline = time.monotonic() + 300
        while "Running without an HTTP server" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"greenroom deliveries dispatch did not start ({proc.poll()}):\n{log_tail(log)}")
            time.sleep(0.2)
        yield proc, log


#: ``--configs`` names of the configurations, in the order of ``run``'s list.
CONFIG_NAMES = ("off", "written", "worker", "process")


async def run(
    users: int,
    rounds: int,
    workers: int,
    webhook_sends: int,
    throughput_too: bool = True,
    chosen: tuple[str, ...] = CONFIG_NAMES,
) -> None:
    results: dict[str, list[float]] = {}
    async with contextlib.AsyncExitStack() as stack:
        sink, hooks, processors = await sinks(stack)
        own_sink, own_hooks, own_processors = await sinks(stack)  # the dispatcher process's, counted apart
        with tempfile.TemporaryDirectory(prefix="greenroom-dbench-") as tmp:
            catalog = write_catalog(Path(tmp), users)
            with_email = [*BASE_FEATURES, "notifications-email", "notifications-webhook"]
            off = {"dispatcher": False}
            configurations = [
                ("off", BASE_FEATURES, {}),
                # the send path alone: outbox rows written, nobody delivering them meanwhile
                ("email+webhooks, no dispatcher", with_email, {"processors": processors, "delivery": off}),
                # the real thing: this worker's dispatcher delivers while the next sends arrive
                ("email+webhooks on", with_email, {"processors": processors}),
                # the production answer: the web worker only writes; a process of its own delivers
                (PROCESS, with_email, {"processors": own_processors, "delivery": off}),
            ]
            configurations = [c for name, c in zip(CONFIG_NAMES, configurations, strict=True) if name in chosen]
            # All the hosts run at once and the sends alternate between them (the order rotating
            # every round), so a busy spell of the shared machine slows every configuration alike.
            async with contextlib.AsyncExitStack() as hosts:
                clients: dict[str, httpx.AsyncClient] = {}
                for label, features, notifications in configurations:
                    port = free_port()
                    config = pg_config(port, unique_prefix("dbench"), SERVICE_TOKEN,
                                       backend={"features": {"include": features}},
                                       catalog={"locations": [{"type": "file", "target": str(catalog)}]},
                                       notifications=notifications)
                    host = await hosts.enter_async_context(greenroom(config, workers, port=port))
                    if label == PROCESS:  # beside the web worker, with the same config
                        dispatcher = hosts.enter_context(dispatch_process(config))
                    clients[label] = await hosts.enter_async_context(
                        httpx.AsyncClient(base_url=host.url, timeout=300))
                for client in clients.values():
                    await wait_for_group(client, users)
                labels = list(clients)
                for label in labels:  # warm-up: caches and connections
                    await group_sends(clients[label], users, 0, label)
                for round_ in range(rounds):
                    shift = round_ % len(labels)
                    for label in labels[shift:] + labels[:shift]:
                        [elapsed] = await group_sends(clients[label], users, 1, label, warm=False)
                        results.setdefault(label, []).append(elapsed)
                last_send = time.perf_counter()
                report(results, users, rounds)
                if PROCESS in clients:
                    proc, log = dispatcher
                    if proc.poll() is not None:
                        raise SystemExit(f"the dispatcher process exited with {proc.returncode}:\n{log_tail(log)}")
                    print(f"the dispatcher process delivered {own_sink.count:,} emails and {own_hooks.count:,} "
                          "webhooks meanwhile", flush=True)
                on = clients.get("email+webhooks on") if throughput_too else None
                if on is not None:
                    await throughput(on, users, rounds, sink)
                if PROCESS in clients:
                    await process_drained(own_sink, own_hooks, users, rounds, last_send)
                if on is not None:
                    await webhook_throughput(on, webhook_sends, hooks)


def report(results: dict[str, list[float]], users: int, rounds: int) -> None:
    """Print each configuration's send latencies (every one, in order) and their ratios to "off".

    Two ratios: of the medians, and the median of each round's ratio (the sends of a round
    are made back to back, so a slow spell of the machine, or the tables growing round
    after round, weigh on both sides of a round alike).
    """
    off = statistics.median(results["off"])
    for label, times in results.items():
        print(f"POST to a {users:,}-user group, {label:<46} ({rounds} rounds)   min {min(times) * 1000:7.1f} ms"
              f"   median {statistics.median(times) * 1000:7.1f} ms   max {max(times) * 1000:7.1f} ms")
        print(f"  each round (ms): {' '.join(f'{elapsed * 1000:.0f}' for elapsed in times)}")
    for label in [name for name in results if name != "off"]:
        paired = statistics.median(a / b for a, b in zip(results[label], results["off"], strict=True))
        print(f"send latency ratio, {label + ' / off':<52} (medians) {statistics.median(results[label]) / off:7.2f}"
              f"   (median of the rounds' ratios) {paired:5.2f}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)


async def throughput(client: httpx.AsyncClient, users: int, rounds: int, sink: Sink) -> None:
    """Deliveries per second of the sends just made (the dispatcher works through them)."""
    expected = users * (rounds + 1)
    started = time.perf_counter()
    first = sink.count
    while sink.count < expected:
        await asyncio.sleep(0.2)
        if time.perf_counter() - started > 1800:
            raise SystemExit(f"only {sink.count} of {expected} emails arrived")
    # measured from the start of this wait: the earlier sends were being delivered meanwhile too
    elapsed = time.perf_counter() - started
    while await sent_counter(client) < expected:
        await asyncio.sleep(0.2)
    counted = time.perf_counter() - started
    print(f"dispatcher: {expected:,} emails over SMTP; {expected - first:,} arrived after the last send in "
          f"{elapsed:.1f} s = {(expected - first) / max(elapsed, 1e-9):,.0f} deliveries/s "
          f"(outbox 'sent' counter at {expected:,} after {counted:.1f} s)")


async def process_drained(sink: Sink, hooks: WebhookSink, users: int, rounds: int, last_send: float) -> None:
    """Wait until the dispatcher process has delivered every email and webhook of its sends (warm-up included)."""
    emails, webhooks = users * (rounds + 1), 2 * (rounds + 1)  # two webhook endpoints, one delivery each per send
    while sink.count < emails or hooks.count < webhooks:
        await asyncio.sleep(0.1)
        if time.perf_counter() - last_send > 1800:
            raise SystemExit(f"the dispatcher process delivered only {sink.count} of {emails} emails and "
                             f"{hooks.count} of {webhooks} webhooks")
    print(f"the dispatcher process: all {emails:,} emails and {webhooks:,} webhooks delivered "
          f"{time.perf_counter() - last_send:.1f} s after the last send", flush=True)


async def webhook_throughput(client: httpx.AsyncClient, sends: int, hooks: WebhookSink) -> None:
    """``sends`` sends to one user (two endpoints: two deliveries each); deliveries per second until all arrived."""
    service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    expected = hooks.count + 2 * sends
    started = time.perf_counter()
    for index in range(sends):
        body = {"recipients": {"type": "entity", "entityRef": "user:default/u00000"},
                "payload": {"title": f"hook {index}"}}
        response = await client.post("/api/notifications", json=body, headers=service)
        assert response.status_code == 200, response.text[:300]
    sent = time.perf_counter() - started
    left = expected - hooks.count
    while hooks.count < expected:
        await asyncio.sleep(0.05)
        if time.perf_counter() - started > 600:
            raise SystemExit(f"only {hooks.count} of {expected} webhooks arrived")
    elapsed = time.perf_counter() - started
    print(f"dispatcher: {2 * sends:,} signed webhooks ({sends:,} sends x 2 endpoints, the sends took {sent:.1f} s) "
          f"all delivered {elapsed:.1f} s after the first send = {2 * sends / elapsed:,.0f} deliveries/s; "
          f"{left:,} left at the last send arrived in {elapsed - sent:.1f} s")


class CountingChannel:
    """A durable channel ``count`` that delivers nothing and answers ``sent``: the outbox's own cost."""

    def __init__(self) -> None:
        self.delivered = 0
        self.done = asyncio.Event()
        self.expected = 0

    def as_processor(self) -> Any:
        from plugin_notifications import hookimpl
        from plugin_notifications.delivery import DeliveryChannel, DeliveryOutcome

        channel = self

        class Counting:
            @hookimpl
            def notifications_processor_name(self) -> str:
                return "Count"

            @hookimpl
            def notifications_delivery_channels(self) -> list[DeliveryChannel]:
                return [DeliveryChannel("count", batch_size=500)]

            @hookimpl
            def notifications_deliver(self, deliveries: list[Any]) -> list[Any]:
                channel.delivered += len(deliveries)
                if channel.delivered >= channel.expected:
                    channel.done.set()
                return [DeliveryOutcome.sent()] * len(deliveries)

        return Counting()


async def run_noop(users: int, sends: int = 5) -> None:
    from host import create_backend_module
    from host.testing import start_host
    from plugin_notifications import notifications_processing_extension_point

    channel = CountingChannel()
    channel.expected = users * sends
    processor = channel.as_processor()

    def register(reg: Any) -> None:
        reg.register_init(deps={"processing": notifications_processing_extension_point},
                          init=lambda processing: processing.add_processor(processor))

    module = create_backend_module("notifications", "bench-count", register)
    config = {"backend": {"auth": {"externalAccess": [
        {"type": "static", "options": {"token": SERVICE_TOKEN, "subject": "bench"}}]}}}
    async with start_host("postgres", config=config, features=[module],
                          plugins=["auth", "catalog", "signals", "notifications"]) as host:
        refs = [f"user:default/u{index:05d}" for index in range(users)]
        service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
        started = time.perf_counter()
        for index in range(sends):
            body = {"recipients": {"type": "entity", "entityRef": refs}, "payload": {"title": f"count {index}"}}
            response = await host.client.post("/api/notifications", json=body, headers=service)
            assert response.status_code == 200, response.text[:300]
        sent = time.perf_counter() - started
        await asyncio.wait_for(channel.done.wait(), 600)
        total = time.perf_counter() - started
    print(f"outbox alone: {sends} sends to {users:,} users in {sent:.2f} s; all {channel.expected:,} deliveries "
          f"done after {total:.2f} s = {channel.expected / total:,.0f} deliveries/s (PostgreSQL, one process)")


async def run_smtp(messages: int, concurrency: int = 32) -> None:
    """The email module's SMTP transport alone: one connection per message vs pooled connections."""
    from email.message import EmailMessage

    import aiosmtplib
    from aiosmtpd.controller import Controller
    from greenroom_notifications_email.settings import SmtpSettings
    from greenroom_notifications_email.transport import SmtpTransport

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()

    def message(index: int) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "bench@example.com", f"u{index:05d}@example.com", f"bench {index}"
        msg.set_content("body")
        return msg

    async def measure(label: str, send: Any) -> None:
        slots = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with slots:
                await send(message(index))

        first = sink.count
        started = time.perf_counter()
        await asyncio.gather(*(one(index) for index in range(messages)))
        elapsed = time.perf_counter() - started
        assert sink.count - first == messages
        print(f"SMTP transport, {label:<32} {messages:,} emails, {concurrency} in flight: "
              f"{elapsed:6.2f} s = {messages / elapsed:7,.0f} emails/s")

    try:
        await measure("one connection per message", lambda msg: aiosmtplib.send(msg, hostname="127.0.0.1", port=port))
        transport = SmtpTransport(SmtpSettings("127.0.0.1", port), concurrency=concurrency)
        await measure("pooled connections (maxMessages 100)", transport.send)
        print(f"  (pooled: {transport.connections_opened} connections opened)")
        await transport.close()
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--webhook-sends", type=int, default=1000)
    parser.add_argument("--noop", action="store_true", help="measure the outbox alone with a counting channel")
    parser.add_argument("--smtp", type=int, metavar="N", help="measure the SMTP transport alone with N messages")
    parser.add_argument("--latency-only", action="store_true", help="send latencies only, no dispatcher throughput")
    parser.add_argument("--configs", default=",".join(CONFIG_NAMES),
                        help="configurations to run, of off (no durable channel), written (email and webhooks "
                             "on, nobody delivering), worker (the web worker delivers) and process (a dispatcher "
                             "process delivers); 'off' is always run")
    args = parser.parse_args()
    if args.smtp:
        asyncio.run(run_smtp(args.smtp))
    elif args.noop:
        asyncio.run(run_noop(args.users))
    else:
        chosen = {name.strip() for name in args.configs.split(",")} | {"off"}
        if unknown := chosen - set(CONFIG_NAMES):
            parser.error(f"unknown configurations: {', '.join(sorted(unknown))}")
        asyncio.run(run(args.users, args.rounds, args.workers, args.webhook_sends, not args.latency_only,
                        tuple(name for name in CONFIG_NAMES if name in chosen)))


if __name__ == "__main__":
    main()
