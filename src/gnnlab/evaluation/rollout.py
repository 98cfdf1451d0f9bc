"""Free rollouts: integrate a learned vector field from an initial state, as the simulator does."""

import numpy as np
import torch

from gnnlab.models import DynamicsModel


def rollout(
    model: DynamicsModel,
    initial: np.ndarray,
    inputs: np.ndarray,
    delta_t: float,
    *,
    nonnegative: bool,
) -> np.ndarray:
    """Explicit Euler from ``initial`` (N,) over the T frames of ``inputs`` (T, N); returns states (T, N).

    The model sees only its own predictions, never the data, so errors compound: this is the honest test
    of whether it learned the dynamics rather than one-step derivatives. Non-finite states stop the
    rollout and the remainder is filled with the last finite state.
    """
    device = next(model.parameters()).device
    u = torch.as_tensor(inputs, dtype=torch.float32, device=device)
    state = torch.as_tensor(initial, dtype=torch.float32, device=device).unsqueeze(0)
    states = torch.empty_like(u)
    with torch.no_grad():
        for t in range(u.shape[0]):
            states[t] = state[0]
            step = state + delta_t * model.derivative(state, u[t : t + 1])
            if nonnegative:
                step = step.clamp_min(0.0)
            if not torch.isfinite(step).all():
                states[t + 1 :] = state[0]
                break
            state = step
    return states.cpu().numpy()
