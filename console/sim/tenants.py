"""The simulated centre's tenants (Slurm accounts) and what each one costs and gets.

`TenantInfo` is deliberately plain (strings and floats): the configuration layer reuses it
for real sites, where the same facts come from a TOML file instead of this list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TenantInfo:
    """One tenant: the Slurm account, how to show it, and its price terms.

    ``subsidy`` is the share of the list price a subsidy scheme pays (0..0.7);
    ``price_per_gpu_hour`` is the list price before subsidy.
    """

    account: str
    display: str
    kind: str  # "university" | "research institute" | "company" | "other"
    subsidy: float
    price_per_gpu_hour: float


@dataclass(frozen=True)
class TenantProfile:
    """How a simulated tenant behaves: share of submissions and how well its code uses GPUs."""

    info: TenantInfo
    weight: float  # relative submission rate
    efficiency: float  # mean tensor-pipe activity of its training jobs (0..1)
    quota_share: float  # AssocGrpGRES limit as a share of the cluster's GPUs
    users: tuple[str, ...]


_U, _I, _C = "university", "research institute", "company"

_TENANTS: tuple[tuple[str, str, str, float, float, float, float, float], ...] = (
    # account, display, kind, subsidy, price, weight, efficiency, quota share
    ("hku", "The University of Hong Kong", _U, 0.70, 2.40, 1.6, 0.46, 0.25),
    ("cuhk", "The Chinese University of Hong Kong", _U, 0.70, 2.40, 1.5, 0.50, 0.25),
    ("hkust", "HK University of Science and Technology", _U, 0.70, 2.40, 1.4, 0.55, 0.25),
    ("polyu", "The Hong Kong Polytechnic University", _U, 0.60, 2.40, 0.9, 0.40, 0.15),
    ("cityu", "City University of Hong Kong", _U, 0.60, 2.40, 0.8, 0.38, 0.15),
    ("hkbu", "Hong Kong Baptist University", _U, 0.50, 2.40, 0.4, 0.33, 0.10),
    ("hkgai", "HK Generative AI R&D Centre", _I, 0.70, 2.40, 2.0, 0.60, 0.35),
    ("hkcai", "HK Centre for AI Research", _I, 0.60, 2.40, 0.9, 0.52, 0.20),
    ("lscm", "Logistics and Supply Chain MultiTech R&D Centre", _I, 0.50, 2.40, 0.5, 0.35, 0.10),
    ("astri", "Applied Science and Technology Research Institute", _I, 0.50, 2.40, 0.6, 0.42, 0.12),
    ("tidalmind", "TidalMind AI Ltd", _C, 0.70, 3.10, 1.2, 0.58, 0.20),
    ("harbourvision", "Harbour Vision Robotics", _C, 0.40, 3.10, 0.7, 0.36, 0.12),
    ("kaitaklabs", "Kai Tak Labs", _C, 0.20, 3.10, 0.6, 0.44, 0.12),
    ("pearlriver", "Pearl River Language Models", _C, 0.0, 3.10, 0.8, 0.62, 0.15),
    ("cobaltvector", "Cobalt Vector Finance AI", _C, 0.0, 3.10, 0.4, 0.30, 0.08),
)

_SURNAMES = ("chan", "wong", "lee", "cheung", "lau", "ng", "ho", "leung", "tam", "yip",
             "kwok", "chow", "tsang", "lam", "fung", "mak", "siu", "poon", "yeung", "choi")
_INITIALS = ("kh", "wm", "sy", "tl", "cy", "hk", "jm", "pw", "ys", "mc", "ak", "lf")


def _users(index: int, count: int) -> tuple[str, ...]:
    """Deterministic user names (surname.initials) so every run shows the same people."""
    out = []
    for j in range(count):
        s = _SURNAMES[(index * 7 + j * 3) % len(_SURNAMES)]
        i = _INITIALS[(index * 5 + j) % len(_INITIALS)]
        out.append(f"{s}.{i}")
    return tuple(dict.fromkeys(out))


def default_profiles() -> tuple[TenantProfile, ...]:
    """The fifteen tenants of the simulated centre: six universities, four institutes,
    five (fictional) companies, with subsidies from 0 to 70%."""
    profiles = []
    for k, (acct, disp, kind, sub, price, weight, eff, quota) in enumerate(_TENANTS):
        profiles.append(TenantProfile(
            info=TenantInfo(acct, disp, kind, sub, price),
            weight=weight, efficiency=eff, quota_share=quota,
            users=_users(k, 3 + (k * 5) % 8),
        ))
    return tuple(profiles)


def default_tenants() -> list[TenantInfo]:
    return [p.info for p in default_profiles()]
