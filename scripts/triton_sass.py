"""Compiles the triton backend's kernels for an sm_90 GPU on a machine without
one and counts what they do: global loads/stores (by width), instructions,
registers and spills, division slow paths; a cheap proxy for speed.

    python scripts/triton_sass.py                    # the work tree's kernels
    python scripts/triton_sass.py --rev main         # kernels.py/ops.py as committed at a revision
    python scripts/triton_sass.py --only box_loss_backward --dump /tmp/k   # also write ttgir/ptx/sass

It compiles through triton.compile(ASTSource(...), target=GPUTarget("cuda",
90, 32)) with the specialization the launcher would give the benchmark's
arguments: pointers 16-byte aligned; an int argument divisible by 16 gets
tt.divisibility unless the kernel lists it in do_not_specialize. Block sizes
and num_warps are read from ops.py (LAUNCH, or its older block constants). The counts are of the triton installed here (the GPU machine may run an
older one: the code differs in details).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.pop("TRITON_INTERPRET", None)

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

FLOAT_ARGS = {"eps_hi", "eps_lo", "alpha_hi", "alpha_lo"}


def constants_of(source: str) -> dict:
    """Module-level constant assignments of ops.py (ints, tuples, dicts)."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = value
                elif isinstance(target, ast.Tuple) and isinstance(value, tuple):
                    for t, v in zip(target.elts, value):
                        if isinstance(t, ast.Name):
                            out[t.id] = v
    return out


def load_kernels(path: Path):
    spec = importlib.util.spec_from_file_location(f"_kernels_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases(consts: dict):
    """(label, kernel name, {int arg: value}, {constexpr: value}, {option: value}).
    Block sizes and num_warps: ops.LAUNCH[kernel] ({"BLOCK": ..., "num_warps": ...})
    where ops.py has it, else its BLOCK/BOX_BLOCK/LSTM_BLOCK_* constants and 4 warps."""
    n = 10**7
    launch = consts.get("LAUNCH", {})
    block = consts.get("BLOCK", 1024)
    box_block = consts.get("BOX_BLOCK", 256)
    bb, bh = consts.get("LSTM_BLOCK_B", 32), consts.get("LSTM_BLOCK_H", 32)
    B, H = 16384, 2048
    lstm_ints = {"B": B, "H": H, "s_ig": 4 * H, "s_hg": 4 * H, "s_cx": H}
    lstm_cx = {"HAS_BIH": True, "HAS_BHH": True, "FP64": False, "BLOCK_B": bb, "BLOCK_H": bh}
    out = [
        ("ratio_iou fwd", "ratio_iou_forward", {"n": n}, {"FP64": False, "BLOCK": block}),
        ("ratio_iou bwd", "ratio_iou_backward", {"n": n}, {"FP64": False, "BLOCK": block}),
        ("lstm fwd", "lstm_cell_forward", lstm_ints, dict(lstm_cx)),
        ("lstm bwd", "lstm_cell_backward", lstm_ints, dict(lstm_cx)),
    ]
    for kind, name in ((1, "giou"), (2, "diou"), (3, "ciou")):
        cx = {"KIND": kind, "FMT": 0, "FP64": False, "BLOCK": box_block}
        out.append((f"{name} fwd", "box_loss_forward", {"n": n}, dict(cx)))
        out.append((f"{name} bwd", "box_loss_backward", {"n": n}, dict(cx)))
    result = []
    for label, name, ints, cx in out:
        options = {"num_warps": 4}
        for k, v in launch.get(name, {}).items():
            (cx if k.isupper() else options)[k] = v
        result.append((label, name, ints, cx, options))
    return result


def compile_case(kernels, name: str, ints: dict, constexprs: dict, options: dict):
    fn = getattr(kernels, name)
    dns = set()
    for d in getattr(fn, "do_not_specialize", []) or []:
        dns.add(fn.arg_names[d] if isinstance(d, int) else d)
    signature, attrs = {}, {}
    constexprs = {k: v for k, v in constexprs.items() if k in fn.arg_names}
    # whatever constexpr the kernel has that the case does not name: its own extras
    for i, arg in enumerate(fn.arg_names):
        param = fn.params[i]
        if param.is_constexpr:
            signature[arg] = "constexpr"
            if arg not in constexprs:
                if param.has_default:
                    constexprs[arg] = param.default
                else:
                    constexprs[arg] = extra_constexpr(arg, ints)
        elif arg in FLOAT_ARGS:
            signature[arg] = "fp32"
        elif arg in ints:
            v = ints[arg]
            signature[arg] = "i64" if abs(v) >= 2**31 else "i32"
            if v % 16 == 0 and arg not in dns:
                attrs[(i,)] = [["tt.divisibility", 16]]
        else:  # a pointer
            signature[arg] = "*fp32"
            attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options)


def extra_constexpr(arg: str, ints: dict):
    if arg == "LARGE":  # 64-bit offsets (a variant for n * 4 >= 2^31)
        return False
    raise KeyError(f"no value for constexpr {arg}")


def tool(name: str) -> str | None:
    here = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name
    return str(here) if here.exists() else shutil.which(name)


