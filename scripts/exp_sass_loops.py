"""The hot loops of the box_iou experiment kernels, from their SASS (no GPU needed).

    python3 scripts/exp_sass_loops.py OBJECT_OR_SO [--cuobjdump PATH] [--filter REGEX]

For every kernel in the object (cuobjdump -sass), finds the innermost loops (a
backward branch and its target) that store vectors (STG.*.128 or STG.*.64) and prints,
per loop: instructions, vector stores, outputs per iteration (4 per STG.128,
2 per STG.64), instructions per output element, MUFU, LDS, local-memory (LDL/STL:
spills) and FCHK (the IEEE division's range check) counts. The loop of the
in-range tiles is the one with MUFU and no FCHK (no MUFU at all in the
store-only skeletons).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

INSTR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")


def find_cuobjdump(explicit: str | None) -> str:
    if explicit:
        return explicit
    found = shutil.which("cuobjdump")
    if found:
        return found
    try:  # triton ships one
        import triton  # noqa: F401
        from pathlib import Path

        path = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
        if path.exists():
            return str(path)
    except Exception:
        pass
    sys.exit("no cuobjdump found (pass --cuobjdump)")


def kernels(sass: str) -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    name = None
    for line in sass.splitlines():
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            name = m.group(1)
            out[name] = []
            continue
        m = INSTR.search(line)
        if m and name:
            out[name].append((int(m.group(1), 16), m.group(2)))
    return out


def loops(code: list[tuple[int, str]]) -> list[dict]:
    index = {addr: i for i, (addr, _) in enumerate(code)}
    found = []
    for i, (addr, text) in enumerate(code):
        m = re.search(r"\bBRA\s+(?:!?P\d,\s*)?`?\(?\.?L?_?x?_?(0x[0-9a-f]+|[0-9]+)", text)
        if not m:
            continue
        try:
            target = int(m.group(1), 16) if m.group(1).startswith("0x") else int(m.group(1))
        except ValueError:
            continue
        if target >= addr or target not in index:
            continue
        body = [t for _, t in code[index[target]: i + 1]]
        found.append({"start": target, "end": addr, "body": body})
    # innermost: no other backward branch strictly inside
    inner = [lp for lp in found
             if not any(o is not lp and lp["start"] <= o["start"] and o["end"] < lp["end"] for o in found)]
    result = []
    for lp in inner:
        body = lp["body"]
        ops = [t.split()[0] if not t.startswith("@") else t.split()[1] for t in body]
        stg128 = sum(1 for t in body if "STG" in t and ".128" in t)
        stg64 = sum(1 for t in body if "STG" in t and ".64 " in t.replace("[", " ").split("desc")[0] + " ")
        if not stg128 and not stg64:
            continue
        result.append({
            "range": f"{lp['start']:#06x}-{lp['end']:#06x}",
            "instructions": len(body),
            "stores": f"{stg128} STG.128" + (f" + {stg64} STG.64" if stg64 else ""),
            "columns": 4 * stg128 + 2 * stg64,
            "per_element": len(body) / (4 * stg128 + 2 * stg64),
            "mufu": sum(o.startswith("MUFU") for o in ops),
            "lds": sum(o.startswith("LDS") for o in ops),
            "local": sum(o.startswith(("LDL", "STL")) for o in ops),
            "fchk": sum(o.startswith("FCHK") for o in ops),
        })
    return result


def analyze(obj: str, cuobjdump: str | None = None) -> dict[str, list[dict]]:
    """Mangled kernel name -> its innermost vector-store loops (see loops())."""
    sass = subprocess.run([find_cuobjdump(cuobjdump), "-sass", obj], check=True, capture_output=True,
                          text=True).stdout
    return {name: loops(code) for name, code in kernels(sass).items()}


def fast_loop(found: list[dict]) -> dict | None:
    """The in-range tiles' loop: MUFU and no FCHK (the store-only skeletons: no MUFU)."""
    for lp in found:
        if lp["mufu"] and not lp["fchk"]:
            return lp
    return found[0] if found and not any(lp["mufu"] for lp in found) else None


VARIANT_MANGLED = re.compile(r"VariantILi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELb(\d)EEELb(\d)E(\w+?)E")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("object")
    parser.add_argument("--cuobjdump")
    parser.add_argument("--filter", default="", help="regex on the mangled kernel name")
    args = parser.parse_args()
    for name, found in analyze(args.object, args.cuobjdump).items():
        if args.filter and not re.search(args.filter, name):
            continue
        m = VARIANT_MANGLED.search(name)
        label = (f"Variant<{','.join(m.groups()[:8])}> vector_store={m.group(9)} "
                 f"{m.group(10).replace('6__half', 'half')}" if m else name)
        print(label)
        for lp in found:
            print(f"  loop {lp['range']}: {lp['instructions']:4d} instr, {lp['stores']} "
                  f"({lp['columns']} outputs) -> {lp['per_element']:.2f} / output; MUFU {lp['mufu']}, "
                  f"LDS {lp['lds']}, LDL/STL {lp['local']}, FCHK {lp['fchk']}")


if __name__ == "__main__":
    main()
