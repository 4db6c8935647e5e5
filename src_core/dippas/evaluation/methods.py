"""Anonymization methods of the evaluation, their parameters, and the setting sweep.

A *method spec* names a method and, optionally, some of its parameters::

    none
    denoise:denoiser=wavelet
    inpainting:hole=5,reg=l2,edges=1
    inpainting:hole=3/5,reg=l2/tv          # '/' lists values to sweep: 4 settings
    dippas-aware:preset=fast,max_iter=500
    dippas-blind:B=64,L=10,tau=35

A *grid* (``--grid`` on the command line) lists values for parameters of
every selected method that has them and does not set them in its spec, e.g.
``{"B": ["32", "64", "whole"], "L": ["1", "10"], "tau": ["33", "35"]}``.
Each combination of values is one :class:`Setting`.

Methods
-------
``none``
    The original (cropped) images: the attribution baseline.
``denoise``
    A plain denoiser (default scikit-image's BayesShrink wavelet): shows that
    denoising alone does not anonymize.
``inpainting``
    :func:`dippas.inpainting.inpaint_anonymize` (ICIP 2017).
``dippas-aware``, ``dippas-blind``
    DIPPAS with the device fingerprint K, or with the image's own residual.
    The inversion parameters (``preset``, ``max_iter``, ``seed``) define one
    inversion per image, run once into a cached run folder; the assembly
    parameters (``B``, ``L``, ``tau``) are applied to that run, so a grid
    over them costs one inversion per image.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DippasInputError
from ..jobs import DippasJob, InpaintingJob

#: Default denoiser of the ``denoise`` baseline.
DEFAULT_BASELINE_DENOISER = "wavelet"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# --------------------------------------------------------------------------
# Value parsers: str -> canonical value, DippasInputError on bad input
# --------------------------------------------------------------------------

def _parse_int(text: str, name: str, minimum: int = 1) -> int:
    try:
        v = int(str(text))
    except ValueError:
        raise DippasInputError(f"{name} must be an integer, got {text!r}") from None
    if v < minimum:
        raise DippasInputError(f"{name} must be at least {minimum}, got {v}")
    return v


def _parse_optional_int(text: str, name: str) -> int | None:
    return None if str(text).lower() in ("none", "default") else _parse_int(text, name)


def _parse_optional_seed(text: str, name: str) -> int | None:
    return None if str(text).lower() in ("none", "default") else _parse_int(text, name, minimum=0)


def _parse_bool(text: str, name: str) -> bool:
    key = str(text).lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise DippasInputError(f"{name} must be 1 or 0 (true/false), got {text!r}")


def _parse_optional_float(text: str, name: str) -> float | None:
    if str(text).lower() in ("none", "default"):
        return None
    try:
        v = float(text)
    except ValueError:
        raise DippasInputError(f"{name} must be a number or 'none', got {text!r}") from None
    if not math.isfinite(v):
        raise DippasInputError(f"{name} must be finite, got {text!r}")
    return v


def _parse_block(text: str, name: str) -> int | str:
    if str(text).lower() == "whole":
        return "whole"
    return _parse_int(text, name)


def _text(text: str, name: str) -> str:
    """A value the job checks (preset names, rules): kept as given."""
    return str(text)


def _optional(parse):
    """``parse`` that reads 'none' (and 'default') as None: the profile's value."""
    return lambda text, name: None if str(text).lower() in ("none", "default") else parse(text, name)


def _parse_denoiser(text: str, name: str) -> str:
    from ..inpainting.denoisers import get_denoiser

    get_denoiser(str(text))  # DippasInputError on an unknown or uninstalled name
    return str(text)


def _parse_regulariser(text: str, name: str) -> str:
    from ..inpainting.solver import check_regulariser

    return check_regulariser(str(text))


_parse_optional_regulariser = _optional(_parse_regulariser)
_parse_optional_bool = _optional(_parse_bool)
_parse_optional_denoiser = _optional(_parse_denoiser)


