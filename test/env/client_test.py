"""The Python client (python/mbpo_arm_env.py) against a real server: run by test/env/python-client.test.ts.

Standard library unittest; needs numpy, and the built server (dist/). Gymnasium is optional.
"""

import json
import math
import os
import subprocess
import sys
import unittest

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
sys.path.insert(0, os.path.join(ROOT, "python"))

from mbpo_arm_env import Box, MbpoArmEnv, MbpoArmEnvError, server_command  # noqa: E402

ARGS = ["--no-log-file"]


def run_command(*args):
    """Episode lines printed by `mbpo-arm run ... --json`."""
    out = subprocess.run(
        server_command() + ["run", "--no-log-file", "--no-transition-log", "--json", *args],
        check=True, capture_output=True, text=True,
    ).stdout
    return [e for e in map(json.loads, out.splitlines()) if e["type"] == "episode"]


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = MbpoArmEnv(args=ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.env.close()

    def test_spaces(self):
        env = self.env
        self.assertEqual(env.observation_space.shape, (env.observation_size,))
        self.assertEqual(env.action_space.shape, (4,))
        np.testing.assert_array_equal(env.action_space.low, -np.ones(4, np.float32))
        np.testing.assert_array_equal(env.action_space.high, np.ones(4, np.float32))
        self.assertTrue(np.all(np.isinf(env.observation_space.low)))
        self.assertEqual(env.episode_steps, 100)
        self.assertEqual(env.control_rate_hz, 50)
        self.assertEqual(len(env.joint_names), 4)
        try:
            import gymnasium  # noqa: F401
        except ImportError:
            self.assertIsInstance(env.action_space, Box)
        sample = env.action_space.sample()
        self.assertTrue(env.action_space.contains(sample))
        self.assertFalse(env.action_space.contains(sample + 3))

    def test_reset_is_deterministic_for_a_seed(self):
        env = self.env
        a, info_a = env.reset(seed=11)
        env.step(np.ones(4))
        b, info_b = env.reset(seed=11)
        c, _ = env.reset(seed=12)
        self.assertEqual(a.dtype, np.float32)
        self.assertEqual(a.shape, (env.observation_size,))
        np.testing.assert_array_equal(a, b)
        self.assertEqual(info_a, info_b)
        self.assertFalse(np.array_equal(a, c))

    def test_episode_matches_run_and_replays_exactly(self):
        env = self.env
        # `run --policy zero` and zero actions through the client: the same return.
        expected = run_command("--policy", "zero", "--seed", "6", "--episodes", "1")[0]["return"]
        env.reset(seed=6)
        total, steps = 0.0, 0
        while True:
            _, reward, terminated, truncated, info = env.step(np.zeros(4))
            total += reward
            steps += 1
            if terminated or truncated:
                break
        self.assertEqual(steps, env.episode_steps)
        self.assertTrue(truncated and not terminated)
        self.assertEqual(total, expected)
        self.assertEqual(info["episode"]["return"], expected)

        # Random actions, played twice from the same seed: the same transitions; and the batch
        # reward of those transitions is the reward of each step.
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1, 1, size=(50, 4))
        runs = []
        for _ in range(2):
            obs, _ = env.reset(seed=21)
            rows = []
            for a in actions:
                nxt, r, _, _, info = env.step(a)
                rows.append((obs, a, nxt, r))
                obs = nxt
            runs.append(rows)
        for (o1, _, n1, r1), (o2, _, n2, r2) in zip(*runs):
            np.testing.assert_array_equal(n1, n2)
            self.assertEqual(r1, r2)
        obs, act, nxt, rew = map(np.array, zip(*runs[0]))
        rewards, terminated = env.compute_reward(obs, act, nxt)
        np.testing.assert_array_equal(rewards, rew)
        self.assertFalse(terminated.any())
        nxt[3, 0] = np.nan
        rewards, terminated = env.compute_reward(obs[:5], act[:5], nxt[:5])
        self.assertEqual(rewards[3], -10.0)
        self.assertEqual(terminated.tolist(), [False, False, False, True, False])
        # compute_reward sends the binary (base64 float64) form; the JSON form scores the same.
        self.assertGreaterEqual(env.server_spec["protocol"], 2)
        r = env.request({"cmd": "reward", "obs": obs[:5].tolist(), "action": act[:5].tolist(),
                         "next_obs": [[None if math.isnan(x) else x for x in row] for row in nxt[:5].tolist()]})
        np.testing.assert_array_equal(np.array(r["reward"], dtype=np.float64), rewards)
        self.assertEqual(r["terminated"], terminated.tolist())
        empty, none = env.compute_reward(obs[:0], act[:0], nxt[:0])
        self.assertEqual((empty.shape, none.shape), ((0,), (0,)))

    def test_reset_options_name_the_episode(self):
        env = self.env
        start = [0.1, -0.3, 0.4, 0.2]
        _, info = env.reset(seed=4, options={"start_position": start, "goal": [0.2, 0.05, 0.15]})
        np.testing.assert_allclose(info["start_position"], start)
        self.assertEqual(info["goal"], [0.2, 0.05, 0.15])
        a, info_a = env.reset(seed=7, options={"eval": 2})
        b, info_b = env.reset(seed=7, options={"eval": 2})
        self.assertEqual(info_a["eval"], 2)
        np.testing.assert_array_equal(a, b)
        with self.assertRaisesRegex(ValueError, "unknown option 'gaol'"):
            env.reset(options={"gaol": [0, 0, 0]})
        with self.assertRaisesRegex(MbpoArmEnvError, "goal"):
            env.reset(options={"goal": [0.2, 0.05]})

    def test_bad_actions_and_requests_raise_and_the_env_goes_on(self):
        env = self.env
        env.reset(seed=1)
        with self.assertRaisesRegex(ValueError, "4 values"):
            env.step(np.zeros(3))
        with self.assertRaisesRegex(ValueError, "finite"):
            env.step(np.array([0, np.nan, 0, 0]))
        with self.assertRaisesRegex(MbpoArmEnvError, 'unknown command "bogus"'):
            env.request({"cmd": "bogus"})
        with self.assertRaisesRegex(MbpoArmEnvError, "must be an integer"):
            env.request({"cmd": "reset", "seed": -3})
        _, _, _, _, info = env.step([0.1, 0.2, 0.3, 0.4])
        self.assertEqual(info["step"], 0)

    def test_tcp(self):
        server = subprocess.Popen(
            server_command() + ["env", "serve", "--port", "0", *ARGS],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            port = json.loads(server.stdout.readline())["listening"]["port"]
            with MbpoArmEnv(port=port, timeout=60) as remote:
                obs, _ = remote.reset(seed=11)
                local, _ = self.env.reset(seed=11)
                np.testing.assert_array_equal(obs, local)
                _, r1, *_ = remote.step(np.full(4, 0.5))
                _, r2, *_ = self.env.step(np.full(4, 0.5))
                self.assertEqual(r1, r2)
            self.assertEqual(server.wait(timeout=30), 0)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            server.stdout.close()

    def test_close(self):
        env = MbpoArmEnv(args=ARGS)
        env.reset(seed=0)
        env.close()
        env.close()
        self.assertEqual(env._process.returncode, 0)
        with self.assertRaisesRegex(MbpoArmEnvError, "closed"):
            env.step(np.zeros(4))


if __name__ == "__main__":
    unittest.main(verbosity=2)
