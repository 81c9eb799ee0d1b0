"""``greenroom template run``: parameters, substitution, action resolution, and the example template end to end."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from greenroom_scaffolder_notifications.template_runner import (
    TemplateError,
    load_template,
    render,
    resolve_parameters,
    run_template,
)

from tests.conftest import SERVICE_TOKEN, HostHandle, start_host

ROOT = Path(__file__).parents[3]
ORG = ROOT / "examples" / "catalog" / "org.yaml"
EXAMPLE = Path(__file__).parents[1] / "examples" / "notify-template.yaml"


@pytest.fixture
async def host() -> AsyncIterator[HostHandle]:
    async with start_host(config={"catalog": {"locations": [{"type": "file", "target": str(ORG)}]}}) as handle:
        yield handle


async def inbox(host: HostHandle, user: str) -> list[dict[str, Any]]:
    response = await host.client.get(
        "/api/notifications/notifications", headers=await host.user_headers(f"user:default/{user}")
    )
    assert response.status_code == 200, response.text
    return sorted(response.json()["notifications"], key=lambda n: n["payload"]["title"])


def template(*steps: dict[str, Any], parameters: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "spec": {"parameters": parameters or [], "steps": list(steps)},
    }


# -- parameters and substitution ---------------------------------------------------


def test_values_override_defaults_and_required_parameters_are_checked() -> None:
    spec = template(
        {"action": "x"},
        parameters=[
            {"required": ["a"], "properties": {"a": {"type": "string", "default": "A"}, "b": {"type": "number"}}},
            {"properties": {"c": {"default": [1, 2]}}},
        ],
    )
    assert resolve_parameters(spec, {"b": 2}) == {"a": "A", "b": 2, "c": [1, 2]}
    with pytest.raises(TemplateError, match="Missing required parameter"):
        resolve_parameters(spec, {"a": ""})


def test_render_keeps_types_for_whole_expressions_and_drops_undefined() -> None:
    context = {
        "parameters": {"refs": ["group:default/a"], "flag": True, "name": "api"},
        "steps": {"first": {"output": {"id": 7}}},
    }
    rendered = render(
        {
            "refs": "${{ parameters.refs }}",
            "flag": "${{parameters.flag}}",
            "title": "Deployed ${{ parameters.name }} (#${{ steps.first.output.id }})",
            "first": "${{ parameters.refs.0 }}",
            "missing": "${{ parameters.nope }}",
            "list": ["${{ parameters.name }}", "x"],
        },
        context,
    )
    assert rendered == {
        "refs": ["group:default/a"],
        "flag": True,
        "title": "Deployed api (#7)",
        "first": "group:default/a",
        "list": ["api", "x"],
    }
    with pytest.raises(TemplateError, match="Unsupported expression"):
        render("${{ secrets.token }}", context)


def test_expressions_are_jinja2_native_expressions() -> None:
    context = {"parameters": {"refs": ["a", "b"], "count": "42", "items": "mine", "n": 2}, "steps": {}}
    assert render("${{ parameters.refs + ['c'] }}", context) == ["a", "b", "c"]
    assert render("${{ parameters.refs | length }}", context) == 2
    assert render("${{ parameters.count }}", context) == "42"  # a string stays a string (no literal_eval)
    assert render("${{ parameters.n }}${{ parameters.n }}", context) == "22"  # text, not the number 22
    assert render("${{ parameters.items }}", context) == "mine"  # the parameter, not dict.items
    assert render("${{ parameters.name | upper }}", {"parameters": {"name": "api"}}) == "API"
    assert render("${{ parameters.refs }} and {% raw %}", context) == '["a", "b"] and {% raw %}'
    with pytest.raises(TemplateError, match="Invalid expression"):
        render("${{ parameters.refs[ }}", context)
    with pytest.raises(TemplateError, match="Invalid expression"):  # the sandbox
        render("${{ parameters.refs.__class__.__mro__ }}", context)


def test_load_template_needs_a_template_document(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("kind: Component\n---\nkind: Template\nspec: {steps: [{action: a}]}\n")
    assert load_template(path)["kind"] == "Template"
    path.write_text("kind: Component\n")
    with pytest.raises(TemplateError, match="no document with kind: Template"):
        load_template(path)


# -- against a running host ----------------------------------------------------------


async def test_steps_run_in_order_through_the_actions_registry(host: HostHandle) -> None:
    lines: list[str] = []
    spec = template(
        {
            "id": "one",
            "name": "First",
            "action": "notification:send",
            "input": {"recipients": "entity", "entityRefs": ["${{ parameters.who }}"], "title": "${{ parameters.t }}"},
        },
        {
            "id": "two",
            "name": "Skipped",
            "if": "${{ parameters.broadcast }}",
            "action": "notification:send",
            "input": {"recipients": "broadcast", "title": "never"},
        },
        {
            "id": "three",
            "action": "notifications:notification:send",  # the full action id works too
            "input": {"recipients": "broadcast", "title": "Third"},
        },
        parameters={"properties": {"who": {"default": "user:default/bob"}, "broadcast": {"default": False}}},
    )
    results = await run_template(spec, {"t": "Second"}, base_url=host.url, token=SERVICE_TOKEN, log=lines.append)
    assert [(r.id, r.skipped) for r in results] == [("one", False), ("two", True), ("three", False)]
    assert lines[-1] == "Template completed: 2 of 3 steps ran"
    assert [n["payload"]["title"] for n in await inbox(host, "bob")] == ["Second", "Third"]
    assert [n["payload"]["title"] for n in await inbox(host, "alice")] == ["Third"]


async def test_unknown_actions_fail_before_any_step_runs(host: HostHandle) -> None:
    spec = template(
        {"action": "notification:send", "input": {"recipients": "broadcast", "title": "first"}},
        {"action": "debug:log", "input": {}},
    )
    with pytest.raises(TemplateError, match="Template action with ID 'debug:log' is not registered."):
        await run_template(spec, {}, base_url=host.url, token=SERVICE_TOKEN, log=lambda _: None)
    assert await inbox(host, "alice") == []


async def test_a_failing_step_stops_the_run(host: HostHandle) -> None:
    spec = template(
        {"id": "bad", "action": "notification:send", "input": {"recipients": "entity", "title": "x"}},
        {"id": "after", "action": "notification:send", "input": {"recipients": "broadcast", "title": "y"}},
    )
    with pytest.raises(TemplateError, match=r"Step 'bad' .* failed: InputError: Entity references must be provided"):
        await run_template(spec, {}, base_url=host.url, token=SERVICE_TOKEN, log=lambda _: None)
    assert await inbox(host, "alice") == []


async def greenroom(*args: str, token: str | None = SERVICE_TOKEN) -> tuple[int, str, str]:
    """Run the ``greenroom`` command in a subprocess (the host keeps serving in this event loop)."""
    env = {**os.environ}
    env.pop("GREENROOM_TOKEN", None)
    if token is not None:
        env["GREENROOM_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "host.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, stdout.decode(), stderr.decode()


async def test_example_template_from_the_command_line(host: HostHandle) -> None:
    code, out, err = await greenroom(
        "template", "run", str(EXAMPLE), "--url", host.url, "--values", json.dumps({"title": "api v2 is live"})
    )
    assert code == 0, err
    assert "[notify-team] Notify the team: notifications:notification:send" in out
    assert "Template completed: 2 of 2 steps ran" in out
    titles = [n["payload"]["title"] for n in await inbox(host, "alice")]  # team-a member: both
    assert titles == ["Announcement: api v2 is live", "api v2 is live"]
    assert [n["payload"]["title"] for n in await inbox(host, "carol")] == ["Announcement: api v2 is live"]
    [team] = [n for n in await inbox(host, "bob") if n["user"]]
    assert team["payload"]["description"] == "The new version is rolling out to every environment."
    assert team["payload"]["topic"] == "deployments"


async def test_command_line_errors(host: HostHandle, tmp_path: Path) -> None:
    code, _, err = await greenroom("template", "run", str(EXAMPLE), "--url", host.url, token=None)
    assert code == 1 and "A service token is required: pass --token or set GREENROOM_TOKEN" in err
    code, _, err = await greenroom("template", "run", str(EXAMPLE), "--url", host.url, "--token", "wrong")
    assert code == 1 and "Template action with ID 'notification:send' is not registered." in err
    assert "Cannot list the actions of plugin 'notifications'" in err
    code, _, err = await greenroom("template", "run", str(EXAMPLE), "--url", host.url, "--values", "[1]")
    assert code == 1 and "--values must be a JSON object" in err
    config = tmp_path / "config.yaml"
    config.write_text(f"backend:\n  baseUrl: {host.url}\n  actions:\n    pluginSources: [catalog]\n")
    code, _, err = await greenroom("template", "run", str(EXAMPLE), "--config", str(config))
    assert code == 1 and "is not registered" in err  # only the catalog plugin was searched