# --------------------------------------------------------------------------
# Method table
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One parameter of a method.

    Attributes
    ----------
    name : str
        Name in method specs and grids.
    parse : callable
        ``parse(text, name) -> value``; raises :class:`DippasInputError`.
    default : object
        Canonical default value.
    help : str
        One-line description.
    assembly : bool
        True for DIPPAS assembly parameters (``B``, ``L``, ``tau``, ``rule``):
        they do not change the inversion.
    shown : bool
        Always shown in setting labels (otherwise only when not the default).
    """

    name: str
    parse: Callable[[str, str], Any]
    default: Any
    help: str
    assembly: bool = False
    shown: bool = False


@dataclass(frozen=True)
class Method:
    """An anonymization method and its parameters."""

    name: str
    params: tuple[Param, ...]
    help: str

    def param(self, key: str) -> Param:
        """The parameter called ``key``; :class:`DippasInputError` if there is none."""
        for p in self.params:
            if p.name == key:
                return p
        names = ", ".join(p.name for p in self.params) or "none"
        raise DippasInputError(f"unknown parameter {key!r} for method {self.name}; its parameters: {names}")

    @property
    def is_dippas(self) -> bool:
        """Whether this is a DIPPAS method (one inversion, many assemblies)."""
        return self.name.startswith("dippas")


#: The defaults of every method parameter come from the job specifications,
#: so ``evaluate`` runs exactly what ``dippas anonymize`` does.
_DIPPAS = DippasJob()
_INPAINTING = InpaintingJob()

_DIPPAS_PARAMS = (
    Param("preset", _text, _DIPPAS.preset, "inversion preset (dippas.dip.PRESETS)"),
    Param("max_iter", _parse_optional_int, _DIPPAS.max_iter,
          "iteration cap of the inversion (none: the preset's)"),
    Param("seed", _parse_optional_seed, _DIPPAS.seed,
          "random seed of the inversion (none: derived from the image's pixels)"),
    Param("target", _parse_optional_float, _DIPPAS.target_psnr,
          "stop the inversion once the default assembly (B, L, tau, rule of dippas anonymize) "
          "reaches this PSNR in dB with its NCCs at chance (none: the preset's stop PSNR)"),
    Param("B", _parse_block, _DIPPAS.block_size, "assembly block side in pixels, or 'whole'",
          assembly=True, shown=True),
    Param("L", _parse_int, _DIPPAS.blocks, "number of best blocks averaged", assembly=True, shown=True),
    Param("tau", _parse_optional_float, _DIPPAS.psnr_threshold,
          "snapshot PSNR threshold tau_PSNR in dB (none: every stored snapshot)", assembly=True,
          shown=True),
    Param("rule", _text, _DIPPAS.rule,
          "block choice: paper (the paper's ordering; min |NCC| for B=whole,L=1) or min-abs",
          assembly=True),
)

#: The methods, by name.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("none", (), "the original images (attribution baseline)"),
    Method("denoise", (
        Param("denoiser", _parse_denoiser, DEFAULT_BASELINE_DENOISER,
              "denoiser name (dippas.inpainting.available_denoisers())"),
    ), "plain denoising: shows that denoising alone does not anonymize"),
    Method("inpainting", (
        Param("profile", _text, _INPAINTING.profile, "recipe: tv, classic or paper (docs/evaluation.md)"),
        Param("hole", _parse_optional_int, _INPAINTING.hole, "hole side B: 3 or 5 (none: the profile's)"),
        Param("reg", _parse_optional_regulariser, _INPAINTING.reg,
              "regulariser: l2 or tv (none: the profile's)"),
        Param("edges", _parse_optional_bool, _INPAINTING.edges,
              "edge reconstruction from the denoised original: 1 or 0 (none: the profile's)"),
        Param("delta", _parse_optional_int, _INPAINTING.delta,
              "derivative step of the penalty (none: the profile's)"),
        Param("denoiser", _parse_optional_denoiser, _INPAINTING.denoiser,
              "denoiser of the edge reconstruction (none: the profile's)"),
    ), "inpainting-based anonymization (ICIP 2017)"),
    Method("dippas-aware", _DIPPAS_PARAMS, "DIPPAS with the device fingerprint K"),
    Method("dippas-blind", _DIPPAS_PARAMS, "DIPPAS with the image's own residual W"),
)}


def get_method(name: str) -> Method:
    """Look up a method by name; :class:`DippasInputError` on an unknown one."""
    try:
        return METHODS[name]
    except KeyError:
        raise DippasInputError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """One method with every parameter fixed: a row of the results table.

    Attributes
    ----------
    method : str
    params : tuple of (str, object)
        Every parameter of the method, in the method's order.
    """

    method: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def params_dict(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return dict(self.params)

    @property
    def label(self) -> str:
        """Short readable name: the method, non-default parameters and DIPPAS B, L and tau."""
        m = get_method(self.method)
        usual = {}
        if self.method == "inpainting":  # options as the setting's own profile has them go unsaid
            from ..inpainting.profiles import get_profile

            usual = get_profile(self.params_dict["profile"]).options()
        shown = [(k, v) for (k, v), p in zip(self.params, m.params)
                 if p.shown or v != usual.get(k, p.default)]
        if not shown:
            return self.method
        return f"{self.method}:" + ",".join(f"{k}={format_value(v)}" for k, v in shown)

    @property
    def slug(self) -> str:
        """File-name-safe identifier of the method and every parameter (a cache key)."""
        return _slug([self.method] + [f"{k}-{format_value(v)}" for k, v in self.params])

    @property
    def inversion(self) -> Setting:
        """The setting without its assembly parameters: what one DIPPAS inversion depends on."""
        m = get_method(self.method)
        return Setting(self.method, tuple(kv for kv, p in zip(self.params, m.params) if not p.assembly))

    @property
    def assembly(self) -> dict[str, Any]:
        """The DIPPAS assembly parameters ``B``, ``L``, ``tau``."""
        m = get_method(self.method)
        return {k: v for (k, v), p in zip(self.params, m.params) if p.assembly}


def format_value(v: Any) -> str:
    """A parameter value as written in specs: ``1``/``0`` for booleans, ``none`` for None."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if v is None:
        return "none"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _slug(parts: Sequence[str]) -> str:
    text = "_".join(parts)
    clean = re.sub(r"[^A-Za-z0-9.\-_]", "~", text)
    if clean != text:
        import hashlib

        clean += "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return clean


