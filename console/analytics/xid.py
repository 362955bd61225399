"""The XID catalogue as data: what each XID means and what the operator should do about it.

From NVIDIA's Xid catalogue and its NVSentinel extract (FACTS.md 4.1): the mnemonic, whether
it is fatal, whether DCGM counts it among the "devastating" XIDs, and the console's action in
Slurm terms. Kept as a plain table so a site can review it and the cause analysis can quote it.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.model import Severity


@dataclass(frozen=True)
class XidInfo:
    code: int
    mnemonic: str
    fatal: bool
    devastating: bool  # DCGM's health watch fails the GPU under every subsystem
    hardware: bool  # usually hardware or platform, not the application
    action: str


_DRAIN_RESET = ("Drain the node, reset the GPU (nvidia-smi -r), run dcgmi diag -r 3, then resume; "
                "a repeat after reset means reboot, then RMA")

CATALOGUE: dict[int, XidInfo] = {x.code: x for x in (
    XidInfo(13, "GR_EXCEPTION: graphics engine exception", False, False, False,
            "Notify the job owner (usually the application); if it repeats on this GPU across jobs, drain and run DCGM diag"),
    XidInfo(31, "MMU_ERR_FLT: GPU memory page fault", False, False, False,
            "Notify the job owner (usually the application); if it repeats on this GPU across jobs, drain and run DCGM diag"),
    XidInfo(43, "RESETCHANNEL_VERIF_ERROR: GPU stopped processing", False, False, False,
            "Information only: secondary to an application fault"),
    XidInfo(45, "PREEMPTIVE_REMOVAL: cleanup after previous errors", False, False, False,
            "Follow the XID that preceded it; alone, restart nvidia-fabricmanager"),
    XidInfo(48, "GPU_ECC_DBE: double-bit ECC error", True, True, True,
            "Drain the node, reset the GPU, run dcgmi diag -r 3; RMA if it recurs or XID 64 follows"),
    XidInfo(61, "PMU_BREAKPOINT: internal micro-controller breakpoint", True, False, True,
            "Drain, collect nvidia-bug-report and escalate to support"),
    XidInfo(62, "PMU_HALT_ERROR: internal micro-controller halt", True, False, True,
            "Drain and reset the GPU; if it recurs, reboot, then RMA"),
    XidInfo(63, "INFOROM_DRAM_RETIREMENT_EVENT: row remap recorded", False, False, True,
            "Schedule a GPU reset when the node is idle to apply the pending row remap"),
    XidInfo(64, "INFOROM_DRAM_RETIREMENT_FAILURE: row remap failed", True, False, True,
            "Drain the node: RMA candidate"),
    XidInfo(74, "NVLINK_ERROR", True, True, True,
            "Drain the node and check the NVLink/NVSwitch path; the same link repeating means hardware, "
            "many nodes at once means the fabric"),
    XidInfo(79, "GPU_HAS_FALLEN_OFF_THE_BUS", True, True, True,
            "Drain and reboot the node (scontrol reboot ASAP nextstate=RESUME); if it recurs, RMA the GPU, riser or board"),
    XidInfo(92, "EXCESSIVE_SBE_INTERRUPTS: high single-bit ECC rate", False, False, True,
            "Track the trend: it can precede XID 48"),
    XidInfo(94, "CONTAINED_ERROR: contained uncorrectable ECC", False, True, True,
            "Restart the job; watch for repeats"),
    XidInfo(95, "UNCONTAINED_ERROR: uncontained uncorrectable ECC", True, True, True,
            "Drain the node and reset the GPU (or reboot the node)"),
    XidInfo(109, "CTXSW_TIMEOUT_ERROR", True, False, True, _DRAIN_RESET),
    XidInfo(119, "GSP_RPC_TIMEOUT", True, True, False,
            "Drain and reset the GPU; if it recurs, update the driver or escalate"),
    XidInfo(120, "GSP_ERROR", True, True, False,
            "Drain and reset the GPU; if it recurs, update the driver or escalate"),
    XidInfo(136, "ALI_TRAINING_FAIL: NVLink training failed", True, False, True,
            "Drain, reset the GPU and check NVLink cables and mechanicals"),
    XidInfo(140, "UNRECOVERABLE_ECC_ERROR_ESCAPE", True, True, True, _DRAIN_RESET),
    XidInfo(143, "GPU_INIT_ERROR", True, False, True, "Drain and reset, then reboot, then RMA"),
    XidInfo(154, "GPU_RECOVERY_ACTION_CHANGED", False, False, False,
            "Follow the guidance of the XID it relates to (read DCGM_FI_DEV_GPU_RECOVERY_ACTION)"),
    XidInfo(158, "GPU_FATAL_TIMEOUT", True, False, True, _DRAIN_RESET),
)}
for _code in range(144, 151):  # Blackwell NVLink5 family
    CATALOGUE[_code] = XidInfo(_code, "NVLINK5 error", True, False, True,
                               "Drain and decode intrInfo/errorStatus per the XID catalogue; check the link")


def info(code: int) -> XidInfo:
    """The catalogue entry, or a cautious default for codes the table does not know."""
    c = int(code)
    return CATALOGUE.get(c) or XidInfo(c, f"XID {c}", False, False, False,
                                       "Look the XID up in NVIDIA's catalogue; watch whether it repeats")


def severity(code: int) -> Severity:
    x = info(code)
    if x.fatal or x.devastating:
        return Severity.CRITICAL
    return Severity.WARNING if x.hardware or x.code in (13, 31) else Severity.INFO


def describe(code: int) -> str:
    return f"XID {int(code)} ({info(code).mnemonic})"
