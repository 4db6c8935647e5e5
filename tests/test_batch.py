"""``dippas batch`` on Dask distributed: inputs, names, records, exactly-once outputs, failures, reruns.

The cluster tests use a real ``LocalCluster(n_workers=2, processes=True,
threads_per_worker=1)`` on 64x64 crops with the inpainting method. Faults
are injected into the worker processes by a :class:`Hooks` worker plugin,
which wraps functions of :mod:`dippas.batch.tasks` there and logs every
call to a file, so the test can count what the workers really executed.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from distributed.diagnostics.plugin import WorkerPlugin  # noqa: E402

from dippas.anonymize import anonymize_inpainting  # noqa: E402
from dippas.batch import (  # noqa: E402
    FingerprintSource,
    assign_output_names,
    batch,
    dask_map_func,
    expand_inputs,
    plan_batch,
    read_record,
    redo_reason,
    sha256_file,
    task_resources,
)
from dippas.batch.cluster import dashboard_link, local_cluster_options  # noqa: E402
from dippas.batch.inputs import BatchInput  # noqa: E402
from dippas.cli import main  # noqa: E402
from dippas.io import load_image, save_fingerprint, save_image  # noqa: E402
from dippas.metrics import psnr  # noqa: E402

SIDE = 64
PLUGIN = "dippas-test-hooks"


def _crops() -> dict[str, np.ndarray]:
    from skimage import data

    a, c, k, r = data.astronaut(), data.chelsea(), data.coffee(), data.rocket()
    return {"astronaut.png": a[80:80 + SIDE, 200:200 + SIDE],
            "chelsea.png": c[60:60 + SIDE, 150:150 + SIDE],
            "sub/coffee.png": k[100:100 + SIDE, 300:300 + SIDE],
            "sub/rocket.tif": r[200:200 + SIDE, 300:300 + SIDE],
            "camera.png": data.camera()[200:200 + SIDE, 200:200 + SIDE],
            "astronaut2.png": a[300:300 + SIDE, 50:50 + SIDE]}


@pytest.fixture(scope="module")
def crops() -> dict[str, np.ndarray]:
    return _crops()


@pytest.fixture
def photos(tmp_path, crops) -> Path:
    """A fresh folder of six 64x64 photos (one gray, one TIFF, two in a subfolder)."""
    d = tmp_path / "photos"
    for name, img in crops.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        save_image(d / name, img)
    return d


@pytest.fixture(scope="module")
def client():
    """A real two-process local cluster, shared by the module."""
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def _reference(path: Path) -> np.ndarray:
    # The batch CLI still passes its own defaults (hole 5, L2, nl_means): the 'classic' profile.
    return anonymize_inpainting(load_image(path), profile="classic")


def _outputs(out: Path) -> dict[str, Path]:
    return {p.relative_to(out).as_posix(): p for p in sorted(out.rglob("*.png"))
            if not p.name.startswith(".")}


def _part_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if ".part" in p.name]


# --------------------------------------------------------------------------
# Fault injection in the workers
# --------------------------------------------------------------------------

def _log(path: str, event: str, name: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{event} {name}\n".encode())
    finally:
        os.close(fd)


def _first_time(marker: str) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _kill_mid_write(path: str) -> None:
    """Start the atomic write of ``path``, put half a PNG in its temp file, and SIGKILL this worker."""
    from dippas.io import atomic_write

    def writer(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)  # half-written
            f.flush()
            os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    atomic_write(path, writer)


class Hooks(WorkerPlugin):
    """Wraps :mod:`dippas.batch.tasks` functions in every worker (also ones restarted later).

    Logs ``load``, ``compute`` and ``saved`` events per photo (file name) to
    ``log``; kills the worker in the middle of writing ``kill`` (once);
    makes the computation of ``fail_always`` raise every time and that of
    ``fail_once`` the first time.
    """

    def __init__(self, log: Path, markers: Path, kill: str | None = None,
                 fail_always: str | None = None, fail_once: str | None = None) -> None:
        self.log, self.markers = str(log), str(markers)
        self.kill, self.fail_always, self.fail_once = kill, fail_always, fail_once

    def setup(self, worker) -> None:
        import dippas.batch.tasks as tasks

        self.saved = (tasks._load, tasks._compute, tasks._save_output)
        load, compute, save = self.saved
        hooks = self

        def _load(task):
            _log(hooks.log, "load", Path(task.source).name)
            return load(task)

        def _compute(task, image, k):
            name = Path(task.source).name
            _log(hooks.log, "compute", name)
            if name == hooks.fail_always:
                raise RuntimeError(f"injected failure of {name}")
            if name == hooks.fail_once and _first_time(os.path.join(hooks.markers, "fail-" + name)):
                raise OSError(f"injected transient failure of {name}")
            return compute(task, image, k)

        def _save_output(path, image, inputs):
            name = Path(inputs[0]).name
            if name == hooks.kill and _first_time(os.path.join(hooks.markers, "kill-" + name)):
                _kill_mid_write(path)
            res = save(path, image, inputs)
            _log(hooks.log, "saved", name)
            return res

        tasks._load, tasks._compute, tasks._save_output = _load, _compute, _save_output

    def teardown(self, worker) -> None:
        import dippas.batch.tasks as tasks

        tasks._load, tasks._compute, tasks._save_output = self.saved


@pytest.fixture
def hooks(client, tmp_path):
    """Install :class:`Hooks` (``hooks(**options)``) in the workers; returns the event counter."""
    log, markers = tmp_path / "events.log", tmp_path / "markers"
    markers.mkdir()

    def install(**options) -> None:
        client.register_plugin(Hooks(log, markers, **options), name=PLUGIN)

    def events() -> Counter:
        if not log.exists():
            return Counter()
        return Counter(tuple(line.split(" ", 1)) for line in log.read_text().splitlines())

    install.events = events
    install.log = log
    install.markers = markers
    yield install
    try:
        client.unregister_worker_plugin(PLUGIN)
    except Exception:  # noqa: BLE001 - not installed by this test
        pass


def _cli(capsys, *argv) -> tuple[int, dict]:
    rc = main(["batch", *map(str, argv), "--json"])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


# --------------------------------------------------------------------------
# Cluster: results, worker loss, failures, reruns
# --------------------------------------------------------------------------

def test_outputs_match_single_process_bit_for_bit(client, photos, tmp_path, capsys, crops):
    out = tmp_path / "out"
    k = np.random.default_rng(7).normal(0, 0.02, (SIDE, SIDE)).astype(np.float32)
    save_fingerprint(tmp_path / "k.npy", k)
    rc, summary = _cli(capsys, photos, "--out", out, "--method", "inpainting", "--fingerprint",
                       tmp_path / "k.npy", "--scheduler", client.scheduler.address)
    assert rc == 0
    assert summary["counts"] == {"done": 6, "skipped": 0, "failed": 0, "executed": 6}
    assert set(_outputs(out)) == {"astronaut.png", "astronaut2.png", "camera.png", "chelsea.png",
                                  "sub/coffee.png", "sub/rocket.png"}
    for name in crops:
        src, dst = photos / name, out / Path(name).with_suffix(".png")
        got, want = load_image(dst), _reference(src)
        assert got.dtype == want.dtype and np.array_equal(got, want), name
        rec = read_record(dst.with_suffix(".json"))
        assert rec["input"]["sha256"] == sha256_file(src)
        assert rec["output"]["sha256"] == sha256_file(dst)
        assert rec["params"]["hole"] == 5 and rec["method"] == "inpainting"
        assert rec["metrics"]["psnr"] == pytest.approx(psnr(load_image(src), want))
        assert {"ssim", "ncc_input", "ncc_output", "pce_output"} <= set(rec["metrics"])
        assert rec["fingerprint"]["sha256"] == sha256_file(tmp_path / "k.npy")
        assert rec["execution"]["worker"] in client.scheduler_info()["workers"]
        assert rec["timings"]["total_s"] > 0 and rec["dippas_version"]
    # and byte for byte the file `dippas anonymize` writes
    single = tmp_path / "single.png"
    assert main(["anonymize", str(photos / "chelsea.png"), "-o", str(single), "--method",
                 "inpainting", "--json"]) == 0
    capsys.readouterr()
    assert single.read_bytes() == (out / "chelsea.png").read_bytes()
    assert not _part_files(out)


def test_worker_killed_mid_write_loses_and_repeats_nothing(client, hooks, photos, tmp_path, crops):
    hooks(kill="chelsea.png")
    out = tmp_path / "out"
    summary = batch([photos], out, "inpainting", client=client, retries=0)
    assert (hooks.markers / "kill-chelsea.png").exists()  # a worker really died mid-write
    assert summary.exit_code == 0 and not summary.failed
    assert len(summary.done) == 6
    assert not _part_files(out)  # the half-written temp file was swept
    ev = hooks.events()
    names = [Path(n).name for n in crops]
    assert {n: ev["saved", n] for n in names} == {n: 1 for n in names}  # each output written once
    assert {n: ev["compute", n] for n in names} == {n: 2 if n == "chelsea.png" else 1 for n in names}
    assert len(list(out.rglob("*.json"))) == 6
    for name in crops:
        dst = out / Path(name).with_suffix(".png")
        assert np.array_equal(load_image(dst), _reference(photos / name)), name
        assert read_record(dst.with_suffix(".json"))["output"]["sha256"] == sha256_file(dst)


def test_failures_are_retried_but_bad_input_is_not(client, hooks, photos, tmp_path):
    (photos / "broken.png").write_bytes((photos / "chelsea.png").read_bytes()[:300])
    hooks(fail_always="camera.png", fail_once="astronaut2.png")
    summary = batch([photos], tmp_path / "out", "inpainting", client=client, retries=2)
    failed = {d["name"]: d["error"] for d in summary.failed}
    assert set(failed) == {"broken.png", "camera.png"} and summary.exit_code == 1
    assert "corrupt or truncated" in failed["broken.png"] and "\n" not in failed["broken.png"]
    assert failed["camera.png"] == "RuntimeError: injected failure of camera.png"
    ev = hooks.events()
    assert ev["load", "broken.png"] == 1  # bad input fails at once
    assert ev["compute", "camera.png"] == 3  # 1 + 2 retries
    assert ev["compute", "astronaut2.png"] == 2 and ev["saved", "astronaut2.png"] == 1
    assert len(summary.done) == 5
    assert not (tmp_path / "out" / "camera.json").exists()


def test_corrupt_input_fails_alone_on_the_default_local_cluster(photos, tmp_path, capsys):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    out = tmp_path / "out"
    rc, summary = _cli(capsys, photos, "--out", out, "--method", "inpainting", "--workers", 2,
                       "--threads-per-worker", 1)
    assert rc == 1
    assert summary["counts"]["done"] == 6 and summary["counts"]["failed"] == 1
    assert summary["workers"] == 2
    [bad] = summary["failed"]
    assert bad["name"] == "broken.png" and "broken.png" in bad["error"]
    assert not (out / "broken.png").exists() and not (out / "broken.json").exists()
    assert len(_outputs(out)) == 6


def test_rerun_is_a_no_op_and_changed_input_is_redone(client, hooks, photos, tmp_path, capsys, crops):
    out = tmp_path / "out"
    args = (photos, "--out", out, "--method", "inpainting", "--scheduler", client.scheduler.address)
    assert _cli(capsys, *args)[0] == 0
    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    hooks()  # count what the workers execute from now on
    rc, summary = _cli(capsys, *args)
    assert rc == 0 and summary["counts"] == {"done": 0, "skipped": 6, "failed": 0, "executed": 0}
    assert summary["workers"] == 0  # nothing was submitted, no cluster was needed
    assert not hooks.events()
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == before

    save_image(photos / "chelsea.png", crops["astronaut.png"][::-1], force=True)  # changed input
    (out / "sub" / "coffee.json").unlink()  # lost record: the output alone does not count
    rc, summary = _cli(capsys, *args)
    assert rc == 0
    done = {d["name"]: d["reason"] for d in summary["done"]}
    assert done == {"chelsea.png": "input changed", "sub/coffee.png": "record missing"}
    assert len(summary["skipped"]) == 4
    ev = hooks.events()
    assert sum(n for (event, _), n in ev.items() if event == "compute") == 2
    assert np.array_equal(load_image(out / "chelsea.png"), _reference(photos / "chelsea.png"))
    for p in files:
        if p.stem not in ("chelsea", "coffee"):
            assert p.stat().st_mtime_ns == before[p][0], p

    rc, summary = _cli(capsys, *args, "--hole", 3)  # other parameters: everything again
    assert rc == 0 and summary["counts"]["executed"] == 6
    assert {d["reason"] for d in summary["done"]} == {"fingerprint or parameters changed"}


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not (path.exists() and path.stat().st_size > 0):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[2]} exited with {proc.returncode}")
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{path} not written in {timeout} s")
        time.sleep(0.2)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_scheduler_option_uses_an_external_cluster(photos, tmp_path, capsys, crops):
    sched_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "wb")
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--scheduler-file", str(sched_file), "--no-dashboard"],
            stdout=log, stderr=subprocess.STDOUT))
        _wait_for(sched_file, procs[0])
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(sched_file),
             "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
            stdout=log, stderr=subprocess.STDOUT))
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        out = tmp_path / "out"
        rc, summary = _cli(capsys, photos, "--out", out, "--method", "inpainting",
                           "--scheduler", address)
        assert rc == 0 and summary["counts"]["done"] == 6 and summary["workers"] == 1
        workers = {read_record(p)["execution"]["worker"] for p in out.rglob("*.json")}
        pids = {read_record(p)["execution"]["pid"] for p in out.rglob("*.json")}
        assert len(workers) == 1 and len(pids) == 1 and os.getpid() not in pids
        for name in crops:
            dst = out / Path(name).with_suffix(".png")
            assert np.array_equal(load_image(dst), _reference(photos / name)), name
        # the scheduler file works as the address too, and finished work is skipped
        rc, summary = _cli(capsys, photos, "--out", out, "--method", "inpainting",
                           "--scheduler", sched_file)
        assert rc == 0 and summary["counts"]["skipped"] == 6
    finally:
        _stop(procs[::-1])
        log.close()


def test_evaluate_runs_its_tasks_on_dask(client, tmp_path, capsys):
    from dippas.samples import apply_fingerprint, simulated_fingerprint

    root = tmp_path / "ds"
    crops = list(_crops().values())
    for i, dev in enumerate(("camA", "camB")):
        k = simulated_fingerprint((SIDE, SIDE), 0.02, seed=i)
        (root / dev).mkdir(parents=True)
        save_fingerprint(root / dev / "prnu.npy", k)
        for j in range(2):
            img = crops[2 * i + j]
            img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
            save_image(root / dev / f"{dev}_{j}.png", apply_fingerprint(img, k))
    results = []
    for extra in ([], ["--scheduler", client.scheduler.address]):
        out = tmp_path / f"ev{len(results)}"
        rc = main(["evaluate", str(root), "--out", str(out), "--crop", "full", "--method", "none",
                   "--method", "inpainting", "--no-plots", "--json", *extra])
        assert rc == 0
        results.append(json.loads(capsys.readouterr().out))
        with open(out / "per_image.csv", newline="") as f:
            rows = [{k: v.replace(str(out), "OUT") for k, v in r.items() if k != "seconds_anonymize"}
                    for r in csv.DictReader(f)]
        results[-1]["per_image"] = rows
    seq, dask = results
    assert dask["work"]["anonymized"] == seq["work"]["anonymized"] == 8
    assert dask["per_image"] == seq["per_image"] and len(seq["per_image"]) == 8
    assert [s["auc"] for s in dask["settings"]] == [s["auc"] for s in seq["settings"]]


def test_dask_map_func_keeps_order_and_raises_the_first_error(client):
    f = dask_map_func(client, retries=0)
    assert list(f(abs, [-3, 2, -1])) == [3, 2, 1]
    with pytest.raises(TypeError):
        list(f(abs, [1, "x", 2]))
    # GPU tasks are refused up front when no worker has a GPU
    with pytest.raises(Exception, match="GPU"):
        list(dask_map_func(client, resources={"GPU": 1})(abs, [1]))


def test_dashboard_link_only_when_a_dashboard_runs(client):
    try:
        import bokeh  # noqa: F401
    except ImportError:
        assert dashboard_link(client) is None  # plain HTTP endpoint only: say nothing
    else:
        assert dashboard_link(client).startswith("http")


# --------------------------------------------------------------------------
# No cluster: inputs, names, fingerprints, resources, records, usage errors
# --------------------------------------------------------------------------

def test_inputs_folders_globs_manifests(photos, tmp_path):
    out = photos / "out"  # an output folder inside an input folder is never read
    (out / "x").mkdir(parents=True)
    save_image(out / "x" / "old.png", np.zeros((SIDE, SIDE), np.uint8))
    (photos / ".hidden.png").write_bytes((photos / "camera.png").read_bytes())
    (photos / "notes.txt").write_text("not a photo")
    items = expand_inputs([photos], exclude=[out])
    assert [str(i.name) for i in items] == ["astronaut.png", "astronaut2.png", "camera.png",
                                            "chelsea.png", "sub/coffee.png", "sub/rocket.tif"]
    glob_items = expand_inputs([str(photos / "**" / "*.tif"), str(photos / "camera.png")])
    assert [str(i.name) for i in glob_items] == ["sub/rocket.tif", "camera.png"]
    manifest = tmp_path / "list.csv"
    manifest.write_text("image,fingerprint\nphotos/sub/coffee.png,k.npy\n"
                        f"{photos / 'camera.png'},\n")
    m = expand_inputs([manifest, photos / "camera.png"])  # named twice: once
    assert [(str(i.name), i.fingerprint) for i in m] == [("photos/sub/coffee.png", tmp_path / "k.npy"),
                                                         ("photos/camera.png", None)]
    headerless = tmp_path / "plain.csv"
    headerless.write_text(f"{photos / 'chelsea.png'}\n")
    assert expand_inputs([headerless])[0].source == photos / "chelsea.png"


def test_output_names_collisions_are_deterministic(tmp_path):
    def item(path: str, name: str) -> BatchInput:
        return BatchInput(tmp_path / path, PurePosixPath(name))

    items = [item("a/x.jpg", "x.jpg"), item("a/x.png", "x.png"), item("b/x.jpg", "x.jpg"),
             item("a/y.jpg", "y.jpg"), item("a/Y.png", "sub/../Y.png")]
    names = [str(n) for n in assign_output_names(items)]
    assert names[1] == "x_png.png" and names[3] == "y_jpg.png" and names[4] == "Y_png.png"
    assert names[0].startswith("x_jpg-") and names[2].startswith("x_jpg-") and names[0] != names[2]
    assert [str(n) for n in assign_output_names(items[::-1])][::-1] == names  # order-free
    assert [str(n) for n in assign_output_names(items[3:4])] == ["y.png"]


def test_fingerprints_folder_and_csv(tmp_path):
    prints = tmp_path / "prints"
    prints.mkdir()
    for name in ("shot_1.npy", "fingerprint_camB_crop512_sigma3.npy", "fingerprint_camC.npy"):
        (prints / name).write_bytes(b"x")
    src = FingerprintSource(fingerprints=prints)

    def find(path: str):
        return src.find(BatchInput(tmp_path / path, PurePosixPath(Path(path).name)))

    assert find("any/shot_1.jpg") == prints / "shot_1.npy"  # by stem
    assert find("camC/img.jpg") == prints / "fingerprint_camC.npy"  # by folder
    assert find("pool/camB_0042.jpg") == prints / "fingerprint_camB_crop512_sigma3.npy"  # by device
    assert find("pool/other_1.jpg") is None
    table = tmp_path / "map.csv"
    table.write_text("image,fingerprint\nimgs/a.jpg,prints/shot_1.npy\n")
    src = FingerprintSource(fingerprints=table)
    name = PurePosixPath("a.jpg")
    assert src.find(BatchInput(tmp_path / "imgs" / "a.jpg", name)) == prints / "shot_1.npy"
    assert src.find(BatchInput(tmp_path / "elsewhere" / "a.jpg", name)) == prints / "shot_1.npy"
    assert src.find(BatchInput(tmp_path / "b.jpg", PurePosixPath("b.jpg"))) is None


def test_dippas_plan_needs_fingerprints_per_photo_and_requests_gpu(photos, tmp_path):
    k = tmp_path / "prints" / "camera.npy"
    k.parent.mkdir()
    save_fingerprint(k, np.zeros((SIDE, SIDE), np.float32) + 0.01)
    plan = plan_batch([photos], tmp_path / "out", "dippas", fingerprints=k.parent, device="cuda",
                      max_iter=5)
    assert [p.name for p in plan.pending] == ["camera.png"]
    assert {p.reason for p in plan.failed} == {f"{p.input.source.name}: no fingerprint for this photo"
                                               for p in plan.failed}
    assert plan.resources == {"GPU": 1} and plan.pending[0].task.run_dir
    assert task_resources("dippas", "cuda") == {"GPU": 1}
    assert task_resources("dippas", "cpu") is None and task_resources("inpainting", "cuda") is None
    assert plan_batch([photos], tmp_path / "o2", "dippas", blind=True).resources is None


def test_local_cluster_is_sized_to_the_machine(monkeypatch):
    import dippas.batch.cluster as cl

    monkeypatch.setattr(cl, "cpu_count", lambda: 8)
    opts = local_cluster_options(tasks=3)
    assert opts["n_workers"] == 3 and opts["threads_per_worker"] == 1 and opts["processes"]
    assert local_cluster_options()["n_workers"] == 8
    two = local_cluster_options(2, 2)
    assert two["n_workers"] == 2 and two["env"].get("NUMBA_NUM_THREADS", "2") == "2"
    gpu = local_cluster_options(gpu=True)
    assert gpu["n_workers"] == 1 and gpu["resources"] == {"GPU": 1}


def test_redo_reason_checks_the_output_content(photos, tmp_path):
    plan = plan_batch([photos / "camera.png"], tmp_path / "out", "inpainting")
    from dippas.batch.tasks import run_task

    assert run_task(plan.pending[0].task)["status"] == "done"
    assert run_task(plan.pending[0].task)["status"] == "finished-earlier"  # idempotent
    out = tmp_path / "out" / "camera.png"
    rec = read_record(out.with_suffix(".json"))
    assert redo_reason(rec, out, rec["key"]) is None
    save_image(out, np.zeros((SIDE, SIDE), np.uint8), force=True)
    assert redo_reason(rec, out, rec["key"]) == "output changed"
    out.unlink()
    assert redo_reason(rec, out, rec["key"]) == "output missing"


@pytest.mark.parametrize("argv, fragment", [
    (["nowhere/", "--out", "o", "--method", "inpainting"], "no such file or folder"),
    (["{photos}", "--out", "o", "--method", "dippas"], "needs --fingerprint"),
    (["{photos}", "--out", "o", "--method", "inpainting", "--blind"], "dippas only"),
    (["{photos}", "--out", "o", "--method", "inpainting", "--scheduler", "tcp://127.0.0.1:9",
      "--workers", "2"], "not with --scheduler"),
    (["{photos}", "--out", "{photos}", "--method", "inpainting"], "must not be the output folder"),
    (["{photos}/*.gif", "--out", "o", "--method", "inpainting"], "matches no"),
])
def test_bad_usage_is_one_line_exit_2(photos, tmp_path, capsys, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    rc = main(["batch", *(a.format(photos=photos) for a in argv)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and fragment in err[-1] and err[-1].startswith("dippas batch: error:")
    assert not (tmp_path / "o").exists()


def test_dippas_batch_aware_and_blind(client, photos, tmp_path):
    k = np.random.default_rng(3).normal(0, 0.02, (SIDE, SIDE)).astype(np.float32)
    save_fingerprint(tmp_path / "k.npy", k)
    inputs = [photos / "chelsea.png", photos / "camera.png"]
    aware = batch(inputs, tmp_path / "aware", "dippas", client=client, fingerprint=tmp_path / "k.npy",
                  max_iter=10, device="cpu")
    blind = batch(inputs[:1], tmp_path / "blind", "dippas", client=client, blind=True, max_iter=10,
                  device="cpu")
    assert aware.exit_code == blind.exit_code == 0 and len(aware.done) == 2 and len(blind.done) == 1
    for out, mode in ((tmp_path / "aware", "aware"), (tmp_path / "blind", "blind")):
        assert not (out / ".dippas-runs").exists()  # run folders go once their photo is finished
        rec = read_record(out / "chelsea.json")
        assert rec["params"]["mode"] == mode and rec["params"]["max_iter"] == 10
        assert ("ncc_output" in rec["metrics"]) == (mode == "aware")
        img = load_image(out / "chelsea.png")
        assert img.shape == (SIDE, SIDE, 3) and img.dtype == np.uint8
    assert load_image(tmp_path / "aware" / "camera.png").shape == (SIDE, SIDE, 3)  # gray -> RGB
    again = batch(inputs, tmp_path / "aware", "dippas", client=client, fingerprint=tmp_path / "k.npy",
                  max_iter=10, device="cpu")
    assert len(again.skipped) == 2 and not again.done