@dataclass
class MethodSpec:
    """A parsed method spec: the method and the raw values given for some parameters."""

    method: str
    values: dict[str, list[str]] = field(default_factory=dict)


def parse_method_spec(text: str) -> MethodSpec:
    """Parse ``name[:key=value[/value...][,key=value...]]``.

    Raises
    ------
    DippasInputError
        On an unknown method or parameter, a malformed item or a repeated key.
    """
    name, _, rest = str(text).strip().partition(":")
    method = get_method(name.strip())
    values: dict[str, list[str]] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, val = item.partition("=")
        key = key.strip()
        if not eq or not val.strip():
            raise DippasInputError(f"method {method.name}: expected key=value, got {item!r}")
        method.param(key)
        if key in values:
            raise DippasInputError(f"method {method.name}: parameter {key!r} given twice")
        values[key] = [v.strip() for v in val.split("/") if v.strip()]
    return MethodSpec(method.name, values)


def parse_grid(items: Iterable[str]) -> dict[str, list[str]]:
    """Parse grid items ``KEY=V1,V2,...`` (``/`` also separates values).

    Raises
    ------
    DippasInputError
        On a malformed item or a repeated key.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        key, eq, val = str(item).partition("=")
        key = key.strip()
        vals = [v.strip() for v in re.split(r"[,/]", val) if v.strip()]
        if not eq or not key or not vals:
            raise DippasInputError(f"grid: expected KEY=V1,V2,..., got {item!r}")
        if key in grid:
            raise DippasInputError(f"grid: parameter {key!r} given twice")
        grid[key] = vals
    return grid


def _canonical(setting: Setting) -> Setting:
    """The setting checked (its job is built) and in one spelling.

    The inpainting options left to their profile get the profile's values,
    so ``inpainting`` and ``inpainting:hole=5`` are one setting, with one
    label and one cache, and the cache key holds the values that ran.
    """
    job = job_of(setting)
    if not isinstance(job, InpaintingJob):
        return setting
    recipe = job.recipe().options()
    return Setting(setting.method, tuple((k, recipe.get(k, v) if v is None else v)
                                         for k, v in setting.params))


def expand_settings(specs: Sequence[str | MethodSpec],
                    grid: Mapping[str, Sequence[str]] | None = None) -> list[Setting]:
    """Every setting of the methods and the grid, in the order given, without duplicates.

    Parameters
    ----------
    specs : sequence of str or MethodSpec
        Method specs (see the module docstring).
    grid : mapping of str to sequence of str, optional
        Values for parameters of every method that has them and whose spec
        does not set them.

    Returns
    -------
    list of Setting

    Raises
    ------
    DippasInputError
        On an unknown method or parameter, a bad value, a grid parameter
        that no selected method has, or no methods.
    """
    parsed = [s if isinstance(s, MethodSpec) else parse_method_spec(s) for s in specs]
    if not parsed:
        raise DippasInputError("no methods to evaluate")
    grid = dict(grid or {})
    used = set()
    out: list[Setting] = []
    for spec in parsed:
        method = get_method(spec.method)
        choices = []
        for p in method.params:
            raw = spec.values.get(p.name)
            if raw is None and p.name in grid:
                raw = list(grid[p.name])
                used.add(p.name)
            vals = [p.parse(v, p.name) for v in raw] if raw else [p.default]
            choices.append([(p.name, v) for v in dict.fromkeys(vals)])
        for combo in itertools.product(*choices):
            setting = Setting(method.name, tuple(combo))
            setting = _canonical(setting)
            if setting not in out:
                out.append(setting)
    unused = [k for k in grid if k not in used and not any(
        k in {p.name for p in get_method(s.method).params} for s in parsed)]
    if unused:
        raise DippasInputError(f"grid parameter {unused[0]!r} belongs to none of the selected methods")
    return out


# --------------------------------------------------------------------------
# Running one method on one image
# --------------------------------------------------------------------------

def denoise_baseline(image: np.ndarray, denoiser: str = DEFAULT_BASELINE_DENOISER) -> np.ndarray:
    """The denoised image, rounded back to the input's integer type.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, 3), uint8 or uint16
    denoiser : str
        Registered denoiser name (:mod:`dippas.inpainting.denoisers`).

    Returns
    -------
    ndarray, same shape and dtype as ``image``
    """
    from ..dtype import float255_to_dtype
    from ..inpainting.denoisers import denoise

    return float255_to_dtype(denoise(image, denoiser), np.asarray(image).dtype)


def run_method(setting: Setting, image: np.ndarray, *, fingerprint: np.ndarray | None = None,
               run_dir=None, device: str = "auto", progress=None, cancel=None) -> np.ndarray:
    """Anonymize one (cropped) image with one setting.

    Parameters
    ----------
    setting : Setting
    image : ndarray, (H, W) or (H, W, 3), uint8 or uint16
    fingerprint : ndarray, optional
        The device's fingerprint, cropped like ``image``: needed by ``dippas-aware``.
    run_dir : path, optional
        DIPPAS run folder (created, resumed or reused by ``invert_to_run``).
    device : str
        Torch device of DIPPAS: auto, cuda, mps or cpu.
    progress : callable, optional
        ``progress(done, total)`` within the image, where the method reports it.
    cancel : CancelToken, optional

    Returns
    -------
    ndarray
        uint8 or uint16 image of the input's shape (DIPPAS: uint8 RGB).
    """
    if setting.method == "none":
        return np.asarray(image).copy()
    if setting.method == "denoise":
        return denoise_baseline(image, setting.params_dict["denoiser"])
    job = job_of(setting, device)
    if isinstance(job, DippasJob):
        if run_dir is None:
            raise DippasInputError("the dippas methods need a run folder")
        k = None if job.mode == "blind" else fingerprint
        Path(run_dir).parent.mkdir(parents=True, exist_ok=True)
        return np.asarray(job.run(image, k, run_dir, progress=progress, cancel=cancel))
    return job.run(image, progress=progress, cancel=cancel)


def job_of(setting: Setting, device: str = "auto") -> DippasJob | InpaintingJob | None:
    """The job of an ``inpainting`` or ``dippas-*`` setting (None for the baselines).

    Raises
    ------
    DippasInputError
        On values the job refuses (e.g. a hole and delta that do not fit).
    """
    p = setting.params_dict
    if setting.method == "inpainting":
        return InpaintingJob(**p)
    if get_method(setting.method).is_dippas:
        mode = "blind" if setting.method == "dippas-blind" else "aware"
        return DippasJob(mode=mode, preset=p["preset"], max_iter=p["max_iter"], seed=p["seed"],
                         target_psnr=p["target"], block_size=p["B"], blocks=p["L"],
                         psnr_threshold=p["tau"], rule=p["rule"], device=device)
    return None


def invert_dippas(setting: Setting, image: np.ndarray, fingerprint: np.ndarray | None, run_dir,
                  device: str = "auto", progress=None, cancel=None):
    """Run (or resume, or skip when complete) the DIPPAS inversion of one image.

    Returns
    -------
    pathlib.Path
        The run folder.
    """
    # One inversion serves every assembly of a grid over B, L, tau and rule, so
    # its stop rule uses the default assembly, whichever setting runs it first.
    job = job_of(setting, device).replace(
        block_size=_DIPPAS.block_size, blocks=_DIPPAS.blocks,
        psnr_threshold=_DIPPAS.psnr_threshold, rule=_DIPPAS.rule)
    k = None if job.mode == "blind" else fingerprint
    if k is None and job.mode == "aware":
        raise DippasInputError("dippas-aware needs the device fingerprint")
    Path(run_dir).parent.mkdir(parents=True, exist_ok=True)
    return job.invert(image, k, Path(run_dir), progress=progress, cancel=cancel)
