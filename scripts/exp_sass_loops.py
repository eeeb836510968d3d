"""The hot loops of the box_iou experiment kernels, from their SASS (no GPU needed).

    python3 scripts/exp_sass_loops.py OBJECT_OR_SO [--cuobjdump PATH] [--filter REGEX]
    python3 scripts/exp_sass_loops.py OBJECT_OR_SO --hot --filter lin_iou_kernel [-v]

For every kernel in the object (cuobjdump -sass), finds the innermost loops (a
backward branch and its target) that store vectors (STG.*.128 or STG.*.64) and prints,
per loop: instructions, vector stores, outputs per iteration (4 per STG.128,
2 per STG.64), instructions per output element, MUFU, LDS, local-memory (LDL/STL:
spills) and FCHK (the IEEE division's range check) counts. The loop of the
in-range tiles is the one with MUFU and no FCHK (no MUFU at all in the
store-only skeletons). --hot: the cheapest path that stores the most vectors without the
division's slow path (hot_path(); for kernels whose in-range and general work share a loop body,
or that have no loop: the lin* variants).
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


BRANCH = re.compile(r"^(@!?U?P\w+\s+)?BRA(?:\.\w+)*\s+(?:!?U?P\d,\s*)?`?\(?\.?L?_?x?_?(0x[0-9a-f]+|[0-9]+)")


def hot_path(code: list[tuple[int, str]]) -> dict | None:
    """The cheapest path of a kernel that stores the most vectors and never divides the slow way
    (no FCHK, no CALL: the in-range units), for kernels whose in-range and general pairs share a
    loop body (the lin* variants). Paths run through the innermost loop that stores vectors (its
    header to its backward branch), or, where no loop stores, from the entry to an EXIT (a kernel
    whose threads write a fixed number of units: the count includes the prologue). Forward
    branches only; a conditional branch goes either way; predicated instructions count as issued.
    Returns the loop's figures as loops() does (instructions on the path, per output), or None."""
    if not code:
        return None
    index = {addr: i for i, (addr, _) in enumerate(code)}

    def target(text: str) -> int | None:
        m = BRANCH.search(text)
        if not m:
            return None
        v = m.group(2)
        t = int(v, 16) if v.startswith("0x") else int(v)
        return index.get(t)

    # the innermost backward branch whose body stores a vector
    loop = None
    for i, (_, text) in enumerate(code):
        t = target(text)
        if t is None or t >= i:
            continue
        if any("STG" in code[k][1] and (".128" in code[k][1] or ".64 " in code[k][1]) for k in range(t, i + 1)):
            if loop is None or (t >= loop[0] and i <= loop[1]):
                loop = (t, i)
    start, end = loop if loop else (0, len(code) - 1)
    # best[i]: the best path from instruction i on, (-outputs, instructions, STG.128, STG.64, MUFU, LDS,
    # LDL/STL): the most outputs, then the fewest instructions
    zero = (0, 0, 0, 0, 0, 0, 0)
    best: dict[int, tuple | None] = {}
    after: dict[int, int | None] = {}  # the next instruction on the best path (None: the path's end)
    for i in range(end, start - 1, -1):
        text = code[i][1]
        op = text.split()[1] if text.startswith("@") else text.split()[0]
        if op.startswith(("FCHK", "CALL", "RET")):
            best[i] = None
            continue
        conditional = text.startswith("@")
        options = []
        if loop and i == end:  # the backward branch: the iteration's end
            options.append((zero, None))
        elif op.startswith("EXIT"):
            if not loop:
                options.append((zero, None))
            if conditional and i + 1 <= end:
                options.append((best.get(i + 1), i + 1))
        elif op.startswith("BRA"):
            t = target(text)
            if t is None:
                best[i] = None
                continue
            if start <= t <= end and t > i:
                options.append((best.get(t), t))
            elif loop and t == start:
                options.append((zero, None))  # continue
            if (conditional or re.search(r"BRA(?:\.\w+)*\s+!?U?P\d,", text)) and i + 1 <= end:
                options.append((best.get(i + 1), i + 1))
        elif i + 1 <= end:
            options.append((best.get(i + 1), i + 1))
        options = [o for o in options if o[0] is not None]
        if not options:
            best[i] = None
            continue
        o, after[i] = min(options, key=lambda x: (x[0][0], x[0][1]))
        s128 = int(op.startswith("STG") and ".128" in op)
        s64 = int(op.startswith("STG") and ".64" in op)
        best[i] = (o[0] - 4 * s128 - 2 * s64, o[1] + 1, o[2] + s128, o[3] + s64, o[4] + op.startswith("MUFU"),
                   o[5] + op.startswith("LDS"), o[6] + op.startswith(("LDL", "STL")))
    r = best.get(start)
    if not r or r[0] == 0:
        return None
    path, i = [], start
    while i is not None:
        path.append(code[i])
        i = after.get(i)
    return {"path": path, "range": f"{code[start][0]:#06x}-{code[end][0]:#06x}" + ("" if loop else " (entry to EXIT)"),
            "instructions": r[1], "stores": f"{r[2]} STG.128" + (f" + {r[3]} STG.64" if r[3] else ""),
            "columns": -r[0], "per_element": r[1] / -r[0], "mufu": r[4], "lds": r[5], "local": r[6], "fchk": 0,
            "loop": bool(loop)}


def analyze_hot(obj: str, cuobjdump: str | None = None, name_filter: str = "lin_iou_kernel") -> dict[str, dict]:
    """Mangled kernel name -> hot_path() of every kernel whose name matches name_filter."""
    sass = subprocess.run([find_cuobjdump(cuobjdump), "-sass", obj], check=True, capture_output=True,
                          text=True).stdout
    return {name: hot_path(code) for name, code in kernels(sass).items() if re.search(name_filter, name)}


VARIANT_MANGLED = re.compile(r"VariantILi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELb(\d)EEELb(\d)E(\w+?)E")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("object")
    parser.add_argument("--cuobjdump")
    parser.add_argument("--filter", default="", help="regex on the mangled kernel name")
    parser.add_argument("--hot", action="store_true", help="hot_path() instead of loops() (the lin* kernels: "
                        "in-range and general units in one loop body); --hot -v prints the path")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if args.hot:
        for name, hp in analyze_hot(args.object, args.cuobjdump, args.filter or ".").items():
            if not hp:
                continue
            print(f"{name}\n  path {hp['range']}: {hp['instructions']:4d} instr, {hp['stores']} ({hp['columns']} "
                  f"outputs) -> {hp['per_element']:.2f} / output; MUFU {hp['mufu']}, LDS {hp['lds']}, "
                  f"LDL/STL {hp['local']}")
            if args.verbose:
                for addr, text in hp["path"]:
                    print(f"    {addr:05x}  {text}")
        return
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
