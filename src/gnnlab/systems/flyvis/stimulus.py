"""Procedural visual input on the photoreceptor lattice: no video data set, deterministic in the seed.

A photoreceptor in column (u, v) sees luminance L(x, y, t) at x = u + v / 2, y = v sqrt(3) / 2 (unit
column spacing, hexagonal lattice); its input is ``contrast * (2 L - 1)``, so grey (L = 0.5) is no input.
A run is a sequence of segments of ``segment_frames`` frames; segment s of run r shows kind
``kinds[(r + s) % len(kinds)]`` with parameters drawn from the generator:

- ``grating``: a sinusoidal grating, random orientation, period 2-6 columns, 0.5-4 Hz, either direction;
- ``flash``: full-field grey, then an ON or OFF step at a random onset within the segment's first half;
- ``edge``: an ON or OFF edge sweeping across the lattice at 10-40 columns/s in a random direction;
- ``flow``: a smooth random pattern (four spatial frequencies, wavelengths around 4 columns, squashed by
  tanh) translating rigidly at 2-10 columns/s, like the optical flow of self-motion. The default config
  holds it out for the test run;
- ``noise``: every photoreceptor independently, luminance 0 or 1 (binary white noise at full contrast),
  redrawn every 1, 2 or 4 frames (drawn per segment): decorrelates the columns, so cells of one type stop
  moving together.
"""

import numpy as np

KINDS = ("grating", "flash", "edge", "flow", "noise")


def positions(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Cartesian positions (P, 2) of lattice columns (u, v)."""
    return np.stack([u + v / 2.0, v * np.sqrt(3.0) / 2.0], axis=1)


def _unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


def segment(kind: str, xy: np.ndarray, n_frames: int, delta_t: float, rng: np.random.Generator) -> np.ndarray:
    """Luminance (n_frames, P) in [0, 1] of one segment of ``kind`` at positions ``xy``."""
    t = np.arange(n_frames)[:, None] * delta_t
    radius = float(np.abs(xy).max()) + 1.0
    if kind == "grating":
        direction = _unit(rng.uniform(0, 2 * np.pi))
        period, frequency = rng.uniform(2.0, 6.0), rng.uniform(0.5, 4.0)
        phase = xy @ direction / period - frequency * t + rng.uniform(0, 1)
        return 0.5 + 0.5 * np.sin(2 * np.pi * phase)
    if kind == "flash":
        onset = rng.integers(0, max(1, n_frames // 2))
        level = float(rng.integers(0, 2))
        frames = np.where(np.arange(n_frames) >= onset, level, 0.5)
        return np.repeat(frames[:, None], len(xy), axis=1)
    if kind == "edge":
        direction = _unit(rng.uniform(0, 2 * np.pi))
        speed, polarity = rng.uniform(10.0, 40.0), float(rng.integers(0, 2))
        front = -radius + speed * t
        return np.where(xy @ direction < front, polarity, 1.0 - polarity)
    if kind == "flow":
        velocity = rng.uniform(2.0, 10.0) * _unit(rng.uniform(0, 2 * np.pi))
        waves = rng.normal(scale=2 * np.pi / 4.0, size=(4, 2))  # wavelengths around 4 columns
        phases, amplitudes = rng.uniform(0, 2 * np.pi, 4), rng.normal(size=4)
        moved = xy[None, :, :] - t[:, :, None] * velocity  # (T, P, 2)
        field = (amplitudes * np.cos(moved @ waves.T + phases)).sum(-1)
        return 0.5 + 0.5 * np.tanh(field)
    if kind == "noise":
        hold = int(rng.choice([1, 2, 4]))
        draws = rng.integers(0, 2, size=(-(-n_frames // hold), len(xy))).astype(float)
        return np.repeat(draws, hold, axis=0)[:n_frames]
    raise ValueError(f"unknown stimulus kind {kind!r}; choose from {', '.join(KINDS)}")


def stimulus_run(
    kinds: tuple[str, ...],
    run: int,
    xy: np.ndarray,
    n_frames: int,
    segment_frames: int,
    delta_t: float,
    contrast: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Photoreceptor input (n_frames, P) of run ``run``: segments cycling through ``kinds``."""
    pieces, done, s = [], 0, 0
    while done < n_frames:
        length = min(segment_frames, n_frames - done)
        pieces.append(segment(kinds[(run + s) % len(kinds)], xy, length, delta_t, rng))
        done, s = done + length, s + 1
    return contrast * (2.0 * np.concatenate(pieces) - 1.0)


__all__ = ["KINDS", "positions", "segment", "stimulus_run"]
