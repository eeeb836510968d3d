"""Experiment: variants of the CUDA box_iou forward (float32 output) against fill_ (GPU machine).

Why is pairwise_iou_kernel at 67% of fill_'s write bandwidth (issue 11, bar 85%)? This
script builds the variants in scripts/exp_box_iou_variants.cu (one .cu, each variant one
template instantiation; plain nvcc into a shared object called through ctypes on torch's
current stream: no torch headers, so it builds in seconds), checks each one against
torchops' eager reference (same values, NaN where NaN, as the kernel test asserts), then
times each in CUDA graphs as scripts/bench_box_iou_cuda.py does, with fill_ and copy_ of
the output's size in the same run.

    python3 scripts/exp_box_iou_variants.py                  # build, check, time (~2 min)
    python3 scripts/exp_box_iou_variants.py --ncu            # then ncu on native, prod, the best, a ceiling
    python3 scripts/exp_box_iou_variants.py --dry-run        # no GPU: arguments, variants, imports
    python3 scripts/exp_box_iou_variants.py --build-only     # build the shared object (no GPU needed)
    python3 scripts/exp_box_iou_variants.py --configs prod base wide_plain@rows16
    python3 scripts/exp_box_iou_variants.py --only '^(prod|rows1|base|store_only|lin.*)$' --ncu

A config is a variant name, optionally @rowsN: N rows a block (several waves) instead of
the production grid (one that fills whole waves of resident blocks). "native" is torchops'
own kernel (torchops.ops.box_iou(backend="native")), when the library is built with CUDA.
Store-only variants (one FADD a pair) are not IoU: they are only checked for writing every
element, and give the ceiling of their grid and stores. The lin* variants write the output in
linear address order, as fill_ does (Lin<...> in the .cu; @rowsN does not apply to them); the
lin_prep* ones launch two kernels a call (a prep kernel, then the IoU kernel), both timed.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# never start a build of torchops' own library from here (the native config needs it built by pip)
os.environ.setdefault("TORCHOPS_NO_BUILD", "1")
sys.path.append(str(ROOT))  # torchops from this checkout where it is not installed
SOURCE = ROOT / "scripts" / "exp_box_iou_variants.cu"
T0 = time.time()
BAR = 0.85  # issue 11


def log(message: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {message}", flush=True)


# --- variants and configs -------------------------------------------------------------------

VARIANT_LINE = re.compile(r"^EXP_IOU_VARIANT\((\w+),\s*(.*?)\)\s*//\s*(.*)$", re.M)


def variants() -> list[tuple[str, str, str]]:
    """(name, template, what it changes) of every variant in the .cu, in its order."""
    return VARIANT_LINE.findall(SOURCE.read_text())


# The default plan: every variant on the production grid, a few on more, smaller blocks.
EXTRA_CONFIGS = ["prod@rows64", "prod_plain@rows64", "base@rows64", "plain_st@rows64", "occ6_plain@rows64", "wide_plain@rows16",
                 "wide_store_only_plain@rows16", "store_only_plain@rows64"]


def parse_config(config: str) -> tuple[str, int]:
    m = re.fullmatch(r"(\w+)(?:@rows(\d+))?", config)
    if not m:
        raise argparse.ArgumentTypeError(f"config {config!r}: expected NAME or NAME@rowsN")
    return m.group(1), int(m.group(2) or 0)


def is_store_only(name: str) -> bool:
    return "store_only" in name


# --- build ----------------------------------------------------------------------------------

def find_nvcc() -> str:
    candidates = [shutil.which("nvcc")]
    try:
        from torch.utils.cpp_extension import CUDA_HOME

        if CUDA_HOME:
            candidates.append(str(Path(CUDA_HOME) / "bin" / "nvcc"))
    except Exception:
        pass
    candidates += ["/usr/local/cuda/bin/nvcc", "/usr/local/bin/nvcc"]
    for c in candidates:
        if c and Path(c).exists():
            return c
    sys.exit("exp_box_iou_variants: no nvcc found (set CUDA_HOME or put nvcc on PATH)")


def torch_include() -> Path:
    import torch

    return Path(torch.__file__).resolve().parent / "include"


def build(build_dir: Path, arch: str, jobs: int) -> Path:
    """The variants as one shared object, compiled in `jobs` translation units at once."""
    nvcc = find_nvcc()
    build_dir.mkdir(parents=True, exist_ok=True)
    lib = build_dir / f"libexp_box_iou_sm{arch}.so"
    if lib.exists() and lib.stat().st_mtime > SOURCE.stat().st_mtime:
        log(f"build: {lib} is up to date")
        return lib
    groups = max(1, min(jobs, len(variants())))
    flags = ["-std=c++17", "-O3", "--fmad=false", f"-arch=sm_{arch}", "--expt-relaxed-constexpr",
             "-Xcompiler", "-fPIC", "-Xptxas", "-v", f"-I{ROOT / 'csrc'}", f"-I{torch_include()}"]
    log(f"build: {nvcc} ({groups} translation units in parallel) -> {lib}")
    procs = []
    for g in range(groups):
        obj = build_dir / f"group{g}.o"
        cmd = [nvcc, "-c", *flags, f"-DEXP_IOU_GROUP={g}", f"-DEXP_IOU_GROUPS={groups}", str(SOURCE), "-o", str(obj)]
        logf = open(build_dir / f"group{g}.log", "w")
        procs.append((subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT), obj, logf, cmd))
    failed = False
    for proc, obj, logf, cmd in procs:
        rc = proc.wait()
        logf.close()
        if rc:
            failed = True
            print(f"FAILED ({rc}): {' '.join(cmd)}\n" + Path(logf.name).read_text()[-4000:])
    if failed:
        sys.exit("exp_box_iou_variants: build failed")
    tmp = build_dir / "lib.tmp.so"
    subprocess.run([nvcc, "-shared", f"-arch=sm_{arch}", "-o", str(tmp), *(str(p[1]) for p in procs)], check=True)
    tmp.replace(lib)
    spills = []
    for g in range(groups):
        text = (build_dir / f"group{g}.log").read_text()
        spills += re.findall(r"(\d+) bytes spill stores", text)
    log(f"build: done ({len(spills)} kernels; {sum(1 for s in spills if s != '0')} spill somewhere, the table "
        f"below says whether in the in-range loop; ptxas -v reports in {build_dir}/group*.log)")
    return lib


class Library:
    """ctypes view of the shared object: launch(name, ...) and attributes(name)."""

    def __init__(self, path: Path):
        self.path = path
        self.lib = ctypes.CDLL(str(path))
        self.launchers = {}
        for name, _, _ in variants():
            fn = getattr(self.lib, f"exp_iou_launch_{name}")
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                           ctypes.POINTER(ctypes.c_int64), ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                           ctypes.POINTER(ctypes.c_int)]
            attr = getattr(self.lib, f"exp_iou_attributes_{name}")
            attr.restype = ctypes.c_int
            attr.argtypes = [ctypes.POINTER(ctypes.c_int)]
            self.launchers[name] = (fn, attr)

    def attributes(self, name: str) -> dict:
        out = (ctypes.c_int * 4)()
        rc = self.launchers[name][1](out)
        if rc:
            raise RuntimeError(f"{name}: cudaFuncGetAttributes failed ({rc})")
        return {"regs": out[0], "local": out[1], "smem": out[2], "blocks_per_sm": out[3]}

    def launch(self, name: str, out, a, b, fmt: int = 0, rows_per_block: int = 0) -> tuple[int, int, int]:
        import torch

        n, m = a.shape[0], b.shape[0]
        assert a.is_contiguous() and b.is_contiguous() and out.is_contiguous() and out.dtype == torch.float32
        layout = (ctypes.c_int64 * 9)(1, n, m, n * 4, 4, 1, m * 4, 4, 1)
        grid = (ctypes.c_int * 3)()
        stream = torch.cuda.current_stream().cuda_stream
        rc = self.launchers[name][0](1 if a.dtype == torch.float16 else 0, out.data_ptr(), a.data_ptr(),
                                     b.data_ptr(), layout, fmt, rows_per_block, stream, grid)
        if rc:
            raise RuntimeError(f"{name}: launch failed (error {rc})")
        return grid[0], grid[1], grid[2]


LIN_MANGLED = re.compile(r"LinILi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)EEELb(\d)ELb(\d)E(\w+?)E")


def lin_fields(template: str) -> tuple[str, ...] | None:
    """Lin<Units, Threads, Order, Store, Work, Cols> -> its six fields (strings), else None."""
    m = re.fullmatch(r"Lin<\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\s*>", template)
    return m.groups() if m else None


def kernels_per_launch(name: str) -> int:
    """Kernels one call of a config launches: 2 for the lin prep variants (prep, then the kernel)."""
    template = dict((v[0], v[1]) for v in variants()).get(name, "")
    f = lin_fields(template)
    return 2 if f and f[4] == "0" and f[5] == "2" else 1


def sass_summary(lib_path: Path) -> dict[str, str]:
    """Variant name -> 'N.NN instr/output, k LDL/STL' of its in-range loop (float, vector stores).
    lin* variants: the cheapest in-range path of their fast kernel (exp_sass_loops.hot_path: the
    grid-stride loop's body, or a thread's whole path where it writes a fixed number of units)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import exp_sass_loops as sl

        found = sl.analyze(str(lib_path))
    except (Exception, SystemExit) as e:  # noqa: BLE001
        log(f"SASS analysis skipped: {e}")
        return {}
    try:
        hot = sl.analyze_hot(str(lib_path))
    except (Exception, SystemExit) as e:  # noqa: BLE001
        hot = {}
        log(f"SASS hot paths skipped: {e}")
    lin_hot = {}
    for mangled, hp in hot.items():  # the float, fast (M % 4 == 0) kernel; its box loads as launched
        m = LIN_MANGLED.search(mangled)
        if m and hp and m.group(7) == "1" and m.group(9) == "f":
            fields = m.groups()[:6]
            box_vec = "1" if fields[4] == "0" and fields[5] != "2" else "0"
            if m.group(8) == box_vec:
                lin_hot[fields] = hp
    by_params = {}
    for mangled, loops in found.items():
        m = sl.VARIANT_MANGLED.search(mangled)
        if m and m.group(9) == "1" and m.group(10) == "f":
            by_params[tuple(m.groups()[:8])] = loops
        p = re.search(r"prod_iou_kernelILi(\d+)ELi(\d+)ELb1EfE", mangled)
        if p:
            by_params[("prod", p.group(1), p.group(2))] = loops
    out = {}
    for name, template, _ in variants():
        lin = lin_fields(template)
        if lin:
            hp = lin_hot.get(lin)
            if hp:
                where = "loop" if hp["loop"] else "thread"
                out[name] = f"{hp['per_element']:5.2f} instr/output {hp['local']:2d} LDL/STL ({where} path)"
            continue
        p = re.fullmatch(r"ProdTag<(\d+),\s*(\d+)>", template)
        if p:
            key = ("prod", p.group(1), p.group(2))
        else:
            fields = [f.strip() for f in re.sub(r"^Variant<|>$", "", template).split(",")]
            key = tuple("1" if f == "true" else "0" if f == "false" else f for f in fields)
        lp = sl.fast_loop(by_params.get(key, []))
        if lp:
            out[name] = f"{lp['per_element']:5.2f} instr/output {lp['local']:2d} LDL/STL"
    return out


