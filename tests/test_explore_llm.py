"""The LLM agents with the real ``anthropic`` and ``openai`` SDKs, against stand-in servers on loopback.

No network and no real key: each test starts a :class:`standin.StandIn` on 127.0.0.1 (a free port) and
points the SDK at it, so what is checked is what the SDK really sends and parses.
"""

import base64
import json
from pathlib import Path

import pytest
from explore_helpers import InProcessExecutor, write_config
from standin import (
    Stall,
    StandIn,
    Status,
    anthropic_default,
    anthropic_tool,
    openai_default,
    openai_text,
    proposals_for,
    request_text,
)

from gnnlab.config.explore import DEFAULT_PRICES, LLM, Price
from gnnlab.errors import ConfigError
from gnnlab.explore import explore, make_agent, status
from gnnlab.explore.agents.llm import SCHEMA
from gnnlab.explore.store import STORE_FILE, Store

ANTHROPIC_KEY = "sk-ant-PLANTED-7c1e9a40d2b84f6e"
OPENAI_KEY = "sk-PLANTED-openai-55e2c0b19a3d"
DEAD_URL = "http://127.0.0.1:9"  # nothing listens: an SDK that used it instead of the config would fail


@pytest.fixture
def keys(monkeypatch):
    """Planted keys, and base-URL variables the config must override."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", DEAD_URL)
    monkeypatch.setenv("OPENAI_BASE_URL", DEAD_URL)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def run(tmp_path, cache, agent, llm, *, name="ex", iterations=4, slots=2, n_iter_block=2, **explore_keys):
    config = write_config(
        tmp_path / f"{name}.yaml",
        agent=agent,
        llm=llm,
        n_iter_block=n_iter_block,
        slots=slots,
        **explore_keys,
    )
    out = tmp_path / name
    explore(
        config,
        out,
        iterations=iterations,
        executor=InProcessExecutor(slots),
        cache_dir=cache,
        progress=False,
    )
    return out


def records(out):
    store = Store(out / STORE_FILE)
    try:
        return store.nodes(), store.llm_calls(), store.events("rejected")
    finally:
        store.close()


def assert_no_key_anywhere(out: Path, *keys: str) -> None:
    """Every file under ``out``, SQLite bytes included, is free of the keys."""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == STORE_FILE for p in files)
    for path in files:
        data = path.read_bytes()
        for key in keys:
            assert key.encode() not in data, f"{key} found in {path}"


# --- full short explorations ------------------------------------------------------------------------------
def test_anthropic_exploration_two_blocks_with_tokens_cost_and_no_key_on_disk(tmp_path, cache, keys):
    with StandIn(default=anthropic_default) as server:
        llm = {
            "model": "claude-standin",
            "base_url": server.url,
            "prices": {"claude-standin": {"input": 3.0, "output": 15.0}},
        }
        out = run(tmp_path, cache, "anthropic", llm)
    nodes, calls, rejected = records(out)
    assert [n.id for n in nodes] == [1, 2, 3, 4] and [n.block for n in nodes] == [1, 1, 2, 2]
    assert all(n.status == "done" and n.agent == "anthropic" for n in nodes)
    assert not rejected
    assert [n.mutation for n in nodes] == [{"training.learning_rate_k": 0.002 * (1 + i)} for i in range(1, 5)]
    assert [c["iteration"] for c in calls] == [1, 3]  # one call per round
    assert all(c["error"] is None and c["backend"] == "anthropic" for c in calls)
    assert sum(c["input_tokens"] for c in calls) == 2000 and sum(c["output_tokens"] for c in calls) == 200
    assert sum(c["cost_usd"] for c in calls) == pytest.approx(2 * (1000 * 3.0 + 100 * 15.0) / 1e6)
    assert all(c["latency_s"] > 0 for c in calls)
    assert status(out)["llm"] == {
        "calls": 2,
        "calls_with_error": 0,
        "input_tokens": 2000,
        "output_tokens": 200,
        "cost_usd": pytest.approx(0.009),
    }

    first = server.requests[0]
    assert first.path == "/v1/messages"  # the key went in a header (which one depends on the SDK version)
    assert ANTHROPIC_KEY in first.headers.get("x-api-key", "") + first.headers.get("authorization", "")
    assert first.body["tool_choice"] == {"type": "tool", "name": "propose"}
    assert first.body["tools"][0]["input_schema"] == SCHEMA
    assert first.body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "# Exploration protocol" in first.body["system"][0]["text"]
    assert json.loads(calls[0]["prompt"])["user"] == request_text(first.body)
    assert_no_key_anywhere(out, ANTHROPIC_KEY, OPENAI_KEY)


@pytest.mark.parametrize("json_schema", [True, False])
def test_openai_exploration_with_a_local_model_priced_by_default(tmp_path, cache, keys, json_schema):
    def fenced(body):  # a local model wrapping its JSON in a code fence, as small models do
        return openai_text("```json\n" + json.dumps(proposals_for(request_text(body))) + "\n```")

    with StandIn(default=openai_default if json_schema else fenced) as server:
        llm = {
            "model": "qwen-local",
            "base_url": server.url + "/v1",
            "json_schema": json_schema,
            "images": False,
            "default_price": {"input": 0.5, "output": 2.0},
        }
        out = run(tmp_path, cache, "openai", llm)
    nodes, calls, rejected = records(out)
    assert len(nodes) == 4 and all(n.status == "done" and n.agent == "openai" for n in nodes)
    assert not rejected and len(calls) == 2 and all(c["model"] == "local-standin" for c in calls)
    assert sum(c["cost_usd"] for c in calls) == pytest.approx(2 * (1000 * 0.5 + 100 * 2.0) / 1e6)
    first = server.requests[0]
    assert first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert first.body["model"] == "qwen-local"
    if json_schema:
        assert first.body["response_format"]["json_schema"]["schema"] == SCHEMA
    else:
        assert "response_format" not in first.body
    assert_no_key_anywhere(out, ANTHROPIC_KEY, OPENAI_KEY)


def test_known_models_keep_their_list_price_and_a_config_adds_or_overrides_prices():
    from explore_helpers import spec

    default = LLM()
    assert default.prices["claude-sonnet-4-5"] == Price(input=3.0, output=15.0)
    assert default.default_price == Price()  # an unknown model costs nothing unless configured
    custom = LLM(prices={"claude-sonnet-4-5": {"input": 1.0}, "local": {"input": 0.1, "output": 0.2}})
    assert custom.prices["claude-sonnet-4-5"] == Price(input=1.0, output=0.0)
    assert custom.prices["local"] == Price(input=0.1, output=0.2)
    assert custom.prices["gpt-4o"] == DEFAULT_PRICES["gpt-4o"]
    assert spec().budget_usd is None and spec(budget_usd=2.5).budget_usd == 2.5


def test_a_missing_key_is_a_one_line_config_error_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from explore_helpers import spec

    for name, variable in [("anthropic", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY")]:
        with pytest.raises(ConfigError, match=variable) as info:
            make_agent(name, spec=spec(agent=name), workspace=tmp_path)
        assert "\n" not in str(info.value)


def test_the_cli_takes_agent_anthropic_and_a_missing_key_stops_it_in_one_line(tmp_path, monkeypatch, capsys):
    from gnnlab.cli import main

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config = write_config(tmp_path / "c.yaml")
    assert main(["explore", str(config), "--out", str(tmp_path / "ex"), "--agent", "anthropic"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ANTHROPIC_API_KEY" in err


# --- rejections ---------------------------------------------------------------------------------------------
def item(**changes):
    base = {
        "iteration": 0,  # replaced by the iteration asked for
        "parent": None,
        "mutation": {"training.learning_rate_k": 0.01},
        "strategy": "exploit",
        "rationale": "r",
    }
    return {**base, **changes}


def one(**changes):
    return {"proposals": [item(**changes)]}


# (reply, a fragment of the recorded reason); each is answered for the iteration it is asked for
MALFORMED = [
    ("this is not JSON at all", "not JSON"),
    ('{"proposals": [', "not JSON"),
    (one(mutation={"training.no_such_key": 1}), "not a declared parameter"),
    (one(mutation={"simulation.n_frames": 200}), "frozen"),
    (one(mutation={"training.learning_rate_k": 5.0}), "outside"),
    (one(mutation={"training.lbfgs_iterations": "ten"}), "expected a number"),
    (one(mutation={"training.lbfgs_iterations": 2.5}), "expected an integer"),
    (one(mutation={"training.lbfgs_iterations": True}), "expected a number"),
    (one(mutation={"model.activation": "relu"}), "is not one of"),
    (one(mutation={"training.learning_rate_k": [0.01]}), "does not match the schema"),
    ({"proposals": [{k: v for k, v in item().items() if k != "rationale"}]}, "rationale: Field required"),
    ({**one(), "read": "../explore.sqlite"}, "read: Extra inputs are not permitted"),
    (one(mutation={"../../cache/ground_truth.npz": 1}), "not a declared parameter"),
    (one(mutation={"model.activation": "../explore.sqlite"}), "is not one of"),
    (one(parent=99), "parent 99 is not a finished node"),
    ({"proposals": []}, "no proposal for iteration"),
    ([item()], "does not match the schema"),
    (
        '{"proposals": [{"iteration": 0, "parent": null, "mutation": {"training.learning_rate_k": NaN}, '
        '"strategy": "s", "rationale": "r"}]}',
        "not finite",
    ),
    ("timeout", "timed out after 0.5 s"),
    ("http 500", "call failed: InternalServerError"),
]


def test_twenty_malformed_replies_are_rejected_with_reasons_and_the_loop_goes_on(tmp_path, cache, keys):
    assert len(MALFORMED) == 20
    asked: list[int] = []

    def reply(body):
        text = request_text(body)
        request = text.split("=== request ===")[1].split("===")[0]
        (iteration,) = [int(line.split()[2][:-1]) for line in request.splitlines() if line.startswith("- ")]
        asked.append(iteration)
        data, _ = MALFORMED[len(asked) - 1]
        if data == "timeout":
            return Stall(2.0, openai_text("{}"))
        if data == "http 500":
            return Status(500, {"error": {"message": "stand-in failure", "type": "server_error"}})
        if not isinstance(data, str):
            for p in data["proposals"] if isinstance(data, dict) else data:
                p["iteration"] = iteration
            data = json.dumps(data)
        return openai_text(data.replace('"iteration": 0', f'"iteration": {iteration}'))

    with StandIn(default=reply) as server:
        llm = {"model": "m", "base_url": server.url, "timeout_s": 0.5, "max_retries": 0, "images": False}
        out = run(tmp_path, cache, "openai", llm, iterations=10, slots=1, n_iter_block=5)
    nodes, calls, rejected = records(out)
    assert len(server.requests) == 20 and asked == [i for i in range(1, 11) for _ in range(2)]
    assert len(calls) == 20
    for call, (_, fragment) in zip(calls, MALFORMED, strict=True):
        assert call["error"] is not None and fragment in call["error"], (fragment, call["error"])
    # the re-ask carries the reason of the first reply; the second rejection is what the loop records
    second_prompts = [json.loads(c["prompt"])["user"] for c in calls[1::2]]
    for prompt, (_, fragment) in zip(second_prompts, MALFORMED[0::2], strict=True):
        assert "=== rejected ===" in prompt and fragment in prompt
    assert len(rejected) == 10
    for event, (_, fragment) in zip(rejected, MALFORMED[1::2], strict=True):
        assert event["detail"]["agent"] == "openai" and fragment in event["detail"]["reason"]
    assert len(nodes) == 10 and all(n.status == "done" for n in nodes)
    assert all(n.agent == "rule (after rejecting openai)" for n in nodes)


def test_budget_exhaustion_hands_the_slots_to_the_rule_agent_and_stops_calling(tmp_path, cache, keys):
    with StandIn(
        default=lambda body: anthropic_tool(proposals_for(request_text(body)), tokens=(10_000, 0))
    ) as s:
        llm = {
            "model": "claude-standin",
            "base_url": s.url,
            "prices": {"claude-standin": {"input": 1.0, "output": 1.0}},  # $0.01 a call
        }
        out = run(tmp_path, cache, "anthropic", llm, iterations=4, slots=1, n_iter_block=4, budget_usd=0.015)
    nodes, calls, rejected = records(out)
    assert len(s.requests) == 2 and len(calls) == 2  # $0.01 < $0.015 allows the second, not a third
    assert sum(c["cost_usd"] for c in calls) == pytest.approx(0.02)
    assert [n.agent for n in nodes] == ["anthropic", "anthropic"] + ["rule (after rejecting anthropic)"] * 2
    assert [e["iteration"] for e in rejected] == [3, 4]
    assert all("LLM budget exhausted ($0.0200 of $0.0150)" in e["detail"]["reason"] for e in rejected)

    # the spend is read from the store, so a resumed exploration (no server now) makes no call either
    explore(
        None, out, resume=True, iterations=6, executor=InProcessExecutor(1), cache_dir=cache, progress=False
    )
    nodes, calls, rejected = records(out)
    assert len(nodes) == 6 and len(calls) == 2 and [e["iteration"] for e in rejected] == [3, 4, 5, 6]


def test_max_turns_one_means_no_re_ask(tmp_path, cache, keys):
    with StandIn([openai_text("not JSON")]) as server:
        llm = {"model": "m", "base_url": server.url, "max_turns": 1, "images": False}
        out = run(tmp_path, cache, "openai", llm, iterations=1, slots=1)
    nodes, calls, rejected = records(out)
    assert len(server.requests) == 1 and len(calls) == 1 and "not JSON" in calls[0]["error"]
    assert [n.agent for n in nodes] == ["rule (after rejecting openai)"] and len(rejected) == 1


# --- what the model is shown ------------------------------------------------------------------------------
def test_the_latest_plots_are_attached_as_images(tmp_path, cache, keys):
    with StandIn(default=anthropic_default) as server:
        llm = {"model": "claude-standin", "base_url": server.url}
        out = run(tmp_path, cache, "anthropic", llm, iterations=4, slots=2, n_iter_block=4, plots=True)
    first, second = (r.body["messages"][0]["content"] for r in server.requests)
    assert [b["type"] for b in first] == ["text"]  # nothing finished yet: no plots
    images = [b for b in second if b["type"] == "image"]
    assert len(images) == 2 and second[-1]["type"] == "text"
    for block in images:
        data = base64.b64decode(block["source"]["data"])
        assert block["source"]["media_type"] == "image/png" and data.startswith(b"\x89PNG")
    # the workspace is refreshed before each round only, so it still holds what the last round was shown
    shown = [base64.b64decode(b["source"]["data"]) for b in images]
    assert shown == [(out / "workspace" / name).read_bytes() for name in ("tree.png", "progress.png")]
    _, calls, _ = records(out)
    assert json.loads(calls[1]["prompt"])["images"] == ["tree.png", "progress.png"]


# --- ground truth out of reach ---------------------------------------------------------------------------
CANARY = "CANARY-ground-truth-3f9b1c"


class CanaryExecutor(InProcessExecutor):
    """Runs as the in-process executor, but leaves behind what a real run holds that carries ground truth:
    a metric compared against true values, plots that draw them, a log and a copy of the truth; and plants
    the canary in every cached ground-truth file. All of it must stay out of the agent's reach."""

    def __init__(self, slots: int, cache: Path):
        super().__init__(slots)
        self.cache = cache

    def submit(self, spec):
        for truth in self.cache.rglob("ground_truth.npz"):
            if CANARY.encode() not in truth.read_bytes():
                truth.write_bytes(truth.read_bytes() + CANARY.encode())
        super().submit(spec)

    def wait(self, timeout=None):
        results = super().wait(timeout)
        for spec, result in zip(self.submitted[-len(results) :], results, strict=True):
            result.metrics[f"MLP_node_gt_slope_{CANARY}"] = 0.5
            (spec.run_dir / "plots").mkdir(parents=True, exist_ok=True)
            (spec.run_dir / "plots" / "rate_constants.png").write_bytes(b"\x89PNG\r\n" + CANARY.encode())
            (spec.run_dir / "plots" / "kinograph.png").write_bytes(b"\x89PNG\r\n observed vs rollout")
            (spec.run_dir / "ground_truth_copy.txt").write_text(CANARY)
            (spec.run_dir / "analysis.log").write_text(f"true rate constants: {CANARY}\n")
            (spec.run_dir / "metrics.json").write_text(json.dumps(result.metrics))
        return results


