"""Every speed lever of training, one switch each, and the only code that touches private
Keras or TensorFlow names (tests/test_speed.py checks it). A lever changes how fast a step is
computed, never which step; those that change the rounding are params.
Details: docs/internals.md#speed.
"""

from __future__ import annotations

import logging
import os
import sys
import types
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ONEDNN_ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
PORTABLE_ISA = "AVX2"


# --- thread pools -------------------------------------------------------------------------


def configure_threads(shards: int, threads: int) -> None:
    """`threads` intra-op threads in all, shared among the shards, which run side by side.

    Unsplit (one shard): an intra-op pool of `threads`. In shards: as many inter-op threads
    as shards, and `threads // shards` (at least one) intra-op threads for each shard's
    kernels. Call before TensorFlow starts its runtime (it fixes its pools then; after that
    this only warns).
    """
    import tensorflow as tf

    intra = max(1, threads // shards)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        if shards > 1:
            tf.config.threading.set_inter_op_parallelism_threads(shards)
    except RuntimeError:
        if tf.config.threading.get_intra_op_parallelism_threads() != intra:
            log.warning(
                "TensorFlow had started before its thread pools could be set to %d intra-op thread(s) "
                "for %d shard(s)",
                intra,
                shards,
            )


def thread_counts() -> dict[str, int]:
    """TensorFlow's intra-op and inter-op thread pools as this run set them (0: TensorFlow's default)."""
    import tensorflow as tf

    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


# --- kernels: oneDNN and its instruction set ----------------------------------------------


def configure_tensorflow(onednn: bool, cpu_isa: str) -> None:
    """Choose TensorFlow's CPU kernels before TensorFlow is imported (it reads the choice once).

    `train.onednn`: TensorFlow turns its oneDNN kernels on by default only on CPUs with
    AVX-512 or AMX; on AVX2 CPUs they train these models faster than the default Eigen
    kernels (1.2x for simple_cnn, up to 2x for the VGG-style net). They round differently
    from Eigen, so scores move slightly, but reruns stay bit-identical.

    `train.cpu_isa`: oneDNN picks its kernels by the CPU's instruction set, and kernels for
    different instruction sets round differently: with the same code, params and data,
    mlp_l2 scored 0.3844 on an AVX-512 CPU and 0.3607 on an AVX2 one. `avx2` caps oneDNN at
    AVX2 (ONEDNN_MAX_CPU_ISA), which x86-64 CPUs of the last decade have, so every such CPU
    computes the same bytes; `native` lets it use everything the CPU has (on a 2-core AVX-512
    machine: simple_cnn 1.19x faster, mlp_l2 no faster), and results then depend on the CPU.
    `cpu_isa_record` says what a run used.
    """
    isa = PORTABLE_ISA if cpu_isa == "avx2" else None
    if "tensorflow" in sys.modules:
        if onednn_enabled() != onednn or os.environ.get(ONEDNN_ISA_VARIABLE) != isa:
            log.warning("TensorFlow was imported before train.onednn / train.cpu_isa could take effect")
        return
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn else "0"
    if isa is None:
        os.environ.pop(ONEDNN_ISA_VARIABLE, None)
    else:
        os.environ[ONEDNN_ISA_VARIABLE] = isa


def onednn_enabled() -> bool:
    """Whether this process's TensorFlow runs its oneDNN CPU kernels."""
    from tensorflow.python.util import _pywrap_util_port  # no public query exists

    return bool(_pywrap_util_port.IsMklEnabled())


def cpuinfo_field(name: str) -> str | None:
    """The first value of a field of /proc/cpuinfo ("model name", "flags"); None where there is none."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return None
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo does not exist."""
    return set((cpuinfo_field("flags") or "").split())


def cpu_isa_record(cpu_isa: str, flags: set[str] | None = None) -> dict[str, Any]:
    """What decided the CPU kernels' arithmetic in this run, for run.json.

    `kernels_isa` is the instruction set oneDNN's kernels were limited to: "AVX2" wherever the
    cap applied and the CPU has AVX2 (then the bytes match any other such CPU), "native" (the
    CPU's best, which the CPU flags tell), or "below AVX2" on an older CPU, whose results
    differ from the recorded run's.
    """
    flags = cpu_flags() if flags is None else flags
    known = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    if cpu_isa == "native":
        kernels = "native"
    elif flags and "avx2" not in flags:
        kernels = "below AVX2"
    else:
        kernels = PORTABLE_ISA
    return {
        "cpu_isa": cpu_isa,
        "kernels_isa": kernels,
        "onednn_max_cpu_isa": os.environ.get(ONEDNN_ISA_VARIABLE),
        "cpu_flags": sorted(flag for flag in known if flag in flags),
    }


# --- XLA and op determinism ---------------------------------------------------------------


def set_op_determinism(enabled: bool) -> None:
    """TensorFlow's deterministic ops on or off, process-wide.

    TensorFlow refuses XLA together with op determinism (MaxPool gradients have no
    deterministic XLA kernel) and Keras silently drops `jit_compile` when determinism is on,
    so XLA runs (`train.jit_compile`) turn it off and rely on XLA's CPU code being
    deterministic by itself (tests/test_train.py checks both).
    """
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # no public switch back off

    if enabled:
        tf.config.experimental.enable_op_determinism()
    else:  # undo an earlier call in this process
        tf_config.disable_op_determinism()


# --- the fused optimizer ------------------------------------------------------------------


def fuse_adam(optimizer: Any) -> Any:
    """Make this keras.optimizers.Adam update each weight with TensorFlow's fused kernel.

    Bound to this instance only, so a saved model still names plain Adam and loads anywhere.
    """
    optimizer.update_step = types.MethodType(_fused_adam_step, optimizer)
    return optimizer


def _fused_adam_step(self: Any, gradient: Any, variable: Any, learning_rate: Any) -> None:
    """keras.optimizers.Adam's update as TensorFlow's fused kernel: one op per weight, not eight.

    The same rule (lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t); m, v moving averages;
    w -= lr_t * m / (sqrt(v) + eps)); only the rounding order differs.
    """
    import tensorflow as tf

    def handle(var: Any) -> Any:
        return var.handle if hasattr(var, "handle") else var.value.handle

    dtype = variable.dtype
    index = self._get_variable_index(variable)  # Keras's private slot bookkeeping
    step = tf.cast(self.iterations + 1, dtype)
    tf.raw_ops.ResourceApplyAdam(
        var=handle(variable),
        m=handle(self._momentums[index]),
        v=handle(self._velocities[index]),
        beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
        beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
        lr=tf.cast(learning_rate, dtype),
        beta1=tf.cast(self.beta_1, dtype),
        beta2=tf.cast(self.beta_2, dtype),
        epsilon=tf.cast(self.epsilon, dtype),
        grad=tf.cast(gradient, dtype),
    )