# --- inputs, checks, timing -----------------------------------------------------------------

FORMATS = {"xyxy": 0, "xywh": 1, "cxcywh": 2}


def boxes(n: int, kind: str, seed: int, dtype):
    """xyxy boxes as scripts/bench_box_iou_cuda.py makes them ("overlapping", "spread"), or
    "mixed": overlapping with degenerate, inverted, huge and NaN/inf boxes (the general loop)."""
    import torch

    gen = torch.Generator(device="cuda").manual_seed(seed)
    scale, side = (1000.0, (1.0, 20.0)) if kind == "spread" else (10.0, (1.0, 4.0))
    corner = torch.rand(n, 2, generator=gen, device="cuda") * scale
    size = torch.rand(n, 2, generator=gen, device="cuda") * side[1] + side[0]
    b = torch.cat([corner, corner + size], dim=1)
    if kind == "mixed" and n > 16:
        specials = [[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 5.0], [3.0, 3.0, 1.0, 1.0], [2.0, 1.0, 1.0, 5.0],
                    [2.0**20, 1.0, 2.0**21, 2.0], [0.0, 0.0, 2.0**-17, 0.5], [1e-6, 3e-7, 4.0, 4.0]]
        for k, box in enumerate(specials):
            b[(k * 7919) % n] = torch.tensor(box, device="cuda")
        flat = b.view(-1)
        for k, value in enumerate((float("nan"), float("inf"), -float("inf"))):
            flat[(k * 104729 + 13) % flat.numel()] = value
    return b.to(dtype)


