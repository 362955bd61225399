"""The simulated AI supercomputing centre: the console's embedded default and test bed."""

from console.sim.cluster import SimCluster
from console.sim.config import FAULT_KINDS, SimConfig
from console.sim.faults import FaultRecord
from console.sim.source import SimulatedSource
from console.sim.tenants import TenantInfo, default_tenants

__all__ = ["FAULT_KINDS", "FaultRecord", "SimCluster", "SimConfig", "SimulatedSource",
           "TenantInfo", "default_tenants"]
