"""Slurm pending reasons in plain words, grouped by who can act on them.

An operator looking at a queue wants to know whether jobs wait because the machine is busy
(queueing: normal), because a tenant hit its quota (quota: a conversation with the tenant),
because of the user's own request (user), or because hardware is out of service
(infrastructure: the operator's problem). Grouping follows FACTS 5.3.
"""

from __future__ import annotations

import re

QUEUEING = "queueing"
QUOTA = "quota"
USER = "user"
INFRASTRUCTURE = "infrastructure"
OTHER = "other"

GROUPS: tuple[str, ...] = (QUEUEING, QUOTA, USER, INFRASTRUCTURE, OTHER)

_EXACT: dict[str, tuple[str, str]] = {
    "Priority": (QUEUEING, "waiting behind higher-priority jobs"),
    "Resources": (QUEUEING, "waiting for GPUs to free up"),
    "Nodes_required_for_job_are_DOWN,_DRAINED_or_reserved_for_jobs_in_higher_priority_partitions":
        (INFRASTRUCTURE, "needed nodes are down, drained or reserved"),
    "WaitingForScheduling": (QUEUEING, "not yet looked at by the scheduler"),
    "Prolog": (QUEUEING, "running the prolog before start"),
    "Cleaning": (QUEUEING, "being cleaned up before it can run again"),
    "Configuring": (QUEUEING, "nodes are booting for it"),
    "JobArrayTaskLimit": (USER, "its array may run only a few tasks at once"),
    "Dependency": (USER, "waiting for another job to finish"),
    "DependencyNeverSatisfied": (USER, "depends on a job that can never satisfy it"),
    "BeginTime": (USER, "asked to start later"),
    "JobHeldUser": (USER, "held by its owner"),
    "JobHeldAdmin": (USER, "held by an administrator"),
    "InvalidAccount": (USER, "submitted with an invalid account"),
    "InvalidQOS": (USER, "submitted with an invalid QOS"),
    "BadConstraints": (USER, "asks for constraints no node can meet"),
    "Licenses": (QUEUEING, "waiting for a licence"),
    "ReqNodeNotAvail": (INFRASTRUCTURE, "a node it needs is down, drained or reserved"),
    "NodeDown": (INFRASTRUCTURE, "a node it needs is down"),
    "PartitionDown": (INFRASTRUCTURE, "its partition is down"),
    "PartitionInactive": (INFRASTRUCTURE, "its partition is inactive"),
    "PartitionNodeLimit": (USER, "asks for more nodes than the partition allows"),
    "PartitionTimeLimit": (USER, "asks for more time than the partition allows"),
    "Reservation": (INFRASTRUCTURE, "waiting for its reservation to start"),
    "ReservationDeleted": (INFRASTRUCTURE, "its reservation was deleted"),
    "QOSMaxGRESPerUser": (QUOTA, "user's GPU quota in this QOS reached"),
    "QOSGrpGRES": (QUOTA, "QOS GPU quota reached"),
    "AssocGrpGRES": (QUOTA, "tenant's GPU quota reached"),
    "AssocGrpGRESMinutes": (QUOTA, "tenant's GPU-hours budget used up"),
    "AssocGrpGRESRunMinutes": (QUOTA, "tenant's running GPU-hours limit reached"),
    "QOSGrpGRESMinutes": (QUOTA, "QOS GPU-hours budget used up"),
    "QOSGrpGRESRunMinutes": (QUOTA, "QOS running GPU-hours limit reached"),
    "AssocMaxGRESPerJob": (QUOTA, "asks for more GPUs than the tenant allows per job"),
    "QOSMaxGRESPerJob": (QUOTA, "asks for more GPUs than the QOS allows per job"),
    "QOSMaxGRESPerNode": (QUOTA, "asks for more GPUs per node than the QOS allows"),
    "MaxGRESPerAccount": (QUOTA, "tenant's GPU limit reached"),
    "QOSMaxJobsPerUserLimit": (QUOTA, "user's running-jobs limit reached"),
    "AssocGrpJobsLimit": (QUOTA, "tenant's running-jobs limit reached"),
    "AssocMaxJobsLimit": (QUOTA, "user's running-jobs limit reached"),
    "None": (OTHER, ""),
}

_QUOTA_PATTERN = re.compile(r"^(Assoc|QOS)(Grp|Max)|^Max.*Per(Account|User)")


def explain(reason: str | None) -> tuple[str, str]:
    """Return (group, plain words) for a Slurm ``state_reason``; unknown reasons keep their name."""
    r = (reason or "").strip()
    if not r or r == "None":
        return OTHER, ""
    hit = _EXACT.get(r)
    if hit is not None:
        return hit
    if _QUOTA_PATTERN.match(r):
        return QUOTA, f"quota limit reached ({r})"
    if r.startswith("ReqNodeNotAvail"):  # "ReqNodeNotAvail, UnavailableNodes:gpu[04-05]"
        return _EXACT["ReqNodeNotAvail"]
    return OTHER, r


def group(reason: str | None) -> str:
    """The reason's group, one of ``GROUPS``."""
    return explain(reason)[0]


def words(reason: str | None) -> str:
    """The reason in plain words (the raw name when unknown)."""
    return explain(reason)[1]