def in_format(b, fmt: str):
    import torchops.ops as ops

    return b if fmt == "xyxy" else ops.box_convert(b, "xyxy", fmt)


def same_values(got, expected) -> int:
    """Elements that differ (==, or NaN in both): what the kernel test asserts."""
    same = (got == expected) | (got.isnan() & expected.isnan())
    return int((~same).sum())


def graph_time_us(fn, calls: int, replays: int, repeats: int) -> list[float]:
    """Per-call device time of fn (microseconds), one figure per round (bench_box_iou_cuda.py's method)."""
    import torch

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(replays):
            graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / (replays * calls))
    return times


def native_available() -> bool:
    try:
        import torchops

        return torchops._library.has_kernel("super_iou::paired_box_iou", "cuda")
    except Exception:
        return False


# --- ncu ------------------------------------------------------------------------------------

NCU_SECTIONS = ["SpeedOfLight", "LaunchStats", "Occupancy", "SchedulerStats", "WarpStateStats",
                "MemoryWorkloadAnalysis", "MemoryWorkloadAnalysis_Tables", "ComputeWorkloadAnalysis",
                "InstructionStats"]
# what the summary prints, by metric-name pattern (everything collected goes to the CSV file)
NCU_SUMMARY = [
    ("duration", r"^gpu__time_duration\.sum$"),
    ("SM clock", r"^(sm|gpc)__cycles_elapsed\.avg\.per_second$"),
    ("DRAM clock", r"^dram__cycles_elapsed\.avg\.per_second$"),
    ("DRAM throughput %", r"^(gpu__)?dram__throughput\.avg\.pct_of_peak_sustained_elapsed$"),
    ("DRAM bytes written", r"^dram__bytes_write\.sum$"),
    ("DRAM bytes read", r"^dram__bytes_read\.sum$"),
    ("L2 sectors written", r"^lts__t_sectors_(srcunit_tex_)?op_write\.sum$"),
    ("global store requests", r"^l1tex__t_requests_pipe_lsu_mem_global_op_st\.sum$"),
    ("global store sectors", r"^l1tex__t_sectors_pipe_lsu_mem_global_op_st\.sum$"),
    ("achieved occupancy %", r"^sm__warps_active\.avg\.pct_of_peak_sustained_active$"),
    ("registers/thread", r"^launch__registers_per_thread$"),
    ("grid size", r"^launch__grid_size$"),
    ("waves per SM", r"^launch__waves_per_multiprocessor$"),
    ("issue active %", r"^smsp__issue_active\.avg\.pct_of_peak_sustained_active$"),
    ("instructions", r"^smsp__inst_executed\.sum$"),
    ("warp cycles per issue", r"^smsp__average_warps_active_per_issue_active\.ratio$"),
]


