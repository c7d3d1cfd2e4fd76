#!/usr/bin/env python3
"""Compares two ct_study output folders: results.json and per_image.json byte for byte,
config.json after dropping what may differ between runs (timing, the output path) and
mapping the pre-embedding `hybrid` entry (weights copied field by field) to the embedded
one (`hybrid.inversion`); also reports the largest relative difference of the numbers
when the bytes differ.

usage: compare_study.py BASELINE_DIR NEW_DIR
"""
import json
import sys


def flat_hybrid(h):
    """The hybrid schedule in the old flat form, from either form."""
    if "inversion" not in h:
        return h
    inv = h["inversion"]
    lo, hi = inv["clamp"] if inv.get("clamp") else (None, None)
    return {
        "alternating": h["alternating"], "bn": inv["bn"], "class_weight": h["class_weight"],
        "inversion_per_cycle": h["inversion_per_cycle"], "l2": inv["l2"], "lr": inv["lr"],
        "max": hi, "min": lo, "optimizer": inv["optimizer"], "relaxation": h["relaxation"],
        "sirt_per_cycle": h["sirt_per_cycle"], "steps": inv["steps"], "terms": h["terms"],
        "tv": inv["tv"], "warmup_sirt": h["warmup_sirt"],
    }


def normal_config(c):
    c = dict(c)
    c.pop("seconds", None)
    c.pop("classifier_recipe", None)
    c["args"] = {k: v for k, v in c["args"].items() if k != "out"}
    c["hybrid"] = flat_hybrid(c["hybrid"])
    return c


def max_rel(a, b, path="$"):
    """The largest relative difference between the numbers of two JSON values."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}: keys differ"
        return max([max_rel(a[k], b[k], f"{path}.{k}") for k in a] or [0.0])
    if isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: lengths differ"
        return max([max_rel(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))] or [0.0])
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a == b:
            return 0.0
        return abs(a - b) / max(abs(a), abs(b))
    assert a == b, f"{path}: {a!r} != {b!r}"
    return 0.0


def main(base, new):
    ok = True
    for name in ["results.json", "per_image.json"]:
        x, y = open(f"{base}/{name}", "rb").read(), open(f"{new}/{name}", "rb").read()
        if x == y:
            print(f"{name}: byte-identical ({len(x)} bytes)")
        else:
            ok = False
            print(f"{name}: DIFFERENT, largest relative difference "
                  f"{max_rel(json.loads(x), json.loads(y)):.3e}")
    a = normal_config(json.load(open(f"{base}/config.json")))
    b = normal_config(json.load(open(f"{new}/config.json")))
    if a == b:
        print("config.json: identical (timing, output path, recipe and hybrid layout aside)")
    else:
        ok = False
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                print(f"config.json: `{k}` differs")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
