"""Plain-search baselines over the same space: what the rule agent (and any LLM agent) must beat.

* ``random`` — every searchable key drawn independently from its whole range (log-uniform on log scales).
* ``optuna`` — Optuna's TPE sampler through ask-and-tell (the optional extra ``gnnlab[optuna]``). The study
  is rebuilt from the store every round (each finished node told with its reward, failures included), so the
  agent holds no state and ``--resume`` continues exactly; ``constant_liar`` keeps the parallel asks of one
  round apart.

Both propose children of the block's root config that set every searchable key.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from gnnlab.config.explore import Parameter
from gnnlab.errors import ConfigError
from gnnlab.explore.agents._base import Agent, Context, Proposal, Slot
from gnnlab.explore.space import get_value


class RandomAgent(Agent):
    name = "random"

    def propose(self, context: Context, slots: Sequence[Slot]) -> list[Proposal]:
        out = []
        for slot in slots:
            rng = np.random.default_rng([context.seed, slot.iteration])
            mutation = {key: context.space.sample(key, rng) for key in context.space.searchable}
            out.append(Proposal(mutation, None, "random", "every key drawn from its whole range"))
        return out


def _distribution(param: Parameter) -> Any:
    import optuna

    if param.type == "float":
        return optuna.distributions.FloatDistribution(param.low, param.high, log=param.log)
    if param.type == "int":
        return optuna.distributions.IntDistribution(int(param.low), int(param.high), log=param.log)
    if param.type == "bool":
        return optuna.distributions.CategoricalDistribution((False, True))
    return optuna.distributions.CategoricalDistribution(tuple(param.choices or ()))


class OptunaAgent(Agent):
    name = "optuna"

    def propose(self, context: Context, slots: Sequence[Slot]) -> list[Proposal]:
        try:
            import optuna
        except ImportError:
            raise ConfigError("agent 'optuna' needs Optuna: pip install 'gnnlab[optuna]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        space = context.space
        distributions = {key: _distribution(space.parameters[key]) for key in space.searchable}
        sampler = optuna.samplers.TPESampler(
            seed=int(context.seed * 100_003 + slots[0].iteration), constant_liar=True
        )
        study = optuna.create_study(direction="maximize", sampler=sampler)
        rewards = context.rewards
        for node in context.nodes:
            if node.id not in rewards:
                continue
            params = {key: get_value(node.config, key) for key in space.searchable}
            if space.check(params):
                continue  # outside the declared space (the root config may be): TPE cannot model it
            study.add_trial(
                optuna.trial.create_trial(params=params, distributions=distributions, value=rewards[node.id])
            )
        out = []
        for _ in slots:
            trial = study.ask(distributions)
            out.append(Proposal(dict(trial.params), None, "tpe", f"TPE trial {trial.number}"))
        return out


__all__ = ["OptunaAgent", "RandomAgent"]