def sass_of(cubin: bytes) -> tuple[str, str]:
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
        path = f.name
    try:
        cuobjdump = tool("cuobjdump")
        if cuobjdump is None:
            return "", ""
        sass = subprocess.run([cuobjdump, "-sass", path], capture_output=True, text=True).stdout
        res = subprocess.run([cuobjdump, "--dump-resource-usage", path], capture_output=True, text=True).stdout
        return sass, res
    finally:
        os.unlink(path)


def count(compiled) -> dict:
    ptx = compiled.asm["ptx"]
    ttgir = compiled.asm["ttgir"]
    body = [ln.strip() for ln in ptx.splitlines()]
    instrs = [ln for ln in body if ln and not ln.startswith(("//", ".", "{", "}", "$", "@$")) and ln.endswith(";")]
    ld = [ln for ln in body if re.search(r"\bld\.global", ln)]
    st = [ln for ln in body if re.search(r"\bst\.global", ln)]
    out = {
        "ptx_instr": len(instrs),
        "ld.global": len(ld),
        "ld.v4": sum(".v4" in ln for ln in ld),
        "ld.v2": sum(".v2" in ln for ln in ld),
        "st.global": len(st),
        "st.v4": sum(".v4" in ln for ln in st),
        "div.rn": sum("div.rn" in ln for ln in body),
        "convert_layout": ttgir.count("ttg.convert_layout"),
        "shared": compiled.metadata.shared,
    }
    sass, res = sass_of(compiled.asm["cubin"])
    if sass:
        lines = [ln for ln in sass.splitlines() if re.match(r"\s+/\*[0-9a-f]{4}\*/", ln)]
        ops = [re.sub(r"^\s+/\*[0-9a-f]{4}\*/\s+", "", ln).split(";")[0] for ln in lines]
        ops = [o for o in ops if o and not o.startswith("NOP")]
        out["sass_instr"] = len(ops)
        out["LDG"] = sum(bool(re.search(r"\bLDG", o)) for o in ops)
        out["LDG.128"] = sum(bool(re.search(r"\bLDG\S*\.128", o)) for o in ops)
        out["STG"] = sum(bool(re.search(r"\bSTG", o)) for o in ops)
        out["STG.128"] = sum(bool(re.search(r"\bSTG\S*\.128", o)) for o in ops)
        out["MUFU"] = sum("MUFU" in o for o in ops)
        out["FCHK"] = sum("FCHK" in o for o in ops)
        out["CALL"] = sum(bool(re.search(r"\bCALL", o)) for o in ops)
        out["FMNMX"] = sum("FMNMX" in o for o in ops)
        out["FSEL"] = sum("FSEL" in o for o in ops)
    m = re.search(r"REG:(\d+)", res)
    if m:
        out["regs"] = int(m.group(1))
    m = re.search(r"STACK:(\d+)", res)
    if m:
        out["stack"] = int(m.group(1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", help="read torchops/triton/{kernels,ops}.py at this git revision")
    parser.add_argument("--only", help="kernel or label substring")
    parser.add_argument("--dump", help="folder to write each case's ttgir, ptx and sass to")
    parser.add_argument("--set", action="append", default=[], metavar="KERNEL:KEY=V,...",
                        help="override launch parameters, e.g. box_loss_forward:BLOCK=128,num_warps=4")
    args = parser.parse_args()
    tmp = None
    if args.rev:
        tmp = Path(tempfile.mkdtemp())
        for f in ("kernels.py", "ops.py"):
            text = subprocess.run(["git", "-C", str(REPO), "show", f"{args.rev}:torchops/triton/{f}"],
                                  capture_output=True, text=True, check=True).stdout
            (tmp / f).write_text(text)
        kernels_path, ops_source = tmp / "kernels.py", (tmp / "ops.py").read_text()
    else:
        kernels_path = REPO / "torchops/triton/kernels.py"
        ops_source = (REPO / "torchops/triton/ops.py").read_text()
    consts = constants_of(ops_source)
    launch = consts.setdefault("LAUNCH", {})
    for item in args.set:
        kernel, _, pairs = item.partition(":")
        for pair in pairs.split(","):
            k, _, v = pair.partition("=")
            launch.setdefault(kernel, {})[k] = int(v)
    kernels = load_kernels(kernels_path)
    keys = None
    for label, name, ints, constexprs, options in cases(consts):
        if args.only and args.only not in label and args.only not in name:
            continue
        compiled = compile_case(kernels, name, ints, constexprs, options)
        c = count(compiled)
        if keys is None:
            keys = list(c)
            print(f"{'case':<15} {'warps':>5} " + " ".join(f"{k:>9}" for k in keys))
        print(f"{label:<15} {options['num_warps']:>5} " + " ".join(f"{c.get(k, '-'):>9}" for k in keys))
        if args.dump:
            d = Path(args.dump)
            d.mkdir(parents=True, exist_ok=True)
            stem = label.replace(" ", "_")
            (d / f"{stem}.ttgir").write_text(compiled.asm["ttgir"])
            (d / f"{stem}.ptx").write_text(compiled.asm["ptx"])
            (d / f"{stem}.sass").write_text(sass_of(compiled.asm["cubin"])[0])
    if tmp:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
