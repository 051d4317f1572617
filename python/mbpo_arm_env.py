"""A Gymnasium-style client for `mbpo-arm env serve`: the arm (simulated or real) as an environment.

Standard library and numpy only. When Gymnasium is importable, the environment is a
``gymnasium.Env`` with ``gymnasium.spaces.Box`` spaces, so it drops into Stable-Baselines3 and other
Gymnasium code; without it, the spaces are small ``Box`` objects with the same ``shape``, ``low``,
``high``, ``dtype``, ``sample()`` and ``contains()``.

    from mbpo_arm_env import MbpoArmEnv

    with MbpoArmEnv(args=["--driver", "sim"]) as env:     # starts the server as a child process
        obs, info = env.reset(seed=1)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

    env = MbpoArmEnv(host="127.0.0.1", port=7070)          # or connects to `env serve --port 7070`

Each step is one control period of the robot's own control loop (gravity compensation and safety
filter included). Non-finite numbers travel as JSON null; they come back here as NaN.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shlex
import shutil
import socket
import subprocess
from typing import Any, Optional, Sequence

import numpy as np

try:  # Gymnasium is optional: used for proper spaces and the Env base class when installed.
    import gymnasium as _gym
except ImportError:  # pragma: no cover - depends on the machine
    _gym = None

__all__ = ["MbpoArmEnv", "MbpoArmEnvError", "Box", "server_command"]

#: Rows per binary `reward` request: 40,000 rows of the reach task are a 9 MB line, inside the
#: server's default bound of 16 MiB (--max-line-bytes).
REWARD_CHUNK_ROWS = 40_000

#: What ``reset(options=...)`` may name (the server's reset fields).
RESET_OPTIONS = ("start_position", "goal", "goal_position", "eval")


class MbpoArmEnvError(RuntimeError):
    """The server answered a request with {"error": ...}, or the connection to it failed."""


class Box:
    """A bounded box of real numbers, for when Gymnasium is not installed."""

    def __init__(self, low: Any, high: Any, shape: Sequence[int], dtype: Any = np.float32) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.low = np.broadcast_to(np.asarray(low, dtype=self.dtype), self.shape).copy()
        self.high = np.broadcast_to(np.asarray(high, dtype=self.dtype), self.shape).copy()
        self._rng = np.random.default_rng()

    def seed(self, seed: Optional[int] = None) -> None:
        self._rng = np.random.default_rng(seed)

    def sample(self) -> np.ndarray:
        """Uniform inside finite bounds; standard normal along unbounded dimensions."""
        finite = np.isfinite(self.low) & np.isfinite(self.high)
        out = self._rng.standard_normal(self.shape)
        uniform = self._rng.uniform(np.where(finite, self.low, 0.0), np.where(finite, self.high, 1.0))
        return np.where(finite, uniform, out).astype(self.dtype)

    def contains(self, x: Any) -> bool:
        a = np.asarray(x)
        return a.shape == self.shape and bool(np.all((a >= self.low) & (a <= self.high)))

    def __contains__(self, x: Any) -> bool:
        return self.contains(x)

    def __repr__(self) -> str:
        return f"Box({self.low.min()}, {self.high.max()}, {self.shape}, {self.dtype})"


def _box(low: Any, high: Any, shape: Sequence[int]) -> Any:
    if _gym is not None:
        lo = np.broadcast_to(np.asarray(low, np.float32), tuple(shape))
        hi = np.broadcast_to(np.asarray(high, np.float32), tuple(shape))
        return _gym.spaces.Box(low=lo, high=hi, dtype=np.float32)
    return Box(low, high, shape, np.float32)


def server_command() -> list[str]:
    """How to start the server: $MBPO_ARM_COMMAND, else this checkout's build, else `mbpo-arm` on PATH."""
    configured = os.environ.get("MBPO_ARM_COMMAND")
    if configured:
        return shlex.split(configured)
    here = os.path.dirname(os.path.abspath(__file__))
    built = os.path.join(here, os.pardir, "dist", "src", "cli", "main.js")
    if os.path.isfile(built):
        return ["node", os.path.normpath(built)]
    installed = shutil.which("mbpo-arm")
    if installed is not None:
        return [installed]
    raise MbpoArmEnvError(
        "cannot find the mbpo-arm server: build it (npm run build), put `mbpo-arm` on PATH, "
        "or set MBPO_ARM_COMMAND"
    )


