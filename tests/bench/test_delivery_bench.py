"""``bench/delivery.py`` runs end to end on tiny sizes: every configuration, the outbox alone and the SMTP transport."""

from __future__ import annotations

import re

import pytest

from tests.bench.scripts import NUMBER, numbers, run_script

pytestmark = pytest.mark.postgres


def test_delivery_measures_every_configuration_and_both_dispatchers() -> None:
    users, rounds, hooks = 30, 1, 5
    out = run_script(
        [
            "bench/delivery.py",
            "--users",
            str(users),
            "--rounds",
            str(rounds),
            "--webhook-sends",
            str(hooks),
            "--configs",
            "off,written,worker,process",
        ],
        timeout=300,  # four hosts and a dispatcher process: ~30 s alone, 70 s at load 6 on 2 CPUs
    ).stdout
    labels = [
        "off",
        "email+webhooks, no dispatcher",
        "email+webhooks on",
        "email+webhooks on, dispatcher process (nice)",
    ]
    for label in labels:
        low, median, high = numbers(
            rf"^POST to a {users}-user group, {re.escape(label)}\s+\({rounds} rounds\)\s+min\s+{NUMBER} ms"
            rf"\s+median\s+{NUMBER} ms\s+max\s+{NUMBER} ms$",
            out,
        )
        assert 0 < low <= median <= high, label
    for label in labels[1:]:
        ratios = numbers(
            rf"^send latency ratio, {re.escape(label)} / off\s+\(medians\)\s+{NUMBER}\s+.*\)\s+{NUMBER}$", out
        )
        assert all(ratio > 0 for ratio in ratios), label
    emails = users * (rounds + 1)  # the warm-up send too
    after, rate, counter, _ = numbers(
        rf"^dispatcher: {emails} emails over SMTP; {NUMBER} arrived after the last send in [\d.]+ s = {NUMBER} "
        rf"deliveries/s \(outbox 'sent' counter at {NUMBER} after {NUMBER} s\)$",
        out,
    )
    assert 0 <= after <= emails and rate >= 0 and counter == emails
    [drained] = numbers(
        rf"^the dispatcher process: all {emails} emails and {2 * (rounds + 1)} webhooks delivered {NUMBER} s after", out
    )
    assert drained >= 0
    [webhook_rate] = numbers(
        rf"^dispatcher: {2 * hooks} signed webhooks \({hooks} sends x 2 endpoints, .* = {NUMBER} deliveries/s;", out
    )
    assert webhook_rate > 0


def test_delivery_noop_and_smtp_measure_the_outbox_and_the_transport_alone() -> None:
    out = run_script(["bench/delivery.py", "--noop", "--users", "30"]).stdout
    sent, done, rate = numbers(
        rf"^outbox alone: 5 sends to 30 users in {NUMBER} s; all 150 deliveries done after {NUMBER} s = {NUMBER} "
        "deliveries/s",
        out,
    )
    assert 0 < sent <= done and rate > 0
    out = run_script(["bench/delivery.py", "--smtp", "20"]).stdout
    for label in ("one connection per message", "pooled connections (maxMessages 100)"):
        seconds, rate = numbers(
            rf"^SMTP transport, {re.escape(label)}\s+20 emails, 32 in flight:\s+{NUMBER} s =\s+{NUMBER} emails/s$", out
        )
        assert seconds > 0 and rate > 0, label
    [opened] = numbers(rf"^  \(pooled: {NUMBER} connections opened\)$", out)
    assert 1 <= opened <= 20
