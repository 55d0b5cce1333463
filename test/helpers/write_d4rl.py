"""An independent D4RL-layout writer and reader for tests: h5py (Debian's python3-h5py).

  /usr/bin/python3 test/helpers/write_d4rl.py write MODE OUT.hdf5   -> writes OUT, prints the values as JSON
  /usr/bin/python3 test/helpers/write_d4rl.py read IN.hdf5           -> prints every dataset of IN as JSON

MODE is one of:
  good      25 transitions in D4RL's own style: float64 observations, float16 actions, big-endian
            float64 rewards, h5py booleans for terminals/timeouts, float32 next_observations
            (gzip), nested infos/qpos and infos/qvel (float64), a metadata group and a root
            attribute that the loader ignores or keeps
  nan       as good, with observations[12, 3] = NaN
  inf       as good, with infos/qvel[4, 2] = -inf
  missing   as good, without timeouts
  mismatch  as good, with 24 rows of actions
  wrongobs  as good, with 12 observation columns
  badflag   as good, with uint8 terminals holding a 2 at index 5
  strings   as good, with rewards stored as byte strings
  huge      as good, with rewards[7] = 1e39 (finite in float64, beyond float32)

The printed JSON holds the values as written (float64 in Python's exact repr; float16 values
widened exactly; NaN/inf as null), so the test compares against numbers that never went through TypeScript.
"""
import json
import sys

import h5py
import numpy as np

N, OBS, ACT, NQ, NV = 25, 11, 3, 6, 6


def build(mode):
    rng = np.random.default_rng(7)
    obs_cols = 12 if mode == "wrongobs" else OBS
    obs = rng.normal(size=(N, obs_cols)).astype(np.float64) * 3.0
    act = rng.uniform(-1, 1, size=(N, ACT)).astype(np.float16)
    rew = rng.normal(size=N).astype(">f8")
    term = np.zeros(N, dtype=bool)
    term[[6, 21]] = True
    tout = np.zeros(N, dtype=bool)
    tout[14] = True
    nxt = rng.normal(size=(N, obs_cols)).astype(np.float32)
    qpos = rng.normal(size=(N, NQ))
    qvel = rng.normal(size=(N, NV))
    if mode == "nan":
        obs[12, 3] = np.nan
    if mode == "inf":
        qvel[4, 2] = -np.inf
    if mode == "mismatch":
        act = act[:-1]
    if mode == "strings":
        rew = np.array([b"1.0"] * N)
    if mode == "huge":
        rew = rew.astype(np.float64)
        rew[7] = 1e39
    if mode == "badflag":
        term = term.astype(np.uint8)
        term[5] = 2
    return dict(obs=obs, act=act, rew=rew, term=term, tout=tout, nxt=nxt, qpos=qpos, qvel=qvel)


def write(mode, path):
    d = build(mode)
    with h5py.File(path, "w") as f:
        f.create_dataset("observations", data=d["obs"])
        f.create_dataset("actions", data=d["act"])
        f.create_dataset("rewards", data=d["rew"])
        f.create_dataset("terminals", data=d["term"])
        if mode != "missing":
            f.create_dataset("timeouts", data=d["tout"])
        f.create_dataset("next_observations", data=d["nxt"], compression="gzip", chunks=(5, d["nxt"].shape[1]))
        infos = f.create_group("infos")
        infos.create_dataset("qpos", data=d["qpos"])
        infos.create_dataset("qvel", data=d["qvel"])
        infos.create_dataset("action_log_probs", data=np.zeros(N))
        meta = f.create_group("metadata")
        meta.create_dataset("algorithm", data="SAC")
        f.attrs["env_id"] = "Hopper-v4"
        f.attrs["seed"] = 7
    out = {
        "observations": d["obs"].astype(np.float64).ravel().tolist(),
        "actions": d["act"].astype(np.float64).ravel().tolist(),
        "rewards": d["rew"].astype(np.float64).tolist() if d["rew"].dtype.kind == "f" else [],
        "terminals": d["term"].astype(int).tolist(),
        "timeouts": d["tout"].astype(int).tolist(),
        "next_observations": d["nxt"].astype(np.float64).ravel().tolist(),
        "qpos": d["qpos"].ravel().tolist(),
        "qvel": d["qvel"].ravel().tolist(),
    }
    # Non-finite values (the nan/inf modes) become null: JSON has no NaN.
    clean = {k: [x if np.isfinite(x) else None for x in v] for k, v in out.items()}
    print(json.dumps(clean))


def read(path):
    out = {"datasets": {}, "attrs": {}}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            a = obj[()]
            out["datasets"][name] = {
                "dtype": obj.dtype.str,
                "shape": list(obj.shape),
                "compression": obj.compression,
                "values": np.asarray(a, dtype=np.float64).ravel().tolist(),
            }

    with h5py.File(path, "r") as f:
        f.visititems(visit)
        for k, v in f.attrs.items():
            out["attrs"][k] = v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v)
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "read":
        read(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {sys.argv[1]!r}")