def test_the_canary_planted_in_ground_truth_never_reaches_the_agent(tmp_path, keys):
    cache = tmp_path / "cache"
    config = write_config(
        tmp_path / "c.yaml",
        agent="anthropic",
        n_iter_block=2,
        slots=2,
        plots=True,
        llm={"model": "claude-standin"},
    )
    with StandIn(default=anthropic_default) as server:
        explore(
            config,
            tmp_path / "ex",
            overrides=[f"explore.llm.base_url={server.url}"],
            iterations=4,
            executor=CanaryExecutor(2, cache),
            cache_dir=cache,
            progress=False,
        )
    out = tmp_path / "ex"
    planted = [
        p for p in [*cache.rglob("*"), *out.rglob("*")] if p.is_file() and CANARY.encode() in p.read_bytes()
    ]
    assert {p.name for p in planted} >= {
        "ground_truth.npz",
        "rate_constants.png",
        "metrics.json",
        "analysis.log",
    }

    workspace = out / "workspace"
    assert (workspace / "tree.png").is_file() and list(workspace.glob("nodes/iter_*/metrics.json"))
    # the last round shown (iterations 3, 4) saw the first round's truth-free figures, not those drawing truth
    assert sorted(p.parent.name for p in workspace.glob("nodes/*/kinograph.png")) == ["iter_001", "iter_002"]
    assert not list(workspace.rglob("rate_constants.png"))
    for path in workspace.rglob("*"):
        assert not path.is_file() or CANARY.encode() not in path.read_bytes(), path
    _, calls, _ = records(out)
    assert len(calls) == 2 and len(server.requests) == 2 and all(c["error"] is None for c in calls)
    for call in calls:
        assert CANARY not in call["prompt"] and CANARY not in (call["reply"] or "")
    for request in server.requests:
        assert CANARY.encode() not in request.raw
        for block in request.body["messages"][0]["content"]:
            if block["type"] == "image":
                assert CANARY.encode() not in base64.b64decode(block["source"]["data"])


# --- replay ----------------------------------------------------------------------------------------------
def test_replay_of_an_llm_exploration_reproduces_it_without_calling_the_model(
    tmp_path, cache, keys, monkeypatch
):
    with StandIn(default=openai_default) as server:
        llm = {"model": "m", "base_url": server.url, "images": False}
        first = run(tmp_path, cache, "openai", llm)
    monkeypatch.delenv("OPENAI_API_KEY")  # replay needs no key and no server
    again = tmp_path / "again"
    explore(None, again, replay_from=first, executor=InProcessExecutor(2), cache_dir=cache, progress=False)

    def tree(out):
        nodes, calls, _ = records(out)
        return [(n.id, n.block, n.parent, n.mutation, n.config, n.metrics) for n in nodes], calls

    (recorded, calls), (replayed, replay_calls) = tree(first), tree(again)
    assert recorded == replayed and len(recorded) == 4
    assert len(calls) == 2 and replay_calls == []
    assert len(server.requests) == 2