def ncu_binary() -> str | None:
    found = shutil.which("ncu")
    if found:
        return found
    for pattern in ("/usr/local/cuda/bin/ncu", "/opt/nvidia/nsight-compute/*/ncu", "/usr/local/cuda*/bin/ncu"):
        for p in sorted(Path("/").glob(pattern.lstrip("/"))):
            return str(p)
    return None


def run_ncu(args, configs: list[str], out_dir: Path) -> None:
    ncu = ncu_binary()
    if not ncu:
        log("ncu: not found, skipped")
        return
    csv_path = out_dir / "exp_box_iou_ncu.csv"
    kernels = "regex:FillFunctor|exp_iou_kernel|prod_iou_kernel|pairwise_iou_kernel|lin_iou_kernel|lin_prep_kernel"
    labels = ["fill_"]
    for c in configs:
        labels += ([f"{c}:prep"] if c != "native" and kernels_per_launch(parse_config(c)[0]) == 2 else []) + [c]
    cmd = [ncu, "--clock-control", "none", "--target-processes", "all", "--kernel-name-base", "demangled",
           "--kernel-name", kernels, "--launch-count", str(len(labels)),
           *(x for s in NCU_SECTIONS for x in ("--section", s)), "--csv", "--page", "raw",
           "--log-file", str(csv_path), sys.executable, str(Path(__file__).resolve()), "--profile-one",
           ",".join(configs), "--profile-size", args.profile_size, "--build-dir", str(args.build_dir),
           "--arch", args.arch or "90"]
    log(f"ncu: {' '.join(cmd)}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.ncu_timeout)
    except subprocess.TimeoutExpired:
        log(f"ncu: timed out after {args.ncu_timeout} s")
        return
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
    log(f"ncu: rc {proc.returncode}; full CSV in {csv_path}")
    text = (csv_path.read_text() if csv_path.exists() else "") + "\n" + proc.stdout
    summarize_ncu(text, labels, args.profile_size)


def summarize_ncu(text: str, labels: list[str], size: str = "") -> None:
    lines = [line for line in text.splitlines() if line.startswith('"')]
    starts = [i for i, line in enumerate(lines) if line.startswith('"ID"')]
    if starts:  # the first report only (the log file and stdout may both hold it)
        lines = lines[starts[0]:(starts[1] if len(starts) > 1 else None)]
    if len(lines) < 3:
        print("ncu: no metrics in the log:\n" + text[-3000:])
        return
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    header, units, data = rows[0], rows[1], rows[2:]
    col = {name: i for i, name in enumerate(header)}
    kname = col.get("Kernel Name")
    width = 16
    names = [(labels[i] if i < len(labels) else f"#{i}") for i in range(len(data))]
    print(f"\nncu (--clock-control none, one launch each, {size} float32 overlapping boxes):")
    print(f"{'':34}" + "".join(f"{n[:width - 1]:>{width}}" for n in names))
    if kname is not None:
        def short(kernel: str) -> str:
            m = re.search(r"(\w+)(?:<|\()", kernel)
            return (m.group(1) if m else kernel)[-(width - 1):]
        print(f"{'kernel':34}" + "".join(f"{short(r[kname]):>{width}}" for r in data))

    def row(label: str, index: int) -> None:
        unit = units[index]
        print(f"{(label + ' [' + unit + ']')[:33]:34}" + "".join(f"{r[index][:width - 1]:>{width}}" for r in data))

    for label, pattern in NCU_SUMMARY:
        for name, i in col.items():
            if re.search(pattern, name):
                row(label, i)
                break
    stalls = [(name, i) for name, i in col.items() if "issue_stalled" in name and name.endswith(".ratio")]
    stalls = stalls or [(name, i) for name, i in col.items() if "issue_stalled" in name]
    pipes = [(name, i) for name, i in col.items()
             if re.search(r"^sm__(inst_executed_pipe_\w+|pipe_\w+_cycles_active)\.avg\.pct_of_peak_sustained_active$",
                          name)]

    def top(items, k):
        def value(i):
            try:
                return max(float(r[i].replace(",", "")) for r in data)
            except ValueError:
                return 0.0
        return sorted(items, key=lambda x: -value(x[1]))[:k]

    print("stall reasons (warp cycles per issued instruction; the largest):")
    for name, i in top(stalls, 9):
        row("  " + re.sub(r"_per_[\w.]+$", "", re.sub(r"^\w*issue_stalled_", "", name)), i)
    print("pipe utilization (% of peak; the largest):")
    for name, i in top(pipes, 8):
        row("  " + re.sub(r"\.avg\.pct_of_peak_sustained_active$", "", name.replace("sm__", "")), i)


def profile_one(args) -> None:
    """Under ncu: fill_ once, then each config once, at --profile-size (float32, overlapping)."""
    import torch
    import torchops.ops as ops

    lib = Library(build(args.build_dir, args.arch or "90", args.jobs))
    n, m = (int(v) for v in args.profile_size.split("x"))
    a, b = boxes(n, "overlapping", 0, torch.float32), boxes(m, "overlapping", 1, torch.float32)
    out = torch.empty(n, m, device="cuda")
    torch.cuda.synchronize()
    out.fill_(1.0)
    for config in args.profile_one.split(","):
        name, rows = parse_config(config)
        if name == "native":
            ops.box_iou(a, b, backend="native")
        else:
            lib.launch(name, out, a, b, 0, rows)
    torch.cuda.synchronize()


def smoke(args) -> None:
    """In a child process: every config once on a few shapes and box sets, each launch synchronized,
    printing 'smoke ok CONFIG' after each, so that the parent can drop a config that faults the
    GPU (an illegal address ends the process's CUDA context, and with it every later measurement)."""
    import torch
    import torchops.ops as ops

    lib = Library(build(args.build_dir, args.arch or "90", args.jobs))
    shapes = [(37, 5), (300, 257), (1237, 3001), (4000, 4000), (20000, 2000)]
    inputs = []
    for n, m in shapes:
        for dtype in (torch.float32, torch.float16):
            kind = "mixed" if n == 1237 else "overlapping"
            inputs.append((boxes(n, kind, 0, dtype), boxes(m, kind, 1, dtype)))
    for config in args.smoke.split(","):
        name, rows = parse_config(config)
        for a, b in inputs:
            out = torch.empty(a.shape[0], b.shape[0], device="cuda")
            if name == "native":
                ops.box_iou(a, b, backend="native")
            else:
                lib.launch(name, out, a, b, 0, rows)
            torch.cuda.synchronize()
        print(f"smoke ok {config}", flush=True)


def smoke_test(args, configs: list[str]) -> list[str]:
    """The configs that ran without a fault (smoke() in child processes; at most 4 faulting ones dropped)."""
    remaining = list(dict.fromkeys(configs))
    for _ in range(5):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--smoke", ",".join(remaining), "--build-dir",
               str(args.build_dir), "--arch", args.arch or "90"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired as e:
            proc = subprocess.CompletedProcess(cmd, -9, e.stdout or "", e.stderr or "")
            proc.stdout = proc.stdout.decode() if isinstance(proc.stdout, bytes) else proc.stdout
            proc.stderr = proc.stderr.decode() if isinstance(proc.stderr, bytes) else proc.stderr
        done = re.findall(r"^smoke ok (\S+)$", proc.stdout, re.M)
        if proc.returncode == 0:
            return [c for c in configs if c in remaining]
        bad = next((c for c in remaining if c not in done), None)
        print(f"smoke: the child failed (rc {proc.returncode}) at {bad}:\n{proc.stderr[-1500:]}")
        if bad is None:
            break
        log(f"smoke: dropping {bad}")
        remaining.remove(bad)
    return [c for c in configs if c in remaining]


def self_test() -> None:
    """What can be checked without a GPU: the variant list, config parsing, the kernel's row map
    (mirrored here: every output row exactly once, for contiguous and interleaved rows), and the
    ncu summary on a made-up report."""
    import random

    found = variants()
    assert len(found) == SOURCE.read_text().count("\nEXP_IOU_VARIANT("), "a variant line does not parse"
    assert len({v[0] for v in found}) == len(found), "duplicate variant names"
    assert parse_config("wide_plain@rows16") == ("wide_plain", 16) and parse_config("prod") == ("prod", 0)
    rng = random.Random(0)
    for _ in range(2000):
        n, wy, interleave = rng.randint(1, 5000), rng.choice([1, 2, 4, 8]), rng.random() < 0.5
        groups = (n + wy - 1) // wy
        splits = rng.randint(1, min(groups, 65535))
        rows = []
        for y in range(splits):  # exp_iou_kernel's first/count and row(i)
            if interleave:
                mine = (groups - 1 - y) // splits + 1
                last = y + (mine - 1) * splits
                count, first = (mine - 1) * wy + min(wy, n - last * wy), y * wy
                rows += [first + (i // wy) * (splits * wy) + i % wy for i in range(count)]
            else:
                per, extra = divmod(n, splits)
                first, count = y * per + min(y, extra), per + (1 if y < extra else 0)
                rows += [first + i for i in range(count)]
        assert sorted(rows) == list(range(n)), (n, wy, splits, interleave)
    # lin: ATen's IntDivider<uint32_t> (32-bit arithmetic as on the GPU), the general unit's
    # (i, j) walk, and every unit written exactly once by either order
    def divider(d: int) -> tuple[int, int]:
        shift = next(s for s in range(32) if (1 << s) >= d)
        return ((1 << 32) * ((1 << shift) - d)) // d + 1, shift

    divisors = [1, 2, 3, 4, 5, 7, 64, 2000, 3001, 4000, 65535, 2**31 - 1]
    for d in divisors + [rng.randint(1, 2**31 - 1) for _ in range(300)]:
        m1, shift = divider(d)
        assert 0 < m1 < 2**32, d
        for e in [0, 1, d - 1, d, d + 1, 2**31 - 4, 2**31 - 1] + [rng.randint(0, 2**31 - 1) for _ in range(50)]:
            t = (e * m1) >> 32
            assert ((t + e) & 0xFFFFFFFF) >> shift == e // d, (d, e)
    for _ in range(3000):
        n, m = rng.randint(1, 300), rng.choice([1, 2, 3, 4, 5, 7, 8, 12, 63, 64, rng.randint(1, 300)])
        total = n * m
        units = (total + 3) // 4
        u = rng.randrange(units)
        e = 4 * u
        i, j = divmod(e, m)
        for c in range(min(4, total - e)):  # general_unit's walk
            assert (i, j) == divmod(e + c, m), (n, m, u, c)
            j += 1
            if j == m:
                j, i = 0, i + 1
        t, k = rng.choice([128, 256, 512]), rng.choice([1, 2, 4])
        seen = []
        blocks = (units + t * k - 1) // (t * k)  # order 0
        for b in range(blocks):
            first = b * t * k
            seen += [first + c * t + x for x in range(t) for c in range(k) if first + c * t + x < units]
        assert sorted(seen) == list(range(units)), ("order 0", n, m, t, k)
        grid = min((units + t - 1) // t, rng.randint(1, 64))  # order 1
        seen = []
        for b in range(grid):
            for x in range(t):
                u0 = b * t + x
                while u0 < units:
                    seen += [u0 + c * grid * t for c in range(k) if u0 + c * grid * t < units]
                    u0 += k * grid * t
        assert sorted(seen) == list(range(units)), ("order 1", n, m, t, k, grid)
    sample = "\n".join([
        '==PROF== Connected',
        '"ID","Kernel Name","gpu__time_duration.sum","smsp__average_warps_issue_stalled_wait_per_issue_active.ratio"',
        '"","","usecond","ratio"',
        '"0","void at::native::vectorized_elementwise_kernel<4, FillFunctor<float>>(int)","14.7","0.1"',
        '"1","void exp_iou::prod::prod_iou_kernel<1, 2, true, float>(float *)","22.0","2.5"'])
    summarize_ncu(sample + "\n" + sample, ["fill_", "prod"], "4000x4000")
    print(f"self-test passed ({len(found)} variants)")


# --- main -----------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", help="configs to check and time (default: native, every variant, "
                        "the @rows extras, prod again at the end)")
    parser.add_argument("--only", metavar="REGEX", help="keep only the configs (default list or --configs) "
                        "that REGEX matches (re.search), e.g. '^(prod|rows1|base|store_only|lin.*)$'")
    parser.add_argument("--sizes", nargs="+", default=["4000x4000", "20000x2000", "1237x3001"])
    parser.add_argument("--time-sizes", nargs="+", default=["4000x4000", "20000x2000"], help="sizes timed")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16"])
    parser.add_argument("--kinds", nargs="+", default=["overlapping", "spread"])
    parser.add_argument("--time-dtypes", nargs="+", default=["float32"], help="input dtypes timed")
    parser.add_argument("--time-kinds", nargs="+", default=["overlapping"], help="box sets timed (spread: the same loop)")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--replays", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-check", action="store_true")
    parser.add_argument("--ncu", action="store_true", help="then profile native, prod, the fastest checked "
                        "variant (and the fastest lin* and tile one) and the fastest store-only ceiling (and the "
                        "fastest lin* and tile one) with ncu (one launch each)")
    parser.add_argument("--ncu-configs", nargs="+", help="configs for --ncu instead of the automatic choice")
    parser.add_argument("--ncu-timeout", type=int, default=150)
    parser.add_argument("--profile-size", default="4000x4000")
    parser.add_argument("--profile-one", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", help=argparse.SUPPRESS)
    parser.add_argument("--no-smoke", action="store_true", help="skip the fault test in a child process")
    parser.add_argument("--build-dir", type=Path, default=Path("/tmp/exp_box_iou_build"))
    parser.add_argument("--arch", help="sm_XX digits (default: the GPU's, else 90)")
    parser.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--out-dir", type=Path, default=Path(os.environ.get("OUT", "/tmp")))
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="no GPU, no build: arguments, variants, imports")
    args = parser.parse_args()

    all_variants = variants()
    names = [v[0] for v in all_variants]
    configs = args.configs or ["native", *names, *EXTRA_CONFIGS, "prod"]
    if args.only:
        try:
            configs = [c for c in configs if re.search(args.only, c)]
        except re.error as e:
            parser.error(f"--only {args.only!r}: {e}")
        if not configs:
            parser.error(f"--only {args.only!r} matches no config")
    for c in configs + (args.ncu_configs or []):
        name, _ = parse_config(c)
        if name != "native" and name not in names:
            parser.error(f"unknown variant {name!r} (variants: {', '.join(names)})")
    for size in args.sizes + args.time_sizes + [args.profile_size]:
        if not re.fullmatch(r"\d+x\d+", size):
            parser.error(f"size {size!r}: expected NxM")

    if args.profile_one:
        profile_one(args)
        return
    if args.smoke:
        smoke(args)
        return

    if args.dry_run:
        import torch

        self_test()
        print(f"{len(all_variants)} variants in {SOURCE.name}:")
        for name, template, what in all_variants:
            print(f"  {name:24} {template:44} {what}")
        print(f"configs: {' '.join(configs)}")
        print(f"check sizes {args.sizes} x {args.dtypes} x {args.kinds} (+ mixed/xywh/cxcywh at the last size, "
              f"+ lin's corners: mixed at 400x64, misaligned outputs, tiny shapes); "
              f"time {args.time_sizes} x {args.time_dtypes} x {args.time_kinds}")
        print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}; nvcc: {find_nvcc()}; "
              f"torch include: {torch_include()}; ncu: {ncu_binary()}")
        try:
            import torchops.ops  # noqa: F401

            print("torchops imports; native CUDA kernel:", native_available())
        except Exception as e:  # noqa: BLE001
            print(f"torchops does not import here: {e}")
        return

    if args.build_only:
        build(args.build_dir, args.arch or "90", args.jobs)
        return

    import torch
    import torchops.ops as ops

    if not torch.cuda.is_available():
        sys.exit("exp_box_iou_variants: no CUDA device (use --dry-run or --build-only here)")
    props = torch.cuda.get_device_properties(0)
    arch = args.arch or f"{props.major}{props.minor}"
    log(f"{props.name}, {props.multi_processor_count} SMs, torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"sm_{arch}")
    args.arch = arch
    lib = Library(build(args.build_dir, arch, args.jobs))
    has_native = native_available()
    if not has_native:
        log("torchops' native CUDA kernel is not available: 'native' skipped")
        configs = [c for c in configs if c != "native"]

    sass = sass_summary(lib.path)
    print("\nvariants (float boxes, vector stores): registers, local memory (spills), shared memory, resident "
          "blocks/SM; the in-range loop's SASS instructions per output and LDL/STL in it (exp_sass_loops.py)")
    for name, template, what in all_variants:
        a = lib.attributes(name)
        print(f"  {name:24} {a['regs']:3d} regs {a['local']:4d} B local {a['smem']:6d} B smem "
              f"{a['blocks_per_sm']} blocks/SM  {sass.get(name, '(no SASS)'):28} {what}")

    if not args.no_smoke:
        log(f"smoke test of {len(set(configs))} configs in a child process")
        kept = smoke_test(args, configs)
        dropped = sorted(set(configs) - set(kept))
        log("smoke: all ran" if not dropped else f"smoke: DROPPED (faulted): {', '.join(dropped)}")
        configs = kept

    def run(config, out, a, b, fmt="xyxy"):
        name, rows = parse_config(config)
        if name == "native":
            return ops.box_iou(a, b, fmt=fmt, backend="native")
        lib.launch(name, out, a, b, FORMATS[fmt], rows)
        return out

    # --- checks -----------------------------------------------------------------------------
    failures: dict[str, list[str]] = {c: [] for c in configs}
    if not args.no_check:
        log("checks against the eager reference")
        cases = [(size, dtype, kind, "xyxy", 0) for size in args.sizes for dtype in args.dtypes for kind in args.kinds]
        last = args.sizes[-1]
        cases += [(last, dtype, "mixed", "xyxy", 0) for dtype in args.dtypes]
        cases += [(last, "float32", "overlapping", f, 0) for f in ("xywh", "cxcywh")]
        cases += [(last, "float16", "mixed", f, 0) for f in ("xywh", "cxcywh")]
        # the lin kernels' corners: out-of-range boxes where M % 4 == 0 (their fast kernel's
        # general units), outputs 4 bytes off 16-byte alignment (scalar stores), tiny and
        # M < 4 shapes (units straddling several rows, fewer units than threads)
        cases += [("400x64", "float32", "mixed", "xyxy", 0), ("400x64", "float16", "mixed", "xywh", 0)]
        cases += [(last, "float32", "mixed", "xyxy", 1), ("400x64", "float32", "overlapping", "xyxy", 3)]
        cases += [(size, "float32", "overlapping", "xyxy", 0) for size in ("1x1", "3x1", "1x3", "5x2", "37x5", "2x8")]
        cases += [("37x5", "float16", "overlapping", "cxcywh", 0)]
        for size, dtype_name, kind, fmt, offset in cases:
            n, m = (int(v) for v in size.split("x"))
            dtype = getattr(torch, dtype_name)
            a = in_format(boxes(n, kind, 0, dtype), fmt).contiguous()
            b = in_format(boxes(m, kind, 1, dtype), fmt).contiguous()
            expected = ops.box_iou(a, b, fmt=fmt, backend="eager")
            out = torch.empty(n * m + offset, device="cuda")[offset:].view(n, m)  # offset: elements off alignment
            for config in configs:
                out.fill_(float("nan"))  # poison: every element must be written
                got = run(config, out, a, b, fmt)
                torch.cuda.synchronize()
                if is_store_only(parse_config(config)[0]):
                    bad = int(got.isnan().sum()) if kind != "mixed" else 0
                    what = "unwritten"
                else:
                    bad = same_values(got, expected)
                    what = "differ"
                if bad:
                    failures[config].append(f"{size} {dtype_name} {kind} {fmt}{' +' + str(offset) if offset else ''}: "
                                            f"{bad} {what}")
            del expected, out, a, b
        bad_configs = [c for c in configs if failures[c]]
        log(f"checks: {len(cases)} cases x {len(configs)} configs; "
            + ("all same as eager" if not bad_configs else f"FAILED: {', '.join(bad_configs)}"))
        for c in bad_configs:
            for f in failures[c][:4]:
                print(f"  {c}: {f}")
        torch.cuda.empty_cache()

    # --- timing -----------------------------------------------------------------------------
    results: dict[tuple[str, str], tuple[float, str, tuple]] = {}
    fills: dict[str, float] = {}
    for size in args.time_sizes:
        n, m = (int(v) for v in size.split("x"))
        out_bytes = n * m * 4
        buf = torch.empty(n * m, device="cuda")
        src = torch.empty_like(buf).normal_()
        fill = graph_time_us(lambda: buf.fill_(1.0), args.calls, args.replays, args.repeats)
        copy = graph_time_us(lambda: buf.copy_(src), args.calls, args.replays, args.repeats)
        fill_us, copy_us = statistics.median(fill), statistics.median(copy)
        fills[size] = fill_us
        del buf, src
        print(f"\n{size}: {out_bytes / 1e6:.0f} MB output; fill_ {fill_us:.2f} us ({out_bytes / fill_us / 1e3:.0f} "
              f"GB/s write), copy_ {copy_us:.2f} us ({2 * out_bytes / copy_us / 1e3:.0f} GB/s read+write); "
              f"bar {BAR:.0%} of fill_ = {fill_us / BAR:.2f} us")
        for dtype_name in args.time_dtypes:
            for kind in args.time_kinds:
                dtype = getattr(torch, dtype_name)
                a, b = boxes(n, kind, 0, dtype), boxes(m, kind, 1, dtype)
                out = torch.empty(n, m, device="cuda")
                for i, config in enumerate(configs):
                    label = config + (" (again)" if config in configs[:i] else "")
                    grid = () if parse_config(config)[0] == "native" else lib.launch(
                        parse_config(config)[0], out, a, b, 0, parse_config(config)[1])
                    times = graph_time_us(lambda: run(config, out, a, b), args.calls, args.replays, args.repeats)
                    us = statistics.median(times)
                    share = fill_us / us
                    results[(label, f"{size} {dtype_name} {kind}")] = (us, f"{min(times):.2f}-{max(times):.2f}", grid)
                    status = ("ceiling" if is_store_only(parse_config(config)[0])
                              else ("CHECK FAILED" if failures.get(config) else "same as eager"))
                    print(f"  {label:32} {size:>10} {dtype_name:8} {kind:11} {us:7.2f} us "
                          f"(min-max {min(times):.2f}-{max(times):.2f})  {out_bytes / us / 1e3:5.0f} GB/s  "
                          f"{100 * share:5.1f}% of fill_  grid {grid}  {status}", flush=True)
                del a, b, out
        torch.cuda.empty_cache()

    # --- summary ----------------------------------------------------------------------------
    keys = list(dict.fromkeys(k[1] for k in results))
    labels = list(dict.fromkeys(k[0] for k in results))
    lines = ["summary: median us and % of fill_ per timed case ('*' meets the 85% bar, 'x' check failed, "
             "'c' store-only ceiling)", f"  {'config':30}" + "".join(f"{k[:22]:>24}" for k in keys)]
    for label in labels:
        cells = []
        config = label.replace(" (again)", "")
        for k in keys:
            if (label, k) not in results:
                cells.append(f"{'':>24}")
                continue
            us = results[(label, k)][0]
            share = fills[k.split()[0]] / us
            mark = ("c" if is_store_only(parse_config(config)[0]) else
                    "x" if failures.get(config) else "*" if share >= BAR else " ")
            cells.append(f"{us:10.2f} us {100 * share:5.1f}%{mark}")
        lines.append(f"  {label:30}" + "".join(cells))
    first = keys[0] if keys else None
    best = None
    if first:
        checked = [l for l in labels if not is_store_only(parse_config(l.replace(" (again)", ""))[0])
                   and not failures.get(l.replace(" (again)", "")) and l != "native" and (l, first) in results]
        if checked:
            best = min(checked, key=lambda l: results[(l, first)][0])
            lines.append(f"fastest checked variant at {first}: {best} ({results[(best, first)][0]:.2f} us, "
                         f"{100 * fills[first.split()[0]] / results[(best, first)][0]:.1f}% of fill_); "
                         + "; ".join(f"fill_ {k} {v:.2f} us" for k, v in fills.items()))
    print("\n" + "\n".join(lines))
    try:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / "exp_box_iou_summary.txt").write_text("\n".join(lines) + "\n")
    except OSError as e:
        log(f"could not write the summary to {args.out_dir}: {e}")

    if args.ncu:
        chosen = args.ncu_configs
        if not chosen:
            chosen = (["native"] if "native" in configs else []) + (["prod"] if "prod" in configs else [])
            if first:
                timed = [l for l in labels if "(again)" not in l and (l, first) in results]
                fastest = lambda ls: min(ls, key=lambda l: results[(l, first)][0]) if ls else None  # noqa: E731
                lin = lambda l: parse_config(l)[0].startswith("lin")  # noqa: E731
                checked = [l for l in timed if l != "native" and not is_store_only(parse_config(l)[0])
                           and not failures.get(l)]
                ceilings = [l for l in timed if is_store_only(parse_config(l)[0])]
                # the fastest checked variant and the fastest ceiling, and of the other order
                # (tile / linear) the fastest of each too, where it ran
                picks = [fastest(checked), fastest([l for l in checked if lin(l)]),
                         fastest([l for l in checked if not lin(l)]), fastest(ceilings),
                         fastest([l for l in ceilings if lin(l)]), fastest([l for l in ceilings if not lin(l)])]
                for c in picks:
                    if c and c not in chosen:
                        chosen.append(c)
        run_ncu(args, chosen, args.out_dir)
    log("done")


if __name__ == "__main__":
    main()