def _floats(values: Any, dtype: Any) -> np.ndarray:
    # numpy reads None (JSON null: a non-finite number on the server) as NaN in a float array.
    return np.array(values, dtype=dtype)


_Base: Any = _gym.Env if _gym is not None else object


class MbpoArmEnv(_Base):
    """The arm as a Gymnasium-style environment, served by `mbpo-arm env serve`.

    Without ``host``/``port`` it starts ``mbpo-arm env serve`` (see ``server_command``) with the
    extra ``args`` (e.g. ``["--driver", "sim", "-p", "task.episode_steps=200"]``) and talks over its
    stdin/stdout; the server's log goes to this process's stderr. With ``port`` it connects to a
    server started with ``--port``.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        host: Optional[str] = None,
        port: Optional[int] = None,
        command: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
    ) -> None:
        self._process: Optional[subprocess.Popen] = None
        self._socket: Optional[socket.socket] = None
        self._closed = False
        if port is not None:
            self._socket = socket.create_connection((host or "127.0.0.1", port), timeout=timeout)
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socket.settimeout(timeout)
            self._reader = self._socket.makefile("rb")
            self._writer = self._socket.makefile("wb")
        else:
            argv = list(command) if command is not None else server_command()
            self._process = subprocess.Popen(
                argv + ["env", "serve", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            self._reader = self._process.stdout
            self._writer = self._process.stdin

        self.server_spec: dict = self._request({"cmd": "spec"})
        spec = self.server_spec
        self.observation_size: int = spec["observation_size"]
        self.action_size: int = spec["action_size"]
        self.episode_steps: int = spec["episode_steps"]
        self.control_rate_hz: float = spec["control_rate_hz"]
        self.joint_names: list = spec["joint_names"]
        self.metadata = {"render_modes": [], "render_fps": self.control_rate_hz}
        self.observation_space = _box(-np.inf, np.inf, (self.observation_size,))
        self.action_space = _box(spec["action_low"], spec["action_high"], (self.action_size,))
        self._action_low = np.asarray(spec["action_low"], dtype=np.float64)
        self._action_high = np.asarray(spec["action_high"], dtype=np.float64)

    # -- Gymnasium API ---------------------------------------------------------------------------

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        """Runs the robot's reset move and starts an episode. The same seed gives the same episode.

        ``options`` may name the episode instead of drawing it: ``start_position`` (a joint pose,
        rad), ``goal`` (the target point, m) or ``goal_position`` (a joint pose whose tool point is
        the target), or ``eval`` (k: evaluation episode k of ``seed``, as `bench/learning` draws
        it). Each one left out comes from the seed's episode stream.
        """
        if _gym is not None:
            super().reset(seed=seed)
        request: dict = {"cmd": "reset"}
        if seed is not None:
            request["seed"] = int(seed)
        for key, value in (options or {}).items():
            if key not in RESET_OPTIONS:
                raise ValueError(f"reset: unknown option {key!r} (known: {', '.join(RESET_OPTIONS)})")
            if key == "eval":
                request[key] = int(value)
            else:
                request[key] = np.asarray(value, dtype=np.float64).reshape(-1).tolist()
        response = self._request(request)
        return _floats(response["obs"], np.float32), response["info"]

    def step(self, action: Any):
        """One control period. Actions outside the bounds are clipped by the server (as in `run`)."""
        values = np.asarray(action, dtype=np.float64).reshape(-1).tolist()
        if len(values) != self.action_size:
            raise ValueError(f"action must have {self.action_size} values, got shape {np.shape(action)}")
        if not all(map(math.isfinite, values)):
            raise ValueError(f"action must be finite, got {values}")
        # repr of a float round-trips exactly; json.dumps would do the same, slower.
        line = '{"cmd":"step","action":[' + ",".join(map(repr, values)) + "]}\n"
        r = self._exchange(line.encode())
        reward = r["reward"]
        return (
            _floats(r["obs"], np.float32),
            math.nan if reward is None else float(reward),
            bool(r["terminated"]),
            bool(r["truncated"]),
            r["info"],
        )

    def close(self) -> None:
        """Asks the server to stop the robot and exit. Safe to call twice."""
        if self._closed:
            return
        try:
            self._request({"cmd": "close"})
        except (MbpoArmEnvError, OSError, ValueError):
            pass  # the server is gone already
        self._closed = True
        for stream in (self._writer, self._reader):
            try:
                stream.close()
            except OSError:
                pass
        if self._socket is not None:
            self._socket.close()
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.terminate()
                self._process.wait(timeout=10)

    # -- Beyond Gymnasium --------------------------------------------------------------------------

    def compute_reward(self, obs: Any, action: Any, next_obs: Any):
        """The task's rewards and terminations for a batch of transitions (rows), as numpy arrays.

        For model-based learners: the task's own reward function, evaluated on the server. NaN in
        an observation is allowed (the task scores such a state as invalid and terminal).
        """
        o = np.asarray(obs, dtype=np.float64).reshape(-1, self.observation_size)
        a = np.asarray(action, dtype=np.float64).reshape(-1, self.action_size)
        n = np.asarray(next_obs, dtype=np.float64).reshape(-1, self.observation_size)
        if not (len(o) == len(a) == len(n)):
            raise ValueError(f"batch sizes differ: obs {len(o)}, action {len(a)}, next_obs {len(n)}")
        if self.server_spec.get("protocol", 1) < 2:  # a server without the binary form
            response = self._request(
                {"cmd": "reward", "obs": _json_rows(o), "action": _json_rows(a), "next_obs": _json_rows(n)}
            )
            return _floats(response["reward"], np.float64), np.asarray(response["terminated"], dtype=bool)
        # Binary: base64 little-endian float32 rows (the precision the task scores in; a JSON
        # number costs more than a reward) and float64 rewards back, in requests of at most
        # REWARD_CHUNK_ROWS rows (well inside the server's bound on a line). Base64 needs no JSON
        # escaping, so the line is put together as bytes.
        rewards, terminated = [], []
        for start in range(0, max(len(o), 1), REWARD_CHUNK_ROWS):
            rows = slice(start, start + REWARD_CHUNK_ROWS)
            line = b"".join((
                b'{"cmd":"reward","encoding":"base64","obs":"', _b64(o[rows]),
                b'","action":"', _b64(a[rows]), b'","next_obs":"', _b64(n[rows]), b'"}\n',
            ))
            response = self._exchange(line)
            rewards.append(np.frombuffer(base64.b64decode(response["reward"]), dtype="<f8"))
            terminated.append(np.frombuffer(base64.b64decode(response["terminated"]), dtype=np.uint8))
        return np.concatenate(rewards).astype(np.float64), np.concatenate(terminated).astype(bool)

    def request(self, message: dict) -> dict:
        """Sends any request object and returns the response (raises MbpoArmEnvError on an error)."""
        return self._request(message)

    def __enter__(self) -> "MbpoArmEnv":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- Wire ---------------------------------------------------------------------------------------

    def _request(self, message: dict) -> dict:
        return self._exchange((json.dumps(message, allow_nan=False) + "\n").encode())

    def _exchange(self, line: bytes) -> dict:
        if self._closed:
            raise MbpoArmEnvError("the environment is closed")
        try:
            self._writer.write(line)
            self._writer.flush()
            answer = self._reader.readline()
        except OSError as err:
            raise MbpoArmEnvError(f"lost the connection to the server: {err}") from err
        if not answer:
            code = self._process.poll() if self._process is not None else None
            raise MbpoArmEnvError(
                "the server closed the connection" + (f" (exit code {code})" if code is not None else "")
            )
        response = json.loads(answer)
        if "error" in response:
            raise MbpoArmEnvError(response["error"])
        return response


def _b64(rows: np.ndarray) -> bytes:
    return base64.b64encode(np.ascontiguousarray(rows, dtype="<f4").tobytes())


def _json_rows(rows: np.ndarray) -> list:
    """Rows as lists; non-finite entries as None (JSON null), which the server reads as NaN."""
    if np.all(np.isfinite(rows)):
        return rows.tolist()
    return [[None if not math.isfinite(x) else x for x in row] for row in rows.tolist()]
